"""The SDK's own connection pool: every connection in a one-connection httpx transport.

httpcore 1.0's pool, each time a request enters or leaves it, checks every connection it
holds, probes each idle socket, and counts the idle connections once per idle connection.
With a connection for every admitted request (``max_in_flight + max_streams``, 150 by
default) kept alive, that pass is quadratic; with few kept alive (httpx's answer), the
connections beyond them are closed as their requests end and reopened by the next ones: at
N = 3,000 (``benchmarks/scaling``) three TCP connections per operation, and a third of the
client's CPU in the pool and in connecting.

So the SDK's own client gives each connection a pool of its own (an ``httpx.HTTPTransport``
limited to one connection, whose pass is over that one) and keeps the idle ones in a stack
per origin: a request takes the connection used last for its origin (warm, and the others
age), a new one while there are fewer than the bound, else the oldest idle connection of
another origin (replaced). Connections idle longer than the keep-alive expiry are closed.
Admission control (``_admission``) keeps the requests in flight within the bound, so a
request finds a free connection; one that does not (sent past the gates) goes through an
ordinary shared httpx transport, so there is no wait and no unbounded growth.

Everything else is httpx's: TLS, HTTP/1.1, timeouts, its exceptions. Users who bring their
own ``http_client`` keep their own pool; a client whose environment names a proxy uses
httpx's pool (``_admission.pool_limits``), as httpx reads proxies only without a transport.
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

import httpx

__all__ = [
    "KEEPALIVE_EXPIRY",
    "AsyncConnectionSlots",
    "ConnectionSlots",
    "Pools",
    "env_proxies",
]

#: Seconds an idle connection is kept (httpx's default ``keepalive_expiry``).
KEEPALIVE_EXPIRY = 5.0
#: The origin a connection is open to: scheme, host, port (``None``: the scheme's default).
Origin = tuple[bytes, bytes, "int | None"]

P = TypeVar("P")


def env_proxies() -> bool:
    """Whether the environment names a proxy (``HTTP_PROXY``…, as httpx reads them)."""
    return bool(urllib.request.getproxies())


def _origin(url: httpx.URL) -> Origin:
    return (url.raw_scheme, url.raw_host, url.port)


class Pools(Generic[P]):
    """The I/O-free bookkeeping of the one-connection pools: which are idle, for which origin,
    since when; both transports drive it (the sync one under a lock).

    Example:
        >>> pools = Pools(1, make=object, now=lambda: 0.0)
        >>> first, stale = pools.take((b"http", b"h", None))
        >>> pools.take((b"http", b"h", None))  # the bound is reached, none idle: overflow
        (None, [])
        >>> pools.give(first, (b"http", b"h", None))
        >>> pools.take((b"http", b"h", None))[0] is first
        True
    """

    __slots__ = ("_all", "_idle", "_make", "_now", "_swept", "capacity", "expiry")

    def __init__(
        self,
        capacity: int,
        make: Callable[[], P],
        *,
        expiry: float = KEEPALIVE_EXPIRY,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.expiry = expiry
        self._make = make
        self._now = now
        self._idle: dict[Origin, deque[tuple[float, P]]] = {}
        self._all: list[P] = []
        self._swept = now()

    @property
    def count(self) -> int:
        """Pools open (idle or in use)."""
        return len(self._all)

    def take(self, origin: Origin) -> tuple[P | None, list[P]]:
        """A pool for one request to ``origin`` (``None``: every pool is in use) and the
        pools idle too long, forgotten here, for the caller to close."""
        stale = self._expire()
        stack = self._idle.get(origin)
        pool: P | None
        if stack:
            pool = stack.pop()[1]
        elif len(self._all) < self.capacity:
            pool = self._make()
            self._all.append(pool)
        else:
            pool = self._oldest_idle()
        return pool, stale

    def give(self, pool: P, origin: Origin) -> None:
        """``pool``'s request to ``origin`` has ended: its connection is idle again."""
        stack = self._idle.get(origin)
        if stack is None:
            stack = self._idle[origin] = deque()
        stack.append((self._now(), pool))

    def drain(self) -> list[P]:
        """Every pool, idle or not, forgotten (the transport closes them)."""
        pools, self._all = self._all, []
        self._idle.clear()
        return pools

    def _oldest_idle(self) -> P | None:
        oldest: deque[tuple[float, P]] | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0][0] < oldest[0][0]):
                oldest = stack
        return None if oldest is None else oldest.popleft()[1]

    def _expire(self) -> list[P]:
        # At most a sweep per tenth of the expiry (the stacks are not walked per request):
        # a connection is closed between its expiry and 1.1 times it.
        now = self._now()
        if now - self._swept < self.expiry / 10:
            return []
        self._swept = now
        limit = now - self.expiry
        stale: list[P] = []
        for origin, stack in list(self._idle.items()):
            while stack and stack[0][0] < limit:
                stale.append(stack.popleft()[1])
            if not stack:
                del self._idle[origin]
        for pool in stale:
            self._all.remove(pool)
        return stale


