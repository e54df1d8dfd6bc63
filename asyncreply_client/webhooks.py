"""Signing, verifying and receiving webhook deliveries (simple HMAC-SHA256 and Standard Webhooks).

The reference server signs with :func:`sign`; receivers check deliveries with
:class:`WebhookVerifier` and answer them with :func:`handle_webhook` (or the ready aiohttp
handler from :func:`aiohttp_webhook_handler`), so both sides share one implementation.

Two signature schemes are understood:

* the simple scheme: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, with
  the unsigned ``X-Webhook-Event``, ``X-Webhook-Delivery`` and ``X-Webhook-Timestamp``;
* Standard Webhooks (https://www.standardwebhooks.com/, "Verifying webhooks"): ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

Verification errors form one tree under the client's base error::

    AsyncReplyError
    └── WebhookVerificationError
        ├── MissingHeaderError             a required header is absent or empty
        ├── MalformedHeaderError           a header does not parse (no comma, bad base64, …)
        ├── InvalidSignatureError          no signature matches any configured secret
        ├── TimestampOutOfToleranceError   outside the replay window
        │   ├── StaleTimestampError        too old
        │   └── FutureTimestampError       too far in the future
        ├── ReplayedDeliveryError          this delivery was already accepted
        └── InvalidPayloadError            the signed body is not UTF-8 JSON
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import inspect
import json
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeAlias

from ._errors import AsyncReplyError
from ._models import JobState

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "CATCH_ALL",
    "FutureTimestampError",
    "HeadersInput",
    "InMemoryReplayStore",
    "InvalidPayloadError",
    "InvalidSignatureError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "ReplayStore",
    "ReplayedDeliveryError",
    "SigningScheme",
    "StaleTimestampError",
    "TimestampOutOfToleranceError",
    "VerificationScheme",
    "WebhookCallback",
    "WebhookEvent",
    "WebhookResponse",
    "WebhookVerificationError",
    "WebhookVerifier",
    "aiohttp_webhook_handler",
    "handle_webhook",
    "handle_webhook_async",
    "sign",
]

logger = logging.getLogger(__name__)

SigningScheme = Literal["hmac-sha256", "standard", "both"]
"""Which signature headers :func:`sign` produces."""

VerificationScheme = Literal["auto", "hmac-sha256", "standard"]
"""Which scheme :class:`WebhookVerifier` accepts (``"auto"``: decided by the headers present)."""

HeadersInput: TypeAlias = (
    Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
)
"""Request headers: a mapping (dict, ``httpx.Headers``, aiohttp's ``CIMultiDictProxy``) or pairs."""

_WHSEC_PREFIX = "whsec_"
_SIMPLE_SIGNATURE = "x-webhook-signature"
_SIMPLE_EVENT = "x-webhook-event"
_SIMPLE_DELIVERY = "x-webhook-delivery"
_SIMPLE_TIMESTAMP = "x-webhook-timestamp"
_STD_ID = "webhook-id"
_STD_TIMESTAMP = "webhook-timestamp"
_STD_SIGNATURE = "webhook-signature"
# Seconds since the epoch as plain ASCII digits; 12 digits reach past the year 9999, which is
# as far as ``datetime`` goes, so anything longer is malformed rather than merely stale.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_HEX_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
# Senders retry one message under the same id, re-signed with a fresh timestamp, for hours
# (Svix's schedule spans about a day), so de-duplication must outlive the tolerance window.
_DEFAULT_REMEMBER_FOR = 24 * 3600.0
# The status-code dialect's names for two states (docs/protocol.md, "Two dialects").
_STATE_ALIASES = {"inFlight": JobState.PROCESSING, "deadLetter": JobState.FAILED}

CATCH_ALL = "*"
"""The callbacks key whose callback receives events no other key names."""


# --------------------------------------------------------------------------------------------
# Signing
# --------------------------------------------------------------------------------------------


def _secret_key(secret: str | bytes) -> bytes:
    """Return the HMAC key for ``secret``.

    ``whsec_``-prefixed strings are base64-decoded (Standard Webhooks convention; missing
    padding is tolerated, as the ``standardwebhooks`` package does); other strings are UTF-8
    encoded; bytes are used as they are. Both schemes use the same key.

    Raises:
        ValueError: a ``whsec_`` secret that is not base64 (the message never contains it).
    """
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(_WHSEC_PREFIX):
        encoded = secret[len(_WHSEC_PREFIX) :]
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the whsec_ secret is not valid base64") from None
    return secret.encode("utf-8")


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _standard_signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    # Standard Webhooks signs "{id}.{timestamp}.{body}" with the body's exact bytes.
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(
    body: bytes,
    secret: str | bytes,
    *,
    msg_id: str,
    timestamp: int,
    event_type: str | None = None,
    scheme: SigningScheme = "both",
) -> dict[str, str]:
    """Return the signature headers for a webhook delivery of ``body``.

    Args:
        body: the exact bytes that will be sent as the request body.
        secret: the shared secret (``whsec_<base64>``, a plain string, or raw bytes).
        msg_id: the delivery id (``X-Webhook-Delivery`` / ``webhook-id``).
        timestamp: seconds since the epoch (``webhook-timestamp``).
        event_type: the event name, sent as ``X-Webhook-Event`` when given.
        scheme: ``"hmac-sha256"`` (``X-Webhook-Signature: sha256=<hex>`` over the body),
            ``"standard"`` (``webhook-signature: v1,<base64>`` over ``id.timestamp.body``),
            or ``"both"``.

    Returns:
        A new dict of header names to values, ready to send.

    Example:
        >>> headers = sign(b'{"a":1}', "s3cret", msg_id="msg_1", timestamp=1700000000)
        >>> sorted(headers)[:2]
        ['X-Webhook-Delivery', 'X-Webhook-Signature']
    """
    key = _secret_key(secret)
    headers: dict[str, str] = {}
    if scheme in ("hmac-sha256", "both"):
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        headers["X-Webhook-Signature"] = f"sha256={digest}"
        headers["X-Webhook-Delivery"] = msg_id
        headers["X-Webhook-Timestamp"] = str(timestamp)
        if event_type is not None:
            headers["X-Webhook-Event"] = event_type
    if scheme in ("standard", "both"):
        signed = _standard_signed_content(msg_id, str(timestamp), body)
        mac = base64.b64encode(_hmac_sha256(key, signed)).decode("ascii")
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = f"v1,{mac}"
    return headers


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class WebhookVerificationError(AsyncReplyError):
    """A webhook delivery failed verification; subclasses say exactly why.

    Messages name the header or field at fault but never contain a secret or an expected
    signature.

    Attributes:
        code: a short machine-readable reason (``"invalid_signature"``, …), also used in the
            receiver's error bodies.
    """

    code: str = "verification_failed"


class MissingHeaderError(WebhookVerificationError):
    """A required header is absent (or empty).

    Attributes:
        header: the name of the missing header.
    """

    code = "missing_header"

    def __init__(self, header: str, message: str | None = None) -> None:
        super().__init__(message or f"missing required header {header}")
        self.header = header


class MalformedHeaderError(WebhookVerificationError):
    """A header is present but cannot be parsed (a ``v1`` without a comma, bad base64, …).

    Attributes:
        header: the name of the malformed header.
    """

    code = "malformed_header"

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"malformed header {header}: {reason}")
        self.header = header


