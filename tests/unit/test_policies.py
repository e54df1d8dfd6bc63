"""Polling policies driven by hand: scenario tables of observations, injected randomness,
no clocks and no sleeping."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncreply_client._models import JobState, JobStatus, Progress
from asyncreply_client._policies import (
    MAX_IMMEDIATE,
    Adaptive,
    ExponentialBackoff,
    FixedInterval,
    LongPolling,
    PollDecision,
    PollingPolicy,
    PollObservation,
    PollSchedule,
)


def status(
    state: JobState = JobState.PROCESSING,
    *,
    retry_after: float | None = None,
    remaining: float | None = None,
    progress: tuple[float, float] | None = None,
    held: bool = False,
) -> JobStatus:
    return JobStatus(
        state=state,
        retry_after=retry_after,
        estimated_remaining=remaining,
        progress=None if progress is None else Progress(current=progress[0], total=progress[1]),
        held=held,
    )


def obs(s: JobStatus | None = None, *, now: float = 0.0, polls: int = 1) -> PollObservation:
    return PollObservation(status=s, now=now, started=0.0, polls=polls)


def delays(schedule: PollSchedule, observations: list[PollObservation]) -> list[float]:
    return [schedule.next(o).delay for o in observations]


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def cycle(values: list[float]) -> Callable[[], float]:
    it: Iterator[float] = iter(values * 1000)
    return lambda: next(it)


# --------------------------------------------------------------------------------------------
# FixedInterval


@pytest.mark.parametrize(
    ("policy", "observations", "expected"),
    [
        (FixedInterval(2.0), [obs(None, polls=0), obs(status())], [2.0, 2.0]),
        (FixedInterval(2.0), [obs(status(retry_after=0.0))], [0.0]),  # 0 = poll now
        (FixedInterval(2.0), [obs(status(retry_after=5.0))], [5.0]),
        (FixedInterval(2.0), [obs(status(retry_after=1e9))], [300.0]),  # absurd: ceiling
        (FixedInterval(2.0, max_retry_after=10), [obs(status(retry_after=60))], [10.0]),
        (FixedInterval(2.0, honour_retry_after=False), [obs(status(retry_after=5))], [2.0]),
        (FixedInterval(0.0), [obs(status())], [0.0]),
    ],
)
def test_fixed_interval(
    policy: FixedInterval, observations: list[PollObservation], expected: list[float]
) -> None:
    assert delays(policy.schedule(), observations) == expected


# --------------------------------------------------------------------------------------------
# ExponentialBackoff


def test_exponential_backoff_without_jitter_grows_to_the_cap() -> None:
    schedule = ExponentialBackoff(0.5, 2.0, 3.0, jitter="none").schedule()
    assert delays(schedule, [obs(status())] * 6) == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_exponential_backoff_full_jitter_uses_the_injected_random() -> None:
    policy = ExponentialBackoff(1.0, 2.0, 8.0, random=cycle([0.5, 0.0, 0.999]))
    assert delays(policy.schedule(), [obs(status())] * 3) == [0.5, 0.0, pytest.approx(3.996)]


@pytest.mark.parametrize("bad", [1.5, -0.5, float("nan"), float("inf")])
def test_exponential_backoff_survives_a_bad_random_source(bad: float) -> None:
    policy = ExponentialBackoff(1.0, 2.0, 8.0, random=constant(bad))
    delay = policy.schedule().next(obs(status())).delay
    assert 0.0 <= delay <= 1.0


def test_exponential_backoff_honours_hints_and_schedules_are_independent() -> None:
    policy = ExponentialBackoff(1.0, 2.0, 8.0, jitter="none")
    first = policy.schedule()
    assert delays(first, [obs(status()), obs(status(retry_after=0.0)), obs(status())]) == [
        1.0,
        0.0,
        4.0,
    ]
    assert policy.schedule().next(obs(status())).delay == 1.0  # a fresh wait starts over
    assert (
        ExponentialBackoff(jitter="none", honour_retry_after=False)
        .schedule()
        .next(obs(status(retry_after=9)))
        .delay
        == 0.5
    )


def test_exponential_backoff_never_overflows() -> None:
    schedule = ExponentialBackoff(1.0, 10.0, 60.0, jitter="none").schedule()
    for _ in range(5000):
        delay = schedule.next(obs(status())).delay
    assert delay == 60.0


# --------------------------------------------------------------------------------------------
# Adaptive


def adaptive(**kwargs: float) -> Adaptive:
    return Adaptive(random=constant(0.0), **kwargs)  # type: ignore[arg-type]


def test_adaptive_honours_the_initial_202_retry_after_before_the_first_poll() -> None:
    first = adaptive().schedule().next(obs(status(JobState.PENDING, retry_after=1.5), polls=0))
    assert first == PollDecision(delay=1.5)


def test_adaptive_retry_after_zero_means_poll_now() -> None:
    assert adaptive().schedule().next(obs(status(retry_after=0.0), polls=0)).delay == 0.0


def test_adaptive_limits_a_run_of_zero_hints() -> None:
    schedule = adaptive(max_immediate=2, initial=0.1).schedule()
    got = delays(schedule, [obs(status(retry_after=0.0))] * 5)
    assert got[:2] == [0.0, 0.0]
    assert all(d > 0 for d in got[2:])
    # a non-zero hint resets the run
    assert schedule.next(obs(status(retry_after=0.3))).delay == 0.3
    assert schedule.next(obs(status(retry_after=0.0))).delay == 0.0


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(0.25, 0.25), (7.0, 7.0), (1e9, 60.0), (float("inf"), 60.0), (-3.0, 0.0)],
)
def test_adaptive_hint_clamping(hint: float, expected: float) -> None:
    assert adaptive().schedule().next(obs(status(retry_after=hint))).delay == expected


def test_adaptive_min_and_max_delay() -> None:
    policy = adaptive(min_delay=0.05, max_delay=2.0)
    schedule = policy.schedule()
    assert schedule.next(obs(status(retry_after=0.0))).delay == 0.05
    assert schedule.next(obs(status(retry_after=30.0))).delay == 2.0


def test_adaptive_backs_off_exponentially_without_hints() -> None:
    schedule = adaptive(initial=0.1, factor=2.0, max_delay=1.0).schedule()
    got = delays(schedule, [obs(status())] * 6)
    assert got == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_adaptive_jitter_shortens_backoff_by_at_most_the_jitter_fraction() -> None:
    policy = Adaptive(initial=1.0, factor=1.0, jitter=0.25, random=constant(1.0))
    assert policy.schedule().next(obs(status())).delay == 0.75


def test_adaptive_polls_near_the_estimated_completion() -> None:
    schedule = adaptive().schedule()
    assert schedule.next(obs(status(remaining=2.5))).delay == 2.5
    # Overdue (remaining 0): back off from the initial delay rather than hammer.
    assert schedule.next(obs(status(remaining=0.0))).delay == pytest.approx(0.1)
    assert schedule.next(obs(status(remaining=0.0))).delay == pytest.approx(0.16)


def test_adaptive_uses_the_progress_rate() -> None:
    schedule = adaptive(initial=0.1).schedule()
    # First progress report: nothing to extrapolate from yet.
    assert schedule.next(obs(status(progress=(2, 10)), now=0.0)).delay == pytest.approx(0.1)
    # 20% → 40% in 1 s: 60% left at 0.2/s = 3 s.
    assert schedule.next(obs(status(progress=(4, 10)), now=1.0)).delay == pytest.approx(3.0)
    # A hint still wins over the estimate.
    assert schedule.next(obs(status(progress=(5, 10), retry_after=0.5), now=1.5)).delay == 0.5


def test_adaptive_server_estimate_wins_over_the_progress_rate() -> None:
    schedule = adaptive().schedule()
    schedule.next(obs(status(progress=(1, 10)), now=0.0))
    assert schedule.next(obs(status(progress=(2, 10), remaining=0.7), now=1.0)).delay == 0.7


def test_adaptive_a_hint_restarts_the_backoff() -> None:
    schedule = adaptive(initial=0.1, factor=2.0).schedule()
    delays(schedule, [obs(status())] * 4)  # 0.1, 0.2, 0.4, 0.8
    schedule.next(obs(status(retry_after=1.0)))
    assert schedule.next(obs(status())).delay == pytest.approx(0.1)


def _simulate(policy: PollingPolicy, duration: float, hint: Callable[[float], float]) -> int:
    """Poll a job of ``duration`` seconds whose server answers ``hint(remaining)``; return
    the number of status requests until the client sees it completed."""
    schedule = policy.schedule()
    now = 0.0
    current = status(JobState.PENDING, retry_after=hint(duration))
    requests = 0
    while True:
        now += schedule.next(obs(current, now=now, polls=requests)).delay
        requests += 1
        if now >= duration:
            return requests
        current = status(retry_after=hint(duration - now))


def _server_schedule(duration: float, hint: Callable[[float], float]) -> int:
    """Requests made by a client that follows the server's Retry-After to the letter."""
    return _simulate(FixedInterval(1e9, max_retry_after=1e9), duration, hint)


