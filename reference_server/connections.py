"""Slow and idle clients: a header read timeout and a connection cap in front of aiohttp.

aiohttp serves every accepted connection until it sends a request; a crowd of half-open
connections (a slowloris, or 1,100 idle sockets against a 1024 open-file limit) would use
up the file descriptors and keep ``/health`` from ever being accepted. :class:`GuardedSite`
listens like ``aiohttp.web.TCPSite`` but puts a :class:`ConnectionGuard` in front. A
connection is *busy* only while a request is in flight (its handler runs, or its answer waits
for the peer to read); otherwise it is *idle* (new, kept alive between requests, or sending
bytes that are no request, such as bare ``\r\n``, which the HTTP parser skips):

- an idle connection must start its next request within ``header_timeout`` seconds, or it
  is closed: the timer starts when the connection opens and again whenever a request ends
  (request bodies fall under ``body_timeout``);
- at most ``max_connections`` are open; at the cap, the connection idle for longest is closed
  to make room, and if every open connection is busy the new one is answered ``503`` and
  closed. Both are logged (at most once per second, with counts).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["ConnectionGuard", "GuardedSite", "default_max_connections"]

log = logging.getLogger("reference_server.connections")

#: File descriptors left for everything that is not a client connection.
FD_RESERVE = 128
_HEAD_END = b"\r\n\r\n"
_REFUSAL_BODY = json.dumps(
    {"error": {"code": "unavailable", "message": "too many open connections"}}
).encode()
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
    + str(len(_REFUSAL_BODY)).encode()
    + b"\r\n\r\n"
    + _REFUSAL_BODY
)


def default_max_connections() -> int:
    """The open-file soft limit minus :data:`FD_RESERVE` (at least 64; 1000 if unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 1000
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 10_000
    return max(soft - FD_RESERVE, 64)


class _Guarded(asyncio.Protocol):
    """One connection: forwards to aiohttp's protocol; knows whether a request is in flight.

    A connection is *busy* from the moment aiohttp starts handling a request on it until its
    answer is written, and while the transport paused writing (the peer reads slowly).
    Otherwise it is *idle*: new, between two kept-alive requests, or sending bytes that are no
    request (``\r\n`` only, which the HTTP parser skips). An idle connection has
    ``header_timeout`` seconds to start its next request, and is what the guard evicts at the
    cap.
    """

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.admitted = False
        #: Request handlers running on this connection (pipelining runs them one by one).
        self.in_flight = 0
        #: Whether the transport paused writing (the peer is not reading fast enough).
        self.writing_paused = False
        #: Requests that have started on this connection.
        self.requests = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """Whether a request is in flight (handled, or its answer still being written)."""
        return self.in_flight > 0 or self.writing_paused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        if not self.guard.admit(self):
            transport.write(_REFUSAL)
            transport.close()
            return
        self.admitted = True
        self.inner.connection_made(transport)
        self._became_idle()

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.writing_paused = True
            self._became_busy()
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.writing_paused = False
            self.inner.resume_writing()
            if not self.busy:
                self._became_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.admitted:
            self.guard.release(self)
            self.inner.connection_lost(exc)

    def request_started(self) -> None:
        """aiohttp starts handling a request on this connection."""
        self.requests += 1
        self.in_flight += 1
        self._became_busy()

    def request_finished(self) -> None:
        """A request on this connection is over: its answer is written (or it failed)."""
        self.in_flight -= 1
        if not self.busy:
            self._became_idle()

    def close(self, reason: str) -> None:
        """Abort the connection at once (frees its file descriptor)."""
        self._cancel_timer()
        self.guard.note(reason, self.peer)
        if self.transport is not None:
            self.transport.abort()

    def _became_busy(self) -> None:
        self._cancel_timer()
        self.guard.mark_busy(self)

    def _became_idle(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.guard.mark_idle(self)
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.guard.header_timeout, self._head_timeout)

    def _head_timeout(self) -> None:
        self._timer = None
        if not self.busy:
            self.close("header_timeout")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ConnectionGuard:
    """Protocol factory: aiohttp's low-level server behind a cap and a header timeout.

    It wraps the server's request handler (``web.Server.request_handler``, which aiohttp
    copies into every new connection) to learn when a request starts and ends on which
    connection.
    """

    def __init__(self, server: web.Server, *, max_connections: int, header_timeout: float) -> None:
        self.server = server
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        #: Open connections, oldest first (dicts keep insertion order).
        self.open: dict[_Guarded, None] = {}
        #: Idle open connections, longest idle first.
        self.idle: dict[_Guarded, None] = {}
        #: How many connections were closed, by reason.
        self.counts: dict[str, int] = {"header_timeout": 0, "evicted": 0, "refused": 0}
        self._by_protocol: dict[asyncio.Protocol, _Guarded] = {}
        self._pending_log: dict[str, int] = {}
        self._last_log = -1.0e9
        self._last_peer: Any = None
        self._flush_handle: asyncio.TimerHandle | None = None
        handler = server.request_handler
        server.request_handler = functools.partial(self._handle, handler)

    def __call__(self) -> asyncio.Protocol:
        inner: asyncio.Protocol = self.server()
        guarded = _Guarded(self, inner)
        self._by_protocol[inner] = guarded
        return guarded

    async def _handle(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        request: web.BaseRequest,
    ) -> web.StreamResponse:
        conn = self._by_protocol.get(request.protocol)
        if conn is None:  # a connection this guard did not accept (another site)
            return await handler(request)
        conn.request_started()
        # aiohttp runs each request in a task of its own that returns once the answer has
        # been written (a streamed result, or a body that waits for a slow reader, is written
        # after the handler returns): the request is in flight until that task is done.
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - aiohttp always runs handlers in a task
            try:
                return await handler(request)
            finally:
                conn.request_finished()
        task.add_done_callback(lambda _task: conn.request_finished())
        return await handler(request)

    def admit(self, conn: _Guarded) -> bool:
        """Make room for ``conn`` (evicting the longest idle one); ``False``: refuse it."""
        if len(self.open) >= self.max_connections:
            victim = next(iter(self.idle), None)
            if victim is None:
                self._by_protocol.pop(conn.inner, None)
                self.note("refused", conn.peer)
                return False
            self.release(victim)
            victim.close("evicted")
        self.open[conn] = None
        return True

    def mark_idle(self, conn: _Guarded) -> None:
        """``conn`` has no request in flight (it moves to the end of the idle order)."""
        if conn in self.open:
            self.idle.pop(conn, None)
            self.idle[conn] = None

    def mark_busy(self, conn: _Guarded) -> None:
        """``conn`` has a request in flight: not evictable."""
        self.idle.pop(conn, None)

    def release(self, conn: _Guarded) -> None:
        """Forget a closed connection."""
        self.open.pop(conn, None)
        self.idle.pop(conn, None)
        self._by_protocol.pop(conn.inner, None)

    def note(self, reason: str, peer: Any) -> None:
        """Count a closed connection; log the counts at once, then at most once a second."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self._pending_log[reason] = self._pending_log.get(reason, 0) + 1
        self._last_peer = peer
        if self._flush_handle is not None:
            return
        delay = self._last_log + 1.0 - time.monotonic()
        if delay <= 0:
            self._flush()
        else:
            self._flush_handle = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._pending_log:
            return
        self._last_log = time.monotonic()
        summary = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in self._pending_log.items())
        self._pending_log.clear()
        log.warning(
            "connection guard: closed connections (%s; last from %s); cap %d, %d open, "
            "header timeout %gs",
            summary,
            self._last_peer,
            self.max_connections,
            len(self.open),
            self.header_timeout,
        )


class GuardedSite(web.BaseSite):
    """A TCP site like ``aiohttp.web.TCPSite`` whose connections pass a guard."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        header_timeout: float,
        backlog: int = 128,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._reuse_port = reuse_port
        self._host = host
        self._port = port
        self._max_connections = max_connections
        self._header_timeout = header_timeout
        self.guard: ConnectionGuard | None = None

    @property
    def name(self) -> str:
        """The site's URL."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        """Start listening."""
        await super().start()
        server = self._runner.server
        assert server is not None
        self.guard = ConnectionGuard(
            server, max_connections=self._max_connections, header_timeout=self._header_timeout
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
