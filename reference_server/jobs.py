"""The job state machine: submission, a bounded worker pool, retries, cancellation, expiry.

All times come from an injected clock (``time.time`` by default). Every change of a job is
written through to the store, appended to the job's event log (which SSE streams replay)
and wakes the requests waiting on that job (long polls, ``Prefer: wait``, SSE): waiting is
event-driven, never a sleep loop.

States (reference-dialect names)::

    pending ──▶ processing ──▶ completed
       ▲  │          │   └───▶ failed (deadLetter when retryable attempts ran out)
       │  │          └──(retryable failure, attempts left: backoff)──▶ pending
       │  └──────────┴───────▶ cancelled
    (restart: an interrupted processing job goes back to pending, attempt + 1 on start)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import time
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, TypeAdapter, ValidationError

from .config import ServerConfig
from .documents import status_document
from .records import (
    EventRecord,
    IdempotencyRecord,
    JobError,
    JobRecord,
    JobState,
    Progress,
    StoredResult,
    Tombstone,
)
from .store import EVENT_LOG_LIMIT, Store

__all__ = [
    "FileResult",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobFailure",
    "JobManager",
    "JobNotFound",
    "JobExpired",
    "JobType",
    "Notifier",
]

log = logging.getLogger("reference_server")

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
        reference_server.jobs.JobFailure: upstream_down: the upstream is down
    """

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class JobCancelled(Exception):
    """Raised inside a handler by :meth:`JobContext.raise_if_cancelled` once it is cancelled."""


class JobNotFound(Exception):
    """No such job for this user (unknown id or another user's job)."""


class JobExpired(Exception):
    """The job existed but has expired."""


@dataclass(frozen=True)
class JobType:
    """A job type: the handler plus, optionally, its input model and a run-time estimate.

    A bare handler function is turned into a ``JobType`` whose input model is the annotation
    of the handler's second parameter (``dict`` or ``Any``: no model validation).

    Example:
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


class Notifier(Protocol):
    """Receives job events (the webhook sender implements it)."""

    def job_event(self, job: JobRecord, event: str, document: dict[str, Any]) -> None:
        """Called with ``event`` in completed/failed/cancelled/progress."""


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
        self._manager.report_progress(self._job, self._attempt, current, total, message)
        await asyncio.sleep(0)

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
            await asyncio.wait_for(self.cancelled.wait(), max(seconds, 0.0))
        self.raise_if_cancelled()


@dataclass
class _Runtime:
    """Per-job in-process state that is never persisted."""

    events: list[EventRecord] = field(default_factory=list)
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None = None
    kill_timer: asyncio.TimerHandle | None = None


def _json_result(value: Any) -> bytes:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


class JobManager:
    """Owns the jobs of one server: the state machine, worker pool, event logs and expiry."""

    def __init__(
        self,
        config: ServerConfig,
        handlers: Mapping[str, Handler | JobType],
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.notifier = notifier
        self.types = {name: resolve_job_type(name, spec) for name, spec in handlers.items()}
        self._jobs: dict[str, JobRecord] = {}
        self._rt: dict[str, _Runtime] = {}
        self._tombstones: dict[str, Tombstone] = {}
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self._seq = 0
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._cleanup_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self.started = False

    # ----------------------------------------------------------------- life cycle
    async def start(self) -> None:
        """Open the store, recover its jobs, and start the workers and the cleanup task."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        loaded = self.store.open()
        now = self.clock()
        for t in loaded.tombstones:
            self._tombstones[t.job_id] = t
        for rec in loaded.idempotency:
            self._idempotency[(rec.user, rec.key)] = rec
        for job in sorted(loaded.jobs, key=lambda j: j.seq):
            self._jobs[job.id] = job
            self._seq = max(self._seq, job.seq)
            rt = self._runtime(job.id)
            rt.events = loaded.events.get(job.id, [])
            if job.state is JobState.PROCESSING:
                # Interrupted by a restart: run it again (its attempt number increases).
                job.state = JobState.PENDING
                job.updated_at = now
                job.run_at = None
                self._emit(job, "status")
            if job.state is JobState.PENDING:
                self._schedule(job)
        self._workers = [
            asyncio.create_task(self._worker(), name=f"asyncreply-worker-{i}")
            for i in range(self.config.workers)
        ]
        self._cleanup_task = asyncio.create_task(self._cleanup_loop(), name="asyncreply-cleanup")
        self.started = True

    def begin_shutdown(self) -> None:
        """Stop accepting long waits: wake every waiter so streams and long polls end."""
        self.closing = True
        for rt in self._rt.values():
            self._wake(rt)

    async def stop(self) -> None:
        """Stop workers and timers and close the store.

        Running jobs are left ``processing`` in the store, so a SQLite-backed server runs
        them again on its next start.
        """
        self.begin_shutdown()
        tasks: list[asyncio.Task[Any]] = list(self._workers)
        if self._cleanup_task is not None:
            tasks.append(self._cleanup_task)
        for rt in self._rt.values():
            for timer in (rt.timer, rt.kill_timer):
                if timer is not None:
                    timer.cancel()
            if rt.task is not None:
                tasks.append(rt.task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []
        self._cleanup_task = None
        self.store.close()
        self.started = False

    # ----------------------------------------------------------------- helpers
    def _runtime(self, job_id: str) -> _Runtime:
        rt = self._rt.get(job_id)
        if rt is None:
            rt = self._rt[job_id] = _Runtime()
        return rt

    @staticmethod
    def _wake(rt: _Runtime) -> None:
        rt.version += 1
        event, rt.changed = rt.changed, asyncio.Event()
        event.set()

    def _save(self, job: JobRecord) -> None:
        self.store.save_job(job)

    def document(self, job: JobRecord) -> dict[str, Any]:
        """Return the current reference-dialect status document of ``job``."""
        return status_document(job, self.clock(), self.config)

    def _emit(self, job: JobRecord, event: str) -> None:
        """Append an event to the job's log, persist the job, wake its waiters."""
        job.event_seq += 1
        rec = EventRecord(job.event_seq, event, self.document(job))
        rt = self._runtime(job.id)
        rt.events.append(rec)
        if len(rt.events) > EVENT_LOG_LIMIT:
            del rt.events[: len(rt.events) - EVENT_LOG_LIMIT]
        self.store.append_event(job.id, rec)
        self._save(job)
        self._wake(rt)

    def _notify(self, job: JobRecord, event: str) -> None:
        if self.notifier is not None and job.callback is not None:
            try:
                self.notifier.job_event(job, event, self.document(job))
            except Exception:
                log.exception("webhook notifier failed for job %s", job.id)

    def _schedule(self, job: JobRecord) -> None:
        """Queue a pending job now, or when its ``run_at`` time comes."""
        assert self._loop is not None and self._queue is not None
        rt = self._runtime(job.id)
        if rt.timer is not None:
            rt.timer.cancel()
            rt.timer = None
        delay = (job.run_at - self.clock()) if job.run_at is not None else 0.0
        if delay > 0:
            rt.timer = self._loop.call_later(delay, self._enqueue, job.id)
        else:
            self._queue.put_nowait(job.id)

    def _enqueue(self, job_id: str) -> None:
        rt = self._rt.get(job_id)
        if rt is not None:
            rt.timer = None
        if self._queue is not None and not self.closing:
            self._queue.put_nowait(job_id)

    # ----------------------------------------------------------------- queries
    def lookup(self, job_id: str, user: str) -> JobRecord:
        """Return ``user``'s job ``job_id``.

        Raises:
            JobNotFound: unknown id or another user's job.
            JobExpired: the job has expired (checked on access, too).
        """
        job = self._jobs.get(job_id)
        if job is not None:
            if job.owner != user:
                raise JobNotFound(job_id)
            now = self.clock()
            if job.expires_at is not None and job.expires_at <= now:
                self.expire(job_id)
                raise JobExpired(job_id)
            self._check_result_expiry(job, now)
            return job
        tomb = self._tombstones.get(job_id)
        if tomb is not None and tomb.owner == user:
            raise JobExpired(job_id)
        raise JobNotFound(job_id)

    def get(self, job_id: str) -> JobRecord | None:
        """Return a job regardless of its owner (admin use)."""
        return self._jobs.get(job_id)

    def all_jobs(self) -> list[JobRecord]:
        """Every live job, oldest first."""
        return sorted(self._jobs.values(), key=lambda j: j.seq)

    def list_jobs(
        self, user: str, *, state: JobState | None, limit: int, before_seq: int | None
    ) -> tuple[list[JobRecord], int | None]:
        """Return a page of ``user``'s jobs, newest first, and the cursor of the next page."""
        now = self.clock()
        for job in [j for j in self._jobs.values() if j.owner == user]:
            if job.expires_at is not None and job.expires_at <= now:
                self.expire(job.id)
        jobs = [
            j
            for j in self._jobs.values()
            if j.owner == user
            and (state is None or j.state is state)
            and (before_seq is None or j.seq < before_seq)
        ]
        jobs.sort(key=lambda j: j.seq, reverse=True)
        page = jobs[:limit]
        next_seq = page[-1].seq if len(jobs) > limit else None
        return page, next_seq

    def result(self, job: JobRecord) -> StoredResult | None:
        """Return the stored result of a completed job (``None`` once it has expired)."""
        self._check_result_expiry(job, self.clock())
        if job.result_expired:
            return None
        return self.store.get_result(job.id)

    def events_after(self, job_id: str, after: int) -> list[EventRecord]:
        """Return the logged events of a job with an id greater than ``after``."""
        rt = self._rt.get(job_id)
        if rt is None:
            return []
        return [e for e in rt.events if e.id > after]

    def first_logged_event(self, job_id: str) -> int:
        """The id of the oldest event still in the job's log (0 if none)."""
        rt = self._rt.get(job_id)
        return rt.events[0].id if rt is not None and rt.events else 0

    def version(self, job_id: str) -> int:
        """A counter that increases with every change of the job; ``-1`` once it is gone.

        Asking about an expired (or cleared) job keeps no state for it: a stream woken by the
        expiry must not bring the job's runtime back to life (it would never be freed).
        """
        rt = self._rt.get(job_id)
        return rt.version if rt is not None else -1

    async def wait_change(self, job_id: str, version: int, timeout: float) -> None:
        """Wait until the job changes after ``version`` or ``timeout`` seconds pass."""
        rt = self._rt.get(job_id)
        if rt is None or rt.version != version or self.closing or timeout <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rt.changed.wait(), timeout)

    async def wait_terminal(self, job_id: str, timeout: float) -> None:
        """Wait until the job is final (or gone) or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closing:
            job = self._jobs.get(job_id)
            if job is None or job.state.terminal:
                return
            left = deadline - loop.time()
            if left <= 0:
                return
            await self.wait_change(job_id, self.version(job_id), left)

    # ----------------------------------------------------------------- idempotency
    def idempotency_record(self, user: str, key: str) -> IdempotencyRecord | None:
        """Return the live record of ``key`` for ``user``, if any."""
        rec = self._idempotency.get((user, key))
        if rec is not None and rec.expires_at <= self.clock():
            self._forget_key(rec)
            return None
        return rec

    def remember_key(self, user: str, key: str, body_hash: str, job_id: str) -> None:
        """Remember that ``key`` created ``job_id`` from a body with ``body_hash``."""
        now = self.clock()
        rec = IdempotencyRecord(
            user, key, body_hash, job_id, now, now + self.config.idempotency_ttl
        )
        self._idempotency[(user, key)] = rec
        self.store.save_idempotency(rec)

    def _forget_key(self, rec: IdempotencyRecord) -> None:
        self._idempotency.pop((rec.user, rec.key), None)
        self.store.delete_idempotency(rec.user, rec.key)

    # ----------------------------------------------------------------- commands
    def validate_input(self, type_name: str, raw: Any) -> Any:
        """Validate ``raw`` against the input model of ``type_name``.

        Raises:
            KeyError: unknown type.
            pydantic.ValidationError: invalid input.
        """
        return self.types[type_name].adapter.validate_python(raw)

    def submit(
        self,
        *,
        owner: str,
        type_name: str,
        input: Any,
        callback: dict[str, Any] | None = None,
        not_before: float | None = None,
        original_job_id: str | None = None,
    ) -> JobRecord:
        """Create and schedule a job (the caller validated the input already)."""
        resolved = self.types[type_name]
        value = resolved.adapter.validate_python(input)
        estimate: float | None = None
        if resolved.estimate is not None:
            try:
                estimate = resolved.estimate(value)
            except Exception:
                log.exception("estimate of job type %s failed", type_name)
        now = self.clock()
        self._seq += 1
        job = JobRecord(
            id=uuid.uuid4().hex,
            seq=self._seq,
            owner=owner,
            type=type_name,
            input=input,
            callback=callback,
            state=JobState.PENDING,
            created_at=now,
            updated_at=now,
            not_before=not_before,
            run_at=not_before,
            estimate=estimate if estimate is None or math.isfinite(estimate) else None,
            original_job_id=original_job_id,
        )
        self._jobs[job.id] = job
        self._emit(job, "status")
        self._schedule(job)
        return job

    def cancel(self, job: JobRecord) -> bool:
        """Cancel a pending or running job; ``False`` if it is already final."""
        if job.state.terminal:
            return False
        now = self.clock()
        job.state = JobState.CANCELLED
        job.cancelled_at = job.finished_at = job.updated_at = now
        job.expires_at = now + self.config.job_ttl
        job.error = None
        self._stop_running(job.id, grace=self.config.cancel_grace)
        self._emit(job, "complete")
        self._notify(job, "cancelled")
        return True

    def _stop_running(self, job_id: str, *, grace: float) -> None:
        """Signal a running handler to stop; cancel its task after ``grace`` seconds."""
        rt = self._rt.get(job_id)
        if rt is None:
            return
        if rt.timer is not None:
            rt.timer.cancel()
            rt.timer = None
        rt.cancel.set()
        task = rt.task
        if task is not None and not task.done():
            if grace <= 0:
                task.cancel()
            elif self._loop is not None and rt.kill_timer is None:
                rt.kill_timer = self._loop.call_later(grace, task.cancel)

    def expire(self, job_id: str) -> bool:
        """Expire a job now: it answers 410 from then on. ``False`` if unknown.

        Its waiters wake at once: open event streams end (they see the job gone) and held
        long polls answer 410.
        """
        job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        now = self.clock()
        tomb = Tombstone(job_id, job.owner, now)
        self._tombstones[job_id] = tomb
        self.store.delete_job(job_id)
        self.store.save_tombstone(tomb)
        self._stop_running(job_id, grace=0)
        rt = self._rt.pop(job_id, None)
        if rt is not None:
            self._wake(rt)
        return True

    def clear(self) -> None:
        """Forget every job, key and tombstone (running handlers are cancelled)."""
        for job_id in list(self._rt):
            self._stop_running(job_id, grace=0)
            self._wake(self._rt[job_id])
        self._jobs.clear()
        self._rt.clear()
        self._tombstones.clear()
        self._idempotency.clear()
        self.store.clear()

    def report_progress(
        self,
        job: JobRecord,
        attempt: int,
        current: float,
        total: float | None,
        message: str | None,
    ) -> None:
        """Record progress of a running attempt (ignored once the attempt is over)."""
        if not self._is_current(job, attempt):
            return
        try:
            cur = float(current)
            tot = None if total is None else float(total)
        except (TypeError, ValueError):
            return
        if not math.isfinite(cur) or (tot is not None and not math.isfinite(tot)):
            return
        msg = None if message is None else str(message)[:1000]
        now = self.clock()
        job.progress = Progress(_num(cur), None if tot is None else _num(tot), msg)
        job.progress_at = job.updated_at = now
        self._emit(job, "progress")
        if job.callback is not None and "progress" in (job.callback.get("events") or ()):
            self._notify(job, "progress")

    def set_estimate(self, job: JobRecord, attempt: int, seconds: float) -> None:
        """Record a handler's estimate of its run time."""
        if self._is_current(job, attempt) and math.isfinite(seconds) and seconds >= 0:
            job.estimate = float(seconds)
            self._save(job)

    def _is_current(self, job: JobRecord, attempt: int) -> bool:
        return (
            self._jobs.get(job.id) is job
            and job.state is JobState.PROCESSING
            and job.attempt == attempt
        )

    # ----------------------------------------------------------------- running
    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            job_id = await self._queue.get()
            job = self._jobs.get(job_id)
            if job is None or job.state is not JobState.PENDING:
                continue
            if job.run_at is not None and job.run_at > self.clock():
                self._schedule(job)
                continue
            await self._run(job)

    async def _run(self, job: JobRecord) -> None:
        rt = self._runtime(job.id)
        now = self.clock()
        job.state = JobState.PROCESSING
        job.attempt += 1
        attempt = job.attempt
        job.started_at = job.updated_at = now
        job.progress = None
        job.progress_at = None
        job.run_at = None
        rt.cancel = asyncio.Event()
        self._emit(job, "status")
        resolved = self.types.get(job.type)
        if resolved is None:
            self._finish_failed(job, JobError("unknown_type", f"unknown job type {job.type!r}"))
            return
        try:
            value = resolved.adapter.validate_python(job.input)
        except ValidationError as exc:
            self._finish_failed(job, JobError("invalid_input", str(exc)))
            return
        ctx = JobContext(self, job, rt.cancel)
        task: asyncio.Task[Any] = asyncio.create_task(
            _invoke(resolved.run, ctx, value), name=f"asyncreply-job-{job.id}"
        )
        rt.task = task
        try:
            outcome = await task
        except asyncio.CancelledError:
            if self.closing:
                raise
            if self._is_current(job, attempt):
                self._cancelled_by_handler(job)
            return
        except JobCancelled:
            if self._is_current(job, attempt):
                self._cancelled_by_handler(job)
            return
        except JobFailure as exc:
            if self._is_current(job, attempt):
                self._failure(job, JobError(exc.code, exc.message, exc.retryable))
            return
        except Exception as exc:
            log.exception("handler of job %s (%s) raised", job.id, job.type)
            if self._is_current(job, attempt):
                self._failure(
                    job,
                    JobError("internal_error", f"the handler raised {type(exc).__name__}"),
                )
            return
        finally:
            rt.task = None
            if rt.kill_timer is not None:
                rt.kill_timer.cancel()
                rt.kill_timer = None
        if self._is_current(job, attempt):
            self._complete(job, outcome)

    def _cancelled_by_handler(self, job: JobRecord) -> None:
        self.cancel(job)

    def _complete(self, job: JobRecord, outcome: Any) -> None:
        if isinstance(outcome, FileResult):
            stored = StoredResult(
                "file", bytes(outcome.content), outcome.content_type, outcome.filename
            )
        else:
            try:
                data = _json_result(outcome)
            except (TypeError, ValueError) as exc:
                self._failure(
                    job,
                    JobError("internal_error", f"the handler returned a non-JSON result: {exc}"),
                )
                return
            stored = StoredResult("json", data, "application/json")
        now = self.clock()
        self.store.put_result(job.id, stored)
        job.state = JobState.COMPLETED
        job.finished_at = job.updated_at = now
        job.expires_at = now + self.config.job_ttl
        job.result_expires_at = now + self.config.result_ttl
        job.result_kind = stored.kind
        job.result_content_type = stored.content_type
        job.result_filename = stored.filename
        job.result_size = len(stored.data)
        if job.progress is not None and job.progress.total is not None:
            job.progress = Progress(job.progress.total, job.progress.total, job.progress.message)
        self._emit(job, "complete")
        self._notify(job, "completed")

    def _failure(self, job: JobRecord, error: JobError) -> None:
        if error.retryable and job.attempt < self.config.max_attempts:
            now = self.clock()
            delay = self.config.retry_backoff * (2 ** (job.attempt - 1))
            job.state = JobState.PENDING
            job.error = error
            job.updated_at = now
            job.run_at = now + delay
            self._emit(job, "status")
            self._schedule(job)
            return
        self._finish_failed(job, error, dead_letter=error.retryable)

    def _finish_failed(self, job: JobRecord, error: JobError, *, dead_letter: bool = False) -> None:
        now = self.clock()
        job.state = JobState.FAILED
        job.error = error
        job.dead_letter = dead_letter
        job.finished_at = job.updated_at = now
        job.expires_at = now + self.config.job_ttl
        self._emit(job, "complete")
        self._notify(job, "failed")

    # ----------------------------------------------------------------- expiry
    def _check_result_expiry(self, job: JobRecord, now: float) -> None:
        if (
            not job.result_expired
            and job.result_expires_at is not None
            and job.result_expires_at <= now
        ):
            job.result_expired = True
            self.store.delete_result(job.id)
            self._save(job)

    def sweep(self) -> None:
        """Expire whatever is past its TTL (jobs, results, keys, old tombstones)."""
        now = self.clock()
        for job in list(self._jobs.values()):
            if job.expires_at is not None and job.expires_at <= now:
                self.expire(job.id)
            else:
                self._check_result_expiry(job, now)
        for rec in [r for r in self._idempotency.values() if r.expires_at <= now]:
            self._forget_key(rec)
        keep = max(self.config.job_ttl, 3600.0)
        for tomb in [t for t in self._tombstones.values() if t.expired_at + keep <= now]:
            self._tombstones.pop(tomb.job_id, None)
            self.store.delete_tombstone(tomb.job_id)

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.cleanup_interval)
            try:
                self.sweep()
            except Exception:
                log.exception("expiry sweep failed")


async def _invoke(run: Handler, ctx: JobContext, value: Any) -> Any:
    """Await a handler (which may return any awaitable, not only a coroutine)."""
    return await run(ctx, value)


def _num(value: float) -> float:
    """Return ints as ints so ``2`` stays ``2`` on the wire (not ``2.0``)."""
    return int(value) if value == int(value) else value
