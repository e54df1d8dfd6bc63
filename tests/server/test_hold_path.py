"""The hold path: a held request answers with the change that ends a burst, and a job is
final in the loop turn its handler returns."""

from __future__ import annotations

import asyncio
import gc
from datetime import datetime, timedelta, timezone

import anyio
import httpx
import pytest

from reference_server.__main__ import freeze_startup_heap
from reference_server.event_log import EventLogs
from reference_server.records import EventRecord
from reference_server.result_stream import CHUNK_SIZE, ChunkedBody
from reference_server.scheduler import Scheduler

from .conftest import ServerFactory, read_sse
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


# ------------------------------------------------------------------ the held fast path


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The jobs that went through the scheduler's queue (or a timer)."""
    seen: list[str] = []
    real = Scheduler.schedule

    def schedule(self: Scheduler, job_id: str, run_at: float | None) -> None:
        seen.append(job_id)
        real(self, job_id, run_at)

    monkeypatch.setattr(Scheduler, "schedule", schedule)
    return seen


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_a_held_submission_runs_its_job_without_the_queue(
    make_server: ServerFactory, queued: list[str]
) -> None:
    srv = await make_server()
    held = await srv.submit("echo", {"message": "hi"}, headers={"Prefer": "wait=5"})
    assert held.status_code == 303
    assert held.json()["status"] == "completed" and held.json()["attempt"] == 1
    plain = await srv.submit_ok("echo", {"message": "hi"})
    assert queued == [plain]  # the held one ran at once, in a free worker slot
    capture = await read_sse(srv, held.json()["jobId"], last_event_id="0")
    assert [e.json()["status"] for e in capture.events] == ["pending", "processing", "completed"]


async def test_a_held_job_that_fails_answers_with_its_failure(
    make_server: ServerFactory, queued: list[str]
) -> None:
    srv = await make_server()
    held = await srv.submit("fail", {"code": "nope"}, headers={"Prefer": "wait=5"})
    assert held.status_code == 200
    body = held.json()
    assert body["status"] == "failed" and body["error"]["code"] == "nope"
    assert queued == []


async def test_a_held_job_retried_answers_with_the_attempt_that_completes(
    make_server: ServerFactory, queued: list[str]
) -> None:
    # The first attempt runs at once and fails retryably: the retry waits its backoff and
    # goes through the queue, as any retry; the held answer is the second attempt's end.
    srv = await make_server(max_attempts=3)
    held = await srv.submit(
        "fail", {"retryable": True, "fail_attempts": 1}, headers={"Prefer": "wait=5"}
    )
    assert held.status_code == 303
    assert held.json()["status"] == "completed" and held.json()["attempt"] == 2
    assert queued == [held.json()["jobId"]]  # the retry's


