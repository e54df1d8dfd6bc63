"""Property tests: no mutation of a signed delivery's body, headers or timestamp is accepted."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, example, given
from hypothesis import strategies as st

from asyncreply_client.webhooks import (
    FutureTimestampError,
    InvalidSignatureError,
    MissingHeaderError,
    StaleTimestampError,
    WebhookVerificationError,
    WebhookVerifier,
    sign,
)

SECRET = "whsec_YXN5bmNyZXBseS1wcm9wZXJ0eS1zZWNyZXQ="
NOW = 1_700_000_000
TOLERANCE = 300
BODY = json.dumps(
    {"type": "job.progress", "jobId": "j1", "data": {"status": "processing"}}
).encode()
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def verifier() -> WebhookVerifier:
    return WebhookVerifier(SECRET, tolerance=TOLERANCE, replay_store=None, clock=lambda: NOW)


def rejected(headers: Any, body: bytes) -> WebhookVerificationError | None:
    """The error that rejected the delivery (``None`` when it was accepted)."""
    try:
        verifier().verify(headers, body)
    except WebhookVerificationError as exc:
        return exc
    return None


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, str], bytes, str]:
    body = draw(st.one_of(st.just(BODY), st.binary(max_size=200)))
    msg_id = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1))
    scheme = draw(st.sampled_from(["standard", "hmac-sha256"]))
    offset = draw(st.integers(-TOLERANCE, TOLERANCE))
    headers = sign(body, SECRET, msg_id=msg_id, timestamp=NOW + offset, scheme=scheme)  # type: ignore[arg-type]
    return headers, body, scheme


def accepted_or_bad_payload(headers: dict[str, str], body: bytes) -> bool:
    """The untouched delivery verifies (or fails only because the random body is not JSON)."""
    try:
        verifier().verify(headers, body)
    except WebhookVerificationError as exc:
        return exc.code == "invalid_payload"
    return True


@given(deliveries(), st.binary(max_size=300))
@example((sign(BODY, SECRET, msg_id="m", timestamp=NOW), BODY, "standard"), BODY + b" ")
@example((sign(BODY, SECRET, msg_id="m", timestamp=NOW), BODY, "standard"), BODY[:-1])
def test_a_different_body_is_never_accepted(
    delivery: tuple[dict[str, str], bytes, str], other_body: bytes
) -> None:
    headers, body, _ = delivery
    assume(other_body != body)
    assert accepted_or_bad_payload(headers, body)
    assert isinstance(rejected(headers, other_body), InvalidSignatureError)


@given(deliveries(), st.data())
def test_flipping_any_bit_of_the_body_is_never_accepted(
    delivery: tuple[dict[str, str], bytes, str], data: st.DataObject
) -> None:
    headers, body, _ = delivery
    assume(body)
    index = data.draw(st.integers(0, len(body) - 1))
    bit = data.draw(st.integers(0, 7))
    mutated = bytearray(body)
    mutated[index] ^= 1 << bit
    assert isinstance(rejected(headers, bytes(mutated)), InvalidSignatureError)


@st.composite
def edits(draw: st.DrawFn, value: str) -> str:
    """An edit of ``value`` that still means something else after HTTP trims it."""
    kind = draw(st.sampled_from(["replace", "change-char", "delete-char", "insert-char"]))
    if kind == "replace":
        edited = draw(st.text(max_size=80))
    else:
        index = draw(st.integers(0, len(value) - 1 if kind != "insert-char" else len(value)))
        char = draw(st.characters(exclude_categories=["Cs"]))
        if kind == "change-char":
            edited = value[:index] + char + value[index + 1 :]
        elif kind == "delete-char":
            edited = value[:index] + value[index + 1 :]
        else:
            edited = value[:index] + char + value[index:]
    assume(edited.strip(" \t") != value)
    return edited


@given(deliveries(), st.data())
def test_editing_a_signed_header_is_never_accepted(
    delivery: tuple[dict[str, str], bytes, str], data: st.DataObject
) -> None:
    headers, body, scheme = delivery
    assert accepted_or_bad_payload(headers, body)
    # The simple scheme signs the body alone: only its signature header is covered.
    names = STANDARD_HEADERS if scheme == "standard" else ("X-Webhook-Signature",)
    name = data.draw(st.sampled_from(names))
    edited = data.draw(edits(headers[name]))
    if name == "webhook-signature":
        # Appending another signature next to the valid one is legitimate (key rotation).
        assume(headers[name] not in edited.split())
    if name == "X-Webhook-Signature":
        assume(edited.lower() != headers[name].lower())  # hex digits are case-insensitive
    mutated = headers | {name: edited}
    assert rejected(mutated, body) is not None


@given(deliveries(), st.sampled_from((*STANDARD_HEADERS, "X-Webhook-Signature")))
def test_dropping_a_required_header_is_never_accepted(
    delivery: tuple[dict[str, str], bytes, str], name: str
) -> None:
    headers, body, scheme = delivery
    assume(name in headers and (scheme == "standard" or name == "X-Webhook-Signature"))
    assert isinstance(
        rejected({k: v for k, v in headers.items() if k != name}, body), MissingHeaderError
    )


@given(st.integers(-(10**7), 10**7).filter(lambda offset: offset != 0))
def test_resigning_with_another_timestamp_header_is_never_accepted(offset: int) -> None:
    headers = sign(BODY, SECRET, msg_id="m", timestamp=NOW, scheme="standard")
    headers["webhook-timestamp"] = str(NOW + offset)
    assert rejected(headers, BODY) is not None


@given(st.integers(-(10**9), 10**9))
def test_timestamps_are_accepted_exactly_inside_the_tolerance(offset: int) -> None:
    headers = sign(BODY, SECRET, msg_id="m", timestamp=NOW + offset, scheme="standard")
    try:
        verifier().verify(headers, BODY)
    except StaleTimestampError:
        assert offset < -TOLERANCE
    except FutureTimestampError:
        assert offset > TOLERANCE
    else:
        assert -TOLERANCE <= offset <= TOLERANCE


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=100), max_size=6), st.binary())
def test_arbitrary_headers_and_body_only_ever_raise_verification_errors(
    headers: dict[str, str], body: bytes
) -> None:
    assert rejected(headers, body) is not None