class InvalidSignatureError(WebhookVerificationError):
    """No signature in the delivery matches any of the configured secrets."""

    code = "invalid_signature"


class TimestampOutOfToleranceError(WebhookVerificationError):
    """The delivery's timestamp is outside the accepted window (replay protection).

    Attributes:
        timestamp: the delivery's timestamp (seconds since the epoch).
        now: the verifier's clock when it checked.
        tolerance: the accepted distance in seconds.
    """

    code = "timestamp_out_of_tolerance"

    def __init__(self, message: str, *, timestamp: float, now: float, tolerance: float) -> None:
        super().__init__(message)
        self.timestamp = timestamp
        self.now = now
        self.tolerance = tolerance


class StaleTimestampError(TimestampOutOfToleranceError):
    """The delivery's timestamp is older than the tolerance allows."""

    code = "stale_timestamp"


class FutureTimestampError(TimestampOutOfToleranceError):
    """The delivery's timestamp is further in the future than the tolerance allows."""

    code = "future_timestamp"


class ReplayedDeliveryError(WebhookVerificationError):
    """This delivery was already accepted within the replay window.

    Attributes:
        delivery_id: the delivery's id (``None`` when the simple scheme's delivery header was
            absent; replays are then recognised by the body).
        processed: ``True`` when a receiver finished handling the earlier copy; ``False``
            while it is still being handled, or when it was only verified.
    """

    code = "replayed_delivery"

    def __init__(self, delivery_id: str | None, *, processed: bool) -> None:
        label = repr(delivery_id) if delivery_id is not None else "with this body"
        super().__init__(f"delivery {label} was already received")
        self.delivery_id = delivery_id
        self.processed = processed


class InvalidPayloadError(WebhookVerificationError):
    """The signed body is not UTF-8 encoded JSON."""

    code = "invalid_payload"


