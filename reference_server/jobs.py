"""The job state machine: submission, a bounded worker pool, retries, cancellation, expiry.

All times come from an injected clock (``time.time`` by default). Every change of a job is
written through to the store together with its event-log entry (which SSE streams replay)
and the webhook deliveries it causes, in one atomic step (:meth:`Store.commit`), and wakes
the requests waiting on that job (long polls, ``Prefer: wait``, SSE): waiting is
event-driven, never a sleep loop. The allowed state changes are the table in
:mod:`reference_server.transitions`; the worker pool is :mod:`reference_server.scheduler`,
the event logs :mod:`reference_server.event_log`.

The store is awaited. A change of a job is made in memory and handed to the store's commit
with no ``await`` in between (what a shared store must be asked first is asked before the
change), so with the memory and SQLite stores, whose calls never suspend, every step is as
atomic within the event loop as before, and with Redis the commit carries the change as it
was made.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .config import ServerConfig
from .documents import status_document
from .eager import cancel_all
from .event_log import EventLogs
from .idempotency import IdempotencyKeys
from .job_api import (
    FileResult,
    Handler,
    JobCancelled,
    JobContext,
    JobFailure,
    JobType,
    resolve_job_type,
)
from .job_runs import JobRuns
from .notices import Notices, Notifier
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
from .replica import Replica
from .scheduler import Scheduler
from .store import SharedStore, StaleJob, Store
from .transitions import advance

__all__ = [
    "FileResult",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobFailure",
    "JobManager",
    "JobNotFound",
    "JobExpired",
    "JobRejected",
    "JobType",
    "Notifier",
]

log = logging.getLogger("reference_server")


class JobNotFound(Exception):
    """No such job for this user (unknown id or another user's job)."""


class JobExpired(Exception):
    """The job existed but has expired."""


class JobRejected(Exception):
    """A submission the server cannot represent (checked before anything is stored)."""


class JobManager(JobRuns):
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
        self.notices = Notices(notifier, store)
        self.types = {name: resolve_job_type(name, spec) for name, spec in handlers.items()}
        self._jobs: dict[str, JobRecord] = {}
        self._tombstones: dict[str, Tombstone] = {}
        self.keys = IdempotencyKeys(store, clock, config.idempotency_ttl)
        self.logs = EventLogs()
        self.scheduler = Scheduler(clock, self._run_queued)
        self._seq = 0
        self._cleanup_task: asyncio.Task[None] | None = None
        self._replica_task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        #: Set when the store is shared by several instances (Redis).
        self.replica = Replica(self, store) if isinstance(store, SharedStore) else None
        self.started = False

    # ----------------------------------------------------------------- life cycle
    async def start(self) -> None:
        """Open the store, recover its jobs, and start the workers and the cleanup task."""
        loaded = await self.store.open()
        self.scheduler.start(self.config.workers)
        for t in loaded.tombstones:
            self._tombstones[t.job_id] = t
        self.keys.load(loaded.idempotency)
        await self.notices.restore(loaded.deliveries)
        for job in sorted(loaded.jobs, key=lambda j: j.seq):
            self._seq = max(self._seq, job.seq)
            if not await self._renders(job):
                continue
            self._jobs[job.id] = job
            self.logs.load(job.id, loaded.events.get(job.id, []))
            if job.state is JobState.PROCESSING and self.replica is None:
                await self.recover_interrupted(job)  # shared stores: its lease decides (replica)
            elif job.state is JobState.PENDING:
                self.scheduler.schedule(job.id, job.run_at)
            await self.notices.rederive(job, self.document)
        self._cleanup_task = asyncio.create_task(self._cleanup_loop(), name="asyncreply-cleanup")
        if self.replica is not None:
            self._replica_task = asyncio.create_task(self.replica.run(), name="asyncreply-replica")
        self.started = True

    async def recover_interrupted(self, job: JobRecord) -> None:
        """A job whose attempt was interrupted (a restart, or its instance died): run it
        again (its attempt number increases), or fail it once it used ``max_attempts``."""
        if job.attempt >= self.config.max_attempts:
            error = JobError("interrupted", "the server running the job stopped", True)
            await self._finish_failed(job, error, dead_letter=True)
            return
        advance(job, JobState.PENDING)
        job.updated_at = self.clock()
        job.run_at = None
        if await self._emit(job, "status"):
            self.scheduler.schedule(job.id, job.run_at)

    async def _renders(self, job: JobRecord) -> bool:
        """Whether a reloaded job renders; one that does not is quarantined, not served.

        A row written by an older server (or edited by hand) must not make every listing of
        its owner fail: it is moved aside with the reason and logged.
        """
        try:
            self.document(job)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
            log.error("job %s does not render (%s): quarantined", job.id, reason)
            await self.store.quarantine_job(job.id, reason)
            return False
        return True

    @property
    def closing(self) -> bool:
        """Whether the server is shutting down (waits return at once)."""
        return self.logs.closing

    def begin_shutdown(self) -> None:
        """Stop accepting long waits: wake every waiter so streams and long polls end."""
        self.logs.close()

    async def stop(self) -> None:
        """Stop workers and timers and close the store.

        Running jobs are left ``processing`` in the store, so a SQLite-backed server runs
        them again on its next start.
        """
        self.begin_shutdown()
        await cancel_all(t for t in (self._cleanup_task, self._replica_task) if t is not None)
        self._cleanup_task = self._replica_task = None
        await self.scheduler.stop()
        await asyncio.gather(*self._writes, return_exceptions=True)
        await self.store.close()
        self.started = False

    # ----------------------------------------------------------------- helpers
    async def _save(self, job: JobRecord) -> None:
        await self.store.save_job(job)

    def _save_later(self, job: JobRecord) -> None:
        """Write ``job`` from code that cannot await (a handler's ``set_estimate``)."""
        task = asyncio.get_running_loop().create_task(self._save(job))
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("writing a job failed", exc_info=task.exception())

    def document(self, job: JobRecord) -> dict[str, Any]:
        """Return the current reference-dialect status document of ``job`` (a copy the
        caller may change).

        A final job's document no longer depends on the time (no estimate, no retry hint):
        the one its last event logged is reused rather than rendered again for every answer
        about it (a held submission, long polls, streams and plain polls of a finished job).
        """
        if job.state.is_terminal:
            last = self.logs.last(job.id)
            if last is not None and last.id == job.event_seq:
                return dict(last.data)
        return status_document(job, self.clock(), self.config)

    async def _emit(
        self,
        job: JobRecord,
        event: str,
        *,
        notify: str | None = None,
        room: bool = True,
        key: IdempotencyRecord | None = None,
        document: dict[str, Any] | None = None,
    ) -> bool:
        """Log an event of the job and wake its waiters; ``notify`` names its webhook event.

        The job, its event and the webhook deliveries it causes are committed in one atomic
        step before anyone is woken and before any delivery is sent: a final job is never
        on record without the delivery of its terminal event, even after ``kill -9``.
        Returns ``False`` when a shared store refused the change (another instance moved
        the job first); the copy is then re-read. ``document``: the job's document when the
        caller just rendered it; ``room``: what :meth:`Notices.room` answered for an optional
        ``notify`` event before the change.

        Nothing is awaited between the change (the caller's, and the event number taken here)
        and the store's commit, which takes the job as it is when called.
        """
        job.event_seq += 1
        if document is None:
            document = self.document(job)
        rec = EventRecord(job.event_seq, event, document)
        deliveries = (
            self.notices.plan(job, notify, document, room=room) if notify is not None else []
        )
        try:
            await self.store.commit(job, rec, deliveries, key=key)
        except StaleJob:  # another instance moved the job first: this change never happened
            self.notices.discard(deliveries)
            if self.replica is not None:
                await self.replica.refresh(job.id, force=True)
            return False
        self.logs.append(job.id, rec)
        await self.notices.send(deliveries)
        return True

    # ----------------------------------------------------------------- queries
    async def lookup(self, job_id: str, user: str) -> JobRecord:
        """Return ``user``'s job ``job_id``.

        Raises:
            JobNotFound: unknown id or another user's job.
            JobExpired: the job has expired (checked on access, too).
        """
        job = await self.replica.refresh(job_id) if self.replica else self._jobs.get(job_id)
        if job is not None:
            if job.owner != user:
                raise JobNotFound(job_id)
            now = self.clock()
            if job.expires_at is not None and job.expires_at <= now:
                await self.expire(job_id)
                raise JobExpired(job_id)
            await self._check_result_expiry(job, now)
            return job
        tomb = self._tombstones.get(job_id)
        if tomb is not None and tomb.owner == user:
            raise JobExpired(job_id)
        raise JobNotFound(job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        """Return a job regardless of its owner (admin use)."""
        return await self.replica.refresh(job_id) if self.replica else self._jobs.get(job_id)

    def all_jobs(self) -> list[JobRecord]:
        """Every live job, oldest first."""
        return sorted(self._jobs.values(), key=lambda j: j.seq)

    async def list_jobs(
        self, user: str, *, state: JobState | None, limit: int, before_seq: int | None
    ) -> tuple[list[JobRecord], int | None]:
        """Return a page of ``user``'s jobs, newest first, and the cursor of the next page."""
        now = self.clock()
        for job in [j for j in self._jobs.values() if j.owner == user]:
            if job.expires_at is not None and job.expires_at <= now:
                await self.expire(job.id)
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

    async def result(self, job: JobRecord) -> StoredResult | None:
        """Return the stored result of a completed job (``None`` once it has expired)."""
        await self._check_result_expiry(job, self.clock())
        if job.result_expired:
            return None
        return await self.store.get_result(job.id)

    def events_after(self, job_id: str, after: int) -> list[EventRecord]:
        """Return the logged events of a job with an id greater than ``after``."""
        return self.logs.after(job_id, after)

    def first_logged_event(self, job_id: str) -> int:
        """The id of the oldest event still in the job's log (0 if none)."""
        return self.logs.first_id(job_id)

    def version(self, job_id: str) -> int:
        """A counter that increases with every change of the job; ``-1`` once it is gone."""
        return self.logs.version(job_id)

    async def wait_change(
        self, job_id: str, version: int, timeout: float, *, settle: bool = True
    ) -> None:
        """Wait until the job changes after ``version`` or ``timeout`` seconds pass
        (``settle``: let a change under way land before returning)."""
        await self.logs.wait_change(job_id, version, timeout, settle=settle)

    async def wait_terminal(self, job_id: str, timeout: float) -> None:
        """Wait until the job is final (or gone) or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closing:
            job = self._jobs.get(job_id)
            if job is None or job.state.is_terminal:
                return
            left = deadline - loop.time()
            if left <= 0:
                return
            # No settling: this loop looks again until the job is final anyway.
            await self.wait_change(job_id, self.version(job_id), left, settle=False)

    # ----------------------------------------------------------------- idempotency
    async def idempotency_record(self, user: str, key: str) -> IdempotencyRecord | None:
        """Return the live record of ``key`` for ``user``, if any (any instance's)."""
        rec = await self.keys.get(user, key)
        if rec is None and self.replica is not None:
            rec = await self.replica.store.find_idempotency(user, key)
            if rec is not None:
                self.keys.adopt(rec)
        return rec

    # ----------------------------------------------------------------- commands
    def validate_input(self, type_name: str, raw: Any) -> Any:
        """Validate ``raw`` against the input model of ``type_name``.

        Raises:
            KeyError: unknown type.
            pydantic.ValidationError: invalid input.
        """
        return self.types[type_name].adapter.validate_python(raw)

    async def submit(
        self,
        *,
        owner: str,
        type_name: str,
        input: Any,
        callback: dict[str, Any] | None = None,
        not_before: float | None = None,
        original_job_id: str | None = None,
        idempotency: tuple[str, str] | None = None,
        hold: bool = False,
    ) -> JobRecord:
        """Create and schedule a job (the caller validated the input already).

        ``hold``: the submission waits for the job's end (``Prefer: wait``); a job due now
        then runs at once, in this step, when a worker slot is free and nothing is queued
        (:meth:`Scheduler.run_now`): an instant job is final when this returns.

        The job is rendered before it is stored: one that cannot be rendered (a date out of
        range, say) is refused whole, so no half-created job ever poisons a listing.
        ``idempotency`` (``(key, body hash)``) is committed with the job's first write.

        Raises:
            JobRejected: the job's status document cannot be rendered.
            KeyTaken: another instance's job holds the key (shared stores only).
        """
        resolved = self.types[type_name]
        value = resolved.adapter.validate_python(input)
        estimate: float | None = None
        if resolved.estimate is not None:
            try:
                estimate = resolved.estimate(value)
            except Exception:
                log.exception("estimate of job type %s failed", type_name)
        seq = await self.replica.store.next_seq() if self.replica else self._seq + 1
        now = self.clock()
        job = JobRecord(
            id=uuid.uuid4().hex,
            seq=seq,
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
        try:
            document = self.document(job)  # rendered once: it is also the first event's
        except (ValueError, OverflowError, OSError) as exc:
            raise JobRejected(f"the job cannot be represented: {exc}") from None
        key = None
        if idempotency is not None:
            key = self.keys.record(owner, idempotency[0], idempotency[1], job.id)
        self._seq = max(self._seq, job.seq)
        self._jobs[job.id] = job
        try:
            await self._emit(job, "status", key=key, document=document)
        except BaseException:
            self._jobs.pop(job.id, None)
            self.logs.drop(job.id)
            raise
        if key is not None:
            self.keys.adopt(key)
        if not (hold and job.run_at is None and self.scheduler.run_now(job.id)):
            self.scheduler.schedule(job.id, job.run_at)
        return job

    async def cancel(self, job: JobRecord) -> bool:
        """Cancel a pending or running job; ``False`` if it is already final."""
        if job.state.is_terminal:
            return False
        room = await self.notices.room(job, "cancelled")
        if job.state.is_terminal:  # it ended while a shared store was asked
            return False
        now = self.clock()
        advance(job, JobState.CANCELLED)
        job.cancelled_at = job.finished_at = job.updated_at = now
        job.expires_at = now + self.config.job_ttl
        job.error = None
        self.scheduler.stop_running(job.id, grace=self.config.cancel_grace)
        return await self._emit(job, "complete", notify="cancelled", room=room)

    async def expire(self, job_id: str) -> bool:
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
        self.scheduler.forget(job_id)
        self.logs.drop(job_id)
        await self.store.delete_job(job_id)
        await self.store.save_tombstone(tomb)
        return True

    async def clear(self) -> None:
        """Forget every job, key and tombstone (running handlers are cancelled)."""
        self.scheduler.clear()
        self.logs.clear()
        self._jobs.clear()
        self._tombstones.clear()
        self.keys.clear()
        await self.store.clear()

    async def report_progress(
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
        room = await self.notices.room(job, "progress")
        if not self._is_current(job, attempt):  # it moved on while a shared store was asked
            return
        now = self.clock()
        job.progress = Progress(_num(cur), None if tot is None else _num(tot), msg)
        job.progress_at = job.updated_at = now
        await self._emit(job, "progress", notify="progress", room=room)

    def set_estimate(self, job: JobRecord, attempt: int, seconds: float) -> None:
        """Record a handler's estimate of its run time (written to the store in a task of its
        own: a handler declares it without awaiting)."""
        if self._is_current(job, attempt) and math.isfinite(seconds) and seconds >= 0:
            job.estimate = float(seconds)
            self._save_later(job)

    def _is_current(self, job: JobRecord, attempt: int) -> bool:
        return (
            self._jobs.get(job.id) is job
            and job.state is JobState.PROCESSING
            and job.attempt == attempt
        )

    # ----------------------------------------------------------------- expiry
    async def _check_result_expiry(self, job: JobRecord, now: float) -> None:
        if (
            not job.result_expired
            and job.result_expires_at is not None
            and job.result_expires_at <= now
        ):
            job.result_expired = True
            await self._save(job)  # taken as it is now, before the next await
            await self.store.delete_result(job.id)

    async def sweep(self) -> None:
        """Expire whatever is past its TTL (jobs, results, keys, old tombstones)."""
        now = self.clock()
        for job in list(self._jobs.values()):
            if job.expires_at is not None and job.expires_at <= now:
                await self.expire(job.id)
            else:
                await self._check_result_expiry(job, now)
        await self.keys.sweep(now)
        keep = max(self.config.job_ttl, 3600.0)
        for tomb in [t for t in self._tombstones.values() if t.expired_at + keep <= now]:
            self._tombstones.pop(tomb.job_id, None)
            await self.store.delete_tombstone(tomb.job_id)

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.cleanup_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("expiry sweep failed")


def _num(value: float) -> float:
    """Return ints as ints so ``2`` stays ``2`` on the wire (not ``2.0``)."""
    return int(value) if value == int(value) else value
