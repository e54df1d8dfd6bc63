"""Signing, verifying and receiving webhook deliveries (HMAC-SHA256, Standard Webhooks, Ed25519).

The reference server signs with :func:`sign`; receivers check deliveries with
:class:`WebhookVerifier` and answer them with :func:`handle_webhook` /
:func:`handle_webhook_async`, or a ready receiver (:func:`aiohttp_webhook_handler`,
:func:`starlette_webhook_endpoint`, :func:`flask_webhook_view`, :func:`django_webhook_view`),
so both sides share one implementation.

Signature schemes understood:

* the simple scheme: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, with
  the unsigned ``X-Webhook-Event``, ``X-Webhook-Delivery`` and ``X-Webhook-Timestamp``;
* Standard Webhooks (https://www.standardwebhooks.com/, "Verifying webhooks"): ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
  or, asymmetric, ``v1a,<base64 Ed25519 signature>`` checked with ``whpk_`` public keys or a
  :class:`JwksKeySet` (the ``asymmetric`` extra);
* fal.ai's Ed25519 signatures (``X-Fal-Webhook-*``), checked with fal's published JWKS.

The parts: :func:`sign` lives in the stand-alone ``asyncreply_signing`` package (shared with
the server, which must not load the client); ``_errors`` (the tree below), ``_headers``
(every header shape, read as one dict), ``_parsing`` (pure header and payload parsing),
``_asymmetric`` (Ed25519 keys and JWKS), ``_verify`` (:class:`WebhookVerifier`), ``_steps``
(replay store calls and their two drivers), ``_replay`` and ``_redis`` (replay stores),
``_receiver`` (the I/O-free receive flow and its two drivers), ``_aiohttp`` and
``_frameworks`` (the adapters).

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

    AsyncReplyError, ImportError
    └── MissingExtraError                  an optional dependency is not installed
"""

from __future__ import annotations

from asyncreply_signing import SigningScheme, ed25519_public_key, sign

from ._aiohttp import aiohttp_webhook_handler
from ._asymmetric import JwksKeySet
from ._errors import (
    FutureTimestampError,
    InvalidPayloadError,
    InvalidSignatureError,
    MalformedHeaderError,
    MissingExtraError,
    MissingHeaderError,
    ReplayedDeliveryError,
    StaleTimestampError,
    TimestampOutOfToleranceError,
    WebhookVerificationError,
)
from ._event import WebhookCallback, WebhookEvent
from ._frameworks import django_webhook_view, flask_webhook_view, starlette_webhook_endpoint
from ._headers import HeadersInput
from ._receiver import CATCH_ALL, WebhookResponse, handle_webhook, handle_webhook_async
from ._redis import AsyncRedisReplayStore, RedisReplayStore
from ._replay import AsyncReplayStore, InMemoryReplayStore, ReplayStore
from ._verify import VerificationScheme, WebhookVerifier

__all__ = [
    "AsyncRedisReplayStore",
    "AsyncReplayStore",
    "CATCH_ALL",
    "FutureTimestampError",
    "HeadersInput",
    "InMemoryReplayStore",
    "InvalidPayloadError",
    "InvalidSignatureError",
    "JwksKeySet",
    "MalformedHeaderError",
    "MissingExtraError",
    "MissingHeaderError",
    "RedisReplayStore",
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
    "django_webhook_view",
    "ed25519_public_key",
    "flask_webhook_view",
    "handle_webhook",
    "handle_webhook_async",
    "sign",
    "starlette_webhook_endpoint",
]

# Public classes and functions report this package as their home (reprs, tracebacks and
# pickles keep the documented path), whichever private module defines them.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(__name__ + "."):
        _value.__module__ = __name__
del _name, _value