@pytest.mark.parametrize("duration", [0.05, 0.3, 1.0, 2.7, 10.0, 45.0])
@pytest.mark.parametrize(
    "hint",
    [
        lambda left: min(max(left, 0.05), 5.0),  # adaptive, precise (Retry-After-Ms)
        lambda left: float(math.ceil(min(max(left, 0.05), 5.0))),  # whole seconds
        lambda left: 1.0,  # a constant hint
    ],
    ids=["ms", "seconds", "constant"],
)
def test_adaptive_stays_within_1_5x_of_the_server_schedule(
    duration: float, hint: Callable[[float], float]
) -> None:
    ours = _simulate(adaptive(), duration, hint)
    assert ours <= 1.5 * _server_schedule(duration, hint)


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.one_of(st.none(), st.tuples(st.floats(), st.floats())),
            st.floats(min_value=0, max_value=1e6),
        ),
        max_size=20,
    ),
    st.floats(min_value=0, max_value=1),
)
def test_policies_never_return_a_negative_or_unbounded_delay(
    steps: list[tuple[float | None, float | None, tuple[float, float] | None, float]],
    draw: float,
) -> None:
    policies: list[PollingPolicy] = [
        FixedInterval(1.0),
        ExponentialBackoff(random=constant(draw)),
        Adaptive(min_delay=0.01, max_delay=30.0, random=constant(draw)),
        LongPolling(5.0),
    ]
    for policy in policies:
        schedule = policy.schedule()
        for polls, (hint, remaining, progress, now) in enumerate(steps):
            s = status(retry_after=hint, remaining=remaining, progress=progress)
            decision = schedule.next(obs(s, now=now, polls=polls))
            assert math.isfinite(decision.delay)
            assert decision.delay >= 0.0
            if isinstance(policy, Adaptive):
                assert 0.01 <= decision.delay <= 30.0


