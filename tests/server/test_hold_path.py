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


async def test_a_claimed_slot_counts_against_the_worker_bound() -> None:
    # One worker: a held submission's claim takes the only slot; a queued job waits for it
    # (it is not run beside the claimed one), and no claim jumps ahead of a queued job.
    ran: list[str] = []
    gate = asyncio.Event()

    async def run(job_id: str) -> None:
        ran.append(job_id)
        await gate.wait()

    scheduler = Scheduler(lambda: 0.0, run)
    scheduler.start(1)
    try:
        assert scheduler.claim("held")
        assert scheduler.claimed("held") and not scheduler.claimed("held")
        scheduler.schedule("queued", None)
        for _ in range(3):
            await asyncio.sleep(0)
        assert ran == []  # the worker took it off the queue, and waits for a slot
        assert not scheduler.claim("other")  # full, and a queued job waits first
        scheduler.release()
        for _ in range(3):
            await asyncio.sleep(0)
        assert ran == ["queued"]
        assert not scheduler.claim("other")  # the slot went to the worker
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert scheduler.claim("other")  # free again, nothing queued
    finally:
        await scheduler.stop()
