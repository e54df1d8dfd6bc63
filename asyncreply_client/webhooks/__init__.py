"""Signing, verifying and receiving webhook deliveries (simple HMAC-SHA256 and Standard Webhooks).

The reference server signs with :func:`sign`; receivers check deliveries with
:class:`WebhookVerifier` and answer them with :func:`handle_webhook` (or the ready aiohttp
handler from :func:`aiohttp_webhook_handler`), so both sides share one implementation.

Two signature schemes are understood:

* the simple scheme: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, with
  the unsigned ``X-Webhook-Event``, ``X-Webhook-Delivery`` and ``X-Webhook-Timestamp``;
* Standard Webhooks (https://www.standardwebhooks.com/, "Verifying webhooks"): ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

The parts: :func:`sign` lives in the stand-alone ``asyncreply_signing`` package (shared with
the server, which must not load the client); ``_errors`` (the tree below), ``_replay`` (replay
stores), ``_parsing`` (pure header and payload parsing), ``_verify`` (:class:`WebhookVerifier`),
``_receiver`` (the I/O-free receive flow and its two drivers) and ``_aiohttp`` (the adapter).

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

from asyncreply_signing import SigningScheme, sign

from ._aiohttp import aiohttp_webhook_handler
from ._errors import (
    FutureTimestampError,
    InvalidPayloadError,
    InvalidSignatureError,
    MalformedHeaderError,
    MissingHeaderError,
    ReplayedDeliveryError,
    StaleTimestampError,
    TimestampOutOfToleranceError,
    WebhookVerificationError,
)
from ._parsing import HeadersInput
from ._receiver import CATCH_ALL, WebhookResponse, handle_webhook, handle_webhook_async
from ._replay import InMemoryReplayStore, ReplayStore
from ._verify import VerificationScheme, WebhookCallback, WebhookEvent, WebhookVerifier

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

# Public classes and functions report this package as their home (reprs, tracebacks and
# pickles keep the documented path), whichever private module defines them.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(__name__ + "."):
        _value.__module__ = __name__
del _name, _value
