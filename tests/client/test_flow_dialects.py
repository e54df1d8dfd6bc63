"""The flow's decisions that a dialect's description feeds, driven by hand (no sockets):
cancel by the dialect's method (or not at all), a result-URL failure answer, and the status
request after an event stream's bare end."""

from __future__ import annotations

from typing import Any

from asyncreply_client import _outcomes
from asyncreply_client._commands import Tracker
from asyncreply_client._errors import CancelNotSupportedError, JobFailedError
from asyncreply_client._flow import OperationState, WaitOptions
from asyncreply_client._models import JobState, JobStatus
from asyncreply_client.dialects import DeclarativeDialect, preset

from .flowkit import BASE, config, drive, response

JOBS = DeclarativeDialect(
    name="jobs",
    states={"RUN": "processing", "OK": "completed", "KO": "failed"},
    status_url="/jobs/{id}",
    output="out",
    cancel_url="/jobs/{id}/stop",
    cancel_method="PUT",
)


def state(status_url: str | None = BASE + "/jobs/1", **known: Any) -> OperationState:
    return OperationState(status_url=status_url, **known)


def test_no_cancel_sends_nothing() -> None:
    run = drive(_outcomes.cancel(config(dialect=preset("assemblyai")), state()), [])
    assert isinstance(run.error, CancelNotSupportedError) and run.sends == []


def test_cancel_learns_the_cancel_url_then_uses_the_dialects_method() -> None:
    running = response(200, {"id": "1", "status": "RUN"})
    stopped = response(200, {"id": "1", "status": "cancelled"}, url=BASE + "/jobs/1/stop")
    run = drive(_outcomes.cancel(config(dialect=JOBS), state()), [running, stopped])
    assert [(r.method, str(r.url)) for r in run.sends] == [
        ("GET", BASE + "/jobs/1"),
        ("PUT", BASE + "/jobs/1/stop"),
    ]
    assert run.value.state is JobState.CANCELLED


def test_cancel_without_a_named_url_sends_no_delete() -> None:
    # No id in the answer, and a status URL the template cannot read one from: no cancel
    # URL, so nothing but the status request is sent.
    op = state(BASE + "/queue/1")
    running = response(200, {"status": "RUN"}, url=BASE + "/queue/1")
    run = drive(_outcomes.cancel(config(dialect=JOBS), op), [running])
    assert isinstance(run.error, CancelNotSupportedError)
    assert [r.method for r in run.sends] == ["GET"]


def test_a_failure_answer_at_the_result_url_is_the_jobs_failure() -> None:
    fal = preset("fal")
    done = response(200, {"status": "COMPLETED", "response_url": "/r/1"})
    failed = response(422, {"detail": [{"msg": "prompt is too long"}]}, url=BASE + "/r/1")
    op = state()
    flow = _outcomes.result(config(dialect=fal), op, WaitOptions(mode="poll"), Tracker())
    run = drive(flow, [done, failed])
    assert isinstance(run.error, JobFailedError) and "prompt is too long" in str(run.error)
    assert op.last is not None and op.last.state is JobState.FAILED


def test_a_bare_end_from_events_is_followed_by_one_status_request() -> None:
    # An end learnt from the event stream names no output: one status request reads it.
    ended = JobStatus(state=JobState.COMPLETED)
    op = state(last=ended)
    done = response(200, {"id": "1", "status": "OK", "out": [1, 2]})
    flow = _outcomes.result(config(dialect=JOBS), op, WaitOptions(mode="poll"), Tracker())
    run = drive(flow, [done])
    assert run.value == [1, 2]
    assert [r.method for r in run.sends] == ["GET"]
