"""A Redis store (``--store redis://host:port/db``): jobs, results, event logs, tombstones,
idempotency keys and webhook deliveries in Redis, through redis-py.

Key layout (prefix ``ar``; every key of one job carries the job id as a Redis Cluster hash
tag, ``{<job id>}``, so a job's keys live on one shard and its commit is one ``MULTI``)::

    ar:{J}:job          STRING  the job record (JSON, as SQLite keeps it)
    ar:{J}:ver          STRING  its version (the id of its last event): commits compare-and-set
    ar:{J}:lease        STRING  the instance running it, with a TTL (PX) the instance renews
    ar:{J}:events       STREAM  its event log: entry id ``<event id>-0``, fields ``e``, ``d``;
                                trimmed to about EVENT_LOG_LIMIT entries (MAXLEN ~)
    ar:{J}:result       HASH    kind, content_type, filename, data
    ar:{J}:tomb         STRING  what remains once it expired: {"owner", "expired_at"}
    ar:{J}:dlv          HASH    delivery id -> the delivery (JSON, as SQLite keeps it)
    ar:{J}:att:<D>      LIST    the attempts of delivery D (JSON, oldest first)
    ar:{J}:dlease:<D>   STRING  the instance sending delivery D, PX the lease (it renews it)
    ar:owner:<H>:dlv:pending / :dlv:done
                        ZSET    "<J> <D>" of a user's pending / finished deliveries;
                                H = sha256(user) (:mod:`reference_server.redis_deliveries`)
    ar:dlv:pending      ZSET    "<J> <D>" of every pending delivery (the takeover scan)
    ar:idem:<H>         STRING  an Idempotency-Key record; H = sha256(user NUL key); PXAT its
                                expiry, so Redis itself forgets it
    ar:quarantine       HASH    job id -> {"data", "reason"} of rows that did not load
    ar:seq              STRING  the last job sequence number handed out (INCR)
    ar:changes          PUBSUB  "<job id> <version> <instance>" after every commit

:meth:`RedisStore.commit` is one Lua script (atomic in Redis): it checks the job's version
(so two instances never both move a job: the loser gets ``StaleJob`` and re-reads), claims
the ``Idempotency-Key`` with ``SET NX`` for a new job, writes the job, appends its event,
inserts the deliveries it causes into the job's hash and the per-user indexes (dropping the
user's oldest finished records beyond ``webhook_max_deliveries_per_owner``), takes their
delivery lease and publishes the change. With ``appendonly yes`` and
``appendfsync always`` a Redis restart loses no acknowledged write. Every call uses
redis-py's asyncio client (one ``redis.asyncio.Redis`` per process, with its connection
pool), so the event loop serves other requests while Redis answers. The commits of one job
are sent in the order they were made (a per-job lane): a commit queued behind one that lost
its race fails too (``StaleJob``) instead of landing on a version it was not made from.

Redis Cluster: a job's keys share one hash slot, so its script runs on one shard; the
script of a job's *first* commit also touches its ``ar:idem:`` key, which needs a
single-node Redis (or a tag scheme that puts it in the job's slot) — tested on one node;
so do the per-user delivery indexes (``ar:owner:…``, ``ar:dlv:pending``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .deliveries_store import DeliveryStore, PendingDelivery
from .records import EventRecord, IdempotencyRecord, JobRecord, StoredResult, Tombstone
from .redis_client import PREFIX, RedisClient, job_key, owner_key, raw, text
from .redis_deliveries import COMMIT_DELIVERIES, PENDING, RedisDeliveryStore, delivery_args
from .store import (
    EVENT_LOG_LIMIT,
    Fetched,
    KeyTaken,
    LoadedState,
    StaleJob,
    job_from_json,
    job_to_json,
)

try:
    import redis
except ImportError:  # pragma: no cover - the server extra installs it
    redis = None  # type: ignore[assignment]

__all__ = ["RedisDeliveryStore", "RedisStore", "job_key"]

log = logging.getLogger("reference_server.store")

CHANGES = f"{PREFIX}:changes"

# KEYS: job, ver, events, dlv, idem, the owner's pending and done delivery sets, every
# pending delivery. ARGV: expected version, new version, job JSON, event id ("" for none),
# event name, event data, idempotency JSON ("" for none), its PXAT, stream length, channel,
# change message, the per-user delivery bound, this instance, the delivery lease (ms), the
# key prefix, then the deliveries (redis_deliveries.COMMIT_DELIVERIES).
_COMMIT = (
    """
