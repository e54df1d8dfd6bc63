"""Building requests so that credentials only reach the origins they were given for.

The client's credentials (``auth``, ``Authorization``, every configured header and the
httpx client's cookies) belong to the base URL's origin (RFC 6454) and to the origins the
user lists in ``trusted_origins``. A status, result or events URL on any other origin is
requested without them. Requests are built here, never with ``httpx.Client.build_request``,
so that a client's default headers are not merged in behind our back; the drivers pass
``auth=None`` for untrusted origins, which disables the httpx client's own auth.

Relative URLs given by the user join the base URL as httpx joins its ``base_url``: the
base's path is a prefix (``/api/v1`` + ``/jobs`` is ``/api/v1/jobs``), with or without a
trailing slash. (URLs a server hands out resolve against the request instead, RFC 3986 §5:
see ``_urls.resolve_url``.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ._admission import HELD_EXTENSION
from ._decoding import ACCEPT_ENCODING, check_accept_encoding
from ._log import is_secret_name
from ._uploads import Body
from ._urls import Origin, is_http_url, is_plain_url, origin_of

__all__ = ["CookieSource", "RequestFactory", "check_headers"]

_USER_AGENT = "asyncreply-client/0.1"
_MAX_URL_LENGTH = 8192
#: Header templates kept per factory (one per ``Accept`` value and trust: a handful).
_MAX_PREPARED = 16
Resolved = tuple[str, httpx.URL, Origin | None]

# RFC 9110 §5.1 (a field name is a token) and §5.5 (a value is visible ASCII, space and tab;
# obs-text is obsolete): what httpx can encode, and what cannot split a request (no CR/LF).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
#: The argument a protocol header comes from, named when its value is refused.
_ARGUMENTS = {"idempotency-key": "idempotency_key"}


def check_headers(headers: Mapping[str, str] | None, argument: str = "headers") -> None:
    """Check that ``headers`` can be sent: names are tokens, values ASCII text without control
    characters (RFC 9110 §5), so a bad one is refused at the call that passed it, named,
    rather than as a ``UnicodeEncodeError`` from deep inside httpx.

    Raises:
        TypeError: a name or value is neither a string nor bytes.
        ValueError: a name is not a token, or a value holds non-ASCII or control characters,
            or ``Accept-Encoding`` asks for a coding the client cannot decode
            (``_decoding.check_accept_encoding``).

    Example:
        >>> check_headers({"X-Trace": "abc"})
        >>> check_headers({"X-Trace": "caf\u00e9"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: headers: the value of header 'X-Trace' must be ASCII text without ...
    """
    if not headers:
        return
    for raw_name, raw_value in headers.items():
        # httpx takes bytes too: checked as the Latin-1 text they are on the wire.
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"{argument}: header names and values must be strings, got {name!r}: {value!r}"
            )
        if _TOKEN.fullmatch(name) is None:
            raise ValueError(f"{argument}: {name!r} is not a valid header name (RFC 9110 §5.1)")
        if _VALUE.fullmatch(value) is None:
            source = _ARGUMENTS.get(name.lower())
            what = source if source is not None else f"{argument}: the value of header {name!r}"
            # A credential's value is not quoted (messages end up in logs, see ``_log``).
            secret = source is None and is_secret_name(name)
            raise ValueError(
                f"{what} must be ASCII text without control characters (RFC 9110 §5.5), "
                + ("its value is not shown" if secret else f"got {value!r}")
            )
        if name.lower() == "accept-encoding":
            check_accept_encoding(value, argument)


class CookieSource(Protocol):
    """What holds the cookie jar: an ``httpx.Client`` or ``httpx.AsyncClient``."""

    @property
    def cookies(self) -> httpx.Cookies:
        """The jar httpx fills from every response it receives."""
        ...


@functools.lru_cache(maxsize=64)
def _base_with_slash(base: str) -> httpx.URL | None:
    """The base URL as httpx keeps its ``base_url``: a path ending with ``/``."""
    try:
        url = httpx.URL(base)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    if url.raw_path.endswith(b"/"):
        return url
    return url.copy_with(raw_path=url.raw_path + b"/")


def _resolve(base: str, url: str) -> Resolved | None:
    """``url`` joined to ``base`` as httpx's ``Client(base_url=base)`` joins it, parsed."""
    if not isinstance(url, str) or len(url) > _MAX_URL_LENGTH:
        return None
    if is_plain_url(url):  # nearly every request: an absolute URL handed out earlier
        return _resolve_plain(url)
    return _resolve_slow(base, url)


# A poller asks for the same status URL again and again: its parse is memoised. A new job's
# URL misses once (a miss costs the parse it replaces); the cache is small, so that a
# fan-out over thousands of jobs does not keep a parsed URL per job alive in it.
@functools.lru_cache(maxsize=64)
def _resolve_plain(url: str) -> Resolved:
    parsed = httpx.URL(url)
    return url, parsed, origin_of(parsed)


# User-given URLs ("/jobs", a template's expansion) come back again and again: memoised.
@functools.lru_cache(maxsize=1024)
def _resolve_slow(base: str, url: str) -> Resolved | None:
    try:
        parsed = httpx.URL(url)
        # A URL with a scheme is never relative (RFC 3986 §4.2), even without a host
        # (``file:///etc/passwd``, ``mailto:…``), which httpx would join to the base.
        if parsed.is_relative_url and not parsed.scheme:
            # httpx's Client._merge_url: append to the base's path (RFC 3986 would
            # replace its last segment, which loses a "/api/v1" prefix).
            prefix = _base_with_slash(base)
            if prefix is None:
                return None
            parsed = prefix.copy_with(raw_path=prefix.raw_path + parsed.raw_path.lstrip(b"/"))
    except (httpx.InvalidURL, ValueError, TypeError):
        # ValueError covers UnicodeError from IDNA encoding of odd host names.
        return None
    if not is_http_url(parsed):
        return None
    return str(parsed), parsed, origin_of(parsed)


# Status URLs are new with every job, so a cache keyed by URL misses: origin_of finds a
# plain URL's origin from its prefix instead; only other shapes are parsed (and memoised).
@functools.lru_cache(maxsize=1024)
def _origin(url: str) -> Origin | None:
    return origin_of(url)


@dataclass(frozen=True, slots=True)
class RequestFactory:
    """Builds every request of a client, applying credentials by origin.

    Attributes:
        base_url: the client's base URL (relative URLs resolve against it).
        headers: the configured headers; sent only to trusted origins.
        auth: the client's auth (``None``: the httpx client's own, if any), trusted only.
        trusted_origins: origins besides the base URL's that may receive credentials.
        timeout: the default timeout of each request.
        cookies: the httpx client whose cookie jar is sent to trusted origins (``None``:
            no cookies). httpx fills that jar from every response, so a cookie a server
            sets during an operation (load-balancer affinity) goes with its next request.
    """

    base_url: str
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    auth: Any = None
    trusted_origins: frozenset[Origin] = frozenset()
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0))
    cookies: CookieSource | None = None
    # Not an argument: a factory made by ``dataclasses.replace`` starts its own templates.
    _prepared: dict[tuple[str, bool], httpx.Headers] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def create(
        cls,
        base_url: str,
        *,
        headers: Mapping[str, str] | httpx.Headers | None = None,
        auth: Any = None,
        trusted_origins: Iterable[str] = (),
        timeout: httpx.Timeout,
        cookies: CookieSource | None = None,
    ) -> RequestFactory:
        """Validate the inputs and build a factory.

        Raises:
            ValueError: ``base_url`` or a trusted origin is not an absolute http(s) URL, or a
                header cannot be sent (:func:`check_headers`).
            TypeError: a header name or value is not a string.
        """
        check_headers(headers)
        base = origin_of(base_url)
        if base is None:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        origins: set[Origin] = {base}
        for item in trusted_origins:
            parsed = origin_of(item)
            if parsed is None:
                raise ValueError(f"trusted origin must be an absolute URL, got {item!r}")
            origins.add(parsed)
        return cls(
            base_url=str(base_url),
            headers=httpx.Headers(headers or {}),
            auth=auth,
            trusted_origins=frozenset(origins),
            timeout=timeout,
            cookies=cookies,
        )

    def resolve(self, url: str) -> str:
        """Join ``url`` to the base URL as httpx joins a ``base_url`` (its path is kept as a
        prefix); an absolute URL stays as it is.

        Raises:
            ValueError: the result is not an absolute http(s) URL.
        """
        if isinstance(url, str) and is_plain_url(url):
            return url  # no need to parse it twice: build() will
        return self._parse(url)[0]

    def _parse(self, url: str) -> Resolved:
        parsed = _resolve(self.base_url, url)
        if parsed is None:
            raise ValueError(f"not a usable http(s) URL: {url!r}")
        return parsed

    def is_trusted(self, url: str | httpx.URL) -> bool:
        """Whether the client's credentials may be sent to ``url``."""
        if isinstance(url, str) and is_plain_url(url):
            origin = origin_of(url)
        else:
            origin = _origin(url) if isinstance(url, str) else origin_of(url)
        return origin in self.trusted_origins

    def withheld_note(self, url: str | httpx.URL) -> str | None:
        """What an error about ``url`` should add when the client has credentials and
        withholds them from its origin (``None`` otherwise): a server that no longer knows
        whose request it is answers 404 or 401, which reads as "no such job" without it
        (a resume token made with ``http://127.0.0.1:8080`` and resumed by
        ``Client("http://localhost:8080")``)."""
        if self.is_trusted(url):
            return None
        has_cookies = self.cookies is not None and bool(self.cookies.cookies.jar)
        client_auth = getattr(self.cookies, "auth", None)
        if not (self.headers or self.auth is not None or client_auth is not None or has_cookies):
            return None
        origin = origin_of(url)
        if origin is None:
            return None
        scheme, host, port = origin
        shown = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
        return (
            f"note: the URL's origin {shown} differs from the client's base URL "
            f"{self.base_url}, so the client's credentials were withheld from it: if that "
            f"origin is yours, pass trusted_origins=[{shown!r}] to the client (or make it "
            "with the base URL the operation was made with)"
        )

    def auth_for(self, url: str | httpx.URL) -> Any:
        """The ``auth`` argument for ``httpx.Client.send``: ``None`` (no auth at all) for an
        untrusted origin, else the client's auth or the httpx client's default."""
        if not self.is_trusted(url):
            return None
        return self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT

    def _base_headers(self, accept: str, trusted: bool) -> httpx.Headers:
        """The headers every request for ``accept`` starts from, made once per factory (its
        configured headers never change): copied, not merged again, per request."""
        key = (accept, trusted)
        found = self._prepared.get(key)
        if found is None:
            found = httpx.Headers({"Accept": accept, "User-Agent": _USER_AGENT})
            # Only the codings the drivers decode in bounded steps (an httpx client's default
            # asks for br and zstd too when their modules are installed); a configured value
            # wins, checked by ``check_headers`` to name only such codings.
            found["Accept-Encoding"] = ACCEPT_ENCODING
            if trusted:
                found.update(self.headers)
            if len(self._prepared) < _MAX_PREPARED:
                self._prepared[key] = found
        return found

    def build(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | Body | None = None,
        read_timeout: float | None = None,
        accept: str = "application/json",
    ) -> httpx.Request:
        """Build a request for ``url`` (resolved against the base URL). A :class:`Body`
        (a submission's) is encoded afresh by httpx for each request built.

        ``headers`` are protocol headers of this request and are always sent; the configured
        headers are added first only when the origin is trusted. ``Accept-Encoding`` names
        the codings the client decodes (``_decoding``), unless the configured headers (trusted
        origins only) or ``headers`` name some of them.
        """
        _, target, origin = self._parse(url)
        trusted = origin in self.trusted_origins
        merged = self._base_headers(accept, trusted)  # httpx.Request copies it
        if headers:
            merged = httpx.Headers(merged)
            merged.update(headers)
        timeout = self.timeout
        extensions: dict[str, Any] = {}
        if read_timeout is not None:
            # A request the server may hold (a long poll): its own admission lane.
            extensions[HELD_EXTENSION] = True
            timeout = httpx.Timeout(
                connect=timeout.connect,
                read=None if timeout.read is None else max(timeout.read, read_timeout),
                write=timeout.write,
                pool=timeout.pool,
            )
        extensions["timeout"] = timeout.as_dict()
        if params:
            target = target.copy_merge_params(params)
        body = content.request_args() if isinstance(content, Body) else {"content": content}
        request = httpx.Request(
            method,
            target,
            headers=merged,
            json=json,
            extensions=extensions,
            **body,
        )
        if trusted and self.cookies is not None:
            jar = self.cookies.cookies
            if jar.jar:  # the jar's own rules (domain, path, Secure, expiry) apply too
                jar.set_cookie_header(request)
        return request
