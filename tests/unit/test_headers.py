"""Lenient header and value parsers (``asyncreply_client._headers``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncreply_client._headers import (
    MAX_RETRY_AFTER,
    find_link,
    header_values,
    parse_content_disposition_filename,
    parse_http_date,
    parse_link_header,
    parse_number,
    parse_preferences,
    parse_retry_after,
    parse_timestamp,
    preference_applied_wait,
)

DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
DATE_EPOCH = 784111777.0


@pytest.mark.parametrize(
    ("headers", "body", "now", "expected"),
    [
        # delta-seconds
        ({"Retry-After": "5"}, None, None, 5.0),
        ({"Retry-After": " 5 "}, None, None, 5.0),
        ({"Retry-After": "0"}, None, None, 0.0),  # 0 means "now", not "no hint"
        ({"Retry-After": "1.5"}, None, None, 1.5),  # lenient: fractions accepted
        # milliseconds win over seconds (more precise)
        ({"Retry-After": "1", "Retry-After-Ms": "250"}, None, None, 0.25),
        ({"retry-after-ms": "1500"}, None, None, 1.5),
        ({"x-ms-retry-after-ms": "20"}, None, None, 0.02),
        ({"Retry-After-Ms": "0"}, None, None, 0.0),
        ({"Retry-After-Ms": "soon", "Retry-After": "2"}, None, None, 2.0),
        # HTTP-date, relative to the response's Date header, else to `now`
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT", "Date": DATE}, None, None, 3.0),
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT"}, None, DATE_EPOCH + 1, 2.0),
        (
            {"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT", "Date": "garbage"},
            None,
            DATE_EPOCH,
            3.0,
        ),
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT"}, None, None, None),  # no reference
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:30 GMT", "Date": DATE}, None, None, 0.0),
        ({"Retry-After": "Sunday, 06-Nov-94 08:49:47 GMT", "Date": DATE}, None, None, 10.0),
        ({"Retry-After": "Sun Nov  6 08:49:57 1994", "Date": DATE}, None, None, 20.0),
        # garbage is "no hint"
        ({"Retry-After": "soon"}, None, None, None),
        ({"Retry-After": "-5"}, None, None, None),
        ({"Retry-After": "5s"}, None, None, None),
        ({"Retry-After": ""}, None, None, None),
        ({"Retry-After": "NaN"}, None, None, None),
        ({"Retry-After": "inf"}, None, None, None),
        ({"Retry-After": "1e3"}, None, None, None),
        ({"Retry-After": "Mon, 99 Foo 2026 99:99:99 GMT", "Date": DATE}, None, None, None),
        # huge values are clamped, never infinite
        ({"Retry-After": "9" * 400}, None, None, MAX_RETRY_AFTER),
        ({"Retry-After": "99999999999"}, None, None, MAX_RETRY_AFTER),
        (
            {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT", "Date": DATE},
            None,
            None,
            MAX_RETRY_AFTER,
        ),
        ({"Retry-After-Ms": "9" * 100}, None, None, MAX_RETRY_AFTER / 1000),
        # body hints, after headers
        ({}, {"retryAfter": 0.1}, None, 0.1),
        ({}, {"retryAfter": 0}, None, 0.0),
        ({}, {"retry_after": "2"}, None, 2.0),
        ({}, {"retryAfterMs": 300}, None, 0.3),
        ({"Retry-After": "3"}, {"retryAfter": 0.1}, None, 3.0),
        ({}, {"retryAfter": -1}, None, None),
        ({}, {"retryAfter": True}, None, None),
        ({}, {"retryAfter": None}, None, None),
        ({}, {"retryAfter": "x"}, None, None),
        ({}, ["retryAfter", 1], None, None),
        ({}, "retryAfter", None, None),
        ({}, None, None, None),
    ],
)
def test_parse_retry_after(
    headers: dict[str, str], body: object, now: float | None, expected: float | None
) -> None:
    assert parse_retry_after(headers, body, now=now) == pytest.approx(expected)
    # httpx.Headers and a list of pairs give the same answer as a plain mapping
    assert parse_retry_after(httpx.Headers(headers), body, now=now) == pytest.approx(expected)
    assert parse_retry_after(list(headers.items()), body, now=now) == pytest.approx(expected)


def test_retry_after_first_value_wins_and_case_is_ignored() -> None:
    headers = httpx.Headers([("RETRY-AFTER", "4"), ("retry-after", "9")])
    assert parse_retry_after(headers) == 4.0


@given(
    st.dictionaries(
        st.sampled_from(["Retry-After", "Retry-After-Ms", "x-ms-retry-after-ms", "Date", "X"]),
        st.text(max_size=60),
    ),
    st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["retryAfter", "retry_after", "retryAfterMs"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
        ),
        st.text(),
        st.lists(st.integers()),
    ),
    st.one_of(st.none(), st.floats()),
)
def test_parse_retry_after_never_raises(
    headers: dict[str, str], body: object, now: float | None
) -> None:
    value = parse_retry_after(headers, body, now=now)
    assert value is None or 0.0 <= value <= MAX_RETRY_AFTER


@given(st.binary(max_size=80))
def test_parse_retry_after_raw_header_bytes(raw: bytes) -> None:
    headers = httpx.Headers([(b"Retry-After", raw), (b"Date", raw)])
    value = parse_retry_after(headers, None, now=0.0)
    assert value is None or 0.0 <= value <= MAX_RETRY_AFTER


def test_parse_http_date() -> None:
    assert parse_http_date(DATE) == DATE_EPOCH
    assert parse_http_date("not a date") is None
    assert parse_http_date("") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.5", 2.5),
        (3, 3.0),
        (1.25, 1.25),
        (True, None),
        ("x", None),
        (float("inf"), None),
        (float("nan"), None),
        (10**400, None),
        ("", None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_number(value: object, expected: float | None) -> None:
    assert parse_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('</jobs/1/events>; rel="events"', [("/jobs/1/events", {"events"})]),
        (
            '</a>; rel="next", <https://h/b?x=1,2>; rel="monitor self"; title="a, b; c"',
            [("/a", {"next"}), ("https://h/b?x=1,2", {"monitor", "self"})],
        ),
        ("</a>; rel=events", [("/a", {"events"})]),
        ('</a>; REL="Events"', [("/a", {"events"})]),
        ("</a>", [("/a", set())]),
        ('<>; rel="x", </b>; rel=y', [("/b", {"y"})]),
        ("garbage", []),
        ("</unterminated", []),
        ('</a>; rel="unterminated', [("/a", {"unterminated"})]),
        ("", []),
    ],
)
def test_parse_link_header(value: str, expected: list[tuple[str, set[str]]]) -> None:
    assert [(link.url, set(link.rels)) for link in parse_link_header(value)] == expected


def test_find_link_across_several_link_headers() -> None:
    headers = httpx.Headers([("Link", '</a>; rel="next"'), ("Link", '</e>; rel="events"')])
    assert find_link(headers, "events") == "/e"
    assert find_link(headers, "EVENTS") == "/e"
    assert find_link(headers, "monitor") is None
    assert find_link(None, "events") is None


@given(st.text(max_size=200))
def test_parse_link_header_never_raises(value: str) -> None:
    for link in parse_link_header(value):
        assert link.url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('attachment; filename="report.csv"', "report.csv"),
        ("attachment; filename=report.csv", "report.csv"),
        ("attachment; filename*=UTF-8''na%C3%AFve%20file.txt", "naïve file.txt"),
        ("attachment; filename=\"fallback.txt\"; filename*=UTF-8''real.txt", "real.txt"),
        ("attachment; filename*=bogus-charset''a%20b.txt", "a b.txt"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\evil\\\\x.exe"', "x.exe"),
        ('attachment; filename=".."', None),
        ('attachment; filename="with \\"quote\\".txt"', 'with "quote".txt'),
        ("attachment", None),
        ("inline; name=x", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_content_disposition_filename(value: str | None, expected: str | None) -> None:
    assert parse_content_disposition_filename(value) == expected


@given(st.text(max_size=200))
def test_parse_content_disposition_never_raises(value: str) -> None:
    name = parse_content_disposition_filename("attachment; " + value)
    assert name is None or ("/" not in name and name not in (".", ".."))


def test_preferences() -> None:
    assert parse_preferences("wait=5, respond-async") == {"wait": "5", "respond-async": ""}
    assert parse_preferences('Wait="10"; x=y') == {"wait": "10"}
    assert preference_applied_wait({"Preference-Applied": "wait=30"}) == 30.0
    assert preference_applied_wait({"Preference-Applied": "respond-async"}) is None
    assert preference_applied_wait({"Preference-Applied": "wait=junk"}) == 0.0
    assert preference_applied_wait({}) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T09:00:00.123Z", datetime(2026, 11, 23, 9, 0, 0, 123000, tzinfo=timezone.utc)),
        ("2026-11-23T09:00:00Z", datetime(2026, 11, 23, 9, tzinfo=timezone.utc)),
        ("2026-11-23t09:00:00z", datetime(2026, 11, 23, 9, tzinfo=timezone.utc)),
        ("2026-11-23 09:00:00", datetime(2026, 11, 23, 9, tzinfo=timezone.utc)),
        (
            "2026-11-23T09:00:00.123456789+02:00",
            datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2026-11-23T09:00:00-0530",
            datetime(2026, 11, 23, 9, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=timezone.utc)),
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=timezone.utc)),  # leap second
        (0, datetime(1970, 1, 1, tzinfo=timezone.utc)),
        (1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
        ("2026-13-01T00:00:00Z", None),
        ("2026-02-30T00:00:00Z", None),
        ("2026-11-23T25:00:00Z", None),
        ("2026-11-23T24:00:00Z", None),  # no "24:00" (some Pythons' fromisoformat take it)
        (
            "2026-11-23T09:00:00.123456Z",
            datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=timezone.utc),
        ),
        ("2026-11-23T09:00:00.5Z", datetime(2026, 11, 23, 9, 0, 0, 500000, tzinfo=timezone.utc)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=timezone.utc)),
        ("2026-11-23T09:00:00.123Z ", datetime(2026, 11, 23, 9, 0, 0, 123000, tzinfo=timezone.utc)),
        ("2026-11-23T09:00:00+99:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (-1, None),
        (1e300, None),
        (float("nan"), None),
        ({"t": 1}, None),
    ],
)
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


@given(st.one_of(st.text(max_size=80), st.integers(), st.floats()))
def test_parse_timestamp_never_raises(value: object) -> None:
    parsed = parse_timestamp(value)
    assert parsed is None or parsed.tzinfo is not None


def test_header_values_of_odd_containers() -> None:
    assert header_values(None, "x") == []
    assert header_values([("X", "1"), ("x", "2"), ("y", "3")], "X") == ["1", "2"]
    assert header_values({"X": 1}, "x") == []  # type: ignore[dict-item]
