"""SSE end to end: both clients against the reference server over loopback.

Progress arrives in order over one stream; a stream cut by fault injection resumes with
``Last-Event-ID`` and loses nothing; an events endpoint that 404s, answers JSON or 204, or
hangs silent falls back to polling and still returns the result; the deadline (and, async,
cancellation) interrupts a silent stream and closes it. Each test body runs with the sync
client (in a worker thread) and the async client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from aiohttp import web

from asyncreply_client import (
    AsyncClient,
    Client,
    JobState,
    JobStatus,
    SSEOptions,
    WaitTimeoutError,
)
from reference_server import FaultConfig, JobContext, ServerConfig, serve

pytestmark = pytest.mark.anyio

FAST = {"workers": 2, "sse_retry_ms": 5, "retry_after_min": 0.01, "retry_after_max": 0.05}


# --------------------------------------------------------------------------------------------
# A job the test steps through: progress 0, then it waits for the gate, then 1..total.


class Ticks:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.gate = asyncio.Event()
        self.ready = asyncio.Event()  # progress 0 reported

    def open(self) -> None:
        """Open the gate (from any thread)."""
        self.loop.call_soon_threadsafe(self.gate.set)

    async def handler(self, ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
        total = int(input["total"])
        await ctx.progress(0, total, "ready")
        self.ready.set()
        await self.gate.wait()
        for step in range(1, total + 1):
            await ctx.progress(step, total, f"step {step}/{total}")
        return {"ticks": total}


# --------------------------------------------------------------------------------------------
# One test body, two clients: the sync client's calls run in a worker thread.


@dataclass
class Api:
    kind: str
    client: Client | AsyncClient
    requests: list[httpx.Request] = field(default_factory=list)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.kind == "async":
            return await fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def submit(self, job_type: str, job_input: Any) -> Any:
        return await self.call(
            self.client.submit, "/jobs", json={"type": job_type, "input": job_input}
        )

    def attach(self, status_url: str, events_url: str) -> Any:
        return self.client.operation(status_url, events_url=events_url)

    async def watch(
        self, op: Any, *, on_status: Callable[[JobStatus], None], **kwargs: Any
    ) -> list[JobStatus]:
        seen: list[JobStatus] = []
        if self.kind == "async":
            async for status in op.watch(**kwargs):
                seen.append(status)
                on_status(status)
            return seen

        def consume() -> None:
            for status in op.watch(**kwargs):
                seen.append(status)
                on_status(status)

        await anyio.to_thread.run_sync(consume)
        return seen

    def gets(self, path_suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET" and r.url.path.endswith(path_suffix)]


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def api_for(
    kind: str,
    base_url: str,
    *,
    sse: SSEOptions | None = None,
    on_request: Callable[[httpx.Request], None] | None = None,
) -> AsyncIterator[Api]:
    """A client of ``kind`` whose requests are recorded (and shown to ``on_request``)."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> None:
        requests.append(request)
        if on_request is not None:
            on_request(request)

    if kind == "async":

        async def arecord(request: httpx.Request) -> None:
            record(request)

        ahttp = httpx.AsyncClient(event_hooks={"request": [arecord]})
        async with ahttp, AsyncClient(base_url, http_client=ahttp, sse=sse) as aclient:
            yield Api(kind, aclient, requests)
    else:
        http = httpx.Client(event_hooks={"request": [record]})
        with http, Client(base_url, http_client=http, sse=sse) as client:
            yield Api(kind, client, requests)


def progress_steps(statuses: list[JobStatus]) -> list[float | None]:
    return [
        s.progress.current
        for s in statuses
        if s.state is JobState.PROCESSING and s.progress is not None
    ]


# --------------------------------------------------------------------------------------------
# A small server of broken events endpoints.


@dataclass
class Broken:
    base_url: str
    connected: asyncio.Event
    disconnected: asyncio.Event


