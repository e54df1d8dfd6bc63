"""Signing and verifying webhook deliveries (simple HMAC-SHA256 and Standard Webhooks).

The reference server signs with :func:`sign`; receivers verify with the same module, so
both sides share one implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

__all__ = ["SigningScheme", "sign"]

SigningScheme = Literal["hmac-sha256", "standard", "both"]


def _secret_key(secret: str | bytes) -> bytes:
    """Return the HMAC key for ``secret``.

    ``whsec_``-prefixed strings are base64-decoded (Standard Webhooks convention); other
    strings are UTF-8 encoded; bytes are used as they are. Both schemes use the same key.
    """
    if isinstance(secret, bytes):
        return secret
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode("utf-8")


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
        signed = f"{msg_id}.{timestamp}.".encode() + body
        mac = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = f"v1,{mac}"
    return headers
