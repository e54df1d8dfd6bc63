"""URL helpers of the pure core: resolving the URLs a server hands out, and origins.

Servers give status, result and events URLs relative to the request (RFC 3986 §5); the
credential rule compares origins (RFC 6454 §4: scheme, host and effective port). Every
function here is total: malformed input gives ``None``/``False``, never an exception.
"""

from __future__ import annotations

import contextlib
import functools
import re

import httpx

__all__ = [
    "Origin",
    "is_http_url",
    "is_plain_url",
    "origin_of",
    "resolve_url",
    "same_origin",
    "scheme_of",
]

Origin = tuple[str, str, int]
"""An origin: lower-cased scheme, lower-cased host, effective port."""

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HTTP_SCHEMES = frozenset({"http", "https"})
# Longer "URLs" are not URLs a status document could sensibly carry; refuse them early.
_MAX_URL_LENGTH = 8192


# Plain URLs, the shape servers hand out nearly always, resolve by string operations with
# the result httpx would give (a property test holds both ways equal): a lower-case http(s)
# origin that httpx leaves as it is, then a path and query of unreserved characters
# (RFC 3986 §2.3) with no dot segments, which httpx neither encodes nor normalises. Parsing
# was most of the client's own CPU per request, and caches miss on every new job URL.
_PLAIN_ORIGIN = re.compile(r"https?://(?:[a-z0-9._-]+|\[[0-9a-f:.]+\])(?::[0-9]+)?")
_PLAIN_REST = re.compile(r"(?:/[A-Za-z0-9._~-]*)+(?:\?[A-Za-z0-9._~=&-]+)?")


@functools.lru_cache(maxsize=256)
def _plain_origin(prefix: str) -> bool:
    """Whether httpx renders ``prefix + "/"`` unchanged as an http(s) URL with a host."""
    parsed = _parse(prefix + "/")
    return parsed is not None and str(parsed) == prefix + "/" and is_http_url(parsed)


def _plain_prefix(url: str) -> str | None:
    """The origin part of a plain absolute URL (see above), ``None`` for any other string
    (and for one longer than any URL is parsed here)."""
    return None if len(url) > _MAX_URL_LENGTH else _plain_prefix_of(url)


# A status check asks about the same two or three URLs several times (the request's, the
# status URL, the links of its answer): a small memo, so a fan-out's new URLs just pass through.
@functools.lru_cache(maxsize=64)
def _plain_prefix_of(url: str) -> str | None:
    match = _PLAIN_ORIGIN.match(url)
    if match is None:
        return None
    rest = url[match.end() :]
    if not rest or "/." in rest or _PLAIN_REST.fullmatch(rest) is None:
        return None
    prefix = match.group()
    return prefix if _plain_origin(prefix) else None