@contextlib.asynccontextmanager
async def broken_events_server() -> AsyncIterator[Broken]:
    connected, disconnected = asyncio.Event(), asyncio.Event()

    async def not_found(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "not_found", "message": "no"}}, status=404)

    async def json_answer(request: web.Request) -> web.Response:
        return web.json_response({"jobId": "x", "status": "processing"})

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def silent(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        connected.set()
        try:
            await asyncio.Event().wait()  # until the client goes away (handler cancelled)
        finally:
            disconnected.set()
        return response  # pragma: no cover - never reached

    app = web.Application()
    app.router.add_get("/404", not_found)
    app.router.add_get("/json", json_answer)
    app.router.add_get("/204", no_content)
    app.router.add_get("/silent", silent)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield Broken(f"http://{host}:{port}", connected, disconnected)
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------------------------
# Tests


async def test_progress_arrives_in_order_over_one_stream(kind: str) -> None:
    ticks = Ticks()
    server_cm = serve(ServerConfig(**FAST), handlers={"ticks": ticks.handler})
    async with server_cm as server, api_for(kind, server.base_url) as api:
        op = await api.submit("ticks", {"total": 5})

        def on_status(status: JobStatus) -> None:
            if status.progress is not None and status.progress.current == 0:
                ticks.open()

        seen = await api.watch(op, on_status=on_status, timeout=30)
        assert progress_steps(seen) == [0, 1, 2, 3, 4, 5]
        assert seen[-1].state is JobState.COMPLETED
        assert len(api.gets("/events")) == 1
        assert api.gets(f"/jobs/{op.id}") == []  # no polling at all
        assert await api.call(op.result, timeout=30) == {"ticks": 5}


async def test_a_cut_stream_resumes_with_last_event_id_and_loses_nothing(kind: str) -> None:
    ticks = Ticks()
    config = ServerConfig(**FAST, faults=FaultConfig(sse_cut_after=2))
    server_cm = serve(config, handlers={"ticks": ticks.handler})
    async with server_cm as server, api_for(kind, server.base_url) as api:
        op = await api.submit("ticks", {"total": 6})

        def on_status(status: JobStatus) -> None:
            if status.progress is not None and status.progress.current == 0:
                ticks.open()

        seen = await api.watch(op, on_status=on_status, timeout=30)
        assert progress_steps(seen) == [0, 1, 2, 3, 4, 5, 6]
        assert seen[-1].state is JobState.COMPLETED
        streams = api.gets("/events")
        assert len(streams) >= 4  # 8+ events, 2 per stream
        resumed = [int(r.headers["Last-Event-ID"]) for r in streams[1:]]
        assert resumed == sorted(resumed) and len(set(resumed)) == len(resumed)
        assert "Last-Event-ID" not in streams[0].headers
        assert api.gets(f"/jobs/{op.id}") == []  # it never fell back to polling


async def test_a_snapshot_seen_on_the_stream_is_not_reported_again_by_polling(kind: str) -> None:
    ticks = Ticks()
    config = ServerConfig(**FAST, faults=FaultConfig(sse_cut_after=1))
    sse = SSEOptions(max_reconnects=0)  # the first cut ends SSE: polling takes over
    polls: list[httpx.Request] = []
    job_ids: list[str] = []

    def on_request(request: httpx.Request) -> None:
        if job_ids and request.url.path.endswith(f"/jobs/{job_ids[0]}"):
            polls.append(request)
            if len(polls) == 2:  # the first poll saw what the stream had shown
                ticks.open()

    server_cm = serve(config, handlers={"ticks": ticks.handler})
    async with (
        server_cm as server,
        api_for(kind, server.base_url, sse=sse, on_request=on_request) as api,
    ):
        op = await api.submit("ticks", {"total": 3})
        job_ids.append(op.id)
        with anyio.fail_after(10):
            await ticks.ready.wait()
        seen = await api.watch(op, on_status=lambda status: None, timeout=30)
        assert progress_steps(seen) == sorted(set(progress_steps(seen)))  # never twice
        assert progress_steps(seen)[0] == 0 and seen[-1].state is JobState.COMPLETED
        assert len(api.gets("/events")) == 1 and len(polls) >= 2


@pytest.mark.parametrize("endpoint", ["404", "json", "204", "silent"])
async def test_a_broken_events_endpoint_falls_back_to_polling(kind: str, endpoint: str) -> None:
    # The silence timeout is also the read timeout of the stream's answer head, and an answer
    # that is late (a loaded machine) is a drop that is rightly retried: a short one would make
    # "one request" depend on the load. Only the silent endpoint needs it short.
    silence = 0.2 if endpoint == "silent" else 30.0
    sse = SSEOptions(silence_timeout=silence, max_reconnects=1, retry_delay=0.01)
    async with (
        serve(ServerConfig(**FAST)) as server,
        broken_events_server() as broken,
        api_for(kind, server.base_url, sse=sse) as api,
    ):
        submitted = await api.submit("echo", {"answer": 42})
        events_url = f"{broken.base_url}/{endpoint}"
        op = api.attach(submitted.status_url, events_url)
        assert await api.call(op.result, timeout=30) == {"answer": 42}
        tried = [r for r in api.requests if str(r.url) == events_url]
        assert len(tried) == (2 if endpoint == "silent" else 1)
        assert api.gets(f"/jobs/{submitted.id}")  # the result came by polling
        if endpoint == "silent":
            with anyio.fail_after(10):
                await broken.disconnected.wait()


async def test_the_deadline_interrupts_a_silent_stream(kind: str) -> None:
    ticks = Ticks()  # never opened: the job stays at progress 0
    sse = SSEOptions(silence_timeout=45.0)
    server_cm = serve(ServerConfig(**FAST), handlers={"ticks": ticks.handler})
    async with (
        server_cm as server,
        broken_events_server() as broken,
        api_for(kind, server.base_url, sse=sse) as api,
    ):
        submitted = await api.submit("ticks", {"total": 1})
        op = api.attach(submitted.status_url, f"{broken.base_url}/silent")
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError):
            await api.call(op.wait, timeout=0.5)
        # Far less than the 45 s silence window: the deadline, not the read timeout, ended it.
        assert time.monotonic() - started < 20
        with anyio.fail_after(10):
            await broken.disconnected.wait()  # and the stream was closed
        ticks.open()


async def test_cancelling_an_async_wait_closes_the_stream() -> None:
    ticks = Ticks()
    server_cm = serve(ServerConfig(**FAST), handlers={"ticks": ticks.handler})
    async with (
        server_cm as server,
        broken_events_server() as broken,
        api_for("async", server.base_url) as api,
    ):
        submitted = await api.submit("ticks", {"total": 1})
        op = api.attach(submitted.status_url, f"{broken.base_url}/silent")
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(op.wait, timeout=60))
            with anyio.fail_after(10):
                await broken.connected.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(10):
            await broken.disconnected.wait()
        ticks.open()