class _Returned(httpx.SyncByteStream):
    """A response body that gives its pool back when it is closed."""

    __slots__ = ("_origin", "_owner", "_pool", "_stream")

    def __init__(
        self,
        stream: httpx.SyncByteStream,
        owner: ConnectionSlots,
        pool: httpx.HTTPTransport,
        origin: Origin,
    ) -> None:
        self._stream = stream
        self._owner: ConnectionSlots | None = owner
        self._pool = pool
        self._origin = origin

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            owner, self._owner = self._owner, None
            if owner is not None:
                owner._give(self._pool, self._origin)


class _AsyncReturned(httpx.AsyncByteStream):
    """:class:`_Returned` for the async transport."""

    __slots__ = ("_origin", "_owner", "_pool", "_stream")

    def __init__(
        self,
        stream: httpx.AsyncByteStream,
        owner: AsyncConnectionSlots,
        pool: httpx.AsyncHTTPTransport,
        origin: Origin,
    ) -> None:
        self._stream = stream
        self._owner: AsyncConnectionSlots | None = owner
        self._pool = pool
        self._origin = origin

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            owner, self._owner = self._owner, None
            if owner is not None:
                owner._pools.give(self._pool, self._origin)


class _SslContext:
    """The TLS context every pool shares, made once, on the first connection (httpx's
    default: certifi's roots, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured)."""

    __slots__ = ("_context",)

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None

    def get(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = httpx.create_ssl_context()
        return self._context


class ConnectionSlots(httpx.BaseTransport):
    """The sync client's transport: up to ``capacity`` connections, each in a pool of its own
    (see the module docstring); thread-safe.

    Example:
        >>> http = httpx.Client(transport=ConnectionSlots(8))  # doctest: +SKIP
    """

    def __init__(self, capacity: int, *, expiry: float = KEEPALIVE_EXPIRY) -> None:
        self._ssl = _SslContext()
        self._expiry = expiry
        self._pools: Pools[httpx.HTTPTransport] = Pools(capacity, self._new, expiry=expiry)
        self._lock = threading.Lock()
        self._overflow: httpx.HTTPTransport | None = None

    def _new(self) -> httpx.HTTPTransport:
        limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=self._expiry
        )
        return httpx.HTTPTransport(verify=self._ssl.get(), limits=limits)

    def _give(self, pool: httpx.HTTPTransport, origin: Origin) -> None:
        with self._lock:
            self._pools.give(pool, origin)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = _origin(request.url)
        with self._lock:
            pool, stale = self._pools.take(origin)
            if pool is None and self._overflow is None:
                self._overflow = httpx.HTTPTransport(verify=self._ssl.get())
        for old in stale:
            old.close()
        if pool is None:
            assert self._overflow is not None
            return self._overflow.handle_request(request)
        try:
            response = pool.handle_request(request)
        except BaseException:
            self._give(pool, origin)
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _Returned(response.stream, self, pool, origin)
        return response

    def close(self) -> None:
        with self._lock:
            pools = self._pools.drain()
            overflow, self._overflow = self._overflow, None
        for pool in pools:
            pool.close()
        if overflow is not None:
            overflow.close()


class AsyncConnectionSlots(httpx.AsyncBaseTransport):
    """:class:`ConnectionSlots` for the async client (the tasks of one event loop).

    Example:
        >>> http = httpx.AsyncClient(transport=AsyncConnectionSlots(8))  # doctest: +SKIP
    """

    def __init__(self, capacity: int, *, expiry: float = KEEPALIVE_EXPIRY) -> None:
        self._ssl = _SslContext()
        self._expiry = expiry
        self._pools: Pools[httpx.AsyncHTTPTransport] = Pools(capacity, self._new, expiry=expiry)
        self._overflow: httpx.AsyncHTTPTransport | None = None

    def _new(self) -> httpx.AsyncHTTPTransport:
        limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=self._expiry
        )
        return httpx.AsyncHTTPTransport(verify=self._ssl.get(), limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = _origin(request.url)
        pool, stale = self._pools.take(origin)
        for old in stale:
            await old.aclose()
        if pool is None:
            if self._overflow is None:
                self._overflow = httpx.AsyncHTTPTransport(verify=self._ssl.get())
            return await self._overflow.handle_async_request(request)
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            self._pools.give(pool, origin)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncReturned(response.stream, self, pool, origin)
        return response

    async def aclose(self) -> None:
        pools = self._pools.drain()
        overflow, self._overflow = self._overflow, None
        for pool in pools:
            await pool.aclose()
        if overflow is not None:
            await overflow.aclose()
