"""Webhook deliveries in Redis, shared by every instance (``--store redis``).

Redis is the record of truth for deliveries: the listing, the per-user bound and who sends
a pending delivery are decided there, not by the instance that made it.

Keys (besides the job's own ``ar:{J}:dlv`` hash and ``ar:{J}:att:<D>`` lists)::

    ar:{J}:dlease:<D>         STRING  the instance sending delivery D, PX the lease; renewed
                                      by its sender, claimed (SET NX) by another once it lapses
    ar:owner:<H>:dlv:pending  ZSET    "<J> <D>" of the user's pending deliveries, by creation
    ar:owner:<H>:dlv:done     ZSET    "<J> <D>" of the user's finished ones, by finishing time
    ar:dlv:pending            ZSET    "<J> <D>" of every pending delivery (the takeover scan)

``H`` is sha256 of the user. A delivery enters the three sets in the job's commit script
(:data:`COMMIT_DELIVERIES`), which also enforces ``webhook_max_deliveries_per_owner``: while
the user has more records than the bound, its oldest finished record is dropped; a pending
one never is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from .deliveries_store import PendingDelivery, StoredDelivery, delivery_from_json, delivery_to_json
from .records import DeliveryRecord
from .redis_client import PREFIX, RedisClient, job_key, owner_key, text

__all__ = ["COMMIT_DELIVERIES", "PENDING", "RedisDeliveryStore", "delivery_args"]

log = logging.getLogger("reference_server.store")

#: Every pending delivery of every user (the takeover scan).
PENDING = f"{PREFIX}:dlv:pending"

# The delivery part of the job's commit script (redis_store._COMMIT). KEYS[4] is the job's
# ``dlv`` hash, KEYS[6..8] the owner's pending and done sets and PENDING. ARGV[12] the bound,
# ARGV[13] this instance, ARGV[14] the lease (ms), ARGV[15] the key prefix, then per delivery
# from ARGV[16]: id, JSON, creation time, set member.
COMMIT_DELIVERIES = """
local base = string.sub(KEYS[4], 1, -4)
for i = 16, #ARGV, 4 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[6], ARGV[i + 2], ARGV[i + 3])
  redis.call('ZADD', KEYS[8], ARGV[i + 2], ARGV[i + 3])
  redis.call('SET', base .. 'dlease:' .. ARGV[i], ARGV[13], 'PX', ARGV[14])
end
if #ARGV >= 16 then
  local over = redis.call('ZCARD', KEYS[6]) + redis.call('ZCARD', KEYS[7]) - tonumber(ARGV[12])
  while over > 0 do
    local popped = redis.call('ZPOPMIN', KEYS[7])
    if #popped == 0 then break end
    local sp = string.find(popped[1], ' ', 1, true)
    local j, d = string.sub(popped[1], 1, sp - 1), string.sub(popped[1], sp + 1)
    redis.call('HDEL', ARGV[15] .. ':{' .. j .. '}:dlv', d)
    redis.call('DEL', ARGV[15] .. ':{' .. j .. '}:att:' .. d)
    over = over - 1
  end
end
"""


def _member(job_id: str, delivery_id: str) -> str:
    return f"{job_id} {delivery_id}"


def _split(member: bytes | str) -> tuple[str, str]:
    job_id, _, delivery_id = text(member).partition(" ")
    return job_id, delivery_id


def delivery_args(deliveries: Sequence[PendingDelivery]) -> list[Any]:
    """The commit script's per-delivery arguments (id, JSON, creation time, set member)."""
    args: list[Any] = []
    for delivery in deliveries:
        rec = delivery.record
        args += [rec.id, delivery_to_json(delivery), rec.created_at, _member(rec.job_id, rec.id)]
    return args


class RedisDeliveryStore:
    """Webhook deliveries in Redis, shared by the instances (opened by the ``RedisStore``).

    Implements :class:`~reference_server.deliveries_store.DeliveryStore` and
    :class:`~reference_server.deliveries_store.SharedDeliveryStore`.

    Args:
        client: the job store's connection.
        instance: this instance's name (the holder of its delivery leases).
    """

    def __init__(self, client: RedisClient, instance: str) -> None:
        self._client = client
        self.instance = instance
        self._job_of: dict[str, str] = {}
        self._cursor = 0

    async def open(self) -> list[StoredDelivery]:
        """Nothing to load: records stay in Redis, pending ones are claimed (:meth:`claim`)."""
        return []

    def remember(self, delivery: PendingDelivery) -> None:
        """Note which job's keys hold ``delivery`` (a commit writes it)."""
        self._job_of[delivery.record.id] = delivery.record.job_id

    async def save(self, delivery: PendingDelivery) -> None:
        """Update a delivery; a finished one leaves the pending sets for the owner's done set."""
        rec = delivery.record
        self.remember(delivery)
        member = _member(rec.job_id, rec.id)
        async with self._client.redis.pipeline(transaction=True) as pipe:
            pipe.hset(job_key(rec.job_id, "dlv"), rec.id, delivery_to_json(delivery))
            if rec.status != "pending":
                pipe.zrem(owner_key(rec.owner, "dlv:pending"), member)
                pipe.zrem(PENDING, member)
                pipe.zadd(owner_key(rec.owner, "dlv:done"), {member: rec.updated_at})
                pipe.delete(job_key(rec.job_id, f"dlease:{rec.id}"))
            await pipe.execute()

    async def record_attempt(
        self, delivery_id: str, attempt: int, at: float, outcome: str, status: int | None
    ) -> None:
        """Append one attempt's outcome."""
        job_id = self._job_of.get(delivery_id)
        if job_id is None:
            return
        doc = {"attempt": attempt, "at": at, "outcome": outcome, "status": status}
        await self._client.redis.rpush(job_key(job_id, f"att:{delivery_id}"), json.dumps(doc))

    async def delete(self, delivery_id: str) -> None:
        """Forget a delivery and its attempts (the owner's sets drop it when they meet it)."""
        job_id = self._job_of.pop(delivery_id, None)
        if job_id is None:
            return
        async with self._client.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(job_key(job_id, "dlv"), delivery_id)
            pipe.delete(
                job_key(job_id, f"att:{delivery_id}"), job_key(job_id, f"dlease:{delivery_id}")
            )
            pipe.zrem(PENDING, _member(job_id, delivery_id))
            await pipe.execute()

    async def clear(self) -> None:
        """Forget every delivery (and the indexes)."""
        r = self._client.redis
        for pattern in (
            f"{PREFIX}:{{*}}:dlv",
            f"{PREFIX}:{{*}}:att:*",
            f"{PREFIX}:{{*}}:dlease:*",
            f"{PREFIX}:owner:*",
        ):
            async for key in self._client.scan(pattern):
                await r.delete(key)
        await r.delete(PENDING)
        self._job_of.clear()

    async def close(self) -> None:
        """Nothing to do: the connection is the job store's."""

    # ------------------------------------------------------------ shared by the instances
    async def records_of(self, owner: str) -> list[DeliveryRecord]:
        """Every delivery record of ``owner`` in Redis, oldest first."""
        r = self._client.redis
        async with r.pipeline(transaction=False) as pipe:
            pipe.zrange(owner_key(owner, "dlv:pending"), 0, -1)
            pipe.zrange(owner_key(owner, "dlv:done"), 0, -1)
            indexed = await pipe.execute()
        by_job: dict[str, list[str]] = {}
        for member in (m for members in indexed for m in members):
            job_id, delivery_id = _split(member)
            by_job.setdefault(job_id, []).append(delivery_id)
        async with r.pipeline(transaction=False) as pipe:
            for job_id, ids in by_job.items():
                pipe.hmget(job_key(job_id, "dlv"), ids)
            stored = await pipe.execute()
        records: list[DeliveryRecord] = []
        for values in stored:
            for data in values:
                if data is None:
                    continue
                try:
                    records.append(delivery_from_json(data).record)
                except (ValueError, KeyError, TypeError, RecursionError):
                    log.error("redis store: a webhook delivery of %r is unreadable", owner)
        records.sort(key=lambda rec: (rec.created_at, rec.id))
        return records

    async def pending_count(self, owner: str) -> int:
        """How many of ``owner``'s deliveries are pending (over every instance)."""
        return int(await self._client.redis.zcard(owner_key(owner, "dlv:pending")))

    async def renew(self, delivery_ids: Iterable[str], ttl: float) -> None:
        """Hold this instance's lease on the deliveries it is sending for ``ttl`` more seconds."""
        async with self._client.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                job_id = self._job_of.get(delivery_id)
                if job_id is not None:
                    key = job_key(job_id, f"dlease:{delivery_id}")
                    pipe.set(key, self.instance, px=max(int(ttl * 1000), 1))
            await pipe.execute()

    async def claim(self, ttl: float, batch: int = 200) -> list[StoredDelivery]:
        """Take over pending deliveries whose lease lapsed (their sender died), atomically.

        Each call scans the next ``batch`` pending deliveries (round the whole set over
        calls); a lapsed lease is taken with ``SET NX``, so one instance wins each delivery.
        """
        r = self._client.redis
        members = await r.zrange(PENDING, self._cursor, self._cursor + batch - 1)
        self._cursor = 0 if len(members) < batch else self._cursor + batch
        if not members:
            return []
        px = max(int(ttl * 1000), 1)
        async with r.pipeline(transaction=False) as pipe:
            for member in members:
                job_id, delivery_id = _split(member)
                pipe.set(job_key(job_id, f"dlease:{delivery_id}"), self.instance, nx=True, px=px)
            taken = await pipe.execute()
        won = [_split(m) for m, ok in zip(members, taken, strict=True) if ok]
        if not won:
            return []
        async with r.pipeline(transaction=False) as pipe:
            for job_id, delivery_id in won:
                pipe.hget(job_key(job_id, "dlv"), delivery_id)
                pipe.lrange(job_key(job_id, f"att:{delivery_id}"), 0, -1)
            replies = await pipe.execute()
        claimed: list[StoredDelivery] = []
        for (job_id, delivery_id), data, tried in zip(
            won, replies[0::2], replies[1::2], strict=True
        ):
            pending = await self._loaded(job_id, delivery_id, data)
            if pending is None:
                continue
            self.remember(pending)
            claimed.append(StoredDelivery(pending, [json.loads(a) for a in tried]))
        return claimed

    async def _loaded(
        self, job_id: str, delivery_id: str, data: bytes | None
    ) -> PendingDelivery | None:
        """The claimed delivery, or ``None`` (then its stale index entry is removed)."""
        pending: PendingDelivery | None = None
        if data is not None:
            try:
                pending = delivery_from_json(data)
            except (ValueError, KeyError, TypeError, RecursionError):
                log.error("webhook delivery %r in the store is unreadable; skipped", delivery_id)
        if pending is not None and pending.record.status == "pending":
            return pending
        member = _member(job_id, delivery_id)
        async with self._client.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(PENDING, member)
            pipe.delete(job_key(job_id, f"dlease:{delivery_id}"))
            if pending is not None:
                pipe.zrem(owner_key(pending.record.owner, "dlv:pending"), member)
            await pipe.execute()
        return None
