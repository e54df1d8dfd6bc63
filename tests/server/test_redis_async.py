"""The Redis store never blocks the event loop (issue 18.1: "through redis-py's asyncio client").

- The Redis modules of the server use ``redis.asyncio`` only: no blocking client class is
  named anywhere in them.
- A request that waits for a stalled Redis (its process stopped with ``SIGSTOP``) does not
  stop the instance from answering ``/health`` meanwhile: ``/health`` is answered while the
  request's re-read is still waiting for Redis (a blocking call would hold the loop until it
  returned or failed); once Redis runs again the request is answered.
- The commits of one job leave in the order they were made: one queued behind a commit that
  lost its race to another instance is refused too.
- A handler's estimate (declared without awaiting) is written and seen by another instance.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import signal
from typing import Any

import anyio
import pytest

from reference_server import redis_client, redis_deliveries, redis_store
from reference_server.records import EventRecord, JobRecord, JobState
from reference_server.redis_store import RedisStore
from reference_server.store import StaleJob
from tests.redis_server import RedisServer

from .conftest import ServerFactory

pytestmark = pytest.mark.anyio

#: Generous: nothing here waits for a timer, only for the loop to get to a request.
BOUND = 10.0


def _dotted(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


@pytest.mark.parametrize("module", [redis_client, redis_store, redis_deliveries])
def test_the_redis_modules_name_no_blocking_client(module: Any) -> None:
    tree = ast.parse(inspect.getsource(module))
    named = {_dotted(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imported = {
        alias.name if isinstance(n, ast.Import) else f"{n.module}.{alias.name}"
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for alias in n.names
    }
    blocking = {"redis.Redis", "redis.StrictRedis", "redis.client", "redis.client.Redis"}
    assert not (named | imported) & blocking
    assert not any(name.startswith("redis.client.") for name in named | imported)


async def test_a_request_stuck_on_a_stalled_redis_does_not_stop_health(
    make_server: ServerFactory, redis_server: RedisServer, redis_url: str
) -> None:
    srv = await make_server(store="redis", redis_url=redis_url, mode_="async")  # in this loop
    job_id = await srv.submit_ok("echo", {"v": 1})
    await srv.wait_terminal(job_id)

    store = srv.admin._state.manager.store
    reading = asyncio.Event()
    returned: list[str] = []
    fetch = store.fetch

    async def fetch_noted(job: str, after_event: int) -> Any:
        if job != job_id:
            return await fetch(job, after_event)
        reading.set()
        try:
            return await fetch(job, after_event)
        finally:
            returned.append(job)  # a blocking client returns (or fails) before the loop runs on

    store.fetch = fetch_noted  # the replica re-reads through the store's attribute
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        status = asyncio.create_task(srv.get(f"/jobs/{job_id}"))
        with anyio.fail_after(BOUND):
            await reading.wait()  # the request now waits for Redis's answer
            health = await srv.get("/health")
        assert health.status_code == 200
        assert returned == []  # the re-read still waits for Redis while /health was answered
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    with anyio.fail_after(BOUND):
        answer = await status
    assert answer.status_code == 303, answer.text


def _job(event_seq: int, state: JobState) -> JobRecord:
    return JobRecord(
        id="j1", seq=1, owner="alice", type="echo", input={}, callback=None, state=state,
        created_at=1000.0, updated_at=1000.0, event_seq=event_seq,
    )  # fmt: skip


async def test_a_commit_queued_behind_one_that_lost_its_race_is_refused(redis_url: str) -> None:
    """Two commits of one job made here in a row: the first loses to another instance, so the
    second (made from the first's version) must not land on the other instance's version."""
    here, there = RedisStore(redis_url), RedisStore(redis_url)
    await here.open()
    await there.open()
    try:
        await here.commit(_job(1, JobState.PENDING), EventRecord(1, "status", {}), [])
        await there.commit(_job(2, JobState.CANCELLED), EventRecord(2, "complete", {}), [])
        first = here.commit(_job(2, JobState.PROCESSING), EventRecord(2, "status", {}), [])
        second = here.commit(_job(3, JobState.COMPLETED), EventRecord(3, "complete", {}), [])
        outcomes = await asyncio.gather(first, second, return_exceptions=True)
        assert [type(o) for o in outcomes] == [StaleJob, StaleJob]
        fetched = await here.fetch("j1", 0)
        assert fetched.job is not None and fetched.job.state is JobState.CANCELLED
        assert [e.id for e in fetched.events] == [1, 2]
    finally:
        await here.close()
        await there.close()


async def test_a_handlers_estimate_reaches_the_other_instances(
    make_server: ServerFactory, redis_url: str
) -> None:
    """``ctx.set_estimate`` is not awaited by the handler: its write to Redis is a task."""
    declared = asyncio.Event()

    async def estimating(ctx: Any, input: Any) -> None:
        ctx.set_estimate(30)
        declared.set()
        await ctx.sleep(3600)

    options: dict[str, Any] = {"store": "redis", "redis_url": redis_url, "mode_": "async"}
    a = await make_server(handlers={"estimating": estimating}, **options)
    b = await make_server(**options)
    job_id = await a.submit_ok("estimating", {})
    with anyio.fail_after(BOUND):
        await declared.wait()
        await asyncio.gather(*a.admin._state.manager._writes)  # the estimate's write
    doc = (await b.get(f"/jobs/{job_id}")).json()
    assert doc["status"] == "processing" and doc["estimatedCompletion"] is not None
