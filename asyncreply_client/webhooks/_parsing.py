"""Pure parsing of webhook deliveries: headers, signatures, timestamps and payloads.

Every way a header or a body can be bad ends in a typed
:class:`~asyncreply_client.webhooks.WebhookVerificationError` subclass.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeAlias

from asyncreply_signing import hmac_sha256

from .._models import JobState
from ..dialects import parse_state
from ._errors import (
    FutureTimestampError,
    InvalidPayloadError,
    MalformedHeaderError,
    MissingHeaderError,
    StaleTimestampError,
)

__all__ = [
    "SIMPLE_DELIVERY",
    "SIMPLE_EVENT",
    "SIMPLE_SIGNATURE",
    "SIMPLE_TIMESTAMP",
    "STD_ID",
    "STD_SIGNATURE",
    "STD_TIMESTAMP",
    "StateReader",
    "job_state",
    "check_tolerance",
    "decode_payload",
    "describe",
    "matches",
    "parse_hex_signature",
    "parse_simple_signature",
    "parse_standard_signatures",
    "parse_timestamp_header",
    "payload_datetime",
    "require",
]

SIMPLE_SIGNATURE = "x-webhook-signature"
SIMPLE_EVENT = "x-webhook-event"
SIMPLE_DELIVERY = "x-webhook-delivery"
SIMPLE_TIMESTAMP = "x-webhook-timestamp"
STD_ID = "webhook-id"
STD_TIMESTAMP = "webhook-timestamp"
STD_SIGNATURE = "webhook-signature"
# Seconds since the epoch as plain ASCII digits; 12 digits reach past the year 9999, which is
# as far as ``datetime`` goes, so anything longer is malformed rather than merely stale.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_HEX_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
# Where a payload names its job: our own ``jobId``, then the vendors' (fal's ``request_id``,
# Replicate's prediction ``id``), at the top level or inside ``data``.
_JOB_ID_KEYS = ("jobId", "job_id", "request_id", "id")

StateReader: TypeAlias = Callable[[Any], "JobState | None"]
"""Reads a state word: returns the :class:`JobState` it means, or ``None`` when unknown."""


def require(headers: Mapping[str, str], name: str, display: str) -> str:
    value = headers.get(name, "")
    if not value:
        raise MissingHeaderError(display)
    return value


def parse_timestamp_header(value: str, display: str) -> datetime:
    if not _TIMESTAMP_RE.fullmatch(value):
        raise MalformedHeaderError(display, "not an integer number of seconds since the epoch")
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise MalformedHeaderError(display, "the timestamp is out of range") from None


def parse_standard_signatures(value: str) -> tuple[list[bytes], list[bytes]]:
    """Return the decoded ``v1`` (HMAC) and ``v1a`` (Ed25519) signatures of a
    ``webhook-signature`` header.

    Tokens are space-separated ``version,base64``; other versions are skipped as the
    specification asks.
    """
    found: dict[str, list[bytes]] = {"v1": [], "v1a": []}
    for token in value.split():
        version, comma, encoded = token.partition(",")
        if not comma:
            raise MalformedHeaderError("webhook-signature", "a signature has no version prefix")
        if version not in found:
            continue
        try:
            found[version].append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise MalformedHeaderError(
                "webhook-signature", f"a {version} signature is not base64"
            ) from None
    return found["v1"], found["v1a"]


def parse_hex_signature(value: str, display: str) -> bytes:
    """Decode a hex signature header (fal.ai's ``X-Fal-Webhook-Signature``)."""
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedHeaderError(display, "the signature is not hex") from None


def parse_simple_signature(value: str) -> bytes:
    # ``sha256=<hex>`` as GitHub-style senders write it; the algorithm name and the hex digits
    # are case-insensitive, nothing else is tolerated.
    algorithm, equals, digest = value.partition("=")
    if not equals or algorithm.lower() != "sha256":
        raise MalformedHeaderError("X-Webhook-Signature", "expected sha256=<hex digest>")
    if not _HEX_SHA256_RE.fullmatch(digest):
        raise MalformedHeaderError("X-Webhook-Signature", "the digest is not 64 hex digits")
    return bytes.fromhex(digest)


def matches(candidates: Sequence[bytes], keys: Sequence[bytes], message: bytes) -> bool:
    for key in keys:
        expected = hmac_sha256(key, message)
        for candidate in candidates:
            # Constant-time: the time taken must not reveal how many leading bytes matched.
            if hmac.compare_digest(expected, candidate):
                return True
    return False


def decode_payload(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidPayloadError("the body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and over-long integers; RecursionError deep nesting.
        raise InvalidPayloadError("the body is not valid JSON") from None


def payload_datetime(value: Any) -> datetime | None:
    """Read a payload ``timestamp``: an RFC 3339 string or seconds since the epoch."""
    try:
        if isinstance(value, str):
            text = value.strip()
            if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat rejects the "Z".
                text = text[:-1] + "+00:00"
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return datetime.fromtimestamp(value, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def job_state(value: Any, read: StateReader = parse_state) -> JobState | str | None:
    """Return the :class:`JobState` a state word means, else the word itself (or ``None``).

    ``read`` is the vocabulary: by default the dialects' shared one
    (:func:`~asyncreply_client.dialects.parse_state`), so a vendor's ``succeeded`` or
    ``COMPLETED`` reads as completed here exactly as it does when polling.
    """
    if not isinstance(value, str):
        return None
    state = read(value)
    return state if isinstance(state, JobState) else value


def _first_text(document: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = document.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def describe(
    payload: Any, read: StateReader = parse_state
) -> tuple[str | None, str | None, JobState | str | None]:
    """Return ``(type, job id, status)`` from a payload of any shape.

    Our envelope ``{"type", "jobId", "data": {status document}}`` first; otherwise a
    vendor's bare document (a Replicate prediction, a fal result: ``id`` / ``request_id``
    and ``status``).
    """
    if not isinstance(payload, dict):
        return None, None, None
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    event_type = payload.get("type")
    job_id = _first_text(payload, _JOB_ID_KEYS[:1]) or _first_text(data, _JOB_ID_KEYS[:1])
    if job_id is None and not isinstance(event_type, str):
        # No envelope: the payload is the vendor's own document.
        job_id = _first_text(payload, _JOB_ID_KEYS)
    if job_id is None:
        job_id = _first_text(data, _JOB_ID_KEYS)
    status = data.get("status", data.get("state", payload.get("status", payload.get("state"))))
    return (
        event_type if isinstance(event_type, str) else None,
        job_id,
        job_state(status, read),
    )


def check_tolerance(seconds: float, now: float, tolerance: float) -> None:
    """Reject a timestamp further than ``tolerance`` seconds from ``now`` (limit included)."""
    if now - seconds > tolerance:
        raise StaleTimestampError(
            f"the delivery timestamp is {now - seconds:.0f} s old; the tolerance is "
            f"{tolerance:g} s",
            timestamp=seconds,
            now=now,
            tolerance=tolerance,
        )
    if seconds - now > tolerance:
        raise FutureTimestampError(
            f"the delivery timestamp is {seconds - now:.0f} s in the future; the tolerance is "
            f"{tolerance:g} s",
            timestamp=seconds,
            now=now,
            tolerance=tolerance,
        )
