"""Running a job: a worker's turn (:meth:`JobRuns._run_queued`), one attempt of its handler in a
task of its own, and the outcome recorded as the job's next state (completed, a retry after a
backoff, failed, cancelled). Part of :class:`~reference_server.jobs.JobManager`, which owns the
state it reads (jobs, store, scheduler, clock) and the commit of each change (``_emit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from .config import ServerConfig
from .eager import start_task
from .job_api import Handler, JobCancelled, JobContext, JobFailure, _Resolved, stored_result
from .records import JobError, JobRecord, JobState, Progress
from .replica import Replica
from .scheduler import Scheduler
from .store import Store
from .transitions import advance

if TYPE_CHECKING:
    from .jobs import JobManager

__all__ = ["JobRuns"]

log = logging.getLogger("reference_server")


class JobRuns:
    """The running half of the job manager (mixed into ``JobManager``)."""

    _jobs: dict[str, JobRecord]
    config: ServerConfig
    store: Store
    scheduler: Scheduler
    replica: Replica | None
    types: dict[str, _Resolved]
    clock: Callable[[], float]

    if TYPE_CHECKING:

        @property
        def closing(self) -> bool:
            """Whether the server is shutting down (``JobManager.closing``)."""

        async def _emit(self, job: JobRecord, event: str, *, notify: str | None = None) -> bool:
            """Commit the job's change with its event (``JobManager._emit``)."""

        def _is_current(self, job: JobRecord, attempt: int) -> bool:
            """Whether ``attempt`` is still the job's running one (``JobManager``)."""

        async def cancel(self, job: JobRecord) -> bool:
            """Cancel the job (``JobManager.cancel``)."""

    async def _run_queued(self, job_id: str) -> None:
        """Run a job a worker took off the queue (if it is still pending and due)."""
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.PENDING:
            return
        if job.run_at is not None and job.run_at > self.clock():
            self.scheduler.schedule(job.id, job.run_at)
            return
        await self._run(job)

    async def _run(self, job: JobRecord) -> None:
        if self.replica is not None:  # held before the claim, so no reaper sees it unleased
            await self.replica.store.lease([job.id], self.replica.lease_ttl)
            if job.state is not JobState.PENDING:  # moved while the lease was taken
                return
        now = self.clock()
        advance(job, JobState.PROCESSING)
        job.attempt += 1
        attempt = job.attempt
        job.started_at = job.updated_at = now
        job.progress = None
        job.progress_at = None
        job.run_at = None
        cancelled = self.scheduler.begin(job.id)
        if not await self._emit(job, "status"):
            return  # another instance claimed this attempt
        resolved = self.types.get(job.type)
        if resolved is None:
            error = JobError("unknown_type", f"unknown job type {job.type!r}")
            await self._finish_failed(job, error)
            return
        try:
            value = resolved.adapter.validate_python(job.input)
        except ValidationError as exc:
            await self._finish_failed(job, JobError("invalid_input", str(exc)))
            return
        ctx = JobContext(cast("JobManager", self), job, cancelled)
        # The handler's first step runs now (an instant one ends, and its outcome is
        # recorded, before this goes on); what follows its first wait runs in its task.
        task, ended = start_task(
            self._attempt(job, attempt, resolved.run, ctx, value), name=f"asyncreply-job-{job.id}"
        )
        if not ended:
            self.scheduler.attach(job.id, task)
        try:
            await task
        except asyncio.CancelledError:
            self.scheduler.detach(job.id, task)
            if self.closing:
                raise
            if self._is_current(job, attempt):
                await self._cancelled_by_handler(job)

    async def _attempt(
        self, job: JobRecord, attempt: int, run: Handler, ctx: JobContext, value: Any
    ) -> None:
        """Run the handler and record its outcome in the same step of the job's task: a job
        is final (and its waiters woken) in the loop turn its handler returns, not a turn
        later in the task that awaits it (the memory and SQLite stores never suspend). A
        cancellation of the task propagates."""
        task = asyncio.current_task()
        if task is not None:
            self.scheduler.attach(job.id, task)  # from its first step: cancellable
        error: JobError | None = None
        cancelled = False
        try:
            outcome = await _invoke(run, ctx, value)
        except JobCancelled:
            cancelled = True
        except JobFailure as exc:
            error = JobError(exc.code, exc.message, exc.retryable)
        except Exception as exc:
            log.exception("handler of job %s (%s) raised", job.id, job.type)
            error = JobError("internal_error", f"the handler raised {type(exc).__name__}")
        # The handler is done: detached before the outcome may queue another attempt.
        self.scheduler.detach(job.id, task)
        if not self._is_current(job, attempt):
            return
        if cancelled:
            await self._cancelled_by_handler(job)
        elif error is not None:
            await self._failure(job, error)
        else:
            await self._complete(job, outcome)

    async def _cancelled_by_handler(self, job: JobRecord) -> None:
        await self.cancel(job)

    async def _complete(self, job: JobRecord, outcome: Any) -> None:
        stored = stored_result(outcome, self.config.max_result_bytes)
        if isinstance(stored, JobError):
            await self._finish_failed(job, stored)
            return
        attempt = job.attempt
        await self.store.put_result(job.id, stored)  # before the job says it is completed
        if not self._is_current(job, attempt):  # moved on while a shared store wrote it
            return
        now = self.clock()
        advance(job, JobState.COMPLETED)
        job.finished_at = job.updated_at = now
        job.expires_at = now + self.config.job_ttl
        job.result_expires_at = now + self.config.result_ttl
        job.result_kind = stored.kind
        job.result_content_type = stored.content_type
        job.result_filename = stored.filename
        job.result_size = len(stored.data)
        if job.progress is not None and job.progress.total is not None:
            job.progress = Progress(job.progress.total, job.progress.total, job.progress.message)
        await self._emit(job, "complete", notify="completed")

    async def _failure(self, job: JobRecord, error: JobError) -> None:
        if error.retryable and job.attempt < self.config.max_attempts:
            now = self.clock()
            delay = self.config.retry_backoff * (2 ** (job.attempt - 1))
            advance(job, JobState.PENDING)
            job.error = error
            job.updated_at = now
            job.run_at = now + delay
            await self._emit(job, "status")
            self.scheduler.schedule(job.id, job.run_at)
            return
        await self._finish_failed(job, error, dead_letter=error.retryable)

    async def _finish_failed(
        self, job: JobRecord, error: JobError, *, dead_letter: bool = False
    ) -> None:
        now = self.clock()
        advance(job, JobState.FAILED)
        job.error = error
        job.dead_letter = dead_letter
        job.finished_at = job.updated_at = now
        job.expires_at = now + self.config.job_ttl
        await self._emit(job, "complete", notify="failed")


async def _invoke(run: Handler, ctx: JobContext, value: Any) -> Any:
    """Await a handler (which may return any awaitable, not only a coroutine)."""
    return await run(ctx, value)
