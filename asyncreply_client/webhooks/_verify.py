"""The verifier: signature, timestamp window and replay checks of one delivery."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from asyncreply_signing import WHPK_PREFIX, secret_key, standard_signed_content

from .. import _log
from .._models import JobState
from ..dialects import parse_state
from ._asymmetric import JwksKeySet, load_public_key, verify_ed25519
from ._errors import (
    InvalidSignatureError,
    MissingHeaderError,
    ReplayedDeliveryError,
    WebhookVerificationError,
)
from ._event import WebhookCallback, WebhookEvent
from ._headers import HeadersInput, arrange_arguments, normalise_headers
from ._parsing import (
    SIMPLE_DELIVERY,
    SIMPLE_EVENT,
    SIMPLE_SIGNATURE,
    SIMPLE_TIMESTAMP,
    STD_ID,
    STD_SIGNATURE,
    STD_TIMESTAMP,
    StateReader,
    check_tolerance,
    decode_payload,
    describe,
    matches,
    parse_hex_signature,
    parse_simple_signature,
    parse_standard_signatures,
    parse_timestamp_header,
    payload_datetime,
    require,
)
from ._replay import InMemoryReplayStore
from ._steps import AnyReplayStore, StoreCall, run_async, run_sync

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["BodyInput", "VerificationScheme", "WebhookCallback", "WebhookEvent", "WebhookVerifier"]

VerificationScheme = Literal["auto", "hmac-sha256", "standard", "fal"]
"""Which scheme :class:`WebhookVerifier` accepts (``"auto"``: decided by the headers present)."""

BodyInput = bytes | bytearray | memoryview
"""The raw request body, exactly as received."""

Scheme = Literal["hmac-sha256", "standard", "fal"]

# Senders retry one message under the same id, re-signed with a fresh timestamp, for hours
# (Svix's schedule spans about a day), so de-duplication must outlive the tolerance window.
_DEFAULT_REMEMBER_FOR = 24 * 3600.0
# fal.ai (docs "Verifying your webhook"): Ed25519 over "request_id\nuser_id\ntimestamp\n"
# followed by the hex SHA-256 of the body, hex-encoded, with keys from its JWKS.
FAL_REQUEST_ID = "x-fal-webhook-request-id"
FAL_USER_ID = "x-fal-webhook-user-id"
FAL_TIMESTAMP = "x-fal-webhook-timestamp"
FAL_SIGNATURE = "x-fal-webhook-signature"

SecretInput = str | bytes | JwksKeySet
StatesInput = Mapping[str, "JobState | str"] | Callable[[Any], "JobState | None"]


class _Checked(NamedTuple):
    """What a scheme's check established about a delivery."""

    delivery_id: str | None
    when: datetime | None
    payload: Any
    replay_key: str


def _state_reader(states: StatesInput | None) -> StateReader:
    """The vocabulary: the dialects' shared one, or the caller's words in front of it."""
    if states is None:
        return parse_state
    if callable(states) and not isinstance(states, Mapping):
        return states
    if not isinstance(states, Mapping):
        raise TypeError("states must be a mapping of words to JobState, or a function")
    words: dict[str, JobState] = {}
    for word, state in states.items():
        try:
            words[str(word).lower()] = JobState(state)
        except ValueError:
            raise ValueError(f"states[{word!r}] = {state!r} is not a JobState") from None

    def read(value: Any) -> JobState | None:
        if isinstance(value, str) and value.lower() in words:
            return words[value.lower()]
        return parse_state(value)

    return read


