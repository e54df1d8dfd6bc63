"""Building requests so that credentials only reach the origins they were given for.

The client's credentials (``auth``, ``Authorization`` and every configured header) belong to
the base URL's origin (RFC 6454) and to the origins the user lists in ``trusted_origins``. A
status, result or events URL on any other origin is requested without them. Requests are
built here, never with ``httpx.Client.build_request``, so that a client's default headers are
not merged in behind our back; the drivers pass ``auth=None`` for untrusted origins, which
disables the httpx client's own auth.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._admission import HELD_EXTENSION
from ._urls import Origin, origin_of, resolve_url

__all__ = ["RequestFactory"]

_USER_AGENT = "asyncreply-client/0.1"


# A wait requests the same few URLs over and over; parsing a URL is most of the client's
# own CPU per poll, so resolutions and origins are memoised (strings in, immutable out).
@functools.lru_cache(maxsize=4096)
def _resolved(base: str, url: str) -> tuple[str, httpx.URL, Origin | None] | None:
    resolved = resolve_url(base, url)
    if resolved is None:
        return None
    parsed = httpx.URL(resolved)
    return resolved, parsed, origin_of(parsed)


@functools.lru_cache(maxsize=4096)
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
    """

    base_url: str
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    auth: Any = None
    trusted_origins: frozenset[Origin] = frozenset()
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0))

    @classmethod
    def create(
        cls,
        base_url: str,
        *,
        headers: Mapping[str, str] | httpx.Headers | None = None,
        auth: Any = None,
        trusted_origins: Iterable[str] = (),
        timeout: httpx.Timeout,
    ) -> RequestFactory:
        """Validate the inputs and build a factory.

        Raises:
            ValueError: ``base_url`` or a trusted origin is not an absolute http(s) URL.
        """
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
        )

    def resolve(self, url: str) -> str:
        """Resolve ``url`` against the base URL (RFC 3986 §5).

        Raises:
            ValueError: the result is not an absolute http(s) URL.
        """
        return self._parse(url)[0]

    def _parse(self, url: str) -> tuple[str, httpx.URL, Origin | None]:
        parsed = _resolved(self.base_url, url) if isinstance(url, str) else None
        if parsed is None:
            raise ValueError(f"not a usable http(s) URL: {url!r}")
        return parsed

    def is_trusted(self, url: str | httpx.URL) -> bool:
        """Whether the client's credentials may be sent to ``url``."""
        origin = _origin(url) if isinstance(url, str) else origin_of(url)
        return origin in self.trusted_origins

    def auth_for(self, url: str | httpx.URL) -> Any:
        """The ``auth`` argument for ``httpx.Client.send``: ``None`` (no auth at all) for an
        untrusted origin, else the client's auth or the httpx client's default."""
        if not self.is_trusted(url):
            return None
        return self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT

    def build(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        read_timeout: float | None = None,
        accept: str = "application/json",
    ) -> httpx.Request:
        """Build a request for ``url`` (resolved against the base URL).

        ``headers`` are protocol headers of this request and are always sent; the configured
        headers are added first only when the origin is trusted.
        """
        _, target, origin = self._parse(url)
        merged = httpx.Headers({"Accept": accept, "User-Agent": _USER_AGENT})
        if origin in self.trusted_origins:
            merged.update(self.headers)
        if headers:
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
        return httpx.Request(
            method,
            target,
            headers=merged,
            json=json,
            content=content,
            extensions=extensions,
        )
