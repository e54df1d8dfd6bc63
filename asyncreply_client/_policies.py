"""Polling policies: when to send the next status request. Pure; time is passed in.

A policy is a factory of schedules, one per wait; a schedule is asked, after each status
snapshot, how long to sleep before the next request (:class:`PollDecision`). Everything a
schedule knows comes in a :class:`PollObservation`: the latest snapshot (whose
``retry_after``, ``estimated_remaining``, ``progress`` and ``held`` the dialect filled in
from headers and body), the clock's reading and the number of polls so far. Before the first
poll the flow passes the submission's snapshot with ``polls=0``, so a 202's ``Retry-After``
is honoured before the first request. Delays are never negative; the flow clamps them to
the wait's deadline.

Long polling: :class:`LongPolling` decides ``PollDecision(delay=0, wait=N)``; the flow then
asks the server to hold the request (``?wait=N`` and ``Prefer: wait=N``). Whether the server
did is read from ``JobStatus.held`` (the dialect sets it from ``Preference-Applied: wait``);
until it has been seen once, the fallback policy's delays are used, so a server that ignores
``wait`` is never hammered.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ._headers import MAX_RETRY_AFTER
from ._models import JobState, JobStatus

__all__ = [
    "MAX_IMMEDIATE",
    "Adaptive",
    "hint_ceiling",
    "ExponentialBackoff",
    "FixedInterval",
    "LongPolling",
    "PollDecision",
    "PollObservation",
    "PollSchedule",
    "PollingPolicy",
]

RandomFn = Callable[[], float]
"""A source of uniform floats in [0, 1) (``random.random``); injected for tests."""

_DEFAULT_CEILING = 300.0
#: One cap for every policy: immediate polls in a row that a server's ``Retry-After: 0`` (or
#: ``retryAfter: 0``) may ask for before the policy's own pace applies again.
MAX_IMMEDIATE = 3


@dataclass(frozen=True, slots=True)
class PollObservation:
    """What a schedule knows when it decides the next delay.

    Attributes:
        status: the latest snapshot (the submission's before the first poll). Its
            ``retry_after`` is the server's hint from headers or body, already parsed.
        now: the clock's reading (seconds, monotonic).
        started: the clock's reading when the wait started.
        polls: how many status requests this wait has made so far.
    """

    status: JobStatus | None
    now: float
    started: float
    polls: int


@dataclass(frozen=True, slots=True)
class PollDecision:
    """Sleep ``delay`` seconds, then poll; with ``wait`` set, ask the server to hold the
    request up to that many seconds (long polling, ``?wait=N``)."""

    delay: float
    wait: float | None = None


class PollSchedule(Protocol):
    """The per-wait state of a policy."""

    def next(self, observation: PollObservation) -> PollDecision:
        """Decide the next poll. The flow clamps the result to the wait's deadline."""
        ...


class PollingPolicy(Protocol):
    """A polling policy: a factory of schedules, one per wait (so one policy object can be
    shared by many operations)."""

    def schedule(self) -> PollSchedule:
        """Return a fresh schedule for one wait."""
        ...


# --------------------------------------------------------------------------------------------
# Helpers


def _hint(status: JobStatus | None) -> float | None:
    """The server's Retry-After hint (seconds, >= 0), or ``None`` when it gave none."""
    if status is None or status.retry_after is None:
        return None
    value = status.retry_after
    if math.isnan(value):
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER)  # +inf: absurd, clamped like any huge hint


def _unit(random: RandomFn) -> float:
    """A draw of ``random`` forced into [0, 1] (a bad injected source cannot break us)."""
    value = random()
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


class _ZeroRun:
    """The cap on runs of zero delays, shared by every policy: a server answering
    ``Retry-After: 0`` forever gets ``limit`` immediate polls in a row, then the policy's own
    pace (``pace()``) for as long as the hints stay ``0``; a positive delay ends the run."""

    __slots__ = ("_limit", "_zeros")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._zeros = 0

    def cap(self, delay: float, pace: Callable[[], float]) -> float:
        """``delay``, or ``pace()`` once ``delay`` is one zero too many in a row."""
        if delay > 0:
            self._zeros = 0
            return delay
        self._zeros += 1
        return delay if self._zeros <= self._limit else pace()

    def reset(self) -> None:
        """End the run: the last decision was no server's hint."""
        self._zeros = 0


