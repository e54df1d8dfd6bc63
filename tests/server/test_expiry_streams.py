"""Expiry ends whatever waits on the job: open event streams end, held long polls answer,
and the next request answers 410 — for an ``admin.expire`` and for a TTL passing."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
import pytest

from reference_server import ServerConfig
from reference_server.jobs import JobContext, JobManager
from reference_server.store import MemoryStore

from .conftest import (
    Server,
    ServerFactory,
    SseCapture,
    SseEvent,
    error_code,
    poll_status,
    poll_until,
    read_sse,
)

pytestmark = pytest.mark.anyio

#: Far beyond what an expiry takes to reach a waiter; only a hang reaches it.
BOUND = 20.0
#: A keep-alive interval longer than BOUND: a stream that only ends with a keep-alive or at
#: the server's shutdown fails the test.
QUIET = 600.0


async def stream_until_first_event(
    srv: Server, job_id: str, first: anyio.Event, captures: list[SseCapture]
) -> None:
    async def on_event(event: SseEvent) -> None:
        first.set()

    captures.append(await read_sse(srv, job_id, on_event=on_event, within=BOUND))


async def hold_long_poll(srv: Server, job_id: str, answers: list[httpx.Response]) -> None:
    answers.append(await srv.get(f"/jobs/{job_id}", params={"wait": "50"}))


@pytest.mark.parametrize("mode", ["async", "thread"])
@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("state", ["pending", "processing"])
async def test_expiry_ends_every_stream_and_answers_every_long_poll(
    make_server: ServerFactory, state: str
) -> None:
    # One worker: a "pending" job waits behind a gate job that occupies it.
    srv = await make_server(workers=1, sse_keepalive=QUIET, max_wait=60.0)
    if state == "pending":
        await srv.submit_ok("gate", {"key": "blocker"})
        await srv.gates.wait_started("blocker")
        job_id = await srv.submit_ok("gate", {"key": "never"})
    else:
        job_id = await srv.submit_ok("gate", {"key": "xs"})
        await srv.gates.wait_started("xs")
    assert (await srv.get(f"/jobs/{job_id}")).json()["status"] == state

    captures: list[SseCapture] = []
    answers: list[httpx.Response] = []
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            firsts = [anyio.Event(), anyio.Event()]
            for first in firsts:
                tg.start_soon(stream_until_first_event, srv, job_id, first, captures)
            before = srv.admin.status_requests(job_id)
            tg.start_soon(hold_long_poll, srv, job_id, answers)
            for first in firsts:
                await first.wait()
            await poll_until(lambda: srv.admin.status_requests(job_id) > before, within=BOUND)
            assert srv.admin.expire(job_id) is True

    assert len(captures) == 2
    for capture in captures:
        assert capture.ended
        assert "complete" not in capture.names
    # The held long poll answers at once: 410 (or the snapshot, had it been woken earlier).
    assert len(answers) == 1
    assert answers[0].status_code == 410
    assert error_code(answers[0]) == "expired"
    # Reconnecting, resuming or polling: 410.
    events = await srv.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "1"})
    assert events.status_code == 410
    assert (await srv.get(f"/jobs/{job_id}")).status_code == 410


async def test_a_ttl_expiry_answers_410_to_streams_before_the_sweep(
    make_server: ServerFactory,
) -> None:
    # Expiry by TTL applies to finished jobs (docs/protocol.md): once it has passed, the
    # events endpoint answers 410 even if the sweep has not run yet.
    srv = await make_server(job_ttl=0.3, cleanup_interval=3600.0, sse_keepalive=QUIET)
    job_id = await srv.submit_ok("gate", {"key": "ttl"})
    srv.gates.open("ttl")
    assert (await srv.wait_terminal(job_id)).json()["status"] == "completed"
    response = await poll_status(srv, f"/jobs/{job_id}/events", 410, within=BOUND)
    assert error_code(response) == "expired"


async def test_waking_from_an_expiry_keeps_no_state_for_the_job() -> None:
    # What a stream does: note the version, wait for a change, look again. Looking again at
    # an expired job must not bring its per-job runtime back (a leak per expired stream).
    async def parked(ctx: JobContext, input: Any) -> None:
        await asyncio.Event().wait()

    manager = JobManager(ServerConfig(workers=1), {"parked": parked}, MemoryStore())
    await manager.start()
    try:
        job = await manager.submit(owner="alice", type_name="parked", input={})
        version = manager.version(job.id)
        assert version > 0
        waiter = asyncio.create_task(manager.wait_change(job.id, version, BOUND))
        await asyncio.sleep(0)  # the waiter is waiting
        assert await manager.expire(job.id) is True
        with anyio.fail_after(BOUND):
            await waiter
        assert manager.version(job.id) == -1
        assert manager.events_after(job.id, 0) == []
        assert manager.version(job.id) == -1  # asking twice changes nothing either
    finally:
        await manager.stop()
