"""Job storage: an in-memory store (the default) and a SQLite store that survives restarts.

The job manager keeps its working set in memory and writes every change through to the
store. :class:`MemoryStore` keeps only results (nothing survives the process);
:class:`SqliteStore` persists jobs, results (files as blobs), event logs, idempotency keys,
tombstones and webhook deliveries, and hands them back on the next start.

Every store writes a job change, its event and the webhook deliveries it causes in one
atomic step (:meth:`Store.commit`): a job is never final on record without the delivery of
its terminal event, even after ``kill -9``.

The protocol is asynchronous, so a store that talks to a server (Redis) never blocks the
event loop. The memory and SQLite stores implement it with synchronous bodies: awaiting one
of their calls never suspends (no loop turn), so the job manager's steps stay as atomic
within the loop as they were with a synchronous protocol.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .deliveries_store import (
    DeliveryStore,
    MemoryDeliveryStore,
    PendingDelivery,
    SqliteDeliveryStore,
    StoredDelivery,
)
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

__all__ = [
    "KeyTaken",
    "LoadedState",
    "Fetched",
    "MemoryStore",
    "SharedStore",
    "SqliteStore",
    "StaleJob",
    "StoreUnavailable",
    "Store",
    "job_from_json",
    "job_to_json",
]

#: Most events kept per job (older ones are dropped from the replay log).
EVENT_LOG_LIMIT = 1000

log = logging.getLogger("reference_server.store")

#: Rows that could not be loaded are moved here (with why), not lost and not served.
_QUARANTINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    tbl TEXT NOT NULL, row_key TEXT NOT NULL, data TEXT, reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL);
"""


class StoreUnavailable(RuntimeError):
    """The store cannot be opened (a Redis server that does not answer, say)."""


class StaleJob(Exception):
    """A commit lost a race: another server instance changed the job first (shared stores)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was changed by another instance")
        self.job_id = job_id


class KeyTaken(Exception):
    """A submission's ``Idempotency-Key`` was claimed first by another instance's job."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"the idempotency key belongs to job {job_id}")
        self.job_id = job_id


@dataclass
class LoadedState:
    """What a store hands back when it opens."""

    jobs: list[JobRecord] = field(default_factory=list)
    events: dict[str, list[EventRecord]] = field(default_factory=dict)
    tombstones: list[Tombstone] = field(default_factory=list)
    idempotency: list[IdempotencyRecord] = field(default_factory=list)
    deliveries: list[StoredDelivery] = field(default_factory=list)


class Store(Protocol):
    """Write-through persistence used by the job manager (every I/O call is awaited)."""

    #: The webhook deliveries kept beside the jobs (opened and closed with the store).
    deliveries: DeliveryStore

    async def open(self) -> LoadedState:
        """Open the store and return what it holds."""

    async def close(self) -> None:
        """Release the store's resources."""

    async def save_job(self, job: JobRecord) -> None:
        """Insert or update ``job``."""

    async def delete_job(self, job_id: str) -> None:
        """Delete a job with its result and events."""

    async def quarantine_job(self, job_id: str, reason: str) -> None:
        """Move a job the server cannot serve aside (kept for inspection, never loaded)."""

    async def put_result(self, job_id: str, result: StoredResult) -> None:
        """Store a job's result."""

    async def get_result(self, job_id: str) -> StoredResult | None:
        """Return a job's result, if stored."""

    async def delete_result(self, job_id: str) -> None:
        """Drop a job's result."""

    async def commit(
        self,
        job: JobRecord,
        event: EventRecord | None,
        deliveries: Sequence[PendingDelivery],
        *,
        key: IdempotencyRecord | None = None,
    ) -> None:
        """Write ``job``, append ``event``, insert ``deliveries`` and ``key``: all or nothing.

        ``key`` is the ``Idempotency-Key`` that created the job (its first commit), so an
        acknowledged job is never without its key, nor a key without its job.

        Raises:
            StaleJob: a shared store holds a newer version of the job (nothing written).
            KeyTaken: a shared store already holds ``key`` for another job.
        """

    async def save_tombstone(self, tombstone: Tombstone) -> None:
        """Remember an expired job."""

    async def delete_tombstone(self, job_id: str) -> None:
        """Forget an expired job."""

    async def save_idempotency(self, record: IdempotencyRecord) -> None:
        """Remember an idempotency key."""

    async def delete_idempotency(self, user: str, key: str) -> None:
        """Forget an idempotency key."""

    async def clear(self) -> None:
        """Delete everything."""