def _check_immediate(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_immediate must be an int >= 0, got {value!r}")


def _check(name: str, value: float, *, low: float = 0.0, positive: bool = False) -> None:
    if not math.isfinite(value) or value < low or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")


def hint_ceiling(policy: object) -> float:
    """The longest server hint ``policy`` honours: ``Adaptive.max_delay``, the
    ``max_retry_after`` of ``FixedInterval`` / ``ExponentialBackoff``, a ``LongPolling``'s
    fallback's; 300 s for a policy that names none. The flow clamps the submission's
    ``Retry-After`` (slept before the first poll) to it, like every other hint.

    Example:
        >>> hint_ceiling(Adaptive()), hint_ceiling(FixedInterval(max_retry_after=5.0))
        (60.0, 5.0)
    """
    if isinstance(policy, Adaptive):
        return policy.max_delay
    if isinstance(policy, (FixedInterval, ExponentialBackoff)):
        return policy.max_retry_after
    if isinstance(policy, LongPolling):
        return hint_ceiling(policy.fallback if policy.fallback is not None else Adaptive())
    return _DEFAULT_CEILING


# --------------------------------------------------------------------------------------------
# FixedInterval


@dataclass(frozen=True, slots=True)
class FixedInterval:
    """Poll every ``interval`` seconds (or as the server's ``Retry-After`` says).

    Args:
        interval: seconds between polls, also before the first one.
        honour_retry_after: use the server's hint instead of ``interval`` when it gives one
            (``0`` polls at once).
        max_retry_after: ceiling of an honoured hint (absurd values are clamped to it).
        max_immediate: immediate polls in a row that zero hints may ask for; after that,
            ``interval`` applies while the hints stay ``0`` (a server answering
            ``Retry-After: 0`` forever is not polled in a tight loop).

    Example:
        >>> s = FixedInterval(2.0).schedule()
        >>> s.next(PollObservation(status=None, now=0.0, started=0.0, polls=0))
        PollDecision(delay=2.0, wait=None)
    """

    interval: float = 1.0
    honour_retry_after: bool = field(default=True, kw_only=True)
    max_retry_after: float = field(default=_DEFAULT_CEILING, kw_only=True)
    max_immediate: int = field(default=MAX_IMMEDIATE, kw_only=True)

    def __post_init__(self) -> None:
        _check("interval", self.interval)
        _check("max_retry_after", self.max_retry_after)
        _check_immediate(self.max_immediate)

    def schedule(self) -> PollSchedule:
        """Return a schedule (stateless: the same decision every time)."""
        return _FixedSchedule(self)


class _FixedSchedule:
    __slots__ = ("_policy", "_zeros")

    def __init__(self, policy: FixedInterval) -> None:
        self._policy = policy
        self._zeros = _ZeroRun(policy.max_immediate)

    def _interval(self) -> float:
        return self._policy.interval

    def next(self, observation: PollObservation) -> PollDecision:
        hint = _hint(observation.status) if self._policy.honour_retry_after else None
        if hint is not None:
            delay = self._zeros.cap(min(hint, self._policy.max_retry_after), self._interval)
            return PollDecision(delay=delay)
        self._zeros.reset()
        return PollDecision(delay=self._policy.interval)


# --------------------------------------------------------------------------------------------
# ExponentialBackoff


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Delays growing by ``factor`` from ``initial`` up to ``cap``, with optional full jitter.

    With ``jitter="full"`` each delay is drawn uniformly from ``[0, d]`` (the "full jitter"
    of the AWS architecture blog), which spreads many clients apart. A server hint
    (``Retry-After``) replaces the computed delay when ``honour_retry_after``.

    Args:
        initial: the first delay (seconds).
        factor: growth per poll (>= 1).
        cap: the largest delay.
        jitter: ``"full"`` or ``"none"``.
        honour_retry_after: use the server's hint when it gives one.
        max_retry_after: ceiling of an honoured hint.
        max_immediate: immediate polls in a row that zero hints may ask for; after that,
            the backoff applies (and goes on growing) while the hints stay ``0``.
        random: uniform [0, 1) source for the jitter.

    Example:
        >>> s = ExponentialBackoff(1.0, 2.0, 5.0, jitter="none").schedule()
        >>> obs = PollObservation(status=None, now=0.0, started=0.0, polls=0)
        >>> [s.next(obs).delay for _ in range(4)]
        [1.0, 2.0, 4.0, 5.0]
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: Literal["full", "none"] = "full"
    honour_retry_after: bool = field(default=True, kw_only=True)
    max_retry_after: float = field(default=_DEFAULT_CEILING, kw_only=True)
    max_immediate: int = field(default=MAX_IMMEDIATE, kw_only=True)
    random: RandomFn = field(default=_random.random, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check("initial", self.initial)
        _check("factor", self.factor, low=1.0)
        _check("cap", self.cap, low=self.initial)
        _check("max_retry_after", self.max_retry_after)
        _check_immediate(self.max_immediate)
        if self.jitter not in ("full", "none"):
            raise ValueError(f"jitter must be 'full' or 'none', got {self.jitter!r}")

    def schedule(self) -> PollSchedule:
        """Return a fresh schedule starting at ``initial``."""
        return _BackoffSchedule(self)


class _BackoffSchedule:
    __slots__ = ("_base", "_current", "_policy", "_zeros")

    def __init__(self, policy: ExponentialBackoff) -> None:
        self._policy = policy
        self._current = policy.initial
        self._base = policy.initial
        self._zeros = _ZeroRun(policy.max_immediate)

    def _backoff(self) -> float:
        if self._policy.jitter == "full":
            return self._base * _unit(self._policy.random)
        return self._base

    def next(self, observation: PollObservation) -> PollDecision:
        p = self._policy
        self._base = self._current
        # Grows to the cap and stays there: no overflow however long the wait.
        self._current = min(p.cap, self._base * p.factor)
        hint = _hint(observation.status) if p.honour_retry_after else None
        if hint is not None:
            return PollDecision(delay=self._zeros.cap(min(hint, p.max_retry_after), self._backoff))
        self._zeros.reset()
        return PollDecision(delay=self._backoff())


# --------------------------------------------------------------------------------------------
# Adaptive


@dataclass(frozen=True, slots=True)
class Adaptive:
    """The default: follow the server's hints, else estimate the end, else back off.

    Each decision uses the first of:

    1. the server's ``Retry-After`` (seconds, HTTP-date or milliseconds header, or a
       ``retryAfter`` body hint), as given: ``0`` means poll now;
    2. the expected end of the job: ``estimatedCompletion`` (or a body duration such as
       ``estimatedWaitTime``), else the progress rate extrapolated from the fractions seen
       during this wait: the next poll lands near the expected end;
    3. exponential backoff from ``initial`` by ``factor`` (with a little jitter), when the
       server gives no hint or the job is past its expected end.

    Every delay is clamped to ``[min_delay, max_delay]``: ``max_delay`` is the ceiling for
    absurd hints (a ``Retry-After`` of a year). A server that keeps answering ``0`` gets
    at most ``max_immediate`` immediate polls in a row before backoff applies, and that
    backoff keeps growing (to ``max_delay``) for as long as the hints stay ``0``.

    Args:
        min_delay: floor of every delay (``0``: a ``Retry-After: 0`` polls at once).
        max_delay: ceiling of every delay, hints included.
        initial: first backoff delay without hints.
        factor: backoff growth (>= 1).
        jitter: fraction of a backoff delay randomly taken off (0 to 1).
        max_immediate: consecutive zero delays allowed.
        random: uniform [0, 1) source for the jitter.

    Example:
        >>> from asyncreply_client._models import JobState, JobStatus
        >>> s = Adaptive().schedule()
        >>> st = JobStatus(state=JobState.PENDING, retry_after=0.25)
        >>> s.next(PollObservation(status=st, now=0.0, started=0.0, polls=0))
        PollDecision(delay=0.25, wait=None)
    """

    min_delay: float = 0.0
    max_delay: float = 60.0
    initial: float = 0.1
    factor: float = 1.6
    jitter: float = 0.1
    max_immediate: int = MAX_IMMEDIATE
    random: RandomFn = field(default=_random.random, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check("min_delay", self.min_delay)
        _check("max_delay", self.max_delay, low=self.min_delay)
        _check("initial", self.initial)
        _check("factor", self.factor, low=1.0)
        _check("jitter", self.jitter)
        if self.jitter > 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter!r}")
        _check_immediate(self.max_immediate)

    def schedule(self) -> PollSchedule:
        """Return a fresh schedule for one wait."""
        return _AdaptiveSchedule(self)


class _AdaptiveSchedule:
    __slots__ = ("_backoff", "_first_progress", "_policy", "_zeros")

    def __init__(self, policy: Adaptive) -> None:
        self._policy = policy
        self._backoff = policy.initial
        self._zeros = _ZeroRun(policy.max_immediate)
        self._first_progress: tuple[float, float] | None = None

    def _rate_remaining(self, status: JobStatus, now: float) -> float | None:
        """Seconds left by the progress rate seen during this wait, or ``None``."""
        fraction = status.progress.fraction if status.progress is not None else None
        if fraction is None or status.state is not JobState.PROCESSING:
            return None
        first = self._first_progress
        if first is None or fraction < first[1]:
            self._first_progress = (now, fraction)
            return None
        t0, f0 = first
        if fraction <= f0 or now <= t0 or fraction >= 1:
            return None
        rate = (fraction - f0) / (now - t0)
        if not rate > 0 or not math.isfinite(rate):  # underflow on absurdly small steps
            return None
        remaining = (1.0 - fraction) / rate
        return remaining if math.isfinite(remaining) else None

    def _next_backoff(self) -> float:
        p = self._policy
        base = self._backoff
        self._backoff = min(p.max_delay, max(base, 1e-3) * p.factor)
        return base * (1.0 - p.jitter * _unit(p.random))

    def next(self, observation: PollObservation) -> PollDecision:
        p = self._policy
        status = observation.status
        delay = _hint(status)
        rate = None if status is None else self._rate_remaining(status, observation.now)
        if delay is None and status is not None:
            remaining = status.estimated_remaining
            if remaining is None or not math.isfinite(remaining) or remaining <= 0:
                remaining = rate
            if remaining is not None and math.isfinite(remaining) and remaining > 0:
                delay = remaining
        if delay is None:
            delay = self._next_backoff()
        elif delay > 0:
            # A hint or an estimate: the next backoff (if the job runs late) starts afresh.
            # A zero hint does not: a server answering "Retry-After: 0" forever would
            # otherwise be polled at the first backoff step (~10/s) without end.
            self._backoff = p.initial
        delay = self._zeros.cap(delay, self._next_backoff)
        return PollDecision(delay=min(max(delay, p.min_delay), p.max_delay))


# --------------------------------------------------------------------------------------------
# LongPolling


@dataclass(frozen=True, slots=True)
class LongPolling:
    """Ask the server to hold each status request up to ``wait`` seconds (``?wait=N``).

    Decisions are ``PollDecision(delay=0, wait=wait)``: the answer comes as soon as the job
    changes. Until a snapshot shows the server held a request (``JobStatus.held``, from
    ``Preference-Applied: wait``), the delays of ``fallback`` (default :class:`Adaptive`)
    are used, so a server that ignores ``wait`` is polled politely instead of hammered.

    Args:
        wait: seconds the server may hold each request.
        fallback: the policy for servers that do not hold requests.

    Example:
        >>> s = LongPolling(20.0).schedule()
        >>> s.next(PollObservation(status=None, now=0.0, started=0.0, polls=0))
        PollDecision(delay=0.0, wait=20.0)
    """

    wait: float = 30.0
    fallback: PollingPolicy | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check("wait", self.wait, positive=True)

    def schedule(self) -> PollSchedule:
        """Return a fresh schedule (with a fresh fallback schedule)."""
        fallback = self.fallback if self.fallback is not None else Adaptive()
        return _LongPollSchedule(self.wait, fallback.schedule())


class _LongPollSchedule:
    __slots__ = ("_fallback", "_supported", "_wait")

    def __init__(self, wait: float, fallback: PollSchedule) -> None:
        self._wait = wait
        self._fallback = fallback
        self._supported = False

    def next(self, observation: PollObservation) -> PollDecision:
        status = observation.status
        if status is not None and status.held:
            self._supported = True
        if observation.polls == 0 or self._supported:
            # Before the first poll there is nothing to wait for: the held request is the wait.
            return PollDecision(delay=0.0, wait=self._wait)
        decision = self._fallback.next(observation)
        delay = decision.delay if math.isfinite(decision.delay) else 0.0
        # Keep asking: a server that starts holding requests is noticed at once.
        return PollDecision(delay=max(delay, 0.0), wait=self._wait)