def is_plain_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL that httpx would render unchanged, of the
    plain shape servers hand out (``http://h:8080/jobs/abc?x=1``); decided without parsing.

    Example:
        >>> is_plain_url("http://127.0.0.1:8080/jobs/1")
        True
        >>> is_plain_url("HTTP://h/jobs") or is_plain_url("/jobs")
        False
    """
    return isinstance(url, str) and _plain_prefix(url) is not None


def _parse(url: str | httpx.URL) -> httpx.URL | None:
    if isinstance(url, httpx.URL):
        return url
    if not isinstance(url, str) or len(url) > _MAX_URL_LENGTH:
        return None
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        # ValueError covers UnicodeError from IDNA encoding of odd host names.
        return None


def _host(parsed: httpx.URL) -> str:
    """The host, ``""`` when it has none or it does not decode (a bad IDNA ``xn--`` label
    raises ``UnicodeError`` from ``httpx.URL.host``)."""
    try:
        return parsed.host
    except ValueError:
        return ""


def origin_of(url: str | httpx.URL) -> Origin | None:
    """Return the ``(scheme, host, port)`` origin of an absolute URL, ``None`` if it has none.

    The port is the effective one: the scheme's default when the URL gives none.

    Example:
        >>> origin_of("https://API.example.com/jobs")
        ('https', 'api.example.com', 443)
        >>> origin_of("/jobs/1") is None
        True
    """
    if isinstance(url, str):
        prefix = _plain_prefix(url)
        if prefix is not None:  # a plain URL: its origin is its prefix's (memoised)
            return _origin_of_prefix(prefix)
    parsed = _parse(url)
    if parsed is None:
        return None
    scheme = parsed.scheme.lower()
    host = _host(parsed).lower()
    if not scheme or not host:
        return None
    port = parsed.port or _DEFAULT_PORTS.get(scheme)
    if port is None:
        return None
    return (scheme, host, port)


@functools.lru_cache(maxsize=256)
def _origin_of_prefix(prefix: str) -> Origin | None:
    return origin_of(httpx.URL(prefix + "/"))


def same_origin(a: str | httpx.URL, b: str | httpx.URL) -> bool:
    """Whether two absolute URLs share an origin (``False`` when either has none).

    Example:
        >>> same_origin("http://h/jobs", "http://H:80/jobs/1/result")
        True
        >>> same_origin("http://h/jobs", "https://h/jobs")
        False
    """
    first = origin_of(a)
    return first is not None and first == origin_of(b)


def is_http_url(url: str | httpx.URL) -> bool:
    """Whether ``url`` is an absolute ``http``/``https`` URL with a host."""
    parsed = _parse(url)
    return parsed is not None and parsed.scheme.lower() in _HTTP_SCHEMES and bool(_host(parsed))


def scheme_of(url: str) -> str | None:
    """The scheme ``url`` names, in lower case (``None``: it names none, or does not parse).

    Example:
        >>> scheme_of("FTP://x/jobs"), scheme_of("jobs")
        ('ftp', None)
    """
    parsed = _parse(url)
    return parsed.scheme.lower() or None if parsed is not None else None


def resolve_url(base: str | httpx.URL, url: object) -> str | None:
    """Resolve a URL a server handed out against the URL of the request that returned it.

    Returns the absolute URL, or ``None`` when ``url`` is not a non-empty string, does not
    parse, or does not resolve to an ``http``/``https`` URL (a ``javascript:`` or ``file:``
    "status URL" is refused rather than followed).

    Example:
        >>> resolve_url("http://h:8080/jobs", "/jobs/1")
        'http://h:8080/jobs/1'
        >>> resolve_url("http://h/a/b", "c?x=1")
        'http://h/a/c?x=1'
        >>> resolve_url("http://h/jobs", "file:///etc/passwd") is None
        True
    """
    if type(url) is str and type(base) is str:
        # A job's documents name the same few URLs again and again (its status, events,
        # cancel and result URLs), each against the URL of the request that got it.
        key = (base, url)
        try:
            return _RESOLVED[key]
        except KeyError:
            pass
        found = _resolve_url(base, url)
        if len(url) <= _MAX_MEMO_LENGTH and len(base) <= _MAX_MEMO_LENGTH:
            if len(_RESOLVED) >= _MAX_RESOLVED:
                # The oldest goes (another thread may have taken it first).
                with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                    del _RESOLVED[next(iter(_RESOLVED))]
            _RESOLVED[key] = found
        return found
    return _resolve_url(base, url)


#: URLs resolved, by base and URL as handed out: a few per job a client follows; a fan-out's
#: new ones pass through (the oldest goes). Only URLs of a sensible length are kept.
_RESOLVED: dict[tuple[str, str], str | None] = {}
_MAX_RESOLVED = 256
_MAX_MEMO_LENGTH = 2048


def _resolve_url(base: str | httpx.URL, url: object) -> str | None:
    """:func:`resolve_url` without its memo."""
    if not isinstance(url, str):
        return None
    ref = url.strip()
    if not ref or len(ref) > _MAX_URL_LENGTH:
        return None
    if isinstance(base, str) and len(base) <= _MAX_URL_LENGTH:
        if ref[0] == "/":
            # An absolute path against a plain base: the base's origin, then the path.
            if ref[:2] != "//" and "/." not in ref and _PLAIN_REST.fullmatch(ref):
                prefix = _plain_prefix(base)
                if prefix is not None:
                    return prefix + ref
        elif _plain_prefix(ref) is not None and _plain_prefix(base) is not None:
            return ref  # already absolute and plain
        # Pollers resolve the same few URLs against the same base on every answer.
        return _resolve_cached(base, ref)
    return _resolve(base, ref)


@functools.lru_cache(maxsize=4096)
def _resolve_cached(base: str, ref: str) -> str | None:
    return _resolve(base, ref)


def _resolve(base: str | httpx.URL, ref: str) -> str | None:
    parsed_base = _parse(base)
    if parsed_base is None:
        return None
    try:
        joined = parsed_base.join(ref)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    if not is_http_url(joined):
        return None
    return str(joined)