@dataclass
class Fetched:
    """One job as a shared store holds it now (``job`` is ``None`` once it is gone)."""

    job: JobRecord | None
    events: list[EventRecord]
    tombstone: Tombstone | None = None


@runtime_checkable
class SharedStore(Protocol):
    """What a store shared by several server instances (Redis) adds to :class:`Store`.

    The store is the record of truth and each instance's memory a copy kept in step:
    :meth:`Store.commit` refuses a change made on an out-of-date copy (``StaleJob``), and
    :meth:`watch` tells every instance which jobs changed.
    """

    #: This instance's name (leases and logs).
    instance: str

    async def next_seq(self) -> int:
        """A job sequence number no other instance hands out."""

    async def fetch(self, job_id: str, after_event: int) -> Fetched:
        """The job now, with its logged events newer than ``after_event``."""

    async def find_idempotency(self, user: str, key: str) -> IdempotencyRecord | None:
        """The live record of ``key`` for ``user``, whichever instance wrote it."""

    async def lease(self, job_ids: Iterable[str], ttl: float) -> None:
        """Hold (or renew) this instance's lease on running jobs for ``ttl`` seconds."""

    async def leased(self, job_ids: Sequence[str]) -> list[bool]:
        """Whether each job's lease is held by a live instance."""

    def watch(
        self, on_change: Callable[[str, Fetched], None], after: Callable[[str], int]
    ) -> Awaitable[None]:
        """Until cancelled, re-read every job another instance changes (without blocking the
        event loop) and call ``on_change(job_id, fetched)``; ``after(job_id)`` is the last
        event id already held."""


def job_to_json(job: JobRecord) -> str:
    """Serialise a job record to JSON."""
    data: dict[str, Any] = {name: getattr(job, name) for name in JobRecord.__dataclass_fields__}
    data["state"] = job.state.value
    data["progress"] = job.progress.to_json() if job.progress is not None else None
    data["error"] = job.error.to_json() if job.error is not None else None
    return json.dumps(data, separators=(",", ":"))


def job_from_json(text: str) -> JobRecord:
    """Load a job record serialised by :func:`job_to_json`.

    Raises:
        ValueError: the text is not such a record (``RecursionError``, ``KeyError`` and
            ``TypeError`` from a damaged row are turned into ``ValueError``).
    """
    try:
        data: dict[str, Any] = json.loads(text)
        known = {k: v for k, v in data.items() if k in JobRecord.__dataclass_fields__}
        known["state"] = JobState(known["state"])
        if known.get("progress") is not None:
            known["progress"] = Progress(**known["progress"])
        if known.get("error") is not None:
            known["error"] = JobError(**known["error"])
        job = JobRecord(**known)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise ValueError(f"not a job record: {type(exc).__name__}: {exc}"[:500]) from None
    if not isinstance(job.id, str) or not isinstance(job.seq, int) or not job.id:
        raise ValueError("not a job record: bad id or seq")
    return job


class MemoryStore:
    """The default store: results in a dict, nothing persisted (no call ever suspends)."""

    def __init__(self) -> None:
        self._results: dict[str, StoredResult] = {}
        self.deliveries: DeliveryStore = MemoryDeliveryStore()

    async def open(self) -> LoadedState:
        """Open the store and return what it holds."""
        return LoadedState()

    async def close(self) -> None:
        """Release the store's resources."""
        self._results.clear()

    async def save_job(self, job: JobRecord) -> None:
        """Insert or update ``job``."""
        pass

    async def delete_job(self, job_id: str) -> None:
        """Delete a job with its result and events."""
        self._results.pop(job_id, None)

    async def quarantine_job(self, job_id: str, reason: str) -> None:
        """Move a job the server cannot serve aside (nothing is kept in memory)."""
        self._results.pop(job_id, None)

    async def put_result(self, job_id: str, result: StoredResult) -> None:
        """Store a job's result."""
        self._results[job_id] = result

    async def get_result(self, job_id: str) -> StoredResult | None:
        """Return a job's result, if stored."""
        return self._results.get(job_id)

    async def delete_result(self, job_id: str) -> None:
        """Drop a job's result."""
        self._results.pop(job_id, None)

    async def commit(
        self,
        job: JobRecord,
        event: EventRecord | None,
        deliveries: Sequence[PendingDelivery],
        *,
        key: IdempotencyRecord | None = None,
    ) -> None:
        """Nothing to write: the job manager's memory is the record (one call, no await)."""
        pass

    async def save_tombstone(self, tombstone: Tombstone) -> None:
        """Remember an expired job."""
        pass

    async def delete_tombstone(self, job_id: str) -> None:
        """Forget an expired job."""
        pass

    async def save_idempotency(self, record: IdempotencyRecord) -> None:
        """Remember an idempotency key."""
        pass

    async def delete_idempotency(self, user: str, key: str) -> None:
        """Forget an idempotency key."""
        pass

    async def clear(self) -> None:
        """Delete everything."""
        self._results.clear()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, content_type TEXT NOT NULL,
    filename TEXT, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL, id INTEGER NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job_id, id));
