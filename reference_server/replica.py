"""Several server instances on one shared store (Redis): this instance's copy kept in step.

Each instance keeps its jobs in memory as a single server does, but the shared store is the
record. A request re-reads its job first (:meth:`Replica.refresh`); the store's change feed
re-reads every job another instance changes, which wakes the long polls, ``Prefer: wait``
holds and event streams waiting here; a commit made on an out-of-date copy is refused by the
store (``StaleJob``) and the copy re-read. Every instance queues every due job; the
``pending -> processing`` commit is the atomic claim, so exactly one instance runs each
attempt. A running job holds a lease its instance renews; a job whose lease lapsed (its
instance died) is run again, or failed once it used ``max_attempts``: at-least-once
execution, exactly-once state transitions. A cancel on another instance reaches the running
handler here through the change feed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .records import EventRecord, JobRecord, JobState
from .store import Fetched, SharedStore

if TYPE_CHECKING:
    from .jobs import JobManager

__all__ = ["Replica"]

log = logging.getLogger("reference_server")


class Replica:
    """Keeps one job manager's copy in step with a shared store.

    Args:
        manager: the instance's job manager.
        store: the shared store (the manager's own).
    """

    def __init__(self, manager: JobManager, store: SharedStore) -> None:
        self.manager = manager
        self.store = store

    @property
    def lease_ttl(self) -> float:
        """Seconds a running job's lease lasts unless renewed."""
        return self.manager.config.job_lease

    async def refresh(self, job_id: str, *, force: bool = False) -> JobRecord | None:
        """Re-read ``job_id`` from the store into this instance's copy; return the copy.

        New events are appended to the local log (waking its waiters); a handler running
        here for an attempt the store no longer has running is told to stop. A re-read older
        than the copy is ignored (a commit of this instance may have been under way while it
        was read), unless ``force`` (a commit of this copy was refused: the store is right).
        """
        fetched = await self.store.fetch(job_id, self.manager.logs.last_id(job_id))
        return self.apply(job_id, fetched, newer_only=not force)

    def apply(self, job_id: str, fetched: Fetched, *, newer_only: bool = False) -> JobRecord | None:
        """Take a re-read of ``job_id`` into this instance's copy; return the copy.

        Args:
            job_id: the job.
            fetched: what the store answered.
            newer_only: ignore a re-read older than the copy (one read while the loop went
                on, so a local commit may have landed meanwhile); a copy is only ahead of
                the store while its commit is under way (or after one that failed).
        """
        m = self.manager
        local = m._jobs.get(job_id)
        stored = fetched.job
        if (
            newer_only
            and local is not None
            and stored is not None
            and stored.event_seq < local.event_seq
        ):
            return local
        if stored is None:
            if local is not None:
                m._jobs.pop(job_id, None)
                m.scheduler.forget(job_id)
                m.logs.drop(job_id)
            if fetched.tombstone is not None:
                m._tombstones[job_id] = fetched.tombstone
            return None
        if local is None:
            m._jobs[job_id] = stored
            m._seq = max(m._seq, stored.seq)
            m.logs.load(job_id, fetched.events)
            if stored.state is JobState.PENDING:
                m.scheduler.schedule(job_id, stored.run_at)
            return stored
        was_state, was_attempt, was_run_at = local.state, local.attempt, local.run_at
        for name in JobRecord.__dataclass_fields__:
            setattr(local, name, getattr(stored, name))
        self._append(job_id, fetched.events)
        moved = (local.state, local.attempt) != (was_state, was_attempt)
        if was_state is JobState.PROCESSING and moved:
            m.scheduler.stop_running(job_id, grace=m.config.cancel_grace)
        if local.state is JobState.PENDING and (moved or local.run_at != was_run_at):
            m.scheduler.schedule(job_id, local.run_at)
        return local

    def _append(self, job_id: str, events: list[EventRecord]) -> None:
        last = self.manager.logs.last_id(job_id)
        for event in events:
            if event.id > last:
                self.manager.logs.append(job_id, event)

    def on_change(self, job_id: str, fetched: Fetched) -> None:
        """The change feed's callback: take the re-read job (an error is logged, not raised)."""
        try:
            self.apply(job_id, fetched, newer_only=True)
        except Exception:
            log.exception("re-reading job %s after a change elsewhere failed", job_id)

    async def run(self) -> None:
        """Follow the change feed and keep leases, until cancelled."""
        await asyncio.gather(
            self.store.watch(self.on_change, self.manager.logs.last_id), self._lease_loop()
        )

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                await self.renew_and_reap()
            except Exception:
                log.exception("renewing job leases failed")

    async def renew_and_reap(self) -> None:
        """Renew the leases of the jobs running here; recover jobs whose lease lapsed."""
        m = self.manager
        running = set(m.scheduler.running())
        if running:
            await self.store.lease(running, self.lease_ttl)
        others = [
            job.id
            for job in m._jobs.values()
            if job.state is JobState.PROCESSING and job.id not in running
        ]
        if not others:
            return
        for job_id, held in zip(others, await self.store.leased(others), strict=True):
            if held:
                continue
            job = await self.refresh(job_id)
            if job is not None and job.state is JobState.PROCESSING:
                log.warning("job %s lost its instance (lease lapsed): recovering it", job_id)
                await m.recover_interrupted(job)