async def test_a_held_job_that_keeps_failing_stops_at_max_attempts(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(max_attempts=2)
    held = await srv.submit("fail", {"retryable": True}, headers={"Prefer": "wait=5"})
    assert held.status_code == 200
    body = held.json()
    assert body["status"] == "failed" and body["attempt"] == 2 and body["deadLetter"] is True


async def test_a_held_job_cancelled_while_held_answers_cancelled(
    make_server: ServerFactory,
) -> None:
    srv = await make_server()
    async with anyio.create_task_group() as tg:
        answers: list[httpx.Response] = []

        async def hold() -> None:
            answers.append(
                await srv.submit("gate", {"key": "cancel-held"}, headers={"Prefer": "wait=10"})
            )

        tg.start_soon(hold)
        await srv.gates.wait_started("cancel-held")
        job_id = (await srv.get("/jobs", params={"status": "processing"})).json()["jobs"][0][
            "jobId"
        ]
        cancelled = await srv.delete(f"/jobs/{job_id}")
        assert cancelled.status_code == 200
    assert answers[0].status_code == 200
    assert answers[0].json()["status"] == "cancelled"


async def test_a_held_job_longer_than_the_hold_answers_202_and_runs_on(
    make_server: ServerFactory,
) -> None:
    srv = await make_server()
    held = await srv.submit("gate", {"key": "slow-held"}, headers={"Prefer": "wait=0.05"})
    assert held.status_code == 202
    assert held.headers["preference-applied"] == "wait=0.05"
    job_id = held.json()["jobId"]
    assert (await srv.get(f"/jobs/{job_id}")).json()["status"] == "processing"
    srv.gates.open("slow-held")
    final = await srv.wait_terminal(job_id)
    assert final.json()["status"] == "completed" and final.json()["attempt"] == 1


async def test_a_client_that_leaves_a_held_submission_leaves_its_job_running(
    make_server: ServerFactory,
) -> None:
    srv = await make_server()
    assert srv.async_client is not None
    with pytest.raises(httpx.ReadTimeout):
        await srv.async_client.post(
            "/jobs",
            json={"type": "gate", "input": {"key": "left"}},
            headers={**srv.headers("alice"), "Prefer": "wait=10"},
            timeout=httpx.Timeout(5.0, read=0.2),
        )
    await srv.gates.wait_started("left")
    listed = (await srv.get("/jobs", params={"status": "processing"})).json()["jobs"]
    assert len(listed) == 1
    srv.gates.open("left")
    final = await srv.wait_terminal(listed[0]["jobId"])
    assert final.json()["status"] == "completed"
    assert srv.gates.started["left"] == [1]


async def test_with_every_worker_busy_a_held_job_is_queued(
    make_server: ServerFactory, queued: list[str]
) -> None:
    # One worker, running a gate job: a held submission cannot run beside it, so it is
    # queued and stays pending until the worker is free.
    srv = await make_server(workers=1)
    busy = await srv.submit_ok("gate", {"key": "busy"})
    await srv.gates.wait_started("busy")
    held = await srv.submit("echo", {"message": "hi"}, headers={"Prefer": "wait=0.05"})
    assert held.status_code == 202
    job_id = held.json()["jobId"]
    assert queued == [busy, job_id]
    assert (await srv.get(f"/jobs/{job_id}")).json()["status"] == "pending"
    srv.gates.open("busy")
    final = await srv.wait_terminal(job_id)
    assert final.json()["status"] == "completed"


async def test_a_held_job_with_not_before_waits_for_its_time(
    make_server: ServerFactory, queued: list[str]
) -> None:
    srv = await make_server()
    not_before = datetime.now(timezone.utc) + timedelta(seconds=0.2)
    held = await srv.submit(
        "echo",
        {"message": "later"},
        extra={"notBefore": not_before.isoformat()},
        headers={"Prefer": "wait=5"},
    )
    assert held.status_code == 303
    assert held.json()["status"] == "completed"
    assert queued == [held.json()["jobId"]]  # by its timer, not at once


def test_the_command_line_server_freezes_its_startup_heap() -> None:
    # What exists when the server has started is left out of the collector's full passes.
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


class _Writer:
    """Records what a body writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.transport = None

    async def write(self, chunk: bytes) -> None:
        self.writes.append(bytes(chunk))

    async def drain(self) -> None:
        pass


@pytest.mark.parametrize("content_length", [None, 9])
async def test_a_small_body_in_parts_is_written_at_once(content_length: int | None) -> None:
    # An inline result spliced into its document: one write (one segment with the head).
    body = ChunkedBody(
        [b'{"a": ', b"[1,2]", b"}"], content_type="application/json", write_timeout=5
    )
    writer = _Writer()
    await body.write_with_length(writer, content_length)
    assert writer.writes == [b'{"a": [1,2]}'[: content_length or 99]]


async def test_a_large_body_is_still_written_in_chunks() -> None:
    part = b"x" * (CHUNK_SIZE + 10)
    body = ChunkedBody([b"[", part, b"]"], content_type="application/json", write_timeout=5)
    writer = _Writer()
    await body.write_with_length(writer, None)
    assert b"".join(writer.writes) == b"[" + part + b"]"
    assert max(len(w) for w in writer.writes) <= CHUNK_SIZE


_STABLE_FIELDS = ("jobId", "type", "status", "attempt", "progress", "createdAt", "startedAt")


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
async def test_a_held_submission_of_a_running_job_answers_with_its_current_document(
    make_server: ServerFactory, dialect: str
) -> None:
    # The hold ends long before the job does: the 202 shows the job as it is then (running,
    # with its first progress), the document GET /jobs/{id} gives, not a "pending" receipt.
    srv = await make_server()
    held = await srv.submit("sleep", {"seconds": 60, "steps": 4}, headers={"Prefer": "wait=0.05"})
    assert held.status_code == 202, held.text
    assert held.headers["Preference-Applied"] == "wait=0.05"
    body = held.json()
    job_id = body["jobId"]
    assert held.headers["Location"] == f"/jobs/{job_id}"
    try:
        assert body["status"] == "processing"
        assert body["progress"] == {"current": 0, "total": 4, "message": "step 0/4"}
        if dialect == "status-code":
            assert body["state"] == "inFlight"  # the dialect's word for running
        now = await srv.get(f"/jobs/{job_id}")
        assert now.status_code == (200 if dialect == "reference" else 202)
        document = now.json()
        assert set(body) == set(document)
        assert {k: body[k] for k in _STABLE_FIELDS} == {k: document[k] for k in _STABLE_FIELDS}
    finally:
        await srv.delete(f"/jobs/{job_id}")