class WebhookVerifier:
    """Checks webhook deliveries: signature, timestamp window, and replays.

    Args:
        secret_or_secrets: the key, or several (key rotation: a delivery signed with any of
            them is accepted). HMAC secrets: ``whsec_<base64>`` strings are base64-decoded,
            other strings UTF-8 encoded, bytes used as they are. Ed25519 (needs the
            ``asymmetric`` extra): a Standard Webhooks public key ``whpk_<base64>`` (``v1a``
            signatures), or a :class:`JwksKeySet` (``v1a`` and fal.ai's signatures).
        scheme: ``"standard"`` (Standard Webhooks ``v1`` / ``v1a``), ``"hmac-sha256"`` (the
            simple scheme), ``"fal"`` (fal.ai), or ``"auto"``: decided by which signature
            header is present.
        tolerance: the largest accepted distance, in seconds, between a delivery's timestamp
            and the clock (both directions, limit included); ``None`` skips the check.
        replay_store: where accepted deliveries are remembered, to reject a replay inside the
            window: ``"memory"`` (default, an :class:`InMemoryReplayStore` per verifier), a
            :class:`ReplayStore` or :class:`AsyncReplayStore` shared by several receivers
            (:class:`RedisReplayStore`, :class:`AsyncRedisReplayStore`), or ``None`` to not
            check replays.
        remember_for: seconds an accepted delivery stays remembered (and so a duplicate), at
            least until its timestamp leaves the tolerance window. Senders retry a message
            under the same id with a fresh timestamp, so cover their retry horizon.
        states: extra state words for :attr:`WebhookEvent.status`, read before the dialects'
            shared vocabulary (``{"OK": "completed"}`` for fal.ai's results), or a function
            from a word to a :class:`~asyncreply_client.JobState` (or ``None``).
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
        secret_or_secrets: SecretInput | Iterable[SecretInput],
        *,
        scheme: VerificationScheme = "auto",
        tolerance: float | None = 300,
        replay_store: AnyReplayStore | Literal["memory"] | None = "memory",
        remember_for: float = _DEFAULT_REMEMBER_FOR,
        states: StatesInput | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the verifier (see the class docstring).

        Raises:
            ValueError: no key, an empty secret, a ``whsec_`` secret that is not base64, a
                ``whpk_`` key that is not 32 bytes of base64, an unknown scheme or replay
                store name, a negative duration, or a ``states`` word naming no state.
            MissingExtraError: an Ed25519 key without the ``cryptography`` package.
        """
        given = (
            [secret_or_secrets]
            if isinstance(secret_or_secrets, (str, bytes, JwksKeySet))
            else list(secret_or_secrets)
        )
        keys: list[bytes] = []
        public: list[Ed25519PublicKey] = []
        key_sets: list[JwksKeySet] = []
        for secret in given:
            if isinstance(secret, JwksKeySet):
                key_sets.append(secret)
            elif isinstance(secret, str) and secret.startswith(WHPK_PREFIX):
                public.append(load_public_key(secret))
            elif isinstance(secret, (str, bytes)):
                keys.append(secret_key(secret))
            else:
                raise TypeError(f"a webhook key is a str, bytes or JwksKeySet, not {secret!r}")
        if not (keys or public or key_sets):
            raise ValueError("at least one webhook secret is required")
        if not all(keys):
            raise ValueError("a webhook secret may not be empty")
        if scheme not in ("auto", "hmac-sha256", "standard", "fal"):
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
        self._public = tuple(public)
        self._key_sets = tuple(key_sets)
        self._scheme: VerificationScheme = scheme
        self._tolerance = tolerance
        self._clock = clock
        self._remember_for = remember_for
        self._read_state = _state_reader(states)
        self._store: AnyReplayStore | None = replay_store

    def __repr__(self) -> str:
        count = len(self._keys) + len(self._public) + len(self._key_sets)
        return (
            f"WebhookVerifier(<{count} secret(s)>, scheme={self._scheme!r}, "
            f"tolerance={self._tolerance!r})"
        )

    @property
    def replay_store(self) -> AnyReplayStore | None:
        """The store of accepted deliveries, or ``None`` when replays are not checked."""
        return self._store

    def verify(
        self,
        headers: HeadersInput | BodyInput = None,
        body: BodyInput | HeadersInput = None,
        *,
        payload: BodyInput | None = None,
    ) -> WebhookEvent:
        """Verify one delivery and return its event.

        Takes ``verify(headers, body)``, or the order of Svix and ``standardwebhooks``,
        ``verify(payload, headers)``, told apart by type (the body is bytes, the headers
        are not); ``payload=`` is a keyword alias of ``body``. The checks run in this order:
        headers present and well-formed, signature (over the raw bytes, before anything
        decodes them), body is UTF-8 JSON, timestamp inside the tolerance, delivery not
        seen before (it is then recorded in the replay store).

        Args:
            headers: the request headers in any common shape (:data:`HeadersInput`); names
                are matched case-insensitively.
            body: the raw request body, exactly as received.
            payload: the body, by the peers' name.

        Returns:
            The verified event.

        Raises:
            MissingHeaderError: a required header is absent.
            MalformedHeaderError: a header does not parse.
            InvalidSignatureError: no signature matches any key.
            InvalidPayloadError: the body is not UTF-8 JSON.
            StaleTimestampError: the timestamp is older than the tolerance.
            FutureTimestampError: the timestamp is further ahead than the tolerance.
            ReplayedDeliveryError: the delivery was already accepted.
            TypeError: the body is not bytes (decoding it first could change what was
                signed), or the arguments are neither order; an asynchronous replay store
                (use :meth:`verify_async`).

        What the replay store raises (``redis.ConnectionError`` when Redis is down) passes
        through unchanged; the receivers turn it into a 503 answer instead.
        """
        found, raw = arrange_arguments(headers, body, payload)
        return self._logged(lambda: run_sync(self._verify_steps(found, raw), self._store))

    async def verify_async(
        self,
        headers: HeadersInput | BodyInput = None,
        body: BodyInput | HeadersInput = None,
        *,
        payload: BodyInput | None = None,
    ) -> WebhookEvent:
        """Like :meth:`verify`, awaiting an :class:`AsyncReplayStore` (any store works).

        Example:
            >>> import asyncio
            >>> verifier = WebhookVerifier("s3cret", clock=lambda: 1700000000)
            >>> headers = sign(b"{}", "s3cret", msg_id="m", timestamp=1700000000)
            >>> asyncio.run(verifier.verify_async(headers, b"{}")).delivery_id
            'm'
        """
        found, raw = arrange_arguments(headers, body, payload)
        flow = self._verify_steps(found, raw)
        try:
            event = await run_async(flow, self._store)
        except WebhookVerificationError as exc:
            self._log_rejected(exc)
            raise
        self._log_verified(event)
        return event

    def _logged(self, run: Callable[[], WebhookEvent]) -> WebhookEvent:
        # One record per delivery on ``asyncreply.webhooks``: the delivery id and scheme, or
        # the error's class; never a secret, a signature or the body. (The receivers log
        # their own record instead, with the answer they gave.)
        try:
            event = run()
        except WebhookVerificationError as exc:
            self._log_rejected(exc)
            raise
        self._log_verified(event)
        return event

    @staticmethod
    def _log_rejected(exc: WebhookVerificationError) -> None:
        if _log.enabled(_log.WEBHOOKS, logging.INFO):
            _log.WEBHOOKS.info("webhook delivery rejected: %s", type(exc).__name__)

    @staticmethod
    def _log_verified(event: WebhookEvent) -> None:
        if _log.enabled(_log.WEBHOOKS):
            _log.WEBHOOKS.debug(
                "webhook delivery %r verified (%s)", event.delivery_id, event.scheme
            )

    def _verify_steps(
        self, headers: HeadersInput, body: bytes
    ) -> Generator[StoreCall, Any, WebhookEvent]:
        """Check one delivery; claim it in the replay store through the yielded calls."""
        found = normalise_headers(headers)
        scheme = self._pick_scheme(found)
        if scheme == "standard":
            delivery_id, when, payload, replay_key = self._check_standard(found, body)
        elif scheme == "fal":
            delivery_id, when, payload, replay_key = self._check_fal(found, body)
        else:
            delivery_id, when, payload, replay_key = self._check_simple(found, body)
        event_type, job_id, status = describe(payload, self._read_state)
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
            claimed = yield StoreCall("add", f"seen:{replay_key}", self._expires_at(seconds, now))
            if not claimed:
                processed = yield StoreCall("contains", f"done:{replay_key}")
                raise ReplayedDeliveryError(delivery_id, processed=bool(processed))
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
        run_sync(self._forget_steps(event), self._store)

    async def forget_async(self, event: WebhookEvent) -> None:
        """Like :meth:`forget`, awaiting an :class:`AsyncReplayStore`."""
        await run_async(self._forget_steps(event), self._store)

    def _forget_steps(self, event: WebhookEvent) -> Generator[StoreCall, Any, None]:
        if self._store is not None:
            yield StoreCall("discard", f"done:{event.replay_key}")
            yield StoreCall("discard", f"seen:{event.replay_key}")

    def _processed_steps(self, event: WebhookEvent) -> Generator[StoreCall, Any, None]:
        # Lets a later duplicate be acknowledged (2xx) instead of told to come back (5xx).
        if self._store is not None:
            seconds = event.timestamp.timestamp() if event.timestamp is not None else None
            expires_at = self._expires_at(seconds, self._clock())
            yield StoreCall("add", f"done:{event.replay_key}", expires_at)

    def _pick_scheme(self, found: Mapping[str, str]) -> Scheme:
        if self._scheme != "auto":
            return self._scheme
        if found.get(STD_SIGNATURE):
            return "standard"
        if found.get(SIMPLE_SIGNATURE):
            return "hmac-sha256"
        if found.get(FAL_SIGNATURE):
            return "fal"
        if found.get(STD_ID) or found.get(STD_TIMESTAMP):
            return "standard"  # a partial Standard Webhooks delivery: report what is missing
        raise MissingHeaderError(
            "webhook-signature",
            "missing signature header: expected webhook-signature (Standard Webhooks), "
            "X-Webhook-Signature or X-Fal-Webhook-Signature",
        )

    def _ed25519_matches(self, signatures: list[bytes], message: bytes) -> bool:
        if not signatures:
            return False
        keys = list(self._public)
        for key_set in self._key_sets:
            keys += key_set.keys()
        if verify_ed25519(keys, signatures, message):
            return True
        # The sender may have rotated its keys: reload each set once (rate-limited), retry.
        reloaded = [key_set for key_set in self._key_sets if key_set.refresh()]
        return any(verify_ed25519(s.keys(), signatures, message) for s in reloaded)

    def _check_standard(self, found: Mapping[str, str], body: bytes) -> _Checked:
        delivery_id = require(found, STD_ID, "webhook-id")
        timestamp_text = require(found, STD_TIMESTAMP, "webhook-timestamp")
        when = parse_timestamp_header(timestamp_text, "webhook-timestamp")
        symmetric, asymmetric = parse_standard_signatures(
            require(found, STD_SIGNATURE, "webhook-signature")
        )
        usable = (symmetric if self._keys else []) + (
            asymmetric if self._public or self._key_sets else []
        )
        if not usable:
            wanted = " or ".join(
                name
                for name, have in (("v1", self._keys), ("v1a", self._public or self._key_sets))
                if have
            )
            raise InvalidSignatureError(f"webhook-signature holds no {wanted} signature")
        signed = standard_signed_content(delivery_id, timestamp_text, body)
        if not (
            matches(symmetric, self._keys, signed) or self._ed25519_matches(asymmetric, signed)
        ):
            raise InvalidSignatureError("no webhook-signature matches the configured keys")
        return _Checked(delivery_id, when, decode_payload(body), f"id:{delivery_id}")

    def _check_fal(self, found: Mapping[str, str], body: bytes) -> _Checked:
        request_id = require(found, FAL_REQUEST_ID, "X-Fal-Webhook-Request-Id")
        user_id = require(found, FAL_USER_ID, "X-Fal-Webhook-User-Id")
        timestamp_text = require(found, FAL_TIMESTAMP, "X-Fal-Webhook-Timestamp")
        when = parse_timestamp_header(timestamp_text, "X-Fal-Webhook-Timestamp")
        signature = parse_hex_signature(
            require(found, FAL_SIGNATURE, "X-Fal-Webhook-Signature"), "X-Fal-Webhook-Signature"
        )
        if not (self._public or self._key_sets):
            raise InvalidSignatureError(
                "fal.ai signs with Ed25519: configure its JWKS (JwksKeySet.from_url(...))"
            )
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join((request_id, user_id, timestamp_text, digest)).encode()
        if not self._ed25519_matches([signature], message):
            raise InvalidSignatureError("X-Fal-Webhook-Signature matches none of the keys")
        return _Checked(request_id, when, decode_payload(body), f"id:{request_id}")

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
