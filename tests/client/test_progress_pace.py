"""The pace of a wait whose caller watches progress (issue 20, items 2 and 3), by hand."""

from __future__ import annotations

from typing import Any

import pytest

from asyncreply_client import _flow
from asyncreply_client._commands import Tracker
from asyncreply_client._flow import OperationState, WaitOptions
from asyncreply_client._models import JobState, JobStatus
from asyncreply_client._pace import FLOOR, ProgressPace, pace_floor
from asyncreply_client._policies import Adaptive, ExponentialBackoff, FixedInterval, LongPolling

from .flowkit import BASE, Clock, Fixed, config, doc, drive, response


def ending(hint: float, remaining: float | None) -> JobStatus:
    return JobStatus(state=JobState.PENDING, retry_after=hint, estimated_remaining=remaining)


@pytest.mark.parametrize(
    ("policy", "floor"),
    [
        (Adaptive(), FLOOR),
        (Adaptive(min_delay=1.0), 1.0),
        (FixedInterval(2.0), 2.0),
        (ExponentialBackoff(initial=0.5), 0.5),
        (LongPolling(fallback=FixedInterval(3.0)), 3.0),
        (Fixed(), FLOOR),
    ],
)
def test_the_pace_never_goes_below_the_policy_floor(policy: Any, floor: float) -> None:
    assert pace_floor(policy) == floor


def test_a_hint_pointing_at_the_end_is_split_once_for_the_whole_wait() -> None:
    pace = ProgressPace(Adaptive())
    assert pace.delay(20.0, ending(20.0, 20.0)) == 2.0
    # The pace stays that of the first estimate: later hints (the remaining time) shrink.
    assert pace.delay(15.0, ending(15.0, 15.0)) == 2.0
    assert pace.delay(1.0, ending(1.0, 1.0)) == 1.0


@pytest.mark.parametrize(
    ("delay", "status"),
    [
        (5.0, ending(5.0, None)),  # no estimate: the hint may be a rate limit
        (2.0, ending(2.0, 20.0)),  # shorter than the estimate: the server's own pace
        (5.0, None),
    ],
)
def test_other_hints_are_honoured_unchanged(delay: float, status: JobStatus | None) -> None:
    assert ProgressPace(Adaptive()).delay(delay, status) == delay


def test_short_jobs_are_not_polled_faster_than_the_floor() -> None:
    assert ProgressPace(Adaptive()).delay(1.0, ending(1.0, 1.0)) == FLOOR


def _submitted(remaining: float) -> OperationState:
    state = OperationState(status_url=BASE + "/jobs/1", seen=True, first_delay=remaining)
    state.learn(
        JobStatus(id="1", state=JobState.PENDING, retry_after=remaining, estimated_remaining=6.0)
    )
    return state


@pytest.mark.parametrize(("watching", "first"), [(False, 6.0), (True, 0.6)])
def test_a_watched_poll_splits_the_submission_hint(watching: bool, first: float) -> None:
    clock = Clock()
    cfg = config(clock=clock, polling=Fixed(delay=6.0))
    options = WaitOptions(mode="poll", watching=watching)
    state = _submitted(6.0)
    replies = [response(200, doc("processing")), response(200, doc("completed"))]
    run = drive(_flow.wait(cfg, state, options, Tracker(state.last)), replies, clock=clock)
    assert run.value.state is JobState.COMPLETED
    assert run.sleeps[0] == pytest.approx(first)


def test_a_watched_long_poll_starts_with_a_plain_poll_at_once() -> None:
    clock = Clock()
    cfg = config(clock=clock)
    state = _submitted(6.0)
    options = WaitOptions(mode="long-poll", watching=True)
    replies = [response(200, doc("processing")), response(200, doc("completed"))]
    run = drive(_flow.wait(cfg, state, options, Tracker(state.last)), replies, clock=clock)
    first, second = run.sends
    assert run.sleeps == []
    assert "wait" not in first.url.params and "Prefer" not in first.headers
    assert second.url.params["wait"] == "30"


def test_an_unwatched_long_poll_keeps_the_hint() -> None:
    clock = Clock()
    cfg = config(clock=clock)
    state = _submitted(6.0)
    run = drive(
        _flow.wait(cfg, state, WaitOptions(mode="long-poll"), Tracker(state.last)),
        [response(200, doc("completed"))],
        clock=clock,
    )
    assert run.sleeps == [pytest.approx(5.95)]
    assert run.sends[0].url.params["wait"] == "30"


@pytest.mark.parametrize(("watching", "emitted"), [(False, []), (True, [JobState.COMPLETED])])
def test_a_finished_job_is_reported_once_to_a_watcher(
    watching: bool, emitted: list[JobState]
) -> None:
    state = OperationState(status_url=BASE + "/jobs/1", seen=True)
    state.learn(JobStatus(id="1", state=JobState.COMPLETED))
    options = WaitOptions(watching=watching)
    run = drive(_flow.wait(config(), state, options, Tracker(state.last)), [])
    assert [s.state for s in run.emitted] == emitted
    assert run.sends == []
