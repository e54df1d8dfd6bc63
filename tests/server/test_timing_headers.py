"""``--timing-headers``: a finished job's status answer says when it ended to the microsecond
(what the detection-lag benchmark measures against); off by default."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from .conftest import ServerFactory, SseEvent, read_sse

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("timing_headers", [True, False])
async def test_a_finished_job_carries_its_precise_end_only_when_asked(
    make_server: ServerFactory, timing_headers: bool
) -> None:
    srv = await make_server(timing_headers=timing_headers)
    job_id = await srv.submit_ok("echo", {"message": "hi"})
    answer = await srv.wait_terminal(job_id)
    completed_at = datetime.fromisoformat(answer.json()["completedAt"].replace("Z", "+00:00"))
    header = answer.headers.get("job-finished-at")
    if not timing_headers:
        assert header is None
        return
    assert header is not None
    whole, _, fraction = header.partition(".")
    assert whole.isdigit() and len(fraction) == 6 and fraction.isdigit()
    # completedAt is the same instant truncated to the millisecond.
    assert 0 <= float(header) - completed_at.timestamp() < 0.0011


async def test_a_running_job_carries_no_end(make_server: ServerFactory) -> None:
    srv = await make_server(timing_headers=True)
    job_id = await srv.submit_ok("gate", {"key": "held"})
    answer = await srv.get(f"/jobs/{job_id}")
    assert answer.status_code == 200
    assert "job-finished-at" not in answer.headers
    srv.gates.open("held")


def _answered(answer: Any) -> float:
    finished = float(answer.headers["job-finished-at"])
    answered = float(answer.headers["job-answered-at"])
    assert answered >= finished
    return answered


async def test_a_finished_job_says_when_its_first_final_answer_was_written(
    make_server: ServerFactory,
) -> None:
    # The first final answer of each kind is noted; later answers keep the first time.
    srv = await make_server(timing_headers=True)
    # A held submission answered with the job's end.
    held = await srv.submit("echo", {"message": "hi"}, headers={"Prefer": "wait=5"})
    assert held.status_code == 303
    job_id = held.json()["jobId"]
    first = _answered(await srv.get(f"/jobs/{job_id}"))
    assert _answered(await srv.get(f"/jobs/{job_id}")) == first
    # A long poll answered with the job's end.
    polled = await srv.submit_ok("gate", {"key": "long-poll"})
    await srv.gates.wait_started("long-poll")
    srv.gates.open("long-poll")
    answer = await srv.wait_terminal(polled)
    assert "job-answered-at" not in answer.headers  # written after this answer's head
    _answered(await srv.get(f"/jobs/{polled}"))
    # An event stream's complete event.
    streamed = await srv.submit_ok("gate", {"key": "stream"})
    await srv.gates.wait_started("stream")

    async def open_gate(event: SseEvent) -> None:
        if event.event == "status":
            srv.gates.open("stream")

    capture = await read_sse(srv, streamed, on_event=open_gate)
    assert capture.events[-1].event == "complete"
    _answered(await srv.get(f"/jobs/{streamed}"))


async def test_no_answer_time_without_timing_headers(make_server: ServerFactory) -> None:
    srv = await make_server()
    held = await srv.submit("echo", {"message": "hi"}, headers={"Prefer": "wait=5"})
    assert held.status_code == 303
    again = await srv.get(f"/jobs/{held.json()['jobId']}")
    assert "job-answered-at" not in again.headers
