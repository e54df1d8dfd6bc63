"""Webhook signing shared by the asyncreply client SDK and the reference server.

This package imports only the standard library, so the reference server signs its deliveries
without loading the client (``asyncreply_client``), and receivers verify with the very same
key handling and signed-content rules (``asyncreply_client.webhooks`` re-exports :func:`sign`).

Two schemes:

* the simple scheme: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``;
* Standard Webhooks (https://www.standardwebhooks.com/, "Signature scheme"):
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, or with an
  Ed25519 secret key (``whsk_<base64>``) the asymmetric ``v1a,<base64 Ed25519 signature>``.

Ed25519 needs the ``cryptography`` package (the ``asymmetric`` extra); it is imported only
when a ``whsk_`` key is used, so importing this package stays standard-library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Literal

__all__ = [
    "SigningScheme",
    "WHPK_PREFIX",
    "WHSEC_PREFIX",
    "WHSK_PREFIX",
    "ed25519_public_key",
    "ed25519_seed",
    "hmac_sha256",
    "secret_key",
    "sign",
    "standard_signed_content",
]

SigningScheme = Literal["hmac-sha256", "standard", "both"]
"""Which signature headers :func:`sign` produces."""

WHSEC_PREFIX = "whsec_"
"""The prefix of Standard Webhooks secrets (the rest is the base64 of the key)."""

WHSK_PREFIX = "whsk_"
"""The prefix of Standard Webhooks Ed25519 secret (signing) keys."""

WHPK_PREFIX = "whpk_"
"""The prefix of Standard Webhooks Ed25519 public (verifying) keys."""

_ASYMMETRIC_EXTRA = "pip install 'asyncreply[asymmetric]'"


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {what} is not valid base64") from None


def ed25519_seed(secret: str) -> bytes:
    """Return the 32-byte Ed25519 seed of a ``whsk_<base64>`` secret key.

    The base64 holds the 32-byte seed, or the 64 bytes ``seed || public key`` that
    libsodium-style tools export (the public half is then checked against the seed when
    signing).

    Raises:
        ValueError: not a ``whsk_`` key, not base64, or not 32 or 64 bytes.

    Example:
        >>> len(ed25519_seed("whsk_" + "A" * 43 + "="))
        32
    """
    if not secret.startswith(WHSK_PREFIX):
        raise ValueError("an Ed25519 secret key starts with whsk_")
    raw = _b64decode(secret[len(WHSK_PREFIX) :], "whsk_ key")
    if len(raw) not in (32, 64):
        raise ValueError("a whsk_ key holds 32 (seed) or 64 (seed and public key) bytes")
    return raw


def _private_key(secret: str) -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError as exc:
        raise ImportError(
            f"Ed25519 (whsk_) signing needs cryptography: {_ASYMMETRIC_EXTRA}"
        ) from exc
    raw = ed25519_seed(secret)
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64 and _raw_public(key) != raw[32:]:
        raise ValueError("the whsk_ key's public half does not belong to its seed")
    return key


def _raw_public(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw: bytes = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw


def ed25519_public_key(secret: str) -> str:
    """Return the ``whpk_<base64>`` public key that verifies what ``secret`` (``whsk_``) signs.

    Raises:
        ValueError: ``secret`` is not a valid ``whsk_`` key.
        ImportError: the ``cryptography`` package (the ``asymmetric`` extra) is missing.

    Example:
        >>> ed25519_public_key("whsk_" + "A" * 43 + "=")
        'whpk_O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik='
    """
    return WHPK_PREFIX + base64.b64encode(_raw_public(_private_key(secret))).decode("ascii")


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
        secret: the shared secret (``whsec_<base64>``, a plain string, or raw bytes), or an
            Ed25519 secret key ``whsk_<base64>`` (Standard Webhooks ``v1a``; needs the
            ``asymmetric`` extra and ``scheme="standard"``).
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
    if isinstance(secret, str) and secret.startswith(WHSK_PREFIX):
        # Ed25519 exists only in Standard Webhooks (``v1a``); the simple scheme is HMAC only.
        if scheme != "standard":
            raise ValueError('a whsk_ (Ed25519) key signs only with scheme="standard"')
        signed = standard_signed_content(msg_id, str(timestamp), body)
        signature = base64.b64encode(_private_key(secret).sign(signed)).decode("ascii")
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1a,{signature}",
        }
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
