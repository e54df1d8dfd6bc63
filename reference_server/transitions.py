"""The job state machine as data: the one table of allowed state changes.

Every change of :attr:`JobRecord.state` goes through :func:`advance`, which refuses any
pair missing from :data:`TRANSITIONS` with :class:`IllegalTransition`. An illegal
transition is a bug in the server, never a client error (as in h11, whose connection
states are a table too).

States (reference-dialect names)::

    pending ──▶ processing ──▶ completed
       ▲  │          │   └───▶ failed (deadLetter when retryable attempts ran out)
       │  │          └──(retryable failure, attempts left: backoff)──▶ pending
       │  └──────────┴───────▶ cancelled
    (restart: an interrupted processing job goes back to pending, attempt + 1 on start)
"""

from __future__ import annotations

from collections.abc import Mapping

from .records import JobRecord, JobState

__all__ = ["TRANSITIONS", "IllegalTransition", "advance", "allowed"]

_P, _R = JobState.PENDING, JobState.PROCESSING
_C, _F, _X = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED

#: Every allowed ``(from, to)`` pair and why it happens. A job is created ``pending``.
TRANSITIONS: Mapping[tuple[JobState, JobState], str] = {
    (_P, _R): "a worker starts an attempt",
    (_P, _X): "cancelled before it ran (or while waiting for a retry)",
    (_R, _C): "the handler returned a result",
    (_R, _F): "the handler failed for good (or returned an unusable result)",
    (_R, _P): "a retryable failure with attempts left, or a restart interrupted the attempt",
    (_R, _X): "cancelled while running (or the handler gave up on cancellation)",
}


class IllegalTransition(AssertionError):
    """A state change the table does not allow: a bug in the server, not bad input."""

    def __init__(self, job_id: str, source: JobState, target: JobState) -> None:
        super().__init__(f"job {job_id}: illegal transition {source.value} -> {target.value}")
        self.job_id = job_id
        self.source = source
        self.target = target


def allowed(source: JobState, target: JobState) -> bool:
    """Whether the table allows ``source -> target``."""
    return (source, target) in TRANSITIONS


def advance(job: JobRecord, target: JobState) -> JobState:
    """Move ``job`` to ``target``; return the state it left.

    Raises:
        IllegalTransition: ``(job.state, target)`` is not in :data:`TRANSITIONS`.
    """
    source = job.state
    if (source, target) not in TRANSITIONS:
        raise IllegalTransition(job.id, source, target)
    job.state = target
    return source
