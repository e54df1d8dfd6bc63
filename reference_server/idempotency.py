"""Remembered ``Idempotency-Key`` headers: which job each key created, for how long.

Keys are per user (one user's key never matches another's) and expire after
``idempotency_ttl`` seconds; every change is written through to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .records import IdempotencyRecord
from .store import Store

__all__ = ["IdempotencyKeys"]


class IdempotencyKeys:
    """The live idempotency records of one server."""

    def __init__(self, store: Store, clock: Callable[[], float], ttl: float) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._records: dict[tuple[str, str], IdempotencyRecord] = {}

    def load(self, records: Iterable[IdempotencyRecord]) -> None:
        """Take over the records a store handed back when it opened."""
        for rec in records:
            self._records[(rec.user, rec.key)] = rec

    async def get(self, user: str, key: str) -> IdempotencyRecord | None:
        """Return the live record of ``key`` for ``user``, if any."""
        rec = self._records.get((user, key))
        if rec is not None and rec.expires_at <= self._clock():
            await self._forget(rec)
            return None
        return rec

    def record(self, user: str, key: str, body_hash: str, job_id: str) -> IdempotencyRecord:
        """A new record of ``key`` for ``job_id`` (written by the job's first commit)."""
        now = self._clock()
        return IdempotencyRecord(user, key, body_hash, job_id, now, now + self._ttl)

    def adopt(self, rec: IdempotencyRecord) -> None:
        """Keep a record the store has committed (or another instance did)."""
        self._records[(rec.user, rec.key)] = rec

    async def sweep(self, now: float) -> None:
        """Forget every key past its TTL."""
        for rec in [r for r in self._records.values() if r.expires_at <= now]:
            await self._forget(rec)

    def clear(self) -> None:
        """Forget every key (the store is cleared by its owner)."""
        self._records.clear()

    async def _forget(self, rec: IdempotencyRecord) -> None:
        self._records.pop((rec.user, rec.key), None)
        await self._store.delete_idempotency(rec.user, rec.key)
