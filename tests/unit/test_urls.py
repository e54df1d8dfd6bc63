"""URL resolution and origins (``asyncreply_client._urls``)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncreply_client._urls import is_http_url, origin_of, resolve_url, same_origin

BASE = "http://api.example.com:8080/v1/jobs"


@pytest.mark.parametrize(
    ("base", "ref", "expected"),
    [
        (BASE, "/jobs/1", "http://api.example.com:8080/jobs/1"),
        (BASE, "jobs/1", "http://api.example.com:8080/v1/jobs/1"),
        (BASE, "../status/1?x=1", "http://api.example.com:8080/status/1?x=1"),
        (BASE, "https://other.example/ops/1", "https://other.example/ops/1"),
        (BASE, "//cdn.example/r", "http://cdn.example/r"),
        (BASE, "  /jobs/1  ", "http://api.example.com:8080/jobs/1"),
        (BASE, "?page=2", "http://api.example.com:8080/v1/jobs?page=2"),
        # Refused: not a URL a client should follow.
        (BASE, "", None),
        (BASE, "   ", None),
        (BASE, "javascript:alert(1)", None),
        (BASE, "file:///etc/passwd", None),
        (BASE, "ftp://example.com/x", None),
        (BASE, "http://[::1", None),
        (BASE, 42, None),
        (BASE, None, None),
        ("not a url", "/x", None),
        (BASE, "/" + "a" * 10_000, None),
    ],
)
def test_resolve_url(base: str, ref: object, expected: str | None) -> None:
    assert resolve_url(base, ref) == expected


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://API.Example.com/jobs", ("https", "api.example.com", 443)),
        ("http://h/jobs", ("http", "h", 80)),
        ("http://h:80/jobs", ("http", "h", 80)),
        ("http://h:8080", ("http", "h", 8080)),
        ("http://user:pw@h:81/x", ("http", "h", 81)),
        ("/relative", None),
        ("mailto:someone@example.com", None),
        ("gopher://h/x", None),
        ("http://[::1", None),
    ],
)
def test_origin_of(url: str, origin: tuple[str, str, int] | None) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://h/jobs", "http://H:80/jobs/1/result", True),
        ("https://h/jobs", "https://h:443/x", True),
        ("http://h/jobs", "https://h/jobs", False),
        ("http://h/jobs", "http://h:8080/jobs", False),
        ("http://h/jobs", "http://h.evil.com/jobs", False),
        ("http://h/jobs", "/jobs", False),
        ("/a", "/a", False),
    ],
)
def test_same_origin(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same


def test_is_http_url() -> None:
    assert is_http_url("https://h/x")
    assert not is_http_url("/x")
    assert not is_http_url("ftp://h/x")


@given(st.text(max_size=200))
def test_resolve_url_is_total(ref: str) -> None:
    resolved = resolve_url(BASE, ref)
    assert resolved is None or is_http_url(resolved)
    origin_of(ref)
    same_origin(BASE, ref)


def _unmemoised(base: str, ref: object) -> str | None:
    """What ``resolve_url`` gives with its memo of resolved URLs emptied first."""
    from asyncreply_client import _urls

    _urls._RESOLVED.clear()
    return resolve_url(base, ref)


@pytest.mark.parametrize(
    ("base", "ref"),
    [
        (BASE, "/jobs/1"),
        (BASE, "jobs/1"),
        (BASE, "  /jobs/1  "),
        (BASE, ""),
        (BASE, "javascript:alert(1)"),
        ("http://user:secret@api.example.com/v1/jobs", "/jobs/1"),
        ("http://user:secret@api.example.com/v1/jobs", "status/1"),
        ("http://api.example.com/v1/jobs", "http://user:pw@other.example/x"),
        ("HTTP://API.example.com/a/b", "c"),
        ("not a url", "/jobs/1"),
        ("http://h/a/b", "/" + "x" * 3000),  # not kept, resolved each time
    ],
)
def test_a_memoised_resolution_is_the_resolution(base: str, ref: str) -> None:
    expected = _unmemoised(base, ref)
    assert resolve_url(base, ref) == expected  # a hit now (or, too long, read again)
    assert resolve_url(base, ref) == expected


def test_a_relative_url_is_resolved_against_each_base_apart() -> None:
    assert _unmemoised("http://a.example/v1/jobs", "status/1") == "http://a.example/v1/status/1"
    assert (
        resolve_url("http://b.example:81/v2/ops", "status/1") == "http://b.example:81/v2/status/1"
    )
    assert (
        resolve_url("https://u:p@a.example/x/y", "status/1") == "https://u:p@a.example/x/status/1"
    )
    assert resolve_url("http://a.example/v1/jobs", "status/1") == "http://a.example/v1/status/1"


def test_odd_values_fall_back_to_the_full_resolution() -> None:
    class Text(str):
        pass

    assert resolve_url(BASE, Text("/jobs/1")) == "http://api.example.com:8080/jobs/1"
    assert resolve_url(BASE, 12) is None
    assert resolve_url(BASE, None) is None
    assert resolve_url(httpx.URL(BASE), "/jobs/1") == "http://api.example.com:8080/jobs/1"


def test_the_memo_of_resolved_urls_is_bounded() -> None:
    from asyncreply_client import _urls

    _urls._RESOLVED.clear()
    for i in range(_urls._MAX_RESOLVED * 2):
        assert resolve_url(BASE, f"/jobs/{i}") == f"http://api.example.com:8080/jobs/{i}"
    assert len(_urls._RESOLVED) == _urls._MAX_RESOLVED
    assert resolve_url(BASE, "/jobs/0") == "http://api.example.com:8080/jobs/0"  # gone, read again
