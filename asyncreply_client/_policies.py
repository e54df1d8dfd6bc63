"""Polling policies: when to send the next status request. Pure; time is passed in.

INTERFACE HEAD written by the coordinator; the implementer (C1) completes this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ._models import JobStatus

__all__ = ["PollDecision", "PollObservation", "PollSchedule", "PollingPolicy"]


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