CREATE TABLE IF NOT EXISTS tombstones (
    job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expired_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    user TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, job_id TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (user, key));
"""


def _is_time(value: Any) -> bool:
    """Whether a stored time is a finite number (SQLite columns are loosely typed)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value == value
        and abs(value) < 1e12
    )


class SqliteStore:
    """A SQLite store (stdlib :mod:`sqlite3`): a restart loses no accepted job.

    Every write is committed at once (autocommit, WAL journal). The connection is used from
    the server's event loop thread only: its calls are ``async def`` with synchronous bodies
    (a write to a local file takes well under a millisecond, less than a hop to a thread),
    so awaiting one never suspends.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        self.deliveries: DeliveryStore = SqliteDeliveryStore(path, connection=lambda: self.db)

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError("the sqlite store is not open")
        return self._db

    async def open(self) -> LoadedState:
        """Open the store and return what it holds."""
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.executescript(_QUARANTINE_SCHEMA)
        state = LoadedState()
        state.deliveries = await self.deliveries.open()
        state.jobs = await self._load_jobs()
        state.events = self._load_events({job.id for job in state.jobs})
        for job_id in state.events:
            state.events[job_id] = state.events[job_id][-EVENT_LOG_LIMIT:]
        for job_id, owner, expired_at in self.db.execute(
            "SELECT job_id, owner, expired_at FROM tombstones"
        ).fetchall():
            if _is_time(expired_at):
                state.tombstones.append(Tombstone(job_id, owner, expired_at))
            else:
                self._quarantine("tombstones", str(job_id), repr(expired_at), "bad expired_at")
                await self.delete_tombstone(job_id)
        for row in self.db.execute(
            "SELECT user, key, body_hash, job_id, created_at, expires_at FROM idempotency"
        ).fetchall():
            if _is_time(row[4]) and _is_time(row[5]):
                state.idempotency.append(IdempotencyRecord(*row))
            else:
                self._quarantine("idempotency", f"{row[0]}/{row[1]}", repr(row), "bad times")
                await self.delete_idempotency(row[0], row[1])
        return state

    async def _load_jobs(self) -> list[JobRecord]:
        """Every loadable job; a row that does not load is quarantined and logged."""
        jobs: list[JobRecord] = []
        for job_id, data in self.db.execute("SELECT id, data FROM jobs ORDER BY seq").fetchall():
            try:
                jobs.append(job_from_json(data))
            except ValueError as exc:
                self._quarantine("jobs", str(job_id), data, str(exc))
                await self.delete_job(str(job_id))
        return jobs

    def _load_events(self, job_ids: set[str]) -> dict[str, list[EventRecord]]:
        """The event logs of ``job_ids``; an event row that does not load is quarantined."""
        events: dict[str, list[EventRecord]] = {}
        rows = self.db.execute(
            "SELECT job_id, id, event, data FROM events ORDER BY job_id, id"
        ).fetchall()
        for job_id, eid, event, data in rows:
            if job_id not in job_ids:
                continue
            try:
                doc = json.loads(data)
                if not isinstance(doc, dict) or not isinstance(eid, int):
                    raise ValueError("not an event record")
            except (ValueError, TypeError, RecursionError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:500]
                self._quarantine("events", f"{job_id}/{eid}", data, reason)
                self.db.execute("DELETE FROM events WHERE job_id = ? AND id = ?", (job_id, eid))
                continue
            events.setdefault(job_id, []).append(EventRecord(eid, str(event), doc))
        return events

    def _quarantine(self, table: str, key: str, data: Any, reason: str) -> None:
        log.error("sqlite store: %s row %s does not load (%s): quarantined", table, key, reason)
        self.db.execute(
            "INSERT INTO quarantine (tbl, row_key, data, reason, quarantined_at)"
            " VALUES (?, ?, ?, ?, strftime('%s', 'now'))",
            (table, key, data if isinstance(data, str) else repr(data), reason),
        )

    async def quarantine_job(self, job_id: str, reason: str) -> None:
        """Move a job the server cannot serve aside (kept for inspection, never loaded)."""
        row = self.db.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
        self._quarantine("jobs", job_id, row[0] if row is not None else None, reason)
        await self.delete_job(job_id)

    async def close(self) -> None:
        """Release the store's resources."""
        if self._db is not None:
            await self.deliveries.close()
            self._db.close()
            self._db = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def save_job(self, job: JobRecord) -> None:
        """Insert or update ``job``."""
        self.db.execute(
            "INSERT OR REPLACE INTO jobs (id, seq, data) VALUES (?, ?, ?)",
            (job.id, job.seq, job_to_json(job)),
        )

    async def delete_job(self, job_id: str) -> None:
        """Delete a job with its result and events."""
        with self._transaction() as db:
            for table, column in (("jobs", "id"), ("results", "job_id"), ("events", "job_id")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))

    async def put_result(self, job_id: str, result: StoredResult) -> None:
        """Store a job's result."""
        self.db.execute(
            "INSERT OR REPLACE INTO results (job_id, kind, content_type, filename, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (job_id, result.kind, result.content_type, result.filename, result.data),
        )

    async def get_result(self, job_id: str) -> StoredResult | None:
        """Return a job's result, if stored."""
        row = self.db.execute(
            "SELECT kind, data, content_type, filename FROM results WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return None
        return StoredResult(row[0], bytes(row[1]), row[2], row[3])

    async def delete_result(self, job_id: str) -> None:
        """Drop a job's result."""
        self.db.execute("DELETE FROM results WHERE job_id = ?", (job_id,))

    async def commit(
        self,
        job: JobRecord,
        event: EventRecord | None,
        deliveries: Sequence[PendingDelivery],
        *,
        key: IdempotencyRecord | None = None,
    ) -> None:
        """Write ``job``, append ``event``, insert ``deliveries`` and ``key`` in one transaction."""
        with self._transaction():
            await self.save_job(job)
            if event is not None:
                self._append_event(job.id, event)
            for delivery in deliveries:
                await self.deliveries.save(delivery)
            if key is not None:
                await self.save_idempotency(key)

    def _append_event(self, job_id: str, event: EventRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO events (job_id, id, event, data) VALUES (?, ?, ?, ?)",
            (job_id, event.id, event.event, json.dumps(event.data, separators=(",", ":"))),
        )
        if event.id > EVENT_LOG_LIMIT and event.id % 100 == 0:
            self.db.execute(
                "DELETE FROM events WHERE job_id = ? AND id <= ?",
                (job_id, event.id - EVENT_LOG_LIMIT),
            )

    async def save_tombstone(self, tombstone: Tombstone) -> None:
        """Remember an expired job."""
        self.db.execute(
            "INSERT OR REPLACE INTO tombstones (job_id, owner, expired_at) VALUES (?, ?, ?)",
            (tombstone.job_id, tombstone.owner, tombstone.expired_at),
        )

    async def delete_tombstone(self, job_id: str) -> None:
        """Forget an expired job."""
        self.db.execute("DELETE FROM tombstones WHERE job_id = ?", (job_id,))

    async def save_idempotency(self, record: IdempotencyRecord) -> None:
        """Remember an idempotency key."""
        self.db.execute(
            "INSERT OR REPLACE INTO idempotency"
            " (user, key, body_hash, job_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.user,
                record.key,
                record.body_hash,
                record.job_id,
                record.created_at,
                record.expires_at,
            ),
        )

    async def delete_idempotency(self, user: str, key: str) -> None:
        """Forget an idempotency key."""
        self.db.execute("DELETE FROM idempotency WHERE user = ? AND key = ?", (user, key))

    async def clear(self) -> None:
        """Delete everything."""
        for table in ("jobs", "results", "events", "tombstones", "idempotency"):
            self.db.execute(f"DELETE FROM {table}")
        await self.deliveries.clear()
