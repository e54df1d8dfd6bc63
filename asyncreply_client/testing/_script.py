"""What a fake job answers, declared fluently: :class:`JobScript` (the steps of one route) and
:class:`FakeJob` (where one submitted job stands in its script)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from ._clock import EPOCH

if TYPE_CHECKING:
    from ._api import FakeAsyncAPI

__all__ = ["CANCELLED", "PENDING", "FakeJob", "JobScript", "Rejection", "Step", "check_delay"]


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted status answer."""

    kind: str
    retry_after: float | None = None
    progress: tuple[float, float | None, str | None] | None = None
    result: Any = None
    file: bytes | None = None
    content_type: str = "application/json"
    filename: str | None = None
    inline: bool = False
    error: tuple[str, str, bool] | None = None
    dead_letter: bool = False
    status_code: int = 200
    body: Any = None
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def is_document(self) -> bool:
        """Whether this step is a state of the job (rather than a raw or gone answer)."""
        return self.kind in ("pending", "processing", "completed", "failed", "cancelled")

    @property
    def is_terminal(self) -> bool:
        """Whether the job cannot change after this step."""
        return self.kind in ("completed", "failed", "cancelled", "expired", "not_found")


PENDING = Step("pending", retry_after=0.0)
CANCELLED = Step("cancelled")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A script's refusal of every submission."""

    status_code: int
    code: str
    message: str
    details: Any


