"""Properties of the wait flow under arbitrary policies and server hints (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from asyncreply_client import _flow
from asyncreply_client._commands import Sleep, Tracker
from asyncreply_client._errors import WaitTimeoutError
from asyncreply_client._flow import WaitOptions
from asyncreply_client._models import JobState
from asyncreply_client._policies import PollDecision, PollObservation, hint_ceiling

from .flowkit import Clock, config, doc, drive, response
from .test_flow import state_at

delays = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
holds = st.none() | st.floats(min_value=0.0, max_value=1e4, allow_nan=False)


@dataclass
class Scripted:
    """A policy deciding the given delays and holds in turn (the last one repeats)."""

    decisions: list[PollDecision]
    calls: int = 0
    seen: list[PollObservation] = field(default_factory=list)

    def schedule(self) -> Scripted:
        return self

    def next(self, observation: PollObservation) -> PollDecision:
        self.seen.append(observation)
        decision = self.decisions[min(self.calls, len(self.decisions) - 1)]
        self.calls += 1
        return decision


@settings(max_examples=200, deadline=None)
@given(
    decisions=st.lists(st.builds(PollDecision, delays, holds), min_size=1, max_size=5),
    timeout=st.floats(min_value=0.0, max_value=1e5, allow_nan=False),
    first_delay=st.none() | delays,
    polls_until_done=st.integers(min_value=1, max_value=8),
)
def test_a_wait_never_sleeps_or_holds_past_its_deadline(
    decisions: list[PollDecision], timeout: float, first_delay: float | None, polls_until_done: int
) -> None:
    clock = Clock()
    policy = Scripted(decisions)
    cfg = config(clock=clock)
    state = state_at("processing")
    state.first_delay = first_delay
    answers = [response(200, doc("processing"))] * (polls_until_done - 1)
    answers.append(response(200, doc("completed")))
    start = clock.t
    flow = _flow.wait(cfg, state, WaitOptions(timeout=timeout, polling=policy), Tracker())
    run = drive(
        flow, answers[: _polls_possible(decisions, timeout, first_delay, len(answers))], clock=clock
    )
    slept = sum(c.seconds for c in run.commands if isinstance(c, Sleep))
    assert slept <= timeout + 1e-9
    assert clock.t - start <= timeout + 1e-9
    for request in run.sends:
        if "wait" in request.url.params:
            assert float(request.url.params["wait"]) <= timeout + 1e-3
    if run.error is not None:
        assert isinstance(run.error, WaitTimeoutError)
    else:
        assert run.value.state is JobState.COMPLETED


def _polls_possible(
    decisions: list[PollDecision], timeout: float, first_delay: float | None, answers: int
) -> int:
    """How many polls the flow makes before finishing or timing out (a model of the rule
    "sleep at most until the deadline, poll, give up once the deadline has passed")."""
    t = Clock().t  # the same float arithmetic as the flow: deadline = start + timeout
    deadline, polls = t + timeout, 0
    while polls < answers:
        decision = decisions[min(polls, len(decisions) - 1)]
        delay = decision.delay
        if polls == 0 and first_delay is not None:  # clamped like every hint
            delay = min(first_delay, hint_ceiling(Scripted(decisions)))
            if decision.wait is not None:  # a long poll leads the hint
                delay = max(delay - min(_flow._LONG_POLL_LEAD, delay / 4), 0.0)
        delay = min(max(delay, 0.0), max(deadline - t, 0.0))
        if delay > 0:
            t += delay
        polls += 1
        if t >= deadline:
            break
    return polls