# --------------------------------------------------------------------------------------------
# Replay store
# --------------------------------------------------------------------------------------------


class ReplayStore(Protocol):
    """Where a verifier remembers the deliveries it accepted, to reject replays.

    Keys are opaque strings built by the verifier. A store shared by several processes (Redis
    ``SET key 1 NX EXAT expires_at``, a database table with a unique key) makes replay
    protection hold across them; give each sender (each secret) its own store or key prefix.
    The receiver claims a delivery before running its callback and releases the claim when
    the callback fails; with a persistent store, a process that dies in between leaves the
    claim in place, and the sender's retries are answered 503 until it expires.
    """

    def add(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (seconds since the epoch) unless it is present.

        Must be atomic: of two concurrent calls with the same key, exactly one returns ``True``.

        Returns:
            ``True`` when the key was absent (or expired) and is now recorded, else ``False``.
        """
        ...

    def discard(self, key: str) -> None:
        """Forget ``key`` (no error when it is absent)."""
        ...

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is recorded and not expired."""
        ...


class InMemoryReplayStore:
    """A bounded, thread-safe in-process :class:`ReplayStore` with per-key expiry.

    Expired keys are dropped as new ones arrive; when ``max_entries`` live keys are held, the
    one closest to expiry is evicted first (a replay of an evicted delivery would be accepted
    again, so size the store for the deliveries that arrive within the verifier's
    ``remember_for``).

    Example:
        >>> store = InMemoryReplayStore(clock=lambda: 1000.0)
        >>> store.add("msg_1", expires_at=1300.0), store.add("msg_1", expires_at=1300.0)
        (True, False)
        >>> "msg_1" in store
        True
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        """Create an empty store.

        Args:
            max_entries: the most keys held at once (at least 1).
            clock: seconds since the epoch; the same clock as the verifier's.
        """
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        # (expires_at, key); entries whose key was discarded or re-added are stale and skipped.
        self._heap: list[tuple[float, str]] = []

    def add(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` unless it is already recorded (atomic)."""
        with self._lock:
            self._prune(self._clock())
            if key in self._expiry:
                return False
            while len(self._expiry) >= self._max_entries:
                self._pop_soonest()
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            if len(self._heap) > 2 * self._max_entries:
                self._heap = [(exp, k) for k, exp in self._expiry.items()]
                heapq.heapify(self._heap)
            return True

    def discard(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._expiry.pop(key, None)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is recorded and not expired."""
        with self._lock:
            self._prune(self._clock())
            return key in self._expiry

    def __len__(self) -> int:
        """The number of live keys."""
        with self._lock:
            self._prune(self._clock())
            return len(self._expiry)

    def _prune(self, now: float) -> None:
        # A key stays valid through its expiry instant (``<``), matching the inclusive
        # tolerance check: a delivery exactly at the window's edge is still a replay.
        while self._heap and self._heap[0][0] < now:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:  # else a stale entry: discarded or re-added
                del self._expiry[key]

    def _pop_soonest(self) -> None:
        while self._heap:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]
                return


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook delivery.

    Fields the payload does not carry are ``None``: the verifier accepts any JSON payload. The
    reference server sends ``{"type", "jobId", "timestamp", "data": {status document}}``.

    Attributes:
        type: the payload's ``type`` (``"job.completed"``, …), else the ``X-Webhook-Event``
            header (which no signature covers).
        delivery_id: ``webhook-id`` (signed), or for the simple scheme the unsigned
            ``X-Webhook-Delivery`` header.
        timestamp: the timestamp the replay window was checked against (UTC).
        job_id: the payload's ``jobId`` (or its ``data.jobId``).
        status: the job state from ``data.status`` / ``data.state`` (or ``status``): a
            :class:`~asyncreply_client.JobState` when recognised, else the raw string.
        payload: the parsed JSON body.
        scheme: the scheme that verified the delivery.
        replay_key: the key recorded in the replay store: the ``webhook-id`` for Standard
            Webhooks, the body's SHA-256 for the simple scheme (whose delivery header is not
            signed, so it cannot be trusted to tell deliveries apart).

    Example:
        >>> import time
        >>> body = b'{"type": "job.completed", "jobId": "j1", "data": {"status": "completed"}}'
        >>> now = int(time.time())
        >>> headers = sign(body, "s3cret", msg_id="msg_1", timestamp=now, scheme="standard")
        >>> event = WebhookVerifier("s3cret").verify(headers, body)
        >>> event.type, event.job_id, event.status
        ('job.completed', 'j1', <JobState.COMPLETED: 'completed'>)
    """

    type: str | None
    delivery_id: str | None
    timestamp: datetime | None
    job_id: str | None
    status: JobState | str | None
    payload: Any = field(repr=False)
    scheme: Literal["hmac-sha256", "standard"]
    replay_key: str = field(repr=False)

    @property
    def data(self) -> dict[str, Any] | None:
        """The payload's ``data`` object (the status document), or ``None``."""
        data = self.payload.get("data") if isinstance(self.payload, dict) else None
        return data if isinstance(data, dict) else None


WebhookCallback: TypeAlias = Callable[[WebhookEvent], object]
"""A user callback: takes the event; a plain function or a coroutine function."""


def _normalise_headers(headers: HeadersInput) -> dict[str, str]:
    """Return the headers as a dict with lower-case names and trimmed values.

    A header repeated with different values is ambiguous and therefore malformed.
    """
    pairs: Iterable[tuple[Any, Any]]
    multi_items = getattr(headers, "multi_items", None)  # httpx.Headers: keep repeats apart
    if callable(multi_items):
        pairs = multi_items()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    found: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("header names and values must be str or bytes")
        name = name.lower()
        value = value.strip(" \t")
        if name in found and found[name] != value:
            raise MalformedHeaderError(name, "the header is repeated with different values")
        found[name] = value
    return found


def _require(headers: Mapping[str, str], name: str, display: str) -> str:
    value = headers.get(name, "")
    if not value:
        raise MissingHeaderError(display)
    return value


def _parse_timestamp_header(value: str, display: str) -> datetime:
    if not _TIMESTAMP_RE.fullmatch(value):
        raise MalformedHeaderError(display, "not an integer number of seconds since the epoch")
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise MalformedHeaderError(display, "the timestamp is out of range") from None


def _parse_standard_signatures(value: str) -> list[bytes]:
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


def _parse_simple_signature(value: str) -> bytes:
    # ``sha256=<hex>`` as GitHub-style senders write it; the algorithm name and the hex digits
    # are case-insensitive, nothing else is tolerated.
    algorithm, equals, digest = value.partition("=")
    if not equals or algorithm.lower() != "sha256":
        raise MalformedHeaderError("X-Webhook-Signature", "expected sha256=<hex digest>")
    if not _HEX_SHA256_RE.fullmatch(digest):
        raise MalformedHeaderError("X-Webhook-Signature", "the digest is not 64 hex digits")
    return bytes.fromhex(digest)


def _matches(candidates: Sequence[bytes], keys: Sequence[bytes], message: bytes) -> bool:
    for key in keys:
        expected = _hmac_sha256(key, message)
        for candidate in candidates:
            # Constant-time: the time taken must not reveal how many leading bytes matched.
            if hmac.compare_digest(expected, candidate):
                return True
    return False


def _decode_payload(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidPayloadError("the body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and over-long integers; RecursionError deep nesting.
        raise InvalidPayloadError("the body is not valid JSON") from None


def _payload_datetime(value: Any) -> datetime | None:
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


def _job_state(value: Any) -> JobState | str | None:
    if not isinstance(value, str):
        return None
    if value in _STATE_ALIASES:
        return _STATE_ALIASES[value]
    try:
        return JobState(value)
    except ValueError:
        return value


def _describe(payload: Any) -> tuple[str | None, str | None, JobState | str | None]:
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
        _job_state(status),
    )


class _Checked(NamedTuple):
    """What a scheme's check established about a delivery."""

    delivery_id: str | None
    when: datetime | None
    payload: Any
    replay_key: str


class WebhookVerifier:
    """Checks webhook deliveries: signature, timestamp window, and replays.

    Args:
        secret_or_secrets: the shared secret, or several (key rotation: a delivery signed with
            any of them is accepted). ``whsec_<base64>`` strings are base64-decoded, other
            strings UTF-8 encoded, bytes used as they are.
        scheme: ``"standard"`` (Standard Webhooks), ``"hmac-sha256"`` (the simple scheme), or
            ``"auto"``: Standard Webhooks when a ``webhook-signature`` header is present,
            else the simple scheme when ``X-Webhook-Signature`` is.
        tolerance: the largest accepted distance, in seconds, between a delivery's timestamp
            and the clock (both directions, limit included); ``None`` skips the check.
        replay_store: where accepted deliveries are remembered, to reject a replay inside the
            window: ``"memory"`` (default, an :class:`InMemoryReplayStore` per verifier), a
            :class:`ReplayStore` of your own, or ``None`` to not check replays.
        remember_for: seconds an accepted delivery stays remembered (and so a duplicate), at
            least until its timestamp leaves the tolerance window. Senders retry a message
            under the same id with a fresh timestamp, so cover their retry horizon.
        clock: seconds since the epoch (inject a fake one in tests).

    The simple scheme signs the body only. Its replay window therefore uses the payload's own
    ``timestamp`` field when it has a readable one (RFC 3339 or epoch seconds), which the
    signature covers, and otherwise the ``X-Webhook-Timestamp`` header, which an attacker can
    rewrite: a captured delivery without a payload timestamp can be replayed with a fresh
    header once the replay store has forgotten it. Its delivery id header is not signed
    either, so replays are recognised by the body's digest. Prefer Standard Webhooks.

    Example:
        >>> body = b'{"type": "job.completed", "jobId": "j1"}'
        >>> headers = sign(body, "whsec_c2VjcmV0", msg_id="msg_1", timestamp=1700000000)
        >>> verifier = WebhookVerifier(["whsec_b2xk", "whsec_c2VjcmV0"], clock=lambda: 1700000010)
        >>> verifier.verify(headers, body).delivery_id
        'msg_1'
        >>> verifier.verify(headers, body)
        Traceback (most recent call last):
        ...
        asyncreply_client.webhooks.ReplayedDeliveryError: delivery 'msg_1' was already received
    """

    def __init__(
        self,
        secret_or_secrets: str | bytes | Iterable[str | bytes],
        *,
        scheme: VerificationScheme = "auto",
        tolerance: float | None = 300,
        replay_store: ReplayStore | Literal["memory"] | None = "memory",
        remember_for: float = _DEFAULT_REMEMBER_FOR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the verifier (see the class docstring).

        Raises:
            ValueError: no secret, an empty secret, a ``whsec_`` secret that is not base64, an
                unknown scheme or replay store name, or a negative duration.
        """
        secrets = (
            [secret_or_secrets]
            if isinstance(secret_or_secrets, (str, bytes))
            else list(secret_or_secrets)
        )
        keys = [_secret_key(secret) for secret in secrets]
        if not keys:
            raise ValueError("at least one webhook secret is required")
        if not all(keys):
            raise ValueError("a webhook secret may not be empty")
        if scheme not in ("auto", "hmac-sha256", "standard"):
            raise ValueError(f"unknown webhook scheme {scheme!r}")
        if tolerance is not None and not tolerance >= 0:
            raise ValueError("tolerance must be a non-negative number of seconds or None")
        if not remember_for >= 0:
            raise ValueError("remember_for must be a non-negative number of seconds")
        if isinstance(replay_store, str):
            if replay_store != "memory":
                raise ValueError(f"unknown replay store {replay_store!r}")
            replay_store = InMemoryReplayStore(clock=clock)
        self._keys = tuple(keys)
        self._scheme: VerificationScheme = scheme
        self._tolerance = tolerance
        self._clock = clock
        self._remember_for = remember_for
        self._store: ReplayStore | None = replay_store

    def __repr__(self) -> str:
        return (
            f"WebhookVerifier(<{len(self._keys)} secret(s)>, scheme={self._scheme!r}, "
            f"tolerance={self._tolerance!r})"
        )

    @property
    def replay_store(self) -> ReplayStore | None:
        """The store of accepted deliveries, or ``None`` when replays are not checked."""
        return self._store

    def verify(self, headers: HeadersInput, body: bytes | bytearray | memoryview) -> WebhookEvent:
        """Verify one delivery and return its event.

        The checks run in this order: headers present and well-formed, signature (over the
        raw bytes, before anything decodes them), body is UTF-8 JSON, timestamp inside the
        tolerance, delivery not seen before (it is then recorded in the replay store).

        Args:
            headers: the request headers; names are matched case-insensitively.
            body: the raw request body, exactly as received.

        Returns:
            The verified event.

        Raises:
            MissingHeaderError: a required header is absent.
            MalformedHeaderError: a header does not parse.
            InvalidSignatureError: no signature matches any secret.
            InvalidPayloadError: the body is not UTF-8 JSON.
            StaleTimestampError: the timestamp is older than the tolerance.
            FutureTimestampError: the timestamp is further ahead than the tolerance.
            ReplayedDeliveryError: the delivery was already accepted.
            TypeError: ``body`` is not bytes (decoding it first could change what was signed).
        """
        if isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        if not isinstance(body, bytes):
            raise TypeError("the webhook body must be the raw bytes received, not decoded text")
        found = _normalise_headers(headers)
        scheme = self._pick_scheme(found)
        if scheme == "standard":
            delivery_id, when, payload, replay_key = self._check_standard(found, body)
        else:
            delivery_id, when, payload, replay_key = self._check_simple(found, body)
        event_type, job_id, status = _describe(payload)
        if event_type is None:
            event_type = found.get(_SIMPLE_EVENT) or None
        now = self._clock()
        seconds = when.timestamp() if when is not None else None
        if seconds is not None and self._tolerance is not None:
            _check_tolerance(seconds, now, self._tolerance)
        event = WebhookEvent(
            type=event_type,
            delivery_id=delivery_id,
            timestamp=when,
            job_id=job_id,
            status=status,
            payload=payload,
            scheme=scheme,
            replay_key=replay_key,
        )
        if self._store is not None:
            expires_at = self._expires_at(seconds, now)
            if not self._store.add(f"seen:{replay_key}", expires_at):
                processed = f"done:{replay_key}" in self._store
                raise ReplayedDeliveryError(delivery_id, processed=processed)
        return event

    def forget(self, event: WebhookEvent) -> None:
        """Forget an accepted delivery, so that the sender's retry of it is accepted.

        Call it when processing a verified event failed and you answer the sender with an
        error (:func:`handle_webhook` does this for you).

        Example:
            >>> body, verifier = b'{}', WebhookVerifier("s3cret", clock=lambda: 1700000000)
            >>> headers = sign(body, "s3cret", msg_id="m", timestamp=1700000000)
            >>> verifier.forget(verifier.verify(headers, body))
            >>> verifier.verify(headers, body).delivery_id
            'm'
        """
        if self._store is not None:
            self._store.discard(f"done:{event.replay_key}")
            self._store.discard(f"seen:{event.replay_key}")

    def _mark_processed(self, event: WebhookEvent) -> None:
        # Lets a later duplicate be acknowledged (2xx) instead of told to come back (5xx).
        if self._store is not None:
            seconds = event.timestamp.timestamp() if event.timestamp is not None else None
            self._store.add(f"done:{event.replay_key}", self._expires_at(seconds, self._clock()))

    def _pick_scheme(self, found: Mapping[str, str]) -> Literal["hmac-sha256", "standard"]:
        if self._scheme != "auto":
            return self._scheme
        if found.get(_STD_SIGNATURE):
            return "standard"
        if found.get(_SIMPLE_SIGNATURE):
            return "hmac-sha256"
        if found.get(_STD_ID) or found.get(_STD_TIMESTAMP):
            return "standard"  # a partial Standard Webhooks delivery: report what is missing
        raise MissingHeaderError(
            "webhook-signature",
            "missing signature header: expected webhook-signature (Standard Webhooks) "
            "or X-Webhook-Signature",
        )

    def _check_standard(self, found: Mapping[str, str], body: bytes) -> _Checked:
        delivery_id = _require(found, _STD_ID, "webhook-id")
        timestamp_text = _require(found, _STD_TIMESTAMP, "webhook-timestamp")
        when = _parse_timestamp_header(timestamp_text, "webhook-timestamp")
        signatures = _parse_standard_signatures(
            _require(found, _STD_SIGNATURE, "webhook-signature")
        )
        if not signatures:
            raise InvalidSignatureError("webhook-signature holds no v1 signature")
        signed = _standard_signed_content(delivery_id, timestamp_text, body)
        if not _matches(signatures, self._keys, signed):
            raise InvalidSignatureError("no webhook-signature matches the configured secrets")
        return _Checked(delivery_id, when, _decode_payload(body), f"id:{delivery_id}")

    def _check_simple(self, found: Mapping[str, str], body: bytes) -> _Checked:
        signature = _parse_simple_signature(
            _require(found, _SIMPLE_SIGNATURE, "X-Webhook-Signature")
        )
        if not _matches([signature], self._keys, body):
            raise InvalidSignatureError("X-Webhook-Signature does not match the configured secrets")
        payload = _decode_payload(body)
        return _Checked(
            found.get(_SIMPLE_DELIVERY) or None,
            self._simple_timestamp(found, payload),
            payload,
            # The delivery header is not signed: tell deliveries apart by what is.
            f"body:{hashlib.sha256(body).hexdigest()}",
        )

    def _simple_timestamp(self, found: Mapping[str, str], payload: Any) -> datetime | None:
        # The body is what is signed, so a timestamp inside it is trustworthy; the header is not.
        if isinstance(payload, dict):
            inside = _payload_datetime(payload.get("timestamp"))
            if inside is not None:
                return inside
        header = found.get(_SIMPLE_TIMESTAMP)
        if header:
            return _parse_timestamp_header(header, "X-Webhook-Timestamp")
        if self._tolerance is not None:
            raise MissingHeaderError(
                "X-Webhook-Timestamp",
                "missing X-Webhook-Timestamp (and the payload has no timestamp) while a "
                "tolerance is configured",
            )
        return None

    def _expires_at(self, seconds: float | None, now: float) -> float:
        # Replay protection needs the key until ``timestamp + tolerance`` (the timestamp check
        # takes over after that); de-duplication of the sender's retries needs ``remember_for``.
        until = now + self._remember_for
        if seconds is not None and self._tolerance is not None:
            until = max(until, seconds + self._tolerance)
        return until


def _check_tolerance(seconds: float, now: float, tolerance: float) -> None:
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


# --------------------------------------------------------------------------------------------
# Receiving: one I/O-free flow, driven by a sync and an async function
# --------------------------------------------------------------------------------------------


class WebhookResponse(NamedTuple):
    """What to answer the sender: ``status_code`` and ``body``, the JSON document as *bytes*
    (UTF-8), ready to write to the wire; :meth:`json` decodes it.

    Example:
        >>> status_code, body = WebhookResponse(200, b'{"status": "processed"}')
        >>> status_code, body
        (200, b'{"status": "processed"}')
        >>> WebhookResponse(200, body).json()
        {'status': 'processed'}
    """

    status_code: int
    body: bytes

    def json(self) -> Any:
        """The body decoded from JSON (the receiver always answers a JSON document)."""
        return json.loads(self.body)

    @property
    def headers(self) -> dict[str, str]:
        """Response headers: the content type, and ``Retry-After`` on a 503."""
        headers = {"Content-Type": "application/json"}
        if self.status_code == 503:
            headers["Retry-After"] = "1"
        return headers


@dataclass(frozen=True, slots=True)
class _Dispatch:
    """The flow's one request to its driver: call ``callback`` with ``event``."""

    callback: WebhookCallback
    event: WebhookEvent


def _answer(status_code: int, document: Mapping[str, Any]) -> WebhookResponse:
    return WebhookResponse(status_code, json.dumps(document).encode())


def _error_answer(status_code: int, code: str, message: str) -> WebhookResponse:
    # The protocol's error shape (docs/protocol.md): {"error": {"code", "message"}}.
    return _answer(status_code, {"error": {"code": code, "message": message}})


def _select_callback(
    callbacks: Mapping[str, WebhookCallback], event_type: str | None
) -> WebhookCallback | None:
    if event_type is not None and event_type in callbacks:
        return callbacks[event_type]
    return callbacks.get(CATCH_ALL)


def _receive_flow(
    verifier: WebhookVerifier,
    headers: HeadersInput,
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> Generator[_Dispatch, None, WebhookResponse]:
    """Verify, de-duplicate and dispatch one delivery; yield the callback call to the driver.

    The driver runs the yielded call and either sends ``None`` back or throws what the
    callback raised into the flow. Status codes follow what webhook senders expect: 2xx
    means "delivered, do not retry", 4xx "never retry this", 5xx "retry later".
    """
    try:
        event = verifier.verify(headers, body)
    except ReplayedDeliveryError as exc:
        if exc.processed:
            return _answer(200, {"status": "duplicate", "deliveryId": exc.delivery_id})
        # The first copy is still being handled (or failed after verification without being
        # forgotten): acknowledging now could lose the event if that handling fails, so ask
        # the sender to come back.
        return _error_answer(503, "delivery_in_progress", str(exc))
    except WebhookVerificationError as exc:
        logger.warning("webhook delivery rejected: %s", exc)
        unauthenticated = isinstance(exc, (InvalidSignatureError, TimestampOutOfToleranceError))
        return _error_answer(401 if unauthenticated else 400, exc.code, str(exc))
    callback = _select_callback(callbacks, event.type)
    if callback is not None:
        try:
            yield _Dispatch(callback, event)
        except Exception:
            # Forget the delivery so that the sender's retry is processed, not taken for a
            # duplicate.
            verifier.forget(event)
            logger.exception(
                "webhook callback for %s (delivery %s) failed", event.type, event.delivery_id
            )
            return _error_answer(500, "callback_failed", "the receiver failed to process it")
        except BaseException:
            verifier.forget(event)  # cancelled or interrupted: the work did not happen
            raise
    verifier._mark_processed(event)
    status = "processed" if callback is not None else "ignored"
    return _answer(200, {"status": status, "deliveryId": event.delivery_id})


def _close_unawaited(result: object) -> None:
    if inspect.iscoroutine(result):
        result.close()  # avoid "coroutine was never awaited" on the way to the error


def handle_webhook(
    verifier: WebhookVerifier,
    headers: HeadersInput,
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> WebhookResponse:
    """Verify one delivery, dispatch it to a callback, and say what to answer the sender.

    The callback for the event's type runs (``callbacks[event.type]``), else the catch-all
    ``callbacks["*"]``, else none (the delivery is acknowledged as ``ignored``). Answers:

    * 200 ``processed`` / ``ignored``, and 200 ``duplicate`` for a delivery already processed;
    * 400 for a missing or malformed header or payload, 401 for a bad signature or a timestamp
      outside the tolerance (senders do not retry 4xx);
    * 500 when the callback raised: the delivery is forgotten, so the sender's retry runs it;
    * 503 when a duplicate arrives while the first copy is still being processed.

    Callbacks must be synchronous here; use :func:`handle_webhook_async` for coroutines.

    Args:
        verifier: the verifier (its replay store de-duplicates deliveries).
        headers: the request headers.
        body: the raw request body.
        callbacks: event type (or ``"*"``) to callback.

    Returns:
        The status code and JSON body to answer with (see :attr:`WebhookResponse.headers`).

    Raises:
        TypeError: a callback is a coroutine function.

    Example:
        >>> seen = []
        >>> verifier = WebhookVerifier("s3cret", clock=lambda: 1700000000)
        >>> body = b'{"type": "job.completed", "jobId": "j1"}'
        >>> headers = sign(body, "s3cret", msg_id="m1", timestamp=1700000000)
        >>> handle_webhook(verifier, headers, body, {"job.completed": seen.append}).status_code
        200
        >>> [event.job_id for event in seen]
        ['j1']
    """
    for callback in callbacks.values():
        if inspect.iscoroutinefunction(callback):
            raise TypeError("handle_webhook needs sync callbacks; use handle_webhook_async")
    flow = _receive_flow(verifier, headers, body, callbacks)
    try:
        step = next(flow)
        while True:
            try:
                result = step.callback(step.event)
                if inspect.isawaitable(result):
                    _close_unawaited(result)
                    raise TypeError("a webhook callback returned an awaitable to handle_webhook")
            except BaseException as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(None)
    except StopIteration as stop:
        response: WebhookResponse = stop.value
        return response


async def handle_webhook_async(
    verifier: WebhookVerifier,
    headers: HeadersInput,
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> WebhookResponse:
    """Like :func:`handle_webhook`, awaiting callbacks that are coroutine functions.

    Sync callbacks are called directly (on the event loop, so keep them short).

    Example:
        >>> import asyncio
        >>> async def on_done(event: WebhookEvent) -> None:
        ...     print("done", event.job_id)
        >>> verifier = WebhookVerifier("s3cret", clock=lambda: 1700000000)
        >>> body = b'{"type": "job.completed", "jobId": "j1"}'
        >>> headers = sign(body, "s3cret", msg_id="m1", timestamp=1700000000)
        >>> answer = asyncio.run(
        ...     handle_webhook_async(verifier, headers, body, {"job.completed": on_done})
        ... )
        done j1
        >>> answer.status_code
        200
    """
    flow = _receive_flow(verifier, headers, body, callbacks)
    try:
        step = next(flow)
        while True:
            try:
                result = step.callback(step.event)
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(None)
    except StopIteration as stop:
        response: WebhookResponse = stop.value
        return response


def aiohttp_webhook_handler(
    verifier: WebhookVerifier,
    callbacks: Mapping[str, WebhookCallback],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return an aiohttp request handler that receives webhooks (needs the aiohttp extra).

    It reads the raw body, runs :func:`handle_webhook_async` and answers with its result.

    Args:
        verifier: the verifier.
        callbacks: event type (or ``"*"``) to sync or async callback.

    Raises:
        ImportError: aiohttp is not installed (``pip install 'asyncreply[server]'``).

    Example:
        >>> from aiohttp import web
        >>> async def on_completed(event: WebhookEvent) -> None: ...
        >>> app = web.Application()
        >>> verifier = WebhookVerifier("whsec_c2VjcmV0")
        >>> handler = aiohttp_webhook_handler(verifier, {"job.completed": on_completed})
        >>> _ = app.router.add_post("/webhooks", handler)
    """
    try:
        from aiohttp import web
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "aiohttp_webhook_handler needs aiohttp: pip install 'asyncreply[server]'"
        ) from exc

    async def receive_webhook(request: web.Request) -> web.Response:
        body = await request.read()
        answer = await handle_webhook_async(verifier, request.headers, body, callbacks)
        return web.Response(status=answer.status_code, body=answer.body, headers=answer.headers)

    return receive_webhook