class JobScript:
    """The scripted life of the jobs submitted to one route of a :class:`FakeAsyncAPI`.

    Build it fluently: each status step method appends one answer and returns the script.
    Every status request (``GET`` on the status URL) consumes the next step; the last step is
    repeated forever. Each submission starts a new :class:`FakeJob` at the first step.

    Example:
        >>> from asyncreply_client.testing import FakeAsyncAPI
        >>> api = FakeAsyncAPI()
        >>> script = api.job("/reports").pending(retry_after=10).failed(code="boom")
        >>> [step.kind for step in script.steps]
        ['pending', 'failed']
    """

    def __init__(
        self,
        api: FakeAsyncAPI,
        *,
        path: str,
        method: str,
        status_path: str,
        retry_after: float | None,
        events: bool,
        long_poll: bool,
        job_id: str | None,
        match: Callable[[httpx.Request], bool] | None,
    ) -> None:
        self._api = api
        self.path = path
        self.method = method
        self.status_path = status_path
        self.retry_after = retry_after
        self.events = events
        self.long_poll = long_poll
        self._job_id = job_id
        self._match = match
        self._steps: list[Step] = []
        self._rejection: Rejection | None = None
        self.jobs: list[FakeJob] = []
        self.submissions: list[httpx.Request] = []
        self._keys: dict[str, FakeJob] = {}

    @property
    def steps(self) -> tuple[Step, ...]:
        """The scripted steps, in order (read-only view)."""
        return tuple(self._steps)

    @property
    def job(self) -> FakeJob:
        """The most recently created job of this script.

        Raises:
            LookupError: when no job was submitted or created yet.
        """
        if not self.jobs:
            raise LookupError(f"no job was submitted to {self.method} {self.path} yet")
        return self.jobs[-1]

    # -- status steps --------------------------------------------------------------------

    def _add(self, step: Step) -> JobScript:
        if self._rejection is not None:
            raise ValueError("a script that rejects submissions cannot have status steps")
        self._steps.append(step)
        return self

    def pending(self, *, retry_after: float | None = 0.0) -> JobScript:
        """Answer ``pending`` once, with ``Retry-After: retry_after`` (``None``: no hint)."""
        return self._add(Step("pending", retry_after=check_delay(retry_after)))

    def processing(
        self,
        *,
        retry_after: float | None = 0.0,
        progress: float | None = None,
        total: float | None = 1.0,
        message: str | None = None,
    ) -> JobScript:
        """Answer ``processing`` once, optionally with progress ``progress`` of ``total``."""
        prog = None if progress is None else (float(progress), total, message)
        return self._add(Step("processing", retry_after=check_delay(retry_after), progress=prog))

    def progress(
        self,
        current: float,
        total: float | None = 1.0,
        *,
        message: str | None = None,
        retry_after: float | None = 0.0,
    ) -> JobScript:
        """Answer ``processing`` once with progress ``current`` of ``total``.

        ``progress(0.5)`` is 50 %; ``progress(2, 5, message="step 2/5")`` is two of five.
        """
        return self.processing(
            retry_after=retry_after, progress=current, total=total, message=message
        )

    def completed(
        self,
        result: Any = None,
        *,
        file: bytes | None = None,
        content_type: str | None = None,
        filename: str | None = None,
        inline: bool = False,
    ) -> JobScript:
        """Finish the job with a JSON ``result``, or with a ``file`` (bytes + content type).

        In the reference dialect a completed job answers ``303 See Other`` to its result URL
        (``inline=True``: 200 with the result in the status document); in the status-code
        dialect, 200 with the result as the body (303 for a file).
        """
        if file is not None and result is not None:
            raise ValueError("give either a JSON result or a file, not both")
        if inline and file is not None:
            raise ValueError("a file result cannot be inline")
        ctype = content_type or ("application/octet-stream" if file is not None else None)
        return self._add(
            Step(
                "completed",
                result=result,
                file=file,
                content_type=ctype or "application/json",
                filename=filename,
                inline=inline,
            )
        )

    def failed(
        self,
        *,
        code: str = "job_failed",
        message: str = "the job failed",
        retryable: bool = False,
        dead_letter: bool = False,
    ) -> JobScript:
        """Finish the job as failed with the given error.

        A ``retryable`` failure followed by more steps offers a ``retryUrl``: a ``POST`` to it
        answers 202 with a new job (``originalJobId``) that starts at the next step, so one
        script describes the first attempt and the retry. Otherwise the retry URL is absent
        and a ``POST`` answers 409 ``not_retryable``.

        Example:
            >>> from asyncreply_client.testing import FakeAsyncAPI
            >>> api = FakeAsyncAPI()
            >>> _ = api.job().failed(code="flaky", retryable=True).completed({"ok": True})
        """
        return self._add(Step("failed", error=(code, message, retryable), dead_letter=dead_letter))

    def cancelled(self) -> JobScript:
        """Finish the job as cancelled."""
        return self._add(Step("cancelled"))

    def expired(self) -> JobScript:
        """Answer ``410 Gone`` (``{"error": {"code": "expired"}}``) from now on."""
        return self._add(Step("expired", status_code=410))

    def not_found(self) -> JobScript:
        """Answer ``404 Not Found`` (``{"error": {"code": "not_found"}}``) from now on."""
        return self._add(Step("not_found", status_code=404))

    def respond(
        self,
        status_code: int,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JobScript:
        """Answer once with an arbitrary response (a 503, a garbage body, …).

        ``json`` is serialised as the body; ``content`` is sent as raw bytes instead.
        """
        if json is not None and content is not None:
            raise ValueError("give either json or content, not both")
        return self._add(
            Step(
                "raw",
                status_code=status_code,
                body=json,
                content=content,
                headers=tuple((headers or {}).items()),
            )
        )

    def rejects(
        self,
        status_code: int = 400,
        *,
        code: str = "invalid_input",
        message: str = "the submission was rejected",
        details: Any = None,
    ) -> JobScript:
        """Refuse every submission with ``status_code`` and an error body (no job created)."""
        if self._steps:
            raise ValueError("a script with status steps cannot also reject submissions")
        if not 400 <= status_code <= 599:
            raise ValueError(f"a rejection needs a 4xx or 5xx status, not {status_code}")
        self._rejection = Rejection(status_code, code, message, details)
        return self

    # -- jobs ----------------------------------------------------------------------------

    def create(self, *, job_type: str = "job", job_input: Any = None) -> FakeJob:
        """Create a job as if it had been submitted (to test attaching to a status URL)."""
        return self._api._create_job(self, job_type=job_type, job_input=job_input)

    def _next_id(self) -> str:
        n = len(self.jobs) + 1
        if self._job_id is not None:
            return self._job_id if n == 1 else f"{self._job_id}-{n}"
        return f"job-{self._api._next_serial()}"

    def _matches(self, request: httpx.Request) -> bool:
        return self._match is None or bool(self._match(request))


@dataclass(eq=False)
class FakeJob:
    """One job of a :class:`FakeAsyncAPI`: where its script stands and what was asked of it.

    Attributes:
        id: the job id.
        script: the script it follows.
        status_url: its absolute status URL.
        requests: every request about this job (status, result, events, cancel), in order.
        polls: the status requests alone.
        cursor: index of the next step to answer.
        original_job_id: for a job started by a retry, the id of the failed job.
    """

    id: str
    script: JobScript
    status_url: str
    job_type: str = "job"
    job_input: Any = None
    requests: list[httpx.Request] = field(default_factory=list)
    polls: list[httpx.Request] = field(default_factory=list)
    cursor: int = 0
    index: int | None = None
    current: Step | None = None
    last_progress: tuple[float, float | None, str | None] | None = None
    created_at: datetime = EPOCH
    cancelled: bool = False
    event_seq: int = 0
    original_job_id: str | None = None

    @property
    def state(self) -> str:
        """The state the job last reported (``"pending"`` before any status request)."""
        return "pending" if self.current is None else self.current.kind

    @property
    def result_url(self) -> str:
        """The absolute URL of its result."""
        return f"{self.status_url}/result"

    @property
    def retry_url(self) -> str:
        """The absolute URL that retries it (offered only for a retryable failure)."""
        return f"{self.status_url}/retry"

    @property
    def retryable(self) -> bool:
        """Whether it failed retryably with script steps left for a retry."""
        step = self.current
        return (
            step is not None
            and step.kind == "failed"
            and step.error is not None
            and step.error[2]
            and self.index is not None
            and self.index + 1 < len(self.script._steps)
        )

    @property
    def events_url(self) -> str:
        """The absolute URL of its event stream."""
        return f"{self.status_url}/events"

    def _peek(self) -> Step:
        """The step the next status request would get."""
        steps = self.script._steps
        if self.cancelled:
            return CANCELLED
        if self.current is not None and self.current.is_terminal:
            return self.current  # a finished job stays finished (steps after it are a retry's)
        if not steps:
            return PENDING
        return steps[min(self.cursor, len(steps) - 1)]

    @property
    def _exhausted(self) -> bool:
        """Whether the last scripted step has been served (it now repeats)."""
        return (
            self.cancelled
            or self.cursor >= len(self.script._steps)
            or (self.current is not None and self.current.is_terminal)
        )

    def _advance(self) -> Step:
        step = self._peek()
        if step is self.current and step.is_terminal:
            return step
        steps = self.script._steps
        if not self.cancelled and steps:
            self.index = min(self.cursor, len(steps) - 1)
        self.cursor = min(self.cursor + 1, len(self.script._steps))
        if step.progress is not None:
            self.last_progress = step.progress
        self.current = step
        return step


def check_delay(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"retry_after must be a finite number >= 0, not {value!r}")
    return value
