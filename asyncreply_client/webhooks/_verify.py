"""The verifier: signature, timestamp window and replay checks of one delivery."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeAlias

from asyncreply_signing import secret_key, standard_signed_content

from .. import _log
from .._models import JobState
from ._errors import (
    InvalidSignatureError,
    MissingHeaderError,
    ReplayedDeliveryError,
    WebhookVerificationError,
)
from ._parsing import (
    SIMPLE_DELIVERY,
    SIMPLE_EVENT,
    SIMPLE_SIGNATURE,
    SIMPLE_TIMESTAMP,
    STD_ID,
    STD_SIGNATURE,
    STD_TIMESTAMP,
    HeadersInput,
    check_tolerance,
    decode_payload,
    describe,
    matches,
    normalise_headers,
    parse_simple_signature,
    parse_standard_signatures,
    parse_timestamp_header,
    payload_datetime,
    require,
)
from ._replay import InMemoryReplayStore, ReplayStore

__all__ = ["VerificationScheme", "WebhookCallback", "WebhookEvent", "WebhookVerifier"]

VerificationScheme = Literal["auto", "hmac-sha256", "standard"]
"""Which scheme :class:`WebhookVerifier` accepts (``"auto"``: decided by the headers present)."""

# Senders retry one message under the same id, re-signed with a fresh timestamp, for hours
# (Svix's schedule spans about a day), so de-duplication must outlive the tolerance window.
_DEFAULT_REMEMBER_FOR = 24 * 3600.0


class _Checked(NamedTuple):
    """What a scheme's check established about a delivery."""

    delivery_id: str | None
    when: datetime | None
    payload: Any
    replay_key: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook delivery.

    Fields the payload does not carry are ``None``: the verifier accepts any JSON payload. The
    reference server sends ``{"type", "jobId", "timestamp", "data": {status document}}``.

    Attributes:
        type: the payload's ``type`` (``"job.completed"``, …), else the ``X-Webhook-Event``
            header (which no signature covers).
        delivery_id: ``webhook-id`` (signed); for the simple scheme the payload's
            ``deliveryId`` (signed) when present, else the unsigned ``X-Webhook-Delivery``
            header.
        timestamp: the timestamp the replay window was checked against (UTC).
        job_id: the payload's ``jobId`` (or its ``data.jobId``).
        status: the job state from ``data.status`` / ``data.state`` (or ``status``): a
            :class:`~asyncreply_client.JobState` when recognised, else the raw string.
        payload: the parsed JSON body.
        scheme: the scheme that verified the delivery.
        replay_key: the key recorded in the replay store: ``id:<webhook-id>`` for Standard
            Webhooks; for the simple scheme (whose delivery header is not signed, so it cannot
            be trusted to tell deliveries apart) ``id:<deliveryId>`` from the signed payload,
            else the body's SHA-256.

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
    either, so replays are recognised by the payload's own ``deliveryId`` (the reference
    server sends one, stable across attempts) or else by the body's digest. Prefer Standard
    Webhooks.

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
        keys = [secret_key(secret) for secret in secrets]
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
        # Logged on ``asyncreply.webhooks``: the delivery id and scheme, or the error's class;
        # never a secret, a signature or the body.
        try:
            event = self._verify(headers, body)
        except WebhookVerificationError as exc:
            if _log.enabled(_log.WEBHOOKS, logging.INFO):
                _log.WEBHOOKS.info("webhook delivery rejected: %s", type(exc).__name__)
            raise
        if _log.enabled(_log.WEBHOOKS):
            _log.WEBHOOKS.debug(
                "webhook delivery %r verified (%s)", event.delivery_id, event.scheme
            )
        return event

    def _verify(self, headers: HeadersInput, body: bytes | bytearray | memoryview) -> WebhookEvent:
        if isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        if not isinstance(body, bytes):
            raise TypeError("the webhook body must be the raw bytes received, not decoded text")
        found = normalise_headers(headers)
        scheme = self._pick_scheme(found)
        if scheme == "standard":
            delivery_id, when, payload, replay_key = self._check_standard(found, body)
        else:
            delivery_id, when, payload, replay_key = self._check_simple(found, body)
        event_type, job_id, status = describe(payload)
        if event_type is None:
            event_type = found.get(SIMPLE_EVENT) or None
        now = self._clock()
        seconds = when.timestamp() if when is not None else None
        if seconds is not None and self._tolerance is not None:
            check_tolerance(seconds, now, self._tolerance)
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
        if found.get(STD_SIGNATURE):
            return "standard"
        if found.get(SIMPLE_SIGNATURE):
            return "hmac-sha256"
        if found.get(STD_ID) or found.get(STD_TIMESTAMP):
            return "standard"  # a partial Standard Webhooks delivery: report what is missing
        raise MissingHeaderError(
            "webhook-signature",
            "missing signature header: expected webhook-signature (Standard Webhooks) "
            "or X-Webhook-Signature",
        )

    def _check_standard(self, found: Mapping[str, str], body: bytes) -> _Checked:
        delivery_id = require(found, STD_ID, "webhook-id")
        timestamp_text = require(found, STD_TIMESTAMP, "webhook-timestamp")
        when = parse_timestamp_header(timestamp_text, "webhook-timestamp")
        signatures = parse_standard_signatures(require(found, STD_SIGNATURE, "webhook-signature"))
        if not signatures:
            raise InvalidSignatureError("webhook-signature holds no v1 signature")
        signed = standard_signed_content(delivery_id, timestamp_text, body)
        if not matches(signatures, self._keys, signed):
            raise InvalidSignatureError("no webhook-signature matches the configured secrets")
        return _Checked(delivery_id, when, decode_payload(body), f"id:{delivery_id}")

    def _check_simple(self, found: Mapping[str, str], body: bytes) -> _Checked:
        signature = parse_simple_signature(require(found, SIMPLE_SIGNATURE, "X-Webhook-Signature"))
        if not matches([signature], self._keys, body):
            raise InvalidSignatureError("X-Webhook-Signature does not match the configured secrets")
        payload = decode_payload(body)
        when = self._simple_timestamp(found, payload)
        # The delivery header is not signed: tell deliveries apart by what is. A sender that
        # re-signs each attempt with a fresh payload timestamp (the reference server does)
        # puts its stable ``deliveryId`` in the body; otherwise the body itself is the key.
        signed_id = payload.get("deliveryId") if isinstance(payload, dict) else None
        if isinstance(signed_id, str) and signed_id:
            return _Checked(signed_id, when, payload, f"id:{signed_id}")
        return _Checked(
            found.get(SIMPLE_DELIVERY) or None,
            when,
            payload,
            f"body:{hashlib.sha256(body).hexdigest()}",
        )

    def _simple_timestamp(self, found: Mapping[str, str], payload: Any) -> datetime | None:
        # The body is what is signed, so a timestamp inside it is trustworthy; the header is not.
        if isinstance(payload, dict):
            inside = payload_datetime(payload.get("timestamp"))
            if inside is not None:
                return inside
        header = found.get(SIMPLE_TIMESTAMP)
        if header:
            return parse_timestamp_header(header, "X-Webhook-Timestamp")
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