local ver = tonumber(redis.call('GET', KEYS[2]) or '0')
if ver ~= tonumber(ARGV[1]) then return {0, tostring(ver)} end
if ARGV[7] ~= '' then
  if not redis.call('SET', KEYS[5], ARGV[7], 'NX', 'PXAT', ARGV[8]) then
    return {2, redis.call('GET', KEYS[5])}
  end
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], ARGV[4] .. '-0', 'e', ARGV[5], 'd', ARGV[6])
end
"""
    + COMMIT_DELIVERIES
    + """
redis.call('PUBLISH', ARGV[10], ARGV[11])
return {1, ''}
"""
)


# A job now (one round trip, atomic): KEYS: job, events, tomb; ARGV: the first event id to
# return. Replies the job (nil once gone), its events from ARGV[1] (raw XRANGE entries: id,
# flat field list; none without the job) and its tombstone.
_FETCH = """
local job = redis.call('GET', KEYS[1])
local events = {}
if job then events = redis.call('XRANGE', KEYS[2], ARGV[1], '+') end
return {job, events, redis.call('GET', KEYS[3])}
"""


def _idempotency_key(user: str, key: str) -> str:
    digest = hashlib.sha256(f"{user}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}:idem:{digest}"


def _key_doc(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "user": record.user,
        "key": record.key,
        "body_hash": record.body_hash,
        "job_id": record.job_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


@dataclass
class _Lane:
    """The commits of one job in flight here, sent one at a time in the order they were made."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: How many commits of the job lost their race (a commit queued before that fails too).
    lost: int = 0
    #: Commits queued or in flight (the lane is dropped at 0).
    users: int = 0


def _job_id_of(key: bytes | str) -> str:
    """``ar:{J}:part`` -> ``J``."""
    name = text(key)
    return name[name.index("{") + 1 : name.index("}")]


