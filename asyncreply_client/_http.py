"""An I/O-free view of an HTTP response, the input of every pure decision in the client."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._errors import ProtocolError

__all__ = ["THROWN", "UNREADABLE_ANSWER", "HttpResponse", "undecodable", "unusable_location"]

#: What ``httpx.Client.send`` raises when an answer's ``Location`` cannot be parsed: httpx
#: builds the next request of every 3xx with a ``Location``, even when it does not follow it
#: (``response.next_request``), and its URL parser raises ``InvalidURL``, or an
#: ``idna.IDNAError`` (a ``UnicodeError``) for a host like ``xn--a.test``. The answer is lost
#: (httpx closes it): the drivers throw the error into the flow.
UNREADABLE_ANSWER: tuple[type[Exception], ...] = (httpx.InvalidURL, UnicodeError)
#: What the drivers throw into a flow, at the ``yield`` of the command that failed: httpx's
#: request errors (a transport fault, a body that cannot be decoded), and the above.
THROWN: tuple[type[Exception], ...] = (httpx.RequestError, *UNREADABLE_ANSWER)


def unusable_location(method: str, url: str, error: Exception) -> ProtocolError:
    """The error of an answer to ``method url`` whose ``Location`` httpx could not parse (one
    of :data:`UNREADABLE_ANSWER`)."""
    return ProtocolError(
        f"the answer to {method} redirects to a Location that is no usable URL "
        f"({type(error).__name__}: {error})",
        url=url,
    )


def undecodable(error: httpx.DecodingError) -> ProtocolError:
    """The error of an answer whose body is not of the ``Content-Encoding`` it names (what
    the drivers throw into a flow when they cannot decode it)."""
    try:
        url: str | None = str(error.request.url)
    except RuntimeError:  # httpx raises it for an error made without its request
        url = None
    return ProtocolError(f"the answer's body cannot be decoded: {error}", url=url)


_NO_JSON = object()
#: The object keys seen in JSON bodies, shared by every document decoded afterwards: a client
#: following many operations holds one document per snapshot (``JobStatus.raw``), and the
#: same keys ("jobId", "status", "statusUrl"...) would otherwise be copied into each one.
#: Bounded, so that a server inventing keys cannot grow it.
_KEYS: dict[str, str] = {}
_MAX_KEYS = 1024
_MAX_KEY_LENGTH = 64


def _share_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its keys replaced by the equal ones already seen (a json object hook)."""
    keys = _KEYS
    try:  # nearly always: every key seen before (one comprehension, no Python loop)
        return {keys[key]: value for key, value in obj.items()}
    except KeyError:
        pass
    out: dict[str, Any] = {}
    for key, value in obj.items():
        shared = keys.get(key)
        if shared is None:
            shared = key
            if len(keys) < _MAX_KEYS and len(key) <= _MAX_KEY_LENGTH:
                keys[key] = key
        out[shared] = value
    return out


_DECODER = json.JSONDecoder(object_hook=_share_keys)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What the pure core sees of a response: status, headers, body bytes and where it came from.

    ``url`` is the URL the request was sent to (the base for resolving relative URLs) and
    ``method`` its method. ``content`` is empty for a stream whose body has not been read.
    ``truncated``: the body was longer than the client reads (``Client(max_body_size=...)``)
    and ``content`` holds only its first bytes.
    """

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    method: str = "GET"
    _json: Any = field(default=_NO_JSON, repr=False, compare=False)
    truncated: bool = False

    @classmethod
    def from_httpx(
        cls,
        response: httpx.Response,
        *,
        read: bool = True,
        content: bytes | None = None,
        limit: int | None = None,
    ) -> HttpResponse:
        """Build a view of an httpx response (whose body has been read when ``read``).

        ``content``: the body as read by the caller, when it read it itself; longer than
        ``limit`` means cut there (``truncated``).
        """
        truncated = False
        if content is None:
            content = response.content if read else b""
        elif limit is not None and len(content) > limit:
            content, truncated = content[:limit], True
        return cls(
            status_code=response.status_code,
            headers=response.headers,
            content=content,
            url=str(response.request.url),
            method=response.request.method,
            truncated=truncated,
        )

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        value: str = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()

    @property
    def is_json(self) -> bool:
        """Whether the Content-Type says JSON (``application/json`` or ``+json``)."""
        ct = self.content_type
        return ct == "application/json" or ct.endswith("+json")

    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not valid JSON.

        Never raises: callers that need to tell "no body" from "garbage" check ``content``.
        """
        cached = self._json
        if cached is not _NO_JSON:
            return cached
        value: Any = None
        if self.content.strip():
            try:
                value = self._decode()
            except (ValueError, RecursionError):  # RecursionError: "[[[[…"
                value = None
        object.__setattr__(self, "_json", value)
        return value

    def json_error(self) -> ValueError | RecursionError | None:
        """Why the body is not valid JSON, or ``None`` when it is (or is empty).

        The error is a ``json.JSONDecodeError``, a ``UnicodeDecodeError`` (bytes that are no
        Unicode text) or a ``RecursionError`` (absurd nesting), for callers to chain as the
        ``__cause__`` of the error they raise. The body is decoded again only when
        :meth:`json` found it invalid.
        """
        if not self.content.strip() or self.json() is not None:
            return None
        try:
            self._decode()
        except (ValueError, RecursionError) as exc:
            return exc
        return None  # the body is the JSON literal ``null``

    def _decode(self) -> Any:
        text = self.content.decode(json.detect_encoding(self.content), "surrogatepass")
        return _DECODER.decode(text)