# --------------------------------------------------------------------------------------------
# One cap on "Retry-After: 0" forever, for every policy


def _polls_under_zero_hints(policy: PollingPolicy, seconds: float) -> list[float]:
    """The delays a schedule decides while a server answers ``Retry-After: 0`` forever,
    for ``seconds`` of virtual time (or 10,000 polls: a spin)."""
    schedule = policy.schedule()
    zero = status(retry_after=0.0)
    now, got = 0.0, []
    while now < seconds and len(got) < 10_000:
        delay = schedule.next(obs(zero, now=now, polls=len(got) + 1)).delay
        got.append(delay)
        now += delay
    return got


ZERO_HINT_POLICIES = [
    pytest.param(FixedInterval(), 1.0, id="fixed"),
    pytest.param(ExponentialBackoff(random=constant(0.5)), 15.0, id="exponential"),
    pytest.param(Adaptive(random=constant(0.0)), 60.0, id="adaptive"),
    pytest.param(LongPolling(fallback=FixedInterval(2.0)), 2.0, id="long-poll-fallback"),
]


@pytest.mark.parametrize(("policy", "pace"), ZERO_HINT_POLICIES)
def test_every_policy_caps_a_run_of_zero_hints(policy: PollingPolicy, pace: float) -> None:
    got = _polls_under_zero_hints(policy, 600.0)
    assert got[:MAX_IMMEDIATE] == [0.0] * MAX_IMMEDIATE  # "poll now" is honoured at first
    assert all(d > 0 for d in got[MAX_IMMEDIATE:])  # then the policy's own pace
    assert max(got) == pytest.approx(pace)  # growing to it, for the backoffs
    assert len(got) < 700  # ten minutes: ~1 poll a second at most, not thousands


