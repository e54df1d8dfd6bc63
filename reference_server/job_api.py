"""What a job handler sees and returns: :class:`JobType`, :class:`JobContext`,
:class:`FileResult` and :class:`JobFailure`.

This is the extension API of the reference server (custom job types); the job manager in
:mod:`reference_server.jobs` runs handlers through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import sys
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from .records import JobError, JobRecord, StoredResult

if TYPE_CHECKING:
    from .jobs import JobManager

__all__ = [
    "FileResult",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobFailure",
    "JobType",
    "resolve_job_type",
    "stored_result",
]

Handler = Callable[["JobContext", Any], Awaitable[Any]]
"""A job handler: ``async def handler(ctx: JobContext, input: Model) -> result``."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """A file a handler returns instead of JSON.

    Example:
        >>> FileResult(b"a,b\\n1,2\\n", content_type="text/csv", filename="report.csv").filename
        'report.csv'
    """

    content: bytes
    content_type: str = "application/octet-stream"
    filename: str = "result.bin"


class JobFailure(Exception):
    """Raised by a handler to fail its job with a code and a message.

    Retryable failures are retried by the server (up to ``max_attempts``, with exponential
    backoff); after the last attempt the job is failed and marked ``deadLetter``.

    Example:
        >>> raise JobFailure("upstream_down", "the upstream is down", retryable=True)
        Traceback (most recent call last):
        ...
        reference_server.job_api.JobFailure: upstream_down: the upstream is down
    """

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class JobCancelled(Exception):
    """Raised inside a handler by :meth:`JobContext.raise_if_cancelled` once it is cancelled."""


@dataclass(frozen=True)
class JobType:
    """A job type: the handler plus, optionally, its input model and a run-time estimate.

    A bare handler function is turned into a ``JobType`` whose input model is the annotation
    of the handler's second parameter (``dict`` or ``Any``: no model validation).

    Example:
        >>> from pydantic import BaseModel
        >>> class In(BaseModel):
        ...     n: int
        >>> async def double(ctx: JobContext, input: In) -> int:
        ...     return input.n * 2
        >>> jt = JobType(run=double, model=In, estimate=lambda i: 0.1)
    """

    run: Handler
    model: Any = None
    estimate: Callable[[Any], float | None] | None = None


@dataclass(frozen=True)
class _Resolved:
    name: str
    run: Handler
    adapter: TypeAdapter[Any]
    estimate: Callable[[Any], float | None] | None


def _input_annotation(run: Handler) -> Any:
    """Return the annotation of the handler's second parameter (``Any`` if there is none)."""
    try:
        params = list(inspect.signature(run).parameters.values())
    except (TypeError, ValueError):
        return Any
    if len(params) < 2:
        return Any
    name = params[1].name
    try:
        hints = typing.get_type_hints(run)
    except Exception:
        hints = {}
    annotation = hints.get(name, params[1].annotation)
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return Any
    return annotation


def resolve_job_type(name: str, spec: Handler | JobType) -> _Resolved:
    """Turn a handler or a :class:`JobType` into what the manager runs."""
    if isinstance(spec, JobType):
        model = spec.model if spec.model is not None else _input_annotation(spec.run)
        return _Resolved(name, spec.run, TypeAdapter(model), spec.estimate)
    return _Resolved(name, spec, TypeAdapter(_input_annotation(spec)), None)


class JobContext:
    """What a running handler sees: its job, progress reporting and the cancellation signal.

    Example:
        >>> async def handler(ctx: JobContext, input: dict) -> dict:
        ...     for i in range(3):
        ...         await ctx.sleep(0.01)  # returns early and raises if cancelled
        ...         await ctx.progress(i + 1, 3, f"step {i + 1}/3")
        ...     return {"attempt": ctx.attempt}
    """

    def __init__(self, manager: JobManager, job: JobRecord, cancelled: asyncio.Event) -> None:
        self._manager = manager
        self._job = job
        self._attempt = job.attempt
        #: Set when the job is cancelled (or expires, or is cleared) while running.
        self.cancelled = cancelled

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self._job.id

    @property
    def attempt(self) -> int:
        """The attempt number, from 1."""
        return self._attempt

    @property
    def owner(self) -> str:
        """The user who submitted the job."""
        return self._job.owner

    async def progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress (shown in status documents, SSE ``progress`` events, webhooks)."""
        await self._manager.report_progress(self._job, self._attempt, current, total, message)
        await asyncio.sleep(0)

    @property
    def max_result_bytes(self) -> int:
        """The largest result this server keeps (config ``max_result_bytes``).

        A handler that knows early that it will exceed it should raise
        ``JobFailure("result_too_large", ...)`` instead of building the result.
        """
        return self._manager.config.max_result_bytes

    @property
    def max_result_rows(self) -> int:
        """The most rows a job may generate (config ``max_result_rows``)."""
        return self._manager.config.max_result_rows

    def set_estimate(self, seconds: float) -> None:
        """Declare the expected run time of this attempt (feeds ``estimatedCompletion``)."""
        self._manager.set_estimate(self._job, self._attempt, seconds)

    def raise_if_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job has been cancelled."""
        if self.cancelled.is_set():
            raise JobCancelled(self._job.id)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, waking at once on cancellation (then raise :class:`JobCancelled`)."""
        with contextlib.suppress(asyncio.TimeoutError):
            if sys.version_info >= (3, 11):
                # In the handler's task: wait_for would wait in a task of its own.
                async with asyncio.timeout(max(seconds, 0.0)):
                    await self.cancelled.wait()
            else:  # pragma: no cover - Python 3.10
                await asyncio.wait_for(self.cancelled.wait(), max(seconds, 0.0))
        self.raise_if_cancelled()


def stored_result(outcome: Any, max_bytes: int) -> StoredResult | JobError:
    """What a handler returned, as the server stores it, or why it cannot be stored.

    A :class:`FileResult` is kept as a file; anything else must serialise to strict JSON
    (pydantic models are dumped first). A result over ``max_bytes`` is refused with
    ``result_too_large``.
    """
    if isinstance(outcome, FileResult):
        stored = StoredResult(
            "file", bytes(outcome.content), outcome.content_type, outcome.filename
        )
    else:
        value = outcome.model_dump(mode="json") if isinstance(outcome, BaseModel) else outcome
        try:
            data = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            return JobError("internal_error", f"the handler returned a non-JSON result: {exc}")
        stored = StoredResult("json", data, "application/json")
    if len(stored.data) > max_bytes:
        size = len(stored.data)
        return JobError(
            "result_too_large", f"the result ({size} bytes) exceeds the limit of {max_bytes} bytes"
        )
    return stored
