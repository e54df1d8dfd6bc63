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
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeAlias

from asyncreply_signing import hmac_sha256

from .._models import JobState
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
    "HeadersInput",
    "job_state",
    "check_tolerance",
    "decode_payload",
    "describe",
    "matches",
    "normalise_headers",
    "parse_simple_signature",
    "parse_standard_signatures",
    "parse_timestamp_header",
    "payload_datetime",
    "require",
]

HeadersInput: TypeAlias = (
    Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
)
"""Request headers: a mapping (dict, ``httpx.Headers``, aiohttp's ``CIMultiDictProxy``) or pairs."""

SIMPLE_SIGNATURE = "x-webhook-signature"
SIMPLE_EVENT = "x-webhook-event"
SIMPLE_DELIVERY = "x-webhook-delivery"
SIMPLE_TIMESTAMP = "x-webhook-timestamp"
STD_ID = "webhook-id"
STD_TIMESTAMP = "webhook-timestamp"
STD_SIGNATURE = "webhook-signature"
_SIGNATURE_HEADERS = frozenset(
    {
        SIMPLE_SIGNATURE,
        SIMPLE_EVENT,
        SIMPLE_DELIVERY,
        SIMPLE_TIMESTAMP,
        STD_ID,
        STD_TIMESTAMP,
        STD_SIGNATURE,
    }
)
# Seconds since the epoch as plain ASCII digits; 12 digits reach past the year 9999, which is
# as far as ``datetime`` goes, so anything longer is malformed rather than merely stale.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_HEX_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
# The status-code dialect's names for two states (docs/protocol.md, "Two dialects").
_STATE_ALIASES = {"inFlight": JobState.PROCESSING, "deadLetter": JobState.FAILED}


def _header_pairs(headers: HeadersInput) -> list[tuple[Any, Any]]:
    multi_items = getattr(headers, "multi_items", None)  # httpx.Headers: keep repeats apart
    try:
        if callable(multi_items):
            items: Iterable[Any] = multi_items()
        elif isinstance(headers, Mapping):
            items = headers.items()
        else:
            items = headers
        pairs = [tuple(item) for item in items]
    except (TypeError, ValueError):
        raise MalformedHeaderError("headers", "not a mapping or an iterable of pairs") from None
    if any(len(pair) != 2 for pair in pairs):
        raise MalformedHeaderError("headers", "not a mapping or an iterable of pairs")
    return pairs


def _header_value(name: str, raw: Any) -> str:
    """Return a header value as text: bytes of a signature header must be UTF-8.

    The signer signs the UTF-8 bytes of ``webhook-id`` (Standard Webhooks), so a value that is
    not UTF-8 (a raw ``0xff`` byte, which aiohttp hands over as the lone surrogate
    ``"\\udcff"``) cannot have been signed: it is malformed, not merely unverified.
    """
    if name in _SIGNATURE_HEADERS:
        try:
            if isinstance(raw, bytes):
                return raw.decode("utf-8")
            if isinstance(raw, str):
                raw.encode("utf-8")  # lone surrogates do not encode
                return raw
        except UnicodeError:
            raise MalformedHeaderError(name, "the value is not UTF-8 text") from None
    elif isinstance(raw, bytes):
        return raw.decode("latin-1")  # RFC 9110 §5.5: field values are octets, obs-text too
    elif isinstance(raw, str):
        return raw
    raise MalformedHeaderError(name, f"the value is a {type(raw).__name__}, not text")


def normalise_headers(headers: HeadersInput) -> dict[str, str]:
    """Return the headers as a dict with lower-case names and trimmed values.

    A header repeated with different values is ambiguous and therefore malformed; so is a
    name or value that is neither ``str`` nor ``bytes``, and a signature header that is not
    UTF-8 text.

    Raises:
        MalformedHeaderError: any of the above (never a bare ``TypeError`` or
            ``UnicodeError``).
    """
    found: dict[str, str] = {}
    for raw_name, raw_value in _header_pairs(headers):
        if isinstance(raw_name, bytes):
            raw_name = raw_name.decode("latin-1")
        if not isinstance(raw_name, str):
            raise MalformedHeaderError("headers", "a header name is not text")
        name = raw_name.lower()
        value = _header_value(name, raw_value).strip(" \t")
        if name in found and found[name] != value:
            raise MalformedHeaderError(name, "the header is repeated with different values")
        found[name] = value
    return found


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


def parse_standard_signatures(value: str) -> list[bytes]:
    """Return the decoded ``v1`` signatures of a ``webhook-signature`` header.

    Tokens are space-separated ``version,base64``; versions other than ``v1`` (``v1a`` is the
    asymmetric ed25519 variant) are skipped as the specification asks.
    """
    signatures = []
    for token in value.split():
        version, comma, encoded = token.partition(",")
        if not comma:
            raise MalformedHeaderError("webhook-signature", "a signature has no version prefix")
        if version != "v1":
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise MalformedHeaderError(
                "webhook-signature", "a v1 signature is not base64"
            ) from None
    return signatures


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


def job_state(value: Any) -> JobState | str | None:
    if not isinstance(value, str):
        return None
    if value in _STATE_ALIASES:
        return _STATE_ALIASES[value]
    try:
        return JobState(value)
    except ValueError:
        return value


def describe(payload: Any) -> tuple[str | None, str | None, JobState | str | None]:
    """Return ``(type, job id, status)`` from a payload of any shape."""
    if not isinstance(payload, dict):
        return None, None, None
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    event_type = payload.get("type")
    job_id = payload.get("jobId", data.get("jobId"))
    status = data.get("status", data.get("state", payload.get("status")))
    return (
        event_type if isinstance(event_type, str) else None,
        job_id if isinstance(job_id, str) else None,
        job_state(status),
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