class RedisStore:
    """Jobs, results, event logs, tombstones, keys and deliveries in Redis.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS, ``unix://`` for a socket).
    """

    def __init__(
        self, url: str, *, max_deliveries_per_owner: int = 10_000, delivery_lease: float = 5.0
    ) -> None:
        self._client = RedisClient(url)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._deliveries = RedisDeliveryStore(self._client, self.instance)
        self.deliveries: DeliveryStore = self._deliveries
        self.max_deliveries_per_owner = max_deliveries_per_owner
        self.delivery_lease = delivery_lease
        self._commit: Any = None
        self._fetch: Any = None
        self._lanes: dict[str, _Lane] = {}

    async def open(self) -> LoadedState:
        """Connect and load what Redis holds (jobs in ``seq`` order)."""
        await self._client.open()
        r = self._client.redis
        self._commit = r.register_script(_COMMIT)
        self._fetch = r.register_script(_FETCH)
        state = LoadedState()
        keys = [key async for key in self._client.scan(f"{PREFIX}:{{*}}:job")]
        for key, data in zip(keys, await r.mget(keys) if keys else [], strict=True):
            if data is None:
                continue
            try:
                state.jobs.append(job_from_json(text(data)))
            except ValueError as exc:
                await self.quarantine_job(_job_id_of(key), str(exc))
        state.jobs.sort(key=lambda job: job.seq)
        pipe = r.pipeline(transaction=False)
        for job in state.jobs:
            pipe.xrange(job_key(job.id, "events"))
        for job, entries in zip(state.jobs, await pipe.execute(), strict=True):
            state.events[job.id] = self._events(job.id, entries)[-EVENT_LOG_LIMIT:]
        async for key in self._client.scan(f"{PREFIX}:{{*}}:tomb"):
            tomb = self._json(await r.get(key))
            if tomb is not None:
                state.tombstones.append(
                    Tombstone(_job_id_of(key), str(tomb["owner"]), float(tomb["expired_at"]))
                )
        async for key in self._client.scan(f"{PREFIX}:idem:*"):
            rec = self._json(await r.get(key))
            if rec is not None:
                state.idempotency.append(IdempotencyRecord(**rec))
        state.deliveries = await self.deliveries.open()
        return state

    @staticmethod
    def _json(data: bytes | str | None) -> dict[str, Any] | None:
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def _events(self, job_id: str, entries: list[Any]) -> list[EventRecord]:
        events: list[EventRecord] = []
        for entry_id, raw_fields in entries:
            try:
                # XRANGE answers a dict; the same entry read in a Lua script, a flat list.
                fields = raw_fields
                if isinstance(raw_fields, list):
                    fields = dict(zip(raw_fields[::2], raw_fields[1::2], strict=True))
                eid = int(entry_id.decode().split("-", 1)[0])
                data = json.loads(fields[b"d"])
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                events.append(EventRecord(eid, fields[b"e"].decode(), data))
            except (ValueError, KeyError, RecursionError) as exc:
                log.error(
                    "redis store: event %s of job %s does not load (%s)", entry_id, job_id, exc
                )
        return events

    async def close(self) -> None:
        """Disconnect."""
        await self._client.close()

    async def save_job(self, job: JobRecord) -> None:
        """Update ``job`` unless another instance changed it meanwhile (then it re-reads)."""
        try:
            await self.commit(job, None, ())
        except StaleJob:
            log.debug("job %s changed elsewhere: this update is dropped", job.id)

    async def commit(
        self,
        job: JobRecord,
        event: EventRecord | None,
        deliveries: Sequence[PendingDelivery],
        *,
        key: IdempotencyRecord | None = None,
    ) -> None:
        """Compare-and-set the job's version, then write it all in one Lua script.

        What is written is taken from ``job`` when the call is made, before its first
        ``await``; the commits of one job go out one at a time, in the order of the calls.

        Raises:
            StaleJob: another instance changed the job since this copy was read.
            KeyTaken: ``key`` is held by another job.
        """
        version = job.event_seq
        expected = version - 1 if event is not None else version
        idem = _idempotency_key(key.user, key.key) if key is not None else job_key(job.id, "-")
        args: list[Any] = [
            expected,
            version,
            job_to_json(job),
            event.id if event is not None else "",
            event.event if event is not None else "",
            json.dumps(event.data, separators=(",", ":")) if event is not None else "",
            json.dumps(_key_doc(key)) if key is not None else "",
            max(int(key.expires_at * 1000), 1) if key is not None else 0,
            EVENT_LOG_LIMIT,
            CHANGES,
            f"{job.id} {version} {self.instance}",
            self.max_deliveries_per_owner,
            self.instance,
            max(int(self.delivery_lease * 1000), 1),
            PREFIX,
            *delivery_args(deliveries),
        ]
        for delivery in deliveries:
            self._deliveries.remember(delivery)
        keys = [job_key(job.id, p) for p in ("job", "ver", "events", "dlv")] + [idem]
        keys += [owner_key(job.owner, "dlv:pending"), owner_key(job.owner, "dlv:done"), PENDING]
        lane = self._lanes.setdefault(job.id, _Lane())
        lost, lane.users = lane.lost, lane.users + 1
        try:
            async with lane.lock:  # FIFO: the job's commits leave in the order they were made
                if lane.lost != lost:  # one made before this one lost its race: so does this
                    raise StaleJob(job.id)
                status, detail = await self._commit(keys=keys, args=args)
                if status == 0:
                    lane.lost += 1
                    raise StaleJob(job.id)
        finally:
            lane.users -= 1
            if lane.users == 0:
                del self._lanes[job.id]
        if status == 2:
            raise KeyTaken(str((self._json(detail) or {}).get("job_id", "")))

    # ------------------------------------------------------------ shared by instances
    async def next_seq(self) -> int:
        """A job sequence number no other instance hands out (``INCR ar:seq``)."""
        return int(await self._client.redis.incr(f"{PREFIX}:seq"))

    async def fetch(self, job_id: str, after_event: int) -> Fetched:
        """The job now, with its logged events newer than ``after_event`` (one script)."""
        keys = [job_key(job_id, part) for part in ("job", "events", "tomb")]
        data, entries, tomb = await self._fetch(keys=keys, args=[f"{after_event + 1}-0"])
        return self._fetched(job_id, data, entries, tomb)

    def _fetched(self, job_id: str, data: Any, entries: Any, tomb: Any) -> Fetched:
        job = None
        if data is not None:
            try:
                job = job_from_json(text(data))
            except ValueError as exc:
                log.error("redis store: job %s does not load (%s)", job_id, exc)
        doc = self._json(tomb)
        gone = Tombstone(job_id, str(doc["owner"]), float(doc["expired_at"])) if doc else None
        return Fetched(job, self._events(job_id, entries) if job else [], gone)

    async def find_idempotency(self, user: str, key: str) -> IdempotencyRecord | None:
        """The live record of ``key`` for ``user`` (Redis drops it at its expiry)."""
        doc = self._json(await self._client.redis.get(_idempotency_key(user, key)))
        return IdempotencyRecord(**doc) if doc is not None else None

    async def lease(self, job_ids: Iterable[str], ttl: float) -> None:
        """Hold (or renew) this instance's lease on running jobs for ``ttl`` seconds."""
        async with self._client.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.set(job_key(job_id, "lease"), self.instance, px=max(int(ttl * 1000), 1))
            await pipe.execute()

    async def leased(self, job_ids: Sequence[str]) -> list[bool]:
        """Whether each job's lease is held (an instance renewed it within its TTL)."""
        async with self._client.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(job_key(job_id, "lease"))
            return [bool(n) for n in await pipe.execute()]

    async def watch(
        self, on_change: Callable[[str, Fetched], None], after: Callable[[str], int]
    ) -> None:
        """Re-read each job another instance changes and hand it to ``on_change``.

        The feed (pub/sub on ``ar:changes``, a connection of the store's pool) and the
        re-reads (the job with its events newer than ``after(job_id)``) are awaited, so they
        never block the event loop. The feed is reconnected after an error; a change missed
        meanwhile is caught up by the next request for the job (each one re-reads it).
        """
        while True:
            try:
                async with self._client.redis.pubsub(ignore_subscribe_messages=True) as feed:
                    await feed.subscribe(CHANGES)
                    async for message in feed.listen():
                        job_id, _, instance = text(message["data"]).split(" ", 2)
                        if instance != self.instance:
                            on_change(job_id, await self.fetch(job_id, after(job_id)))
            except (redis.RedisError, OSError, ValueError) as exc:
                log.warning("redis change feed lost (%s): reconnecting", exc)
                await asyncio.sleep(0.5)

    async def delete_job(self, job_id: str) -> None:
        """Delete a job with its result and events (its delivery records stay)."""
        parts = ("job", "ver", "events", "result", "lease")
        await self._client.redis.delete(*(job_key(job_id, p) for p in parts))

    async def quarantine_job(self, job_id: str, reason: str) -> None:
        """Move a job the server cannot serve aside (kept in ``ar:quarantine``)."""
        data = await self._client.redis.get(job_key(job_id, "job"))
        doc = text(data) if data is not None else None
        log.error("redis store: job %s does not load (%s): quarantined", job_id, reason)
        await self._client.redis.hset(
            f"{PREFIX}:quarantine", job_id, json.dumps({"data": doc, "reason": reason})
        )
        await self.delete_job(job_id)

    async def put_result(self, job_id: str, result: StoredResult) -> None:
        """Store a job's result."""
        fields = {"kind": result.kind, "content_type": result.content_type, "data": result.data}
        if result.filename is not None:
            fields["filename"] = result.filename
        async with self._client.redis.pipeline(transaction=True) as pipe:
            pipe.delete(job_key(job_id, "result"))
            pipe.hset(job_key(job_id, "result"), mapping=fields)
            await pipe.execute()

    async def get_result(self, job_id: str) -> StoredResult | None:
        """Return a job's result, if stored."""
        fields = await self._client.redis.hgetall(job_key(job_id, "result"))
        if not fields:
            return None
        filename = fields.get(b"filename")
        return StoredResult(
            text(fields[b"kind"]),
            raw(fields[b"data"]),
            text(fields[b"content_type"]),
            text(filename) if filename is not None else None,
        )

    async def delete_result(self, job_id: str) -> None:
        """Drop a job's result."""
        await self._client.redis.delete(job_key(job_id, "result"))

    async def save_tombstone(self, tombstone: Tombstone) -> None:
        """Remember an expired job."""
        doc = {"owner": tombstone.owner, "expired_at": tombstone.expired_at}
        await self._client.redis.set(job_key(tombstone.job_id, "tomb"), json.dumps(doc))

    async def delete_tombstone(self, job_id: str) -> None:
        """Forget an expired job."""
        await self._client.redis.delete(job_key(job_id, "tomb"))

    async def save_idempotency(self, record: IdempotencyRecord) -> None:
        """Remember an idempotency key until it expires (Redis drops it then: ``PXAT``)."""
        await self._client.redis.set(
            _idempotency_key(record.user, record.key),
            json.dumps(_key_doc(record)),
            pxat=max(int(record.expires_at * 1000), 1),
        )

    async def delete_idempotency(self, user: str, key: str) -> None:
        """Forget an idempotency key."""
        await self._client.redis.delete(_idempotency_key(user, key))

    async def clear(self) -> None:
        """Delete every key of the store (``ar:*``), nothing else in the database."""
        r = self._client.redis
        batch: list[bytes] = []
        async for key in self._client.scan(f"{PREFIX}:*"):
            batch.append(key)
            if len(batch) >= 500:
                await r.delete(*batch)
                batch.clear()
        if batch:
            await r.delete(*batch)
        await self.deliveries.clear()
