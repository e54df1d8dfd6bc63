"""Persistence of webhook deliveries and their attempts (memory, or SQLite beside the jobs).

With ``--store sqlite`` a delivery pending at shutdown (or at a crash, ``kill -9``) is resumed
on the next start under the same delivery id, so a receiver that de-duplicates on
``webhook-id`` sees it exactly once. The SQLite tables live in the jobs database file, on the
job store's connection: a job's terminal state and its delivery are one transaction
(:meth:`reference_server.store.SqliteStore.commit`). Every other write commits at once (WAL).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .records import DeliveryRecord

__all__ = [
    "DeliveryStore",
    "MemoryDeliveryStore",
    "PendingDelivery",
    "SharedDeliveryStore",
    "SqliteDeliveryStore",
    "StoredDelivery",
    "delivery_from_json",
    "delivery_to_json",
]

log = logging.getLogger("reference_server.webhooks")


@dataclass
class PendingDelivery:
    """What the sender needs to (re)send one delivery beyond its public record.

    Attributes:
        record: the public record (``GET /webhooks/deliveries``).
        event: the event document without its per-attempt fields (``type``, ``jobId``,
            ``data``); each attempt adds ``deliveryId`` and a fresh ``timestamp``.
        next_attempt_at: epoch seconds before which the next attempt must not start.
    """

    record: DeliveryRecord
    event: dict[str, Any]
    next_attempt_at: float


@dataclass(frozen=True)
class StoredDelivery:
    """A delivery as loaded from a store."""

    pending: PendingDelivery
    attempts: list[dict[str, Any]]


class DeliveryStore(Protocol):
    """Write-through persistence of deliveries (awaited from the event loop; the memory and
    SQLite stores never suspend, the Redis one uses redis-py's asyncio client)."""

    async def open(self) -> list[StoredDelivery]:
        """Open the store and return its deliveries, oldest first."""

    async def save(self, delivery: PendingDelivery) -> None:
        """Insert or update a delivery."""

    async def record_attempt(
        self, delivery_id: str, attempt: int, at: float, outcome: str, status: int | None
    ) -> None:
        """Append one attempt's outcome."""

    async def delete(self, delivery_id: str) -> None:
        """Forget a delivery and its attempts."""

    async def clear(self) -> None:
        """Forget every delivery."""

    async def close(self) -> None:
        """Release resources."""


@runtime_checkable
class SharedDeliveryStore(Protocol):
    """What a store shared by several instances adds (``--store redis``).

    The store, not the instance, is then the truth for the listing, the per-user bound and
    which instance sends a pending delivery: each delivery carries a lease its sender renews
    (:meth:`renew`); a live instance takes over those whose lease lapsed (:meth:`claim`).
    """

    async def records_of(self, owner: str) -> list[DeliveryRecord]:
        """Every delivery record of ``owner``, oldest first."""

    async def pending_count(self, owner: str) -> int:
        """How many of ``owner``'s deliveries are pending."""

    async def renew(self, delivery_ids: Iterable[str], ttl: float) -> None:
        """Extend this instance's lease on the deliveries it is sending by ``ttl`` seconds."""

    async def claim(self, ttl: float, batch: int = 200) -> list[StoredDelivery]:
        """Take over (atomically) pending deliveries whose lease lapsed."""


class MemoryDeliveryStore:
    """Nothing persisted: deliveries live as long as the process (the default store)."""

    async def open(self) -> list[StoredDelivery]:
        """Return nothing: a new process has no deliveries."""
        return []

    async def save(self, delivery: PendingDelivery) -> None:
        """Nothing to do."""

    async def record_attempt(
        self, delivery_id: str, attempt: int, at: float, outcome: str, status: int | None
    ) -> None:
        """Nothing to do."""

    async def delete(self, delivery_id: str) -> None:
        """Nothing to do."""

    async def clear(self) -> None:
        """Nothing to do."""

    async def close(self) -> None:
        """Nothing to do."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at REAL NOT NULL,
    outcome TEXT NOT NULL, status INTEGER, PRIMARY KEY (delivery_id, attempt));
"""

_RECORD_FIELDS = (
    "id",
    "job_id",
    "owner",
    "event",
    "url",
    "created_at",
    "updated_at",
    "attempts",
    "status",
    "last_error",
    "response_status",
)


def delivery_to_json(delivery: PendingDelivery) -> str:
    """Serialise a delivery (record, event document, next attempt time) to JSON."""
    rec = delivery.record
    data: dict[str, Any] = {name: getattr(rec, name) for name in _RECORD_FIELDS}
    data["event_document"] = delivery.event
    data["next_attempt_at"] = delivery.next_attempt_at
    return json.dumps(data, separators=(",", ":"))


def delivery_from_json(text: str | bytes) -> PendingDelivery:
    """Load a delivery serialised by :func:`delivery_to_json`.

    Raises:
        ValueError, KeyError, TypeError, RecursionError: the text is not such a delivery.
    """
    data = json.loads(text)
    fields = {name: data[name] for name in _RECORD_FIELDS}
    event = data["event_document"]
    if not isinstance(event, dict):
        raise ValueError("the stored event document is not an object")
    return PendingDelivery(DeliveryRecord(**fields), event, float(data["next_attempt_at"]))


class SqliteDeliveryStore:
    """Deliveries in the SQLite database file of the job store.

    Args:
        path: the database file (``ServerConfig.sqlite_path``).
        connection: the job store's open connection, shared so that a job and its delivery
            are written in one transaction (``None``: a connection of its own).
    """

    def __init__(
        self, path: str | Path, *, connection: Callable[[], sqlite3.Connection] | None = None
    ) -> None:
        self._path = str(path)
        self._connection = connection
        self._db: sqlite3.Connection | None = None
        self._seq = 0

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError("the delivery store is not open")
        return self._db

    async def open(self) -> list[StoredDelivery]:
        """Open the database and load every delivery; an unreadable row is logged and skipped."""
        if self._connection is not None:
            self._db = self._connection()
        else:
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        attempts: dict[str, list[dict[str, Any]]] = {}
        for delivery_id, attempt, at, outcome, status in self.db.execute(
            "SELECT delivery_id, attempt, at, outcome, status FROM webhook_attempts"
            " ORDER BY delivery_id, attempt"
        ):
            attempts.setdefault(delivery_id, []).append(
                {"attempt": attempt, "at": at, "outcome": outcome, "status": status}
            )
        loaded: list[StoredDelivery] = []
        for delivery_id, seq, data in self.db.execute(
            "SELECT id, seq, data FROM webhook_deliveries ORDER BY seq"
        ):
            self._seq = max(self._seq, seq)
            try:
                pending = delivery_from_json(data)
            except (ValueError, KeyError, TypeError, RecursionError):
                log.error("webhook delivery %r in the store is unreadable; skipped", delivery_id)
                continue
            loaded.append(StoredDelivery(pending, attempts.get(delivery_id, [])))
        return loaded

    async def save(self, delivery: PendingDelivery) -> None:
        """Insert or update a delivery (its position in the order is kept)."""
        row = self.db.execute(
            "SELECT seq FROM webhook_deliveries WHERE id = ?", (delivery.record.id,)
        ).fetchone()
        if row is None:
            self._seq += 1
            seq = self._seq
        else:
            seq = row[0]
        self.db.execute(
            "INSERT OR REPLACE INTO webhook_deliveries (id, seq, data) VALUES (?, ?, ?)",
            (delivery.record.id, seq, delivery_to_json(delivery)),
        )

    async def record_attempt(
        self, delivery_id: str, attempt: int, at: float, outcome: str, status: int | None
    ) -> None:
        """Append one attempt's outcome."""
        self.db.execute(
            "INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, at, outcome, status)"
            " VALUES (?, ?, ?, ?, ?)",
            (delivery_id, attempt, at, outcome, status),
        )

    async def delete(self, delivery_id: str) -> None:
        """Forget a delivery and its attempts."""
        self.db.execute("DELETE FROM webhook_deliveries WHERE id = ?", (delivery_id,))
        self.db.execute("DELETE FROM webhook_attempts WHERE delivery_id = ?", (delivery_id,))

    async def clear(self) -> None:
        """Forget every delivery."""
        self.db.execute("DELETE FROM webhook_deliveries")
        self.db.execute("DELETE FROM webhook_attempts")

    async def close(self) -> None:
        """Close the connection (a shared one is closed by its owner)."""
        if self._db is not None and self._connection is None:
            self._db.close()
        self._db = None
