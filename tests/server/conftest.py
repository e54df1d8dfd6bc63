"""Fixtures for the reference server tests: a running server over loopback plus helpers.

Every test talks to a real server on 127.0.0.1 with plain httpx. The ``mode`` fixture picks
how it runs: ``"async"`` starts it with :func:`reference_server.serve` in the test's event
loop and drives an ``httpx.AsyncClient``; ``"thread"`` starts a
:class:`reference_server.ServerThread` and drives a synchronous ``httpx.Client`` (in a worker
thread, so the test body is the same coroutine in both modes). ``mode``, ``dialect`` and
``store`` are fixtures with defaults that a test overrides with ``pytest.mark.parametrize``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from aiohttp import web
from pydantic import BaseModel

from reference_server import JobContext, JobFailure, ServerConfig, ServerThread, serve

TERMINAL = frozenset({"completed", "failed", "cancelled"})
WEBHOOK_SECRET = "whsec_dGVzdC1zZWNyZXQta2V5LWZvci1hc3luY3JlcGx5LXRlc3Rz"

# One TLS context for every client: httpx builds (and loads CA certificates into) a new one
# per client otherwise, which costs tens of milliseconds each; the tests only speak HTTP.
SSL_CONTEXT = ssl.create_default_context()

# Settings that keep the suite fast: tiny backoffs, short SSE retry hints.
FAST_DEFAULTS: dict[str, Any] = {
    "workers": 4,
    "retry_backoff": 0.01,
    "webhook_backoff": 0.01,
    "webhook_timeout": 2.0,
    "sse_retry_ms": 20,
    "webhook_secret": WEBHOOK_SECRET,
    "webhook_allow_private": True,  # the test receivers listen on loopback
}


# --------------------------------------------------------------------------------------------
# A controllable job type: it waits for the test to open its gate.


class GateInput(BaseModel):
    """Input of the ``gate`` test job type."""

    key: str
    fail_code: str | None = None
    retryable: bool = False
    ignore_cancel: bool = False
    crash: bool = False


class StepsInput(BaseModel):
    """Input of the ``steps`` test job type: progress ``i/total`` waits on gate ``key-i``."""

    key: str
    total: int = 3
    first_delay: float = 0.0


class Gates:
    """Gates the ``gate`` job type waits on, and what the handler observed.

    Works across threads (the handler may run in a ``ServerThread``): gates are
    ``threading.Event`` objects and the handler polls them with short async sleeps.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self.started: dict[str, list[int]] = {}
        self.saw_cancel: dict[str, threading.Event] = {}

    def gate(self, key: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(key, threading.Event())

    def cancel_seen(self, key: str) -> threading.Event:
        with self._lock:
            return self.saw_cancel.setdefault(key, threading.Event())

    def open(self, key: str) -> None:
        self.gate(key).set()

    def open_all(self) -> None:
        with self._lock:
            gates = list(self._gates.values())
        for gate in gates:
            gate.set()

    async def wait_started(self, key: str, count: int = 1, within: float = 10.0) -> None:
        """Wait until the ``gate`` job ``key`` has started ``count`` attempts."""
        await poll_until(lambda: len(self.started.get(key, [])) >= count, within=within)

    async def steps(self, ctx: JobContext, input: StepsInput) -> dict[str, Any]:
        """Report progress ``i/total`` then wait for gate ``{key}-{i}``, for each step."""
        if input.first_delay:
            await ctx.sleep(input.first_delay)
        for step in range(1, input.total + 1):
            await ctx.progress(step, input.total, f"step {step}/{input.total}")
            gate = self.gate(f"{input.key}-{step}")
            while not gate.is_set():
                if _is_cancelled(ctx):
                    return {"key": input.key, "cancelled": True}
                await asyncio.sleep(0.005)
        return {"key": input.key, "steps": input.total}

    async def handler(self, ctx: JobContext, input: GateInput) -> dict[str, Any]:
        with self._lock:
            self.started.setdefault(input.key, []).append(ctx.attempt)
        gate = self.gate(input.key)
        try:
            while not gate.is_set():
                if not input.ignore_cancel and _is_cancelled(ctx):
                    self.cancel_seen(input.key).set()
                    return {"key": input.key, "cancelled": True}
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            self.cancel_seen(input.key).set()
            raise
        await ctx.progress(1, 1, "gate open")
        if input.crash:
            raise RuntimeError(f"secret internal detail of {input.key}")
        if input.fail_code is not None:
            raise JobFailure(input.fail_code, f"gate {input.key} failed", retryable=input.retryable)
        return {"key": input.key, "attempt": ctx.attempt}


async def poll_until(check: Callable[[], bool], *, within: float = 10.0) -> None:
    """Wait until ``check()`` is true, bounded by ``within`` seconds.

    For state changed by another thread (a ``ServerThread`` handler, the admin API) there is
    no event to await, so this polls with a short sleep; it never asserts timing.
    """
    with anyio.fail_after(within):
        while not check():  # noqa: ASYNC110 - cross-thread state, nothing to await
            await anyio.sleep(0.003)


async def poll_status(
    srv: Server, path: str, status: int, *, within: float = 10.0
) -> httpx.Response:
    """GET ``path`` until it answers ``status`` (TTL expiry has no event to wait for)."""
    with anyio.fail_after(within):
        while (response := await srv.get(path)).status_code != status:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    return response


def _is_cancelled(ctx: JobContext) -> bool:
    signal: Any = ctx.cancelled
    if isinstance(signal, bool):
        return signal
    if hasattr(signal, "is_set"):
        return bool(signal.is_set())
    return bool(signal)


# --------------------------------------------------------------------------------------------
# The harness: one running server plus a client.


@dataclass
class Server:
    """A running reference server and the plain httpx client the test drives it with."""

    base_url: str
    admin: Any
    mode: str
    config: ServerConfig
    gates: Gates
    sync_client: httpx.Client | None = None
    async_client: httpx.AsyncClient | None = None
    default_user: str | None = "alice"
    stop: Callable[[], Awaitable[None]] | None = None

    def headers(self, user: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {user}"
        if extra:
            headers.update(extra)
        return headers

    async def request(
        self,
        method: str,
        url: str,
        *,
        user: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request with the mode's client (sync client in a worker thread).

        ``user=None`` sends the default user's bearer token; ``user=""`` sends none.
        """
        who = self.default_user if user is None else (user or None)
        hdrs = self.headers(who, headers)
        if self.async_client is not None:
            return await self.async_client.request(method, url, headers=hdrs, **kwargs)
        assert self.sync_client is not None
        call = functools.partial(self.sync_client.request, method, url, headers=hdrs, **kwargs)
        return await anyio.to_thread.run_sync(call)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def submit(
        self,
        job_type: str,
        job_input: Any,
        *,
        extra: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {"type": job_type, "input": job_input}
        if extra:
            body.update(extra)
        return await self.post("/jobs", json=body, **kwargs)

    async def submit_ok(self, job_type: str, job_input: Any, **kwargs: Any) -> str:
        """Submit a job, assert 202, return its id."""
        response = await self.submit(job_type, job_input, **kwargs)
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        assert isinstance(job_id, str) and job_id
        return job_id

    async def wait_until(
        self,
        job_id: str,
        done: Callable[[httpx.Response], bool],
        *,
        within: float = 10.0,
        user: str | None = None,
    ) -> httpx.Response:
        """Long-poll the job until ``done(response)``; bounded by ``within`` seconds."""
        with anyio.fail_after(within):
            response = await self.get(f"/jobs/{job_id}", user=user)
            while not done(response):
                # Held until the job changes. The wait is short because a change that lands
                # between two requests is not seen by the next one, which then waits for
                # the change after it. The sleep keeps a server without long polling from
                # being hammered.
                await anyio.sleep(0.002)
                response = await self.get(f"/jobs/{job_id}", params={"wait": "0.3"}, user=user)
            return response

    async def wait_terminal(
        self, job_id: str, *, within: float = 10.0, user: str | None = None
    ) -> httpx.Response:
        """Long-poll until the job is terminal (or gone); return that answer."""
        return await self.wait_until(job_id, is_terminal_answer, within=within, user=user)

    async def wait_state(
        self, job_id: str, state: str, *, within: float = 10.0, user: str | None = None
    ) -> dict[str, Any]:
        """Long-poll until the (reference-dialect) status document has ``status == state``."""

        def done(response: httpx.Response) -> bool:
            return response.status_code in (200, 303) and response.json().get("status") == state

        return (await self.wait_until(job_id, done, within=within, user=user)).json()


def is_terminal_answer(response: httpx.Response) -> bool:
    """True when a status answer (either dialect) describes a terminal or expired job."""
    if response.status_code == 202:
        return False
    if response.status_code == 200:
        body = response.json()
        status = body.get("status")
        if status is None:  # status-code dialect: 200 carries the result itself
            return True
        return status in TERMINAL
    return True


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
def mode() -> str:
    """How the server runs: ``"async"`` (serve + AsyncClient) or ``"thread"``."""
    return "async"


@pytest.fixture
def dialect() -> str:
    return "reference"


@pytest.fixture
def store() -> str:
    return "memory"


@pytest.fixture
def gates() -> Iterator[Gates]:
    gates = Gates()
    yield gates
    gates.open_all()


@pytest.fixture
async def make_server(
    mode: str, dialect: str, store: str, tmp_path: Path, gates: Gates
) -> AsyncIterator[ServerFactory]:
    """Factory starting servers with ``FAST_DEFAULTS`` plus keyword overrides.

    Pass ``handlers={...}`` to add job types; ``mode=`` to override the fixture's mode.
    Everything started is stopped at teardown.
    """
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(gates.open_all)
        counter = 0

        async def factory(
            *, handlers: Mapping[str, Any] | None = None, mode_: str | None = None, **overrides: Any
        ) -> Server:
            nonlocal counter
            counter += 1
            options: dict[str, Any] = {**FAST_DEFAULTS, "dialect": dialect, "store": store}
            if options["store"] == "sqlite" or overrides.get("store") == "sqlite":
                options["sqlite_path"] = str(tmp_path / f"jobs-{counter}.sqlite3")
            options.update(overrides)
            config = ServerConfig(**options)
            all_handlers: dict[str, Any] = {
                "gate": gates.handler,
                "steps": gates.steps,
            }
            all_handlers.update(handlers or {})
            run_mode = mode_ or mode
            own = contextlib.AsyncExitStack()
            stack.push_async_callback(own.aclose)
            if run_mode == "async":
                running = await own.enter_async_context(serve(config, handlers=all_handlers))
                client = await own.enter_async_context(
                    httpx.AsyncClient(base_url=running.base_url, timeout=20.0, verify=SSL_CONTEXT)
                )
                return Server(
                    base_url=running.base_url,
                    admin=running.admin,
                    mode=run_mode,
                    config=config,
                    gates=gates,
                    async_client=client,
                    stop=own.aclose,
                )
            thread = ServerThread(config, handlers=all_handlers)
            running = await anyio.to_thread.run_sync(thread.__enter__)
            own.push_async_callback(anyio.to_thread.run_sync, _exit_thread(thread))
            sync_client = httpx.Client(base_url=running.base_url, timeout=20.0, verify=SSL_CONTEXT)
            own.callback(sync_client.close)
            return Server(
                base_url=running.base_url,
                admin=running.admin,
                mode=run_mode,
                config=config,
                gates=gates,
                sync_client=sync_client,
                stop=own.aclose,
            )

        yield factory


def _exit_thread(thread: ServerThread) -> Callable[[], None]:
    def close() -> None:
        thread.__exit__(None, None, None)

    return close


@pytest.fixture
async def srv(make_server: ServerFactory) -> Server:
    """A server with the fast defaults and the fixture-selected mode, dialect and store."""
    return await make_server()


# --------------------------------------------------------------------------------------------
# Server-Sent Events, read raw (to see ids, retry fields and comments).


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> dict[str, Any]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value


@dataclass
class SseCapture:
    status_code: int
    content_type: str
    events: list[SseEvent] = field(default_factory=list)
    retries: list[int] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]


class SseParser:
    """A minimal SSE parser (WHATWG HTML §9.2.6) that also keeps comments and retry fields."""

    def __init__(self, capture: SseCapture) -> None:
        self.capture = capture
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._id, self._event or "message", "\n".join(self._data))
            self.capture.events.append(event)
            self._id, self._event, self._data = None, "", []
            return event
        if line.startswith(":"):
            self.capture.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        elif name == "retry":
            self.capture.retries.append(int(value))
        return None


async def read_sse(
    srv: Server,
    job_id: str,
    *,
    user: str | None = None,
    last_event_id: str | None = None,
    on_event: Callable[[SseEvent], Awaitable[None]] | None = None,
    on_comment: Callable[[str], Awaitable[bool]] | None = None,
    within: float = 10.0,
) -> SseCapture:
    """Read ``/jobs/{id}/events`` until the server ends the stream.

    ``on_event`` runs after each event; ``on_comment`` after each comment and may return
    True to stop reading. Uses an ``httpx.AsyncClient`` whatever the mode.
    """
    headers = srv.headers(user or srv.default_user, {"Accept": "text/event-stream"})
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with httpx.AsyncClient(
        base_url=srv.base_url, timeout=within, verify=SSL_CONTEXT
    ) as client:
        with anyio.fail_after(within):
            async with client.stream("GET", f"/jobs/{job_id}/events", headers=headers) as resp:
                capture = SseCapture(resp.status_code, resp.headers.get("content-type", ""))
                if resp.status_code != 200:
                    await resp.aread()
                    return capture
                parser = SseParser(capture)
                async for line in resp.aiter_lines():
                    n_comments = len(capture.comments)
                    event = parser.feed(line)
                    if event is not None and on_event is not None:
                        await on_event(event)
                    new_comment = len(capture.comments) > n_comments
                    if new_comment and on_comment and await on_comment(capture.comments[-1]):
                        return capture
                capture.ended = True
                return capture


# --------------------------------------------------------------------------------------------
# Webhook receiver on loopback.


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    status: int
    at: float = 0.0  # time.monotonic() on arrival

    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


class Receiver:
    """An aiohttp app recording webhook POSTs; answers from ``plan`` then ``default``."""

    def __init__(self) -> None:
        self.received: list[Delivery] = []
        self.plan: list[int] = []
        self.default = 200
        self.url = ""
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.plan.pop(0) if self.plan else self.default
        self.received.append(Delivery(body, dict(request.headers), status, time.monotonic()))
        self._changed.set()
        return web.Response(status=status, text="ok" if status < 400 else "nope")

    async def wait_for(
        self, predicate: Callable[[list[Delivery]], bool], within: float = 10.0
    ) -> list[Delivery]:
        with anyio.fail_after(within):
            while not predicate(self.received):
                self._changed.clear()
                await self._changed.wait()
        return self.received

    def of_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.received if d.json().get("type") == event_type]


@contextlib.asynccontextmanager
async def served_receiver() -> AsyncIterator[Receiver]:
    """A :class:`Receiver` listening on a free loopback port while the block runs."""
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}/hook"
    try:
        yield recv
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with served_receiver() as recv:
        yield recv


def error_code(response: httpx.Response) -> str:
    """The ``error.code`` of a protocol error body (asserting its shape)."""
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("message", ""), str)
    code = body["error"]["code"]
    assert isinstance(code, str)
    return code


async def assert_healthy(srv: Server) -> None:
    """A normal request still works after bad input: submit an echo and read it back."""
    job_id = await srv.submit_ok("echo", {"ok": True})
    answer = await srv.wait_terminal(job_id)
    assert answer.status_code in (200, 303)
