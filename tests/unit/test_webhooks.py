"""Webhook signing and verification: interop, schemes, rotation, tolerance, replays, bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as StdVerificationError

from asyncreply_client._errors import AsyncReplyError
from asyncreply_client._models import JobState
from asyncreply_client.webhooks import (
    FutureTimestampError,
    InMemoryReplayStore,
    InvalidPayloadError,
    InvalidSignatureError,
    MalformedHeaderError,
    MissingHeaderError,
    ReplayedDeliveryError,
    StaleTimestampError,
    TimestampOutOfToleranceError,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
    sign,
)

KEY = b"asyncreply-test-key-0123456789ab"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_700_000_000
BODY = json.dumps(
    {
        "type": "job.completed",
        "jobId": "job_1",
        "timestamp": "2023-11-14T22:13:20Z",  # == NOW
        "data": {"jobId": "job_1", "status": "completed", "resultUrl": "/jobs/job_1/result"},
    }
).encode()


def make_verifier(secrets: Any = SECRET, *, now: float = NOW, **options: Any) -> WebhookVerifier:
    return WebhookVerifier(secrets, clock=lambda: now, **options)


def std_headers(
    body: bytes = BODY, *, secret: str | bytes = SECRET, msg_id: str = "msg_1", ts: int = NOW
) -> dict[str, str]:
    return sign(body, secret, msg_id=msg_id, timestamp=ts, scheme="standard")


def simple_headers(
    body: bytes = BODY, *, secret: str | bytes = SECRET, msg_id: str = "msg_1", ts: int = NOW
) -> dict[str, str]:
    return sign(body, secret, msg_id=msg_id, timestamp=ts, event_type="job.x", scheme="hmac-sha256")


def rfc2104_hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC written out from RFC 2104, independent of the ``hmac`` module."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


# ----------------------------------------------------------------------------------- interop


def test_standardwebhooks_signs_we_verify() -> None:
    signer = Webhook(SECRET)
    when = datetime.fromtimestamp(NOW, tz=timezone.utc)
    headers = {
        "webhook-id": "msg_std",
        "webhook-timestamp": str(NOW),
        "webhook-signature": signer.sign("msg_std", when, BODY.decode()),
    }
    event = make_verifier().verify(headers, BODY)
    assert event.scheme == "standard"
    assert event.delivery_id == "msg_std"
    assert event.timestamp == when
    assert event.payload == json.loads(BODY)


@pytest.mark.parametrize("scheme", ["standard", "both"])
@pytest.mark.parametrize(
    "secret", [SECRET, SECRET.rstrip("="), KEY], ids=["whsec", "whsec-unpadded", "bytes"]
)
def test_we_sign_standardwebhooks_verifies(scheme: Any, secret: str | bytes) -> None:
    # standardwebhooks checks against the real clock, so sign with it.
    now = int(datetime.now(tz=timezone.utc).timestamp())
    headers = sign(BODY, secret, msg_id="msg_ours", timestamp=now, scheme=scheme)
    assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)


def test_standardwebhooks_rejects_our_signature_with_another_key() -> None:
    now = int(datetime.now(tz=timezone.utc).timestamp())
    headers = sign(BODY, b"another key", msg_id="m", timestamp=now, scheme="standard")
    with pytest.raises(StdVerificationError):
        Webhook(SECRET).verify(BODY, headers)


def test_published_standard_webhooks_vector() -> None:
    # The example from the Standard Webhooks reference libraries' test suite.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = sign(body, secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    event = make_verifier(secret, now=1614265330, scheme="standard").verify(headers, body)
    assert event.delivery_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"


# ------------------------------------------------------------------------------ simple scheme


def test_simple_scheme_matches_a_hand_computed_hmac() -> None:
    body = b'{"a":1}'
    headers = sign(body, "s3cret", msg_id="d1", timestamp=NOW, scheme="hmac-sha256")
    # Computed once by hand and pinned, and recomputed from RFC 2104 without ``hmac``.
    pinned = "5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d"
    assert headers["X-Webhook-Signature"] == f"sha256={pinned}"
    assert rfc2104_hmac_sha256(b"s3cret", body).hex() == pinned
    assert headers["X-Webhook-Delivery"] == "d1"
    assert headers["X-Webhook-Timestamp"] == str(NOW)
    assert "webhook-signature" not in headers


def test_simple_scheme_verifies_a_hand_built_delivery() -> None:
    body = b'{"type": "job.failed", "jobId": "j9", "data": {"status": "failed"}}'
    digest = rfc2104_hmac_sha256(b"plain secret", body).hex().upper()  # hex case is free
    headers = {
        "X-WEBHOOK-SIGNATURE": f"sha256={digest}",
        "x-webhook-delivery": "dlv_7",
        "X-Webhook-Timestamp": str(NOW),
    }
    event = make_verifier("plain secret", scheme="hmac-sha256").verify(headers, body)
    assert (event.scheme, event.type, event.job_id, event.status) == (
        "hmac-sha256",
        "job.failed",
        "j9",
        JobState.FAILED,
    )
    assert event.delivery_id == "dlv_7"
    assert event.timestamp == datetime.fromtimestamp(NOW, tz=timezone.utc)


def test_standard_signature_matches_rfc2104() -> None:
    headers = std_headers(msg_id="m2", ts=NOW)
    expected = rfc2104_hmac_sha256(KEY, f"m2.{NOW}.".encode() + BODY)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()


# ---------------------------------------------------------------------------- scheme choice


def test_auto_prefers_standard_when_both_are_present() -> None:
    headers = sign(BODY, SECRET, msg_id="m", timestamp=NOW, event_type="job.completed")
    assert make_verifier().verify(headers, BODY).scheme == "standard"


def test_auto_does_not_fall_back_to_the_simple_scheme_on_a_bad_standard_signature() -> None:
    headers = sign(BODY, SECRET, msg_id="m", timestamp=NOW)
    headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(InvalidSignatureError):
        make_verifier().verify(headers, BODY)


def test_auto_uses_the_simple_scheme_alone() -> None:
    assert make_verifier().verify(simple_headers(), BODY).scheme == "hmac-sha256"


@pytest.mark.parametrize(
    ("scheme", "headers", "missing"),
    [
        ("standard", simple_headers(), "webhook-id"),
        ("hmac-sha256", std_headers(), "X-Webhook-Signature"),
        ("auto", {}, "webhook-signature"),
        ("auto", {"Content-Type": "application/json"}, "webhook-signature"),
    ],
)
def test_forced_scheme_requires_its_headers(
    scheme: Any, headers: dict[str, str], missing: str
) -> None:
    with pytest.raises(MissingHeaderError) as caught:
        make_verifier(scheme=scheme).verify(headers, BODY)
    assert caught.value.header == missing


# ---------------------------------------------------------------------------------- rotation


def test_rotation_accepts_any_configured_secret() -> None:
    verifier = make_verifier(["whsec_b2xkLXNlY3JldA==", SECRET, b"raw"], replay_store=None)
    assert verifier.verify(std_headers(secret=SECRET), BODY)
    assert verifier.verify(std_headers(secret="whsec_b2xkLXNlY3JldA=="), BODY)
    assert verifier.verify(simple_headers(secret=b"raw"), BODY)
    with pytest.raises(InvalidSignatureError):
        verifier.verify(std_headers(secret="retired"), BODY)


def test_rotation_by_the_sender_several_signatures_in_one_header() -> None:
    old = std_headers(secret="old secret")["webhook-signature"]
    new = std_headers(secret=SECRET)["webhook-signature"]
    headers = std_headers() | {"webhook-signature": f"{old} {new}"}
    assert make_verifier(SECRET).verify(headers, BODY).delivery_id == "msg_1"
    assert make_verifier("old secret").verify(headers, BODY).delivery_id == "msg_1"


def test_unknown_signature_versions_are_skipped() -> None:
    good = std_headers()["webhook-signature"]
    headers = std_headers() | {"webhook-signature": f"v1a,bm90IGVkMjU1MTk= v2,zz {good}"}
    assert make_verifier().verify(headers, BODY)
    only_unknown = std_headers() | {"webhook-signature": "v1a,bm90IGVkMjU1MTk="}
    with pytest.raises(InvalidSignatureError):
        make_verifier().verify(only_unknown, BODY)


# --------------------------------------------------------------------------------- tolerance


@pytest.mark.parametrize("make_headers", [std_headers, simple_headers], ids=["std", "simple"])
@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (0, None),
        (-300, None),  # exactly at the limit, in the past
        (300, None),  # exactly at the limit, in the future
        (-301, StaleTimestampError),
        (301, FutureTimestampError),
        (-86_400 * 365, StaleTimestampError),
    ],
)
def test_tolerance_edges(
    make_headers: Callable[..., dict[str, str]], offset: int, error: type[Exception] | None
) -> None:
    body = json.dumps({"type": "job.progress", "jobId": "j"}).encode()  # no payload timestamp
    headers = make_headers(body, ts=NOW + offset)
    verifier = make_verifier(tolerance=300)
    if error is None:
        event = verifier.verify(headers, body)
        assert event.timestamp == datetime.fromtimestamp(NOW + offset, tz=timezone.utc)
    else:
        with pytest.raises(error) as caught:
            verifier.verify(headers, body)
        assert isinstance(caught.value, TimestampOutOfToleranceError)
        assert caught.value.timestamp == NOW + offset
        assert caught.value.tolerance == 300


def test_fractional_clock_at_the_edge() -> None:
    with pytest.raises(StaleTimestampError):
        make_verifier(now=NOW + 300.001).verify(std_headers(ts=NOW), BODY)
    assert make_verifier(now=NOW + 299.999).verify(std_headers(ts=NOW), BODY)


def test_tolerance_none_accepts_any_timestamp() -> None:
    assert make_verifier(tolerance=None).verify(std_headers(ts=1), BODY)


def test_simple_scheme_trusts_the_signed_payload_timestamp_over_the_header() -> None:
    stale_body = json.dumps({"type": "job.completed", "timestamp": NOW - 1000}).encode()
    # The header says "now", but the signed payload says 1000 s ago: rejected.
    with pytest.raises(StaleTimestampError):
        make_verifier().verify(simple_headers(stale_body, ts=NOW), stale_body)
    # The header says "long ago", the signed payload (RFC 3339) says now: accepted.
    event = make_verifier().verify(simple_headers(BODY, ts=NOW - 5000), BODY)
    assert event.timestamp == datetime.fromtimestamp(NOW, tz=timezone.utc)


def test_simple_scheme_unreadable_payload_timestamp_falls_back_to_the_header() -> None:
    body = json.dumps({"type": "job.completed", "timestamp": "yesterday"}).encode()
    assert make_verifier().verify(simple_headers(body, ts=NOW), body)
    with pytest.raises(StaleTimestampError):
        make_verifier().verify(simple_headers(body, ts=NOW - 301), body)


def test_simple_scheme_without_any_timestamp() -> None:
    body = b'{"type": "ping"}'
    headers = simple_headers(body)
    del headers["X-Webhook-Timestamp"]
    with pytest.raises(MissingHeaderError) as caught:
        make_verifier().verify(headers, body)
    assert caught.value.header == "X-Webhook-Timestamp"
    assert make_verifier(tolerance=None).verify(headers, body).timestamp is None


# ----------------------------------------------------------------------------------- replays


@pytest.mark.parametrize("make_headers", [std_headers, simple_headers], ids=["std", "simple"])
def test_a_replay_inside_the_window_is_rejected(
    make_headers: Callable[..., dict[str, str]],
) -> None:
    verifier = make_verifier()
    headers = make_headers()
    first = verifier.verify(headers, BODY)
    with pytest.raises(ReplayedDeliveryError) as caught:
        verifier.verify(headers, BODY)
    assert caught.value.delivery_id == "msg_1"
    assert caught.value.processed is False
    verifier.forget(first)
    assert verifier.verify(headers, BODY) == first


def test_simple_scheme_replay_with_a_new_delivery_header_is_still_a_replay() -> None:
    verifier = make_verifier()
    verifier.verify(simple_headers(msg_id="a"), BODY)
    with pytest.raises(ReplayedDeliveryError):
        verifier.verify(simple_headers(msg_id="b"), BODY)


def test_distinct_deliveries_are_not_replays() -> None:
    verifier = make_verifier()
    verifier.verify(std_headers(msg_id="a"), BODY)
    verifier.verify(std_headers(msg_id="b"), BODY)


def test_a_retry_re_signed_later_is_still_a_duplicate() -> None:
    # Senders retry under the same id with a fresh timestamp, possibly hours later.
    clock = [float(NOW)]
    verifier = WebhookVerifier(SECRET, clock=lambda: clock[0], remember_for=3600)
    verifier.verify(std_headers(ts=NOW), BODY)
    clock[0] = NOW + 3000
    with pytest.raises(ReplayedDeliveryError):
        verifier.verify(std_headers(ts=NOW + 3000), BODY)
    clock[0] = NOW + 3601
    assert verifier.verify(std_headers(ts=NOW + 3601), BODY).delivery_id == "msg_1"


def test_replay_store_none_disables_replay_checks() -> None:
    verifier = make_verifier(replay_store=None)
    assert verifier.replay_store is None
    verifier.verify(std_headers(), BODY)
    verifier.verify(std_headers(), BODY)


def test_replayed_ids_are_kept_exactly_as_long_as_the_window() -> None:
    clock = [float(NOW)]
    verifier = WebhookVerifier(SECRET, clock=lambda: clock[0], tolerance=300, remember_for=0)
    store = verifier.replay_store
    assert isinstance(store, InMemoryReplayStore)
    verifier.verify(std_headers(ts=NOW), BODY)
    clock[0] = NOW + 300  # last instant the delivery is acceptable: still remembered
    with pytest.raises(ReplayedDeliveryError):
        verifier.verify(std_headers(ts=NOW), BODY)
    assert len(store) == 1
    clock[0] = NOW + 301  # forgotten, and the timestamp check takes over
    assert len(store) == 0
    with pytest.raises(StaleTimestampError):
        verifier.verify(std_headers(ts=NOW), BODY)


class DictStore:
    """A minimal third-party ReplayStore that records its calls."""

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}
        self.calls: list[tuple[str, float]] = []

    def add(self, key: str, expires_at: float) -> bool:
        self.calls.append((key, expires_at))
        if key in self.keys:
            return False
        self.keys[key] = expires_at
        return True

    def discard(self, key: str) -> None:
        self.keys.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self.keys


def test_a_custom_replay_store_is_used() -> None:
    store = DictStore()
    verifier = make_verifier(replay_store=store)
    assert verifier.replay_store is store
    event = verifier.verify(std_headers(msg_id="x"), BODY)
    assert store.calls == [("seen:id:x", NOW + 86_400)]
    with pytest.raises(ReplayedDeliveryError):
        verifier.verify(std_headers(msg_id="x"), BODY)
    verifier.forget(event)
    assert store.keys == {}


# ------------------------------------------------------------------------------ replay store


def test_in_memory_store_basics() -> None:
    clock = [100.0]
    store = InMemoryReplayStore(clock=lambda: clock[0])
    assert store.add("a", 110.0)
    assert not store.add("a", 500.0)
    assert "a" in store and "b" not in store
    store.discard("a")
    store.discard("never added")
    assert "a" not in store
    assert store.add("a", 120.0)
    clock[0] = 120.0
    assert "a" in store  # inclusive expiry
    clock[0] = 120.5
    assert "a" not in store
    assert store.add("a", 130.0)


def test_in_memory_store_is_bounded_and_evicts_the_soonest_expiry() -> None:
    store = InMemoryReplayStore(max_entries=3, clock=lambda: 0.0)
    for key, expires_at in [("late", 30.0), ("soon", 10.0), ("mid", 20.0), ("new", 40.0)]:
        assert store.add(key, expires_at)
    assert len(store) == 3
    assert "soon" not in store
    assert all(key in store for key in ("late", "mid", "new"))


def test_in_memory_store_survives_many_discards() -> None:
    store = InMemoryReplayStore(max_entries=4, clock=lambda: 0.0)
    for i in range(100):
        assert store.add("k", float(i + 1))
        store.discard("k")
    assert len(store._heap) <= 2 * 4 + 1
    assert store.add("k", 1.0) and "k" in store


def test_in_memory_store_add_is_atomic_across_threads() -> None:
    store = InMemoryReplayStore(clock=lambda: 0.0)
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def contend() -> None:
        barrier.wait()
        wins.append(store.add("same", 10.0))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_in_memory_store_rejects_a_zero_bound() -> None:
    with pytest.raises(ValueError):
        InMemoryReplayStore(max_entries=0)


# ------------------------------------------------------------------------- malformed input


def _std(**changes: str | None) -> dict[str, str]:
    headers = std_headers()
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return headers


MALFORMED: list[tuple[str, dict[str, str], bytes, type[WebhookVerificationError], str | None]] = [
    ("no webhook-id", _std(webhook_id=None), BODY, MissingHeaderError, "webhook-id"),
    ("empty webhook-id", _std(webhook_id=""), BODY, MissingHeaderError, "webhook-id"),
    ("no timestamp", _std(webhook_timestamp=None), BODY, MissingHeaderError, "webhook-timestamp"),
    (
        "blank signature",
        _std(webhook_signature="  "),
        BODY,
        MissingHeaderError,
        "webhook-signature",
    ),
    ("v1 without comma", _std(webhook_signature="v1"), BODY, MalformedHeaderError, None),
    ("token without comma", _std(webhook_signature="v1,AAAA v1"), BODY, MalformedHeaderError, None),
    ("bad base64", _std(webhook_signature="v1,@@@@"), BODY, MalformedHeaderError, None),
    ("bad padding", _std(webhook_signature="v1,AAA"), BODY, MalformedHeaderError, None),
    ("non-ascii base64", _std(webhook_signature="v1,AAé="), BODY, MalformedHeaderError, None),
    ("float timestamp", _std(webhook_timestamp="1700000000.5"), BODY, MalformedHeaderError, None),
    ("word timestamp", _std(webhook_timestamp="now"), BODY, MalformedHeaderError, None),
    ("negative timestamp", _std(webhook_timestamp="-5"), BODY, MalformedHeaderError, None),
    ("exponent timestamp", _std(webhook_timestamp="17e8"), BODY, MalformedHeaderError, None),
    ("underscored", _std(webhook_timestamp="1_700_000_000"), BODY, MalformedHeaderError, None),
    ("unicode digits", _std(webhook_timestamp="\u0661" * 10), BODY, MalformedHeaderError, None),
    ("huge timestamp", _std(webhook_timestamp="9" * 40), BODY, MalformedHeaderError, None),
    ("past year 9999", _std(webhook_timestamp="999999999999"), BODY, MalformedHeaderError, None),
    (
        "wrong signature",
        _std(webhook_signature="v1," + "A" * 44),
        BODY,
        InvalidSignatureError,
        None,
    ),
    ("wrong body", std_headers(), BODY + b" ", InvalidSignatureError, None),
    (
        "simple sha1",
        {"X-Webhook-Signature": "sha1=" + "a" * 40, "X-Webhook-Timestamp": str(NOW)},
        BODY,
        MalformedHeaderError,
        None,
    ),
    (
        "simple no prefix",
        {"X-Webhook-Signature": "a" * 64, "X-Webhook-Timestamp": str(NOW)},
        BODY,
        MalformedHeaderError,
        None,
    ),
    (
        "simple short hex",
        {"X-Webhook-Signature": "sha256=abc", "X-Webhook-Timestamp": str(NOW)},
        BODY,
        MalformedHeaderError,
        None,
    ),
    (
        "simple non-hex",
        {"X-Webhook-Signature": "sha256=" + "g" * 64, "X-Webhook-Timestamp": str(NOW)},
        BODY,
        MalformedHeaderError,
        None,
    ),
    (
        "simple bad timestamp",
        simple_headers(b"{}") | {"X-Webhook-Timestamp": "soon"},
        b"{}",
        MalformedHeaderError,
        None,
    ),
    (
        "simple wrong signature",
        simple_headers() | {"X-Webhook-Signature": "sha256=" + "0" * 64},
        BODY,
        InvalidSignatureError,
        None,
    ),
    ("non-utf8 body", std_headers(b"\xff\xfe{}"), b"\xff\xfe{}", InvalidPayloadError, None),
    ("non-json body", std_headers(b"hello"), b"hello", InvalidPayloadError, None),
    ("empty body", std_headers(b""), b"", InvalidPayloadError, None),
    ("bom body", std_headers(b"\xef\xbb\xbf{}"), b"\xef\xbb\xbf{}", InvalidPayloadError, None),
    ("deep json", std_headers(b"[" * 100_000), b"[" * 100_000, InvalidPayloadError, None),
    (
        "huge integer",
        std_headers(b"1" * 5000),
        b"1" * 5000,
        InvalidPayloadError,
        None,
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "error", "header"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_bad_input_raises_a_typed_error(
    headers: dict[str, str],
    body: bytes,
    error: type[WebhookVerificationError],
    header: str | None,
) -> None:
    with pytest.raises(error) as caught:
        make_verifier().verify(headers, body)
    assert type(caught.value) is error
    assert isinstance(caught.value, AsyncReplyError)
    if header is not None:
        assert caught.value.header == header  # type: ignore[attr-defined]
    text = str(caught.value)
    secret_forms = [SECRET, KEY.decode(), SECRET[len("whsec_") :]]
    expected_signatures = [
        std_headers(body)["webhook-signature"][3:],
        simple_headers(body)["X-Webhook-Signature"][7:],
    ]
    assert not any(form in text for form in secret_forms + expected_signatures)


def test_repeated_header_with_different_values_is_malformed() -> None:
    pairs = [*std_headers().items(), ("Webhook-Id", "other")]
    with pytest.raises(MalformedHeaderError):
        make_verifier().verify(pairs, BODY)
    # A repeat with the same value is harmless.
    assert make_verifier().verify([*std_headers().items(), ("WEBHOOK-ID", "msg_1")], BODY)


def test_decoded_text_is_refused() -> None:
    with pytest.raises(TypeError):
        make_verifier().verify(std_headers(), BODY.decode())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "wrap",
    [
        dict,
        lambda h: {k.upper(): v for k, v in h.items()},
        httpx.Headers,
        CIMultiDict,
        lambda h: list(h.items()),
        lambda h: [(k.encode(), v.encode()) for k, v in h.items()],
    ],
    ids=["dict", "upper-dict", "httpx", "cimultidict", "pairs", "byte-pairs"],
)
def test_header_containers(wrap: Callable[[dict[str, str]], Any]) -> None:
    verifier = make_verifier(replay_store=None)
    assert verifier.verify(wrap(std_headers()), BODY).scheme == "standard"
    assert verifier.verify(wrap(simple_headers()), BODY).scheme == "hmac-sha256"


def test_body_may_be_a_bytearray_or_memoryview() -> None:
    verifier = make_verifier(replay_store=None)
    assert verifier.verify(std_headers(), bytearray(BODY))
    assert verifier.verify(std_headers(), memoryview(BODY))


# ------------------------------------------------------------------------------- the event


def test_event_fields_from_the_reference_payload() -> None:
    event = make_verifier().verify(std_headers(), BODY)
    assert event == WebhookEvent(
        type="job.completed",
        delivery_id="msg_1",
        timestamp=datetime.fromtimestamp(NOW, tz=timezone.utc),
        job_id="job_1",
        status=JobState.COMPLETED,
        payload=json.loads(BODY),
        scheme="standard",
        replay_key="id:msg_1",
    )
    assert event.data == json.loads(BODY)["data"]
    with pytest.raises(AttributeError):
        event.type = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([1, 2], (None, None, None)),
        ("text", (None, None, None)),
        (42, (None, None, None)),
        (None, (None, None, None)),
        ({}, (None, None, None)),
        ({"type": 5, "jobId": ["x"], "data": "nope"}, (None, None, None)),
        ({"data": {"jobId": "j", "state": "inFlight"}}, (None, "j", JobState.PROCESSING)),
        ({"data": {"state": "deadLetter"}}, (None, None, JobState.FAILED)),
        ({"type": "t", "status": "weird"}, ("t", None, "weird")),
        ({"type": "t", "status": "pending"}, ("t", None, JobState.PENDING)),
    ],
)
def test_event_fields_from_any_payload(payload: Any, expected: tuple[Any, ...]) -> None:
    body = json.dumps(payload).encode()
    event = make_verifier().verify(std_headers(body), body)
    assert (event.type, event.job_id, event.status) == expected
    assert event.payload == payload
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        assert event.data is None


def test_event_type_falls_back_to_the_event_header() -> None:
    body = b'{"jobId": "j"}'
    headers = simple_headers(body)  # X-Webhook-Event: job.x
    assert make_verifier().verify(headers, body).type == "job.x"
    headers["X-Webhook-Event"] = "job.y"
    with_type = b'{"type": "job.completed"}'
    headers = simple_headers(with_type) | {"X-Webhook-Event": "job.forged"}
    assert make_verifier().verify(headers, with_type).type == "job.completed"


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("secrets", "options"),
    [
        ([], {}),
        ("", {}),
        ([SECRET, b""], {}),
        ("whsec_!!!not base64!!!", {}),
        (SECRET, {"scheme": "sha512"}),
        (SECRET, {"tolerance": -1}),
        (SECRET, {"tolerance": float("nan")}),
        (SECRET, {"remember_for": -1}),
        (SECRET, {"replay_store": "redis"}),
    ],
)
def test_bad_configuration_is_a_value_error(secrets: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as caught:
        WebhookVerifier(secrets, **options)
    assert "!!!not" not in str(caught.value)


def test_repr_hides_the_secrets() -> None:
    text = repr(make_verifier([SECRET, "plain-secret"]))
    assert "2 secret(s)" in text
    assert SECRET not in text and "plain-secret" not in text


def test_verification_errors_are_async_reply_errors() -> None:
    for error in (
        MissingHeaderError,
        MalformedHeaderError,
        InvalidSignatureError,
        StaleTimestampError,
        FutureTimestampError,
        ReplayedDeliveryError,
        InvalidPayloadError,
    ):
        assert issubclass(error, WebhookVerificationError)
    assert issubclass(WebhookVerificationError, AsyncReplyError)


def test_public_surface_is_sorted_and_documented() -> None:
    import inspect

    import asyncreply_client.webhooks as module

    assert module.__all__ == sorted(module.__all__)
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert defined_here <= set(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), name


# --------------------------------------------------------------------------------------------
# Logging on ``asyncreply.webhooks``: ids and error classes, never secrets, signatures, bodies.


@pytest.mark.parametrize("scheme", ["standard", "hmac-sha256"])
def test_verification_logs_the_delivery_and_each_rejection_without_secrets(
    scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = WebhookVerifier(SECRET, clock=lambda: NOW)
    headers = sign(BODY, SECRET, msg_id="msg_log_1", timestamp=NOW, scheme=scheme)
    signature_header = "webhook-signature" if scheme == "standard" else "X-Webhook-Signature"
    tampered = {k: v for k, v in headers.items() if k.lower() != signature_header.lower()}
    with caplog.at_level(logging.DEBUG, logger="asyncreply.webhooks"):
        event = verifier.verify(headers, BODY)
        with pytest.raises(ReplayedDeliveryError):
            verifier.verify(headers, BODY)
        with pytest.raises(MissingHeaderError):
            verifier.verify(tampered, BODY)
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "asyncreply.webhooks",
            logging.DEBUG,
            f"webhook delivery {event.delivery_id!r} verified ({scheme})",
        ),
        ("asyncreply.webhooks", logging.INFO, "webhook delivery rejected: ReplayedDeliveryError"),
        ("asyncreply.webhooks", logging.INFO, "webhook delivery rejected: MissingHeaderError"),
    ]
    secrets = [SECRET, KEY.decode(), base64.b64encode(KEY).decode(), BODY.decode()]
    secrets += [value for name, value in headers.items() if "signature" in name.lower()]
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text
        assert '"job.completed"' not in text  # no part of the body either


def test_verification_is_silent_above_the_configured_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = WebhookVerifier(SECRET, clock=lambda: NOW)
    headers = sign(BODY, SECRET, msg_id="msg_log_2", timestamp=NOW)
    with caplog.at_level(logging.WARNING, logger="asyncreply.webhooks"):
        verifier.verify(headers, BODY)
        with pytest.raises(ReplayedDeliveryError):
            verifier.verify(headers, BODY)
    assert caplog.records == []
