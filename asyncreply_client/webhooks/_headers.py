"""Request headers in every shape a Python web stack hands them over, read as one dict.

Accepted: a ``Mapping`` (``dict``, ``httpx.Headers``, Starlette's ``Headers``, aiohttp's
``CIMultiDictProxy``, Django's ``request.headers``, requests' ``CaseInsensitiveDict``), an
object with ``items()`` (``email.message.Message`` from :mod:`http.server`, Werkzeug/Flask
``Headers`` and ``EnvironHeaders``), a WSGI environ (``HTTP_*`` keys, ``CONTENT_TYPE``; also
Django's ``request.META``), an ASGI scope or its ``[(bytes, bytes)]`` header list, and any
iterable of ``(name, value)`` pairs. Bad input ends in ``MalformedHeaderError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from ._errors import MalformedHeaderError

__all__ = [
    "SIGNATURE_HEADERS",
    "HeadersInput",
    "arrange_arguments",
    "is_headers_like",
    "normalise_headers",
]

HeadersInput: TypeAlias = (
    Mapping[str, str]
    | Mapping[str, Any]
    | Iterable[tuple[str, str]]
    | Iterable[tuple[bytes, bytes]]
    | Any
)
"""Request headers in any common shape (see :func:`normalise_headers`): a mapping, an
``email.message.Message``, a framework's header object, a WSGI environ, an ASGI scope or
header list, or ``(name, value)`` pairs."""

#: The headers a signature covers or that name the delivery: their values must be UTF-8 text.
SIGNATURE_HEADERS = frozenset(
    {
        "x-webhook-signature",
        "x-webhook-event",
        "x-webhook-delivery",
        "x-webhook-timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-fal-webhook-request-id",
        "x-fal-webhook-user-id",
        "x-fal-webhook-timestamp",
        "x-fal-webhook-signature",
    }
)
# CGI/WSGI (PEP 3333) names the two headers that have no ``HTTP_`` prefix.
_ENVIRON_PLAIN = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
_NOT_HEADERS = "not a mapping, a header object, a WSGI environ or an iterable of pairs"


def _is_environ(headers: Mapping[Any, Any]) -> bool:
    # A WSGI environ (and Django's request.META) always carries the request method and the
    # WSGI version; a bare copy of its HTTP_* keys is recognised by the keys themselves.
    if "REQUEST_METHOD" in headers or "wsgi.version" in headers:
        return True
    keys = [key for key in headers if isinstance(key, str)]
    return bool(keys) and all(key.startswith("HTTP_") or key in _ENVIRON_PLAIN for key in keys)


def _environ_pairs(environ: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    pairs: list[tuple[Any, Any]] = []
    for key, value in environ.items():
        if not isinstance(key, str):
            continue
        if key.startswith("HTTP_"):
            pairs.append((key[5:].replace("_", "-").lower(), value))
        elif key in _ENVIRON_PLAIN:
            pairs.append((_ENVIRON_PLAIN[key], value))
    return pairs


def _is_asgi_scope(headers: Mapping[Any, Any]) -> bool:
    return headers.get("type") in ("http", "websocket") and "headers" in headers


def _header_pairs(headers: Any) -> list[tuple[Any, Any]]:
    if isinstance(headers, (str, bytes, bytearray, memoryview)):
        raise MalformedHeaderError("headers", _NOT_HEADERS)
    multi_items = getattr(headers, "multi_items", None)  # httpx / Starlette: repeats apart
    try:
        if isinstance(headers, Mapping) and _is_asgi_scope(headers):
            return _header_pairs(headers["headers"])
        if isinstance(headers, Mapping) and _is_environ(headers):
            return _environ_pairs(headers)
        if callable(multi_items):
            items: Iterable[Any] = multi_items()
        elif callable(getattr(headers, "items", None)):
            # Mappings, email.message.Message (whose iteration yields names only) and
            # Werkzeug's Headers: items() lists every (name, value), repeats included.
            items = headers.items()
        else:
            items = headers
        items = list(items)
        # A pair must be a real pair: a two-character string would otherwise pass as one.
        if any(isinstance(item, (str, bytes, bytearray)) for item in items):
            raise MalformedHeaderError("headers", _NOT_HEADERS)
        pairs = [item if isinstance(item, tuple) else tuple(item) for item in items]
    except (TypeError, ValueError, AttributeError):
        raise MalformedHeaderError("headers", _NOT_HEADERS) from None
    if any(len(pair) != 2 for pair in pairs):
        raise MalformedHeaderError("headers", _NOT_HEADERS)
    return pairs


def is_headers_like(value: object) -> bool:
    """Whether ``value`` looks like request headers rather than a body (no iteration)."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return False
    return isinstance(value, (Mapping, list, tuple)) or callable(getattr(value, "items", None))


def _header_value(name: str, raw: Any) -> str:
    """Return a header value as text: bytes of a signature header must be UTF-8.

    The signer signs the UTF-8 bytes of ``webhook-id`` (Standard Webhooks), so a value that is
    not UTF-8 (a raw ``0xff`` byte, which aiohttp hands over as the lone surrogate
    ``"\\udcff"``) cannot have been signed: it is malformed, not merely unverified.
    """
    if name in SIGNATURE_HEADERS:
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

    Example:
        >>> import email.message
        >>> message = email.message.Message()
        >>> message["Webhook-Id"] = "msg_1"
        >>> normalise_headers(message)
        {'webhook-id': 'msg_1'}
        >>> normalise_headers({"REQUEST_METHOD": "POST", "HTTP_WEBHOOK_ID": "msg_1"})
        {'webhook-id': 'msg_1'}
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


def _kind(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "body"
    if isinstance(value, str):
        return "text"
    if value is not None and is_headers_like(value):
        return "headers"
    return "other"


def arrange_arguments(first: Any, second: Any, payload: Any = None) -> tuple[Any, bytes]:
    """Return ``(headers, body)`` from ``verify``'s arguments, in either order.

    ``verify(headers, body)`` is ours, ``verify(payload, headers)`` Svix's and
    ``standardwebhooks``'; the body is bytes and headers are not, so the order is told by
    type. Text for the body is refused (decoding could change what was signed), naming the
    order that was recognised.

    Raises:
        TypeError: a body that is not bytes, or arguments that fit neither order.
    """
    if payload is not None:
        if second is not None:
            raise TypeError("give the body once: as body (or positionally) or as payload=")
        second = payload
    kinds = (_kind(first), _kind(second))
    if kinds[1] == "body":
        return first, bytes(second)  # headers of a shape we cannot read fail when read
    if kinds[0] == "body":
        return second, bytes(first)  # the peers' order: verify(payload, headers)
    if kinds == ("text", "headers"):
        raise TypeError(
            "verify(payload, headers) got text for the payload: pass the raw bytes received "
            "(decoding, then encoding again, can change what was signed)"
        )
    if kinds == ("headers", "text"):
        raise TypeError("the webhook body must be the raw bytes received, not decoded text")
    raise TypeError(
        "verify() takes (headers, body) or the peers' order (payload, headers), the body as "
        f"bytes; got ({type(first).__name__}, {type(second).__name__})"
    )
