"""The webhook verification errors: one tree under the client's base error.

The tree is drawn in :mod:`asyncreply_client.webhooks`. Messages name the header or field at
fault but never contain a secret or an expected signature.
"""

from __future__ import annotations

from .._errors import AsyncReplyError

__all__ = [
    "FutureTimestampError",
    "MissingExtraError",
    "InvalidPayloadError",
    "InvalidSignatureError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "ReplayedDeliveryError",
    "StaleTimestampError",
    "TimestampOutOfToleranceError",
    "WebhookVerificationError",
]


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


class MissingExtraError(AsyncReplyError, ImportError):
    """An optional dependency this feature needs is not installed.

    Raised when the verifier is configured (never per delivery), for example with an Ed25519
    public key (``whpk_``) or a JWKS key set without ``cryptography``. Also an
    ``ImportError``, so code that guards optional imports catches it.

    Attributes:
        extra: the package extra that installs it (``pip install 'asyncreply[<extra>]'``).
    """

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra
