"""Run the reference server for tests: ``serve()`` (async) and ``ServerThread`` (sync).

Both bind 127.0.0.1 on a free port (unless the config sets ``host``/``port`` explicitly)
and shut down cleanly: workers stopped, SSE streams and long polls ended, sessions closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from .admin import Admin
from .app import STATE_KEY, create_app
from .config import ServerConfig
from .connections import GuardedSite, default_max_connections
from .jobs import Handler, JobType
from .stream_tokens import RedactingAccessLogger

__all__ = ["RunningServer", "ServerThread", "serve"]

#: Seconds a shutdown waits for in-flight requests before cancelling them.
SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True)
class RunningServer:
    """A running server: where it listens and its admin handle."""

    base_url: str
    admin: Admin
    app: web.Application
    config: ServerConfig

    @property
    def port(self) -> int:
        """The TCP port."""
        return int(self.base_url.rsplit(":", 1)[1])


def _bind(config: ServerConfig) -> tuple[str, int]:
    host = config.host if "host" in config.model_fields_set else "127.0.0.1"
    port = config.port if "port" in config.model_fields_set else 0
    return host, port


@contextlib.asynccontextmanager
async def serve(
    config: ServerConfig | None = None,
    *,
    handlers: Mapping[str, Handler | JobType] | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[RunningServer]:
    """Run the server in the current event loop for the duration of the block.

    Example:
        >>> async def main() -> None:
        ...     async with serve(ServerConfig(workers=2)) as server:
        ...         print(server.base_url)  # http://127.0.0.1:<port>
    """
    config = config if config is not None else ServerConfig()
    app = create_app(config, handlers=handlers, clock=clock)
    runner = web.AppRunner(
        app,
        access_log=None,
        access_log_class=RedactingAccessLogger,  # if one is enabled: no event-stream tokens
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=config.keepalive_timeout,
    )
    await runner.setup()
    try:
        host, port = _bind(config)
        site = GuardedSite(
            runner,
            host,
            port,
            max_connections=config.max_connections or default_max_connections(),
            header_timeout=config.header_timeout,
            backlog=1024,
            reuse_port=config.reuse_port,
        )
        await site.start()
        bound = runner.addresses[0]
        url_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        yield RunningServer(
            base_url=f"http://{url_host}:{bound[1]}",
            admin=Admin(app[STATE_KEY]),
            app=app,
            config=config,
        )
    finally:
        await runner.cleanup()


class ServerThread:
    """Run the server in a background thread with its own event loop (for sync tests).

    Example:
        >>> with ServerThread(ServerConfig(workers=2)) as server:  # doctest: +SKIP
        ...     httpx.post(server.base_url + "/jobs", json={"type": "echo", "input": {}})
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        handlers: Mapping[str, Handler | JobType] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else ServerConfig()
        self._handlers = handlers
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: RunningServer | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def server(self) -> RunningServer:
        """The running server (after ``start()``)."""
        if self._server is None:
            raise RuntimeError("the server thread is not running")
        return self._server

    @property
    def base_url(self) -> str:
        """The server's base URL, e.g. ``http://127.0.0.1:54321``."""
        return self.server.base_url

    @property
    def admin(self) -> Admin:
        """The admin handle."""
        return self.server.admin

    def start(self) -> RunningServer:
        """Start the thread and wait until the server listens."""
        if self._thread is not None:
            raise RuntimeError("the server thread was already started")
        self._thread = threading.Thread(target=self._main, name="asyncreply-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.server

    def stop(self) -> None:
        """Shut the server down and join the thread."""
        if self._thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self.config, handlers=self._handlers, clock=self._clock) as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        url = self._server.base_url if self._server is not None else None
        return f"ServerThread(base_url={url!r})"