@pytest.mark.parametrize(
    "policy",
    [
        FixedInterval(1.0, max_immediate=1),
        ExponentialBackoff(1.0, 1.0, 1.0, jitter="none", max_immediate=1),
        Adaptive(initial=1.0, random=constant(0.0), max_immediate=1),
    ],
    ids=["fixed", "exponential", "adaptive"],
)
def test_a_positive_hint_or_none_ends_the_run_of_zero_hints(policy: PollingPolicy) -> None:
    schedule = policy.schedule()
    zero = obs(status(retry_after=0.0))
    assert delays(schedule, [zero, zero]) == [0.0, 1.0]
    assert schedule.next(obs(status(retry_after=0.5))).delay == 0.5  # a real hint: honoured
    assert schedule.next(zero).delay == 0.0  # a new run starts
    if not isinstance(policy, Adaptive):  # (Adaptive backs off without hints: see above)
        schedule.next(obs(status()))
        assert schedule.next(zero).delay == 0.0


def test_the_cap_is_the_same_for_every_policy() -> None:
    assert FixedInterval().max_immediate == ExponentialBackoff().max_immediate == MAX_IMMEDIATE
    assert Adaptive().max_immediate == MAX_IMMEDIATE


# --------------------------------------------------------------------------------------------
# LongPolling


def test_long_polling_holds_from_the_first_poll() -> None:
    schedule = LongPolling(20.0).schedule()
    first = schedule.next(obs(status(JobState.PENDING, retry_after=5.0), polls=0))
    assert first == PollDecision(delay=0.0, wait=20.0)
    assert schedule.next(obs(status(held=True))) == PollDecision(delay=0.0, wait=20.0)
    # Once the server is known to hold requests, an immediate answer does not change that.
    assert schedule.next(obs(status(held=False))) == PollDecision(delay=0.0, wait=20.0)


def test_long_polling_falls_back_when_the_server_does_not_hold() -> None:
    schedule = LongPolling(20.0, fallback=FixedInterval(2.0)).schedule()
    schedule.next(obs(status(), polls=0))
    # Answered at once, without Preference-Applied: the fallback's delay, still asking.
    assert schedule.next(obs(status())) == PollDecision(delay=2.0, wait=20.0)
    assert schedule.next(obs(status(retry_after=0.5))) == PollDecision(delay=0.5, wait=20.0)
    # The server starts holding: no more sleeping.
    assert schedule.next(obs(status(held=True))) == PollDecision(delay=0.0, wait=20.0)


def test_long_polling_default_fallback_is_adaptive() -> None:
    schedule = LongPolling(10.0).schedule()
    schedule.next(obs(None, polls=0))
    assert schedule.next(obs(status(retry_after=1.25))).delay == 1.25


def test_long_polling_fallback_with_a_bad_delay_is_clamped() -> None:
    class Weird:
        def schedule(self) -> PollSchedule:
            return self  # type: ignore[return-value]

        def next(self, observation: PollObservation) -> PollDecision:
            return PollDecision(delay=-5.0 if observation.polls % 2 else float("nan"))

    schedule = LongPolling(3.0, fallback=Weird()).schedule()
    schedule.next(obs(polls=0))
    assert schedule.next(obs(status(), polls=1)).delay == 0.0
    assert schedule.next(obs(status(), polls=2)).delay == 0.0


# --------------------------------------------------------------------------------------------
# Construction


@pytest.mark.parametrize(
    "factory",
    [
        lambda: FixedInterval(-1.0),
        lambda: FixedInterval(float("nan")),
        lambda: ExponentialBackoff(initial=-1.0),
        lambda: ExponentialBackoff(factor=0.5),
        lambda: ExponentialBackoff(initial=5.0, cap=1.0),
        lambda: ExponentialBackoff(jitter="some"),  # type: ignore[arg-type]
        lambda: Adaptive(min_delay=5.0, max_delay=1.0),
        lambda: Adaptive(jitter=2.0),
        lambda: Adaptive(factor=0.9),
        lambda: Adaptive(max_immediate=-1),
        lambda: FixedInterval(max_immediate=-1),
        lambda: ExponentialBackoff(max_immediate=1.5),  # type: ignore[arg-type]
        lambda: LongPolling(0.0),
        lambda: LongPolling(float("inf")),
    ],
)
def test_invalid_parameters_are_rejected(factory: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        factory()


def test_policies_are_values() -> None:
    assert FixedInterval(2.0) == FixedInterval(2.0)
    assert "Adaptive(" in repr(Adaptive())
    assert ExponentialBackoff() == ExponentialBackoff(random=constant(0.3))  # random ignored
    assert LongPolling(5.0).fallback is None
