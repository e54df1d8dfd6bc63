"""Webhook signing shared by the asyncreply client SDK and the reference server.

This package imports only the standard library, so the reference server signs its deliveries
without loading the client (``asyncreply_client``), and receivers verify with the very same
key handling and signed-content rules (``asyncreply_client.webhooks`` re-exports :func:`sign`).

Two schemes:

* the simple scheme: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``;
* Standard Webhooks (https://www.standardwebhooks.com/, "Signature scheme"):
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Literal

__all__ = [
    "SigningScheme",
    "WHSEC_PREFIX",
    "hmac_sha256",
    "secret_key",
    "sign",
    "standard_signed_content",
]

SigningScheme = Literal["hmac-sha256", "standard", "both"]
"""Which signature headers :func:`sign` produces."""

WHSEC_PREFIX = "whsec_"
"""The prefix of Standard Webhooks secrets (the rest is the base64 of the key)."""


def secret_key(secret: str | bytes) -> bytes:
    """Return the HMAC key for ``secret``.

    ``whsec_``-prefixed strings are base64-decoded (Standard Webhooks convention; missing
    padding is tolerated, as the ``standardwebhooks`` package does); other strings are UTF-8
    encoded; bytes are used as they are. Both schemes use the same key.

    Args:
        secret: the shared secret.

    Returns:
        The key bytes.

    Raises:
        ValueError: a ``whsec_`` secret that is not base64, or a string that is not
            encodable as UTF-8 (the message never contains the secret).

    Example:
        >>> secret_key("whsec_c2VjcmV0")
        b'secret'
    """
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(WHSEC_PREFIX):
        encoded = secret[len(WHSEC_PREFIX) :]
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the whsec_ secret is not valid base64") from None
    try:
        return secret.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the webhook secret is not valid Unicode text") from None


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Return the HMAC-SHA256 digest of ``message`` under ``key``.

    Example:
        >>> len(hmac_sha256(b"k", b"m"))
        32
    """
    return hmac.new(key, message, hashlib.sha256).digest()


def standard_signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    """Return what Standard Webhooks signs: ``"{id}.{timestamp}."`` (UTF-8) then the body.

    Args:
        msg_id: the ``webhook-id``.
        timestamp: the ``webhook-timestamp`` exactly as sent.
        body: the raw body bytes.

    Raises:
        UnicodeEncodeError: ``msg_id`` or ``timestamp`` holds a lone surrogate (receivers
            turn that into a typed error before calling this).

    Example:
        >>> standard_signed_content("msg_1", "1700000000", b"{}")
        b'msg_1.1700000000.{}'
    """
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
    key = secret_key(secret)
    headers: dict[str, str] = {}
    if scheme in ("hmac-sha256", "both"):
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        headers["X-Webhook-Signature"] = f"sha256={digest}"
        headers["X-Webhook-Delivery"] = msg_id
        headers["X-Webhook-Timestamp"] = str(timestamp)
        if event_type is not None:
            headers["X-Webhook-Event"] = event_type
    if scheme in ("standard", "both"):
        signed = standard_signed_content(msg_id, str(timestamp), body)
        mac = base64.b64encode(hmac_sha256(key, signed)).decode("ascii")
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = f"v1,{mac}"
    return headers
