"""The pace of a wait whose caller watches progress (``on_progress``, ``watch()``). Pure.

A 202's ``Retry-After`` often says when the job should *end* (the reference server sends its
estimated duration): honoured as it is, a poller sees the job start and end and nothing in
between. When the caller watches progress, a hint that merely points at the expected end
(it is at least most of ``estimated_remaining``) is split: the wait polls about
``SPLIT`` times over the estimate, never more often than the policy's own floor nor than
``FLOOR`` seconds. A hint shorter than the server's estimate is a pace the server chose
(a rate limit, say) and is honoured unchanged, as is every hint of a server that gives no
estimate.
"""

from __future__ import annotations

from ._models import JobStatus
from ._policies import Adaptive, ExponentialBackoff, FixedInterval, LongPolling

__all__ = ["FLOOR", "SPLIT", "ProgressPace", "pace_floor"]

#: Polls over the expected duration of a job when the caller watches its progress.
SPLIT = 10
#: The shortest delay between two polls made for progress alone.
FLOOR = 0.25
#: A hint at least this share of the server's estimate points at the job's end.
_END_SHARE = 0.8


def pace_floor(policy: object) -> float:
    """The shortest delay ``policy`` itself would choose without hints: ``Adaptive``'s
    ``min_delay``, ``FixedInterval``'s ``interval``, ``ExponentialBackoff``'s ``initial``,
    a ``LongPolling``'s fallback's; never below :data:`FLOOR`.

    Example:
        >>> pace_floor(FixedInterval(2.0)), pace_floor(Adaptive())
        (2.0, 0.25)
    """
    if isinstance(policy, Adaptive):
        own = policy.min_delay
    elif isinstance(policy, FixedInterval):
        own = policy.interval
    elif isinstance(policy, ExponentialBackoff):
        own = policy.initial
    elif isinstance(policy, LongPolling):
        return pace_floor(policy.fallback if policy.fallback is not None else Adaptive())
    else:
        own = 0.0
    return max(own, FLOOR)


class ProgressPace:
    """One watched wait's pace: fixed from the first estimate that a hint points at.

    Example:
        >>> from asyncreply_client._models import JobState
        >>> pace = ProgressPace(Adaptive())
        >>> ending = JobStatus(state=JobState.PENDING, retry_after=5.0, estimated_remaining=5.0)
        >>> pace.delay(5.0, ending)
        0.5
    """

    __slots__ = ("_floor", "_pace")

    def __init__(self, policy: object) -> None:
        self._floor = pace_floor(policy)
        self._pace: float | None = None

    def delay(self, delay: float, status: JobStatus | None) -> float:
        """``delay`` (from a hint in ``status``), shortened when the hint points at the end."""
        remaining = None if status is None else status.estimated_remaining
        if remaining is None or not remaining > 0 or delay < _END_SHARE * remaining:
            return delay
        if self._pace is None:
            self._pace = max(remaining / SPLIT, self._floor)
        return min(delay, self._pace)
