"""The state the flows share: what the client knows of one operation (``OperationState``) and
the settings of one wait (``WaitOptions``). Plain values, no I/O; :mod:`._flow` re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._arguments import polling_policy, seconds_or_none, wait_mode
from ._models import JobStatus
from ._policies import PollingPolicy
from .dialects import Submission

__all__ = ["OperationState", "WaitMode", "WaitOptions"]

WaitMode = Literal["auto", "sse", "long-poll", "poll"]


@dataclass(slots=True)
class OperationState:
    """What the client knows of one operation; owned by an ``Operation`` and updated by flows.

    Attributes:
        status_url: absolute URL of the status monitor.
        id: the job id, when known.
        events_url: absolute URL of the SSE stream, when known.
        cancel_url: absolute URL to cancel at (with the dialect's method), when known.
        final_url: where the final result lives when the status does not say (ARM).
        submission: the interpreted submission, when this client made it. Its ``status``
            follows ``last``: only the latest snapshot is kept alive, not the first one too.
        last: the latest snapshot.
        seen: whether the server ever acknowledged the job (its submission or a status).
        answered: whether the status URL (or the event stream) ever answered with a status;
            only then is a 404 there a job that vanished (``JobExpiredError``), before it is
            ``JobNotFoundError``: a 404 makes no claim that the job ever existed (RFC 9110
            §15.5.5), however the operation was obtained (submitted, resumed, attached).
        first_delay: the submission's ``Retry-After``, honoured before the first poll.
        sse_unusable: the event stream failed once (refused, or dropped too often): later
            waits in ``"auto"`` mode poll straight away.
    """

    status_url: str | None
    id: str | None = None
    events_url: str | None = None
    cancel_url: str | None = None
    final_url: str | None = None
    submission: Submission | None = None
    last: JobStatus | None = None
    seen: bool = False
    answered: bool = False
    first_delay: float | None = None
    sse_unusable: bool = False

    def learn(self, status: JobStatus) -> None:
        """Record a snapshot, keeping URLs it reveals that were not known yet."""
        self.last = status
        submission = self.submission
        if submission is not None and submission.status is not status:
            self.submission = submission.with_status(status)
        self.seen = True
        self.id = self.id or status.id
        self.events_url = self.events_url or status.events_url
        self.cancel_url = self.cancel_url or status.cancel_url


@dataclass(frozen=True, slots=True)
class WaitOptions:
    """Per-call settings of a wait.

    Attributes:
        timeout: seconds the wait may last (``None``: no limit).
        polling: the policy (``None``: the client's); a number of seconds is
            ``FixedInterval(seconds)``.
        mode: ``"auto"``, ``"sse"``, ``"long-poll"`` or ``"poll"`` (any case).
        watching: the caller watches progress (``on_progress``, ``watch()``): a snapshot
            already terminal is reported once, and hints that point at the job's end are
            split into a progress-friendly pace (``_pace``).
    """

    timeout: float | None = None
    polling: PollingPolicy | None = None
    mode: WaitMode = "auto"
    watching: bool = False

    def __post_init__(self) -> None:
        # Normalised here, once for every wait (frozen: set through object.__setattr__).
        object.__setattr__(self, "mode", wait_mode(self.mode))
        object.__setattr__(self, "polling", polling_policy(self.polling))
        object.__setattr__(self, "timeout", seconds_or_none(self.timeout, "timeout"))
