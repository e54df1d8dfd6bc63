"""The hold path: a held request answers with the change that ends a burst, and a job is
final in the loop turn its handler returns."""

from __future__ import annotations

import asyncio

import pytest

from reference_server.event_log import EventLogs
from reference_server.records import EventRecord
from reference_server.scheduler import Scheduler

from .conftest import ServerFactory
from .test_long_poll import LONG_WAIT, long_poll_after_change, opener

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_a_long_poll_woken_by_a_last_step_answers_with_the_jobs_end(
    make_server: ServerFactory,
) -> None:
    # The gate handler reports progress 1/1, then returns: the long poll, woken by the
    # progress, lets the completion land and answers with it (no second poll needed).
    srv = await make_server()
    job_id = await srv.submit_ok("gate", {"key": "last-step"})
    await srv.gates.wait_started("last-step")
    answer = await long_poll_after_change(
        srv, job_id, opener(srv, "last-step"), params={"wait": LONG_WAIT}
    )
    assert answer.status_code == 303
    assert answer.json()["status"] == "completed"


async def test_a_held_submission_of_an_instant_job_answers_with_its_end(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(completion_style="inline")
    held = await srv.submit("echo", {"message": "hi"}, headers={"Prefer": "wait=5"})
    assert held.status_code == 200
    assert held.json()["status"] == "completed"
    assert held.json()["result"] == {"message": "hi"}


def _event(event_id: int, name: str) -> EventRecord:
    return EventRecord(event_id, name, {"status": "completed" if name == "complete" else "x"})


@pytest.mark.parametrize(("event", "turns"), [("progress", 2), ("complete", 1)])
async def test_a_waiter_woken_by_the_jobs_end_answers_in_the_next_turn(
    event: str, turns: int
) -> None:
    # A waiter woken by a step yields once more (the job's end may be under way); woken by
    # the end itself, nothing can follow, so it returns in the turn after the change.
    logs = EventLogs()
    logs.append("job", _event(1, "status"))
    waiter = asyncio.create_task(logs.wait_change("job", logs.version("job"), 10.0))
    await asyncio.sleep(0)  # the waiter waits
    logs.append("job", _event(2, event))
    for _ in range(turns - 1):
        await asyncio.sleep(0)
        assert not waiter.done()
    await asyncio.sleep(0)
    assert waiter.done()


async def test_a_run_started_at_once_counts_against_the_worker_bound() -> None:
    # One worker: a job run at once (a held submission's) takes the only slot; a queued job
    # waits for it (it is not run beside it), and nothing runs at once ahead of a queued job.
    ran: list[str] = []
    gates = {name: asyncio.Event() for name in ("held", "queued", "later")}

    async def run(job_id: str) -> None:
        ran.append(job_id)
        await gates[job_id].wait()

    async def turns(n: int = 3) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    scheduler = Scheduler(lambda: 0.0, run)
    scheduler.start(1)
    try:
        assert scheduler.run_now("held")
        assert ran == ["held"]  # started in this step
        scheduler.schedule("queued", None)
        await turns()
        assert ran == ["held"]  # the worker took it off the queue and waits for the slot
        assert not scheduler.run_now("later")  # full, and a queued job waits first
        gates["held"].set()
        await turns()
        assert ran == ["held", "queued"]  # the slot passed to the waiting worker
        assert not scheduler.run_now("later")
        gates["queued"].set()
        await turns()
        assert scheduler.run_now("later")  # free again, nothing queued
        assert ran == ["held", "queued", "later"]
    finally:
        await scheduler.stop()


async def test_a_run_started_at_once_that_does_not_wait_frees_its_slot() -> None:
    ran: list[str] = []

    async def run(job_id: str) -> None:
        ran.append(job_id)

    scheduler = Scheduler(lambda: 0.0, run)
    scheduler.start(1)
    try:
        for name in ("a", "b", "c"):
            assert scheduler.run_now(name)
            await asyncio.sleep(0)  # a run that awaits a task may end a turn later
        assert ran == ["a", "b", "c"]
    finally:
        await scheduler.stop()
