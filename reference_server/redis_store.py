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
    ar:idem:<H>         STRING  an Idempotency-Key record; H = sha256(user NUL key); PXAT its
                                expiry, so Redis itself forgets it
    ar:quarantine       HASH    job id -> {"data", "reason"} of rows that did not load
    ar:seq              STRING  the last job sequence number handed out (INCR)
    ar:changes          PUBSUB  "<job id> <version> <instance>" after every commit

:meth:`RedisStore.commit` is one Lua script (atomic in Redis): it checks the job's version
(so two instances never both move a job: the loser gets ``StaleJob`` and re-reads), claims
the ``Idempotency-Key`` with ``SET NX`` for a new job, writes the job, appends its event,
inserts the deliveries it causes and publishes the change. With ``appendonly yes`` and
``appendfsync always`` a Redis restart loses no acknowledged write. The store protocol is
synchronous (the job manager orders its writes with its in-memory state, as with SQLite), so
writes use redis-py's blocking client (one loopback round trip each); :meth:`watch` uses its
asyncio client for the change feed.

Redis Cluster: a job's keys share one hash slot, so its script runs on one shard; the
script of a job's *first* commit also touches its ``ar:idem:`` key, which needs a
single-node Redis (or a tag scheme that puts it in the job's slot) — tested on one node.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .deliveries_store import (
    DeliveryStore,
    PendingDelivery,
    StoredDelivery,
    delivery_from_json,
    delivery_to_json,
)
from .records import EventRecord, IdempotencyRecord, JobRecord, StoredResult, Tombstone
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
    import redis.asyncio
except ImportError:  # pragma: no cover - the server extra installs it
    redis = None  # type: ignore[assignment]

__all__ = ["RedisDeliveryStore", "RedisStore", "job_key"]

log = logging.getLogger("reference_server.store")

PREFIX = "ar"
CHANGES = f"{PREFIX}:changes"

# KEYS: job, ver, events, dlv, idem. ARGV: expected version, new version, job JSON, event id
# ("" for none), event name, event data, idempotency JSON ("" for none), its PXAT, stream
# length, channel, change message, then delivery id / JSON pairs.
_COMMIT = """
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
for i = 12, #ARGV, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', ARGV[10], ARGV[11])
return {1, ''}
"""


def job_key(job_id: str, part: str) -> str:
    """The key of one part (``job``, ``events``…) of a job, hash-tagged by its id.

    Example:
        >>> job_key("0f3a", "events")
        'ar:{0f3a}:events'
    """
    return f"{PREFIX}:{{{job_id}}}:{part}"


def _idempotency_key(user: str, key: str) -> str:
    digest = hashlib.sha256(f"{user}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}:idem:{digest}"


def _text(value: bytes | str) -> str:
    """A reply as text (the client answers bytes; its type stubs allow either)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    """A reply as bytes."""
    return value if isinstance(value, bytes) else value.encode()


def _key_doc(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "user": record.user,
        "key": record.key,
        "body_hash": record.body_hash,
        "job_id": record.job_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


def _job_id_of(key: bytes | str) -> str:
    """``ar:{J}:part`` -> ``J``."""
    text = _text(key)
    return text[text.index("{") + 1 : text.index("}")]


class _Client:
    """The store's open connection, shared with its delivery store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            raise RuntimeError("the redis store is not open")
        return self._redis

    def open(self) -> None:
        if redis is None:
            raise RuntimeError(
                "--store redis needs the redis package: pip install 'asyncreply[server]'"
            )
        self._redis = redis.Redis.from_url(
            self.url, socket_timeout=10, socket_connect_timeout=10, health_check_interval=30
        )
        self._redis.ping()

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def scan(self, pattern: str) -> Iterator[bytes]:
        yield from self.redis.scan_iter(match=pattern, count=1000)


class RedisDeliveryStore:
    """Webhook deliveries in the job's hash-tagged keys (opened by the :class:`RedisStore`)."""

    def __init__(self, client: _Client) -> None:
        self._client = client
        self._job_of: dict[str, str] = {}

    def open(self) -> list[StoredDelivery]:
        """Load every delivery, oldest first; an unreadable one is logged and skipped."""
        r = self._client.redis
        loaded: list[tuple[float, str, PendingDelivery]] = []
        for key in self._client.scan(f"{PREFIX}:{{*}}:dlv"):
            for raw_id, data in r.hgetall(key).items():
                delivery_id = _text(raw_id)
                try:
                    pending = delivery_from_json(data)
                except (ValueError, KeyError, TypeError, RecursionError):
                    log.error("webhook delivery %r in the store is unreadable; skipped", raw_id)
                    continue
                loaded.append((pending.record.created_at, delivery_id, pending))
        loaded.sort(key=lambda item: (item[0], item[1]))
        pipe = r.pipeline(transaction=False)
        for _, delivery_id, pending in loaded:
            self._job_of[delivery_id] = pending.record.job_id
            pipe.lrange(job_key(pending.record.job_id, f"att:{delivery_id}"), 0, -1)
        attempts = pipe.execute()
        return [
            StoredDelivery(pending, [json.loads(a) for a in tried])
            for (_, _, pending), tried in zip(loaded, attempts, strict=True)
        ]

    def remember(self, delivery: PendingDelivery) -> None:
        """Note which job's keys hold ``delivery`` (a commit writes it)."""
        self._job_of[delivery.record.id] = delivery.record.job_id

    def save(self, delivery: PendingDelivery) -> None:
        """Insert or update a delivery."""
        rec = delivery.record
        self.remember(delivery)
        self._client.redis.hset(job_key(rec.job_id, "dlv"), rec.id, delivery_to_json(delivery))

    def record_attempt(
        self, delivery_id: str, attempt: int, at: float, outcome: str, status: int | None
    ) -> None:
        """Append one attempt's outcome."""
        job_id = self._job_of.get(delivery_id)
        if job_id is None:
            return
        doc = {"attempt": attempt, "at": at, "outcome": outcome, "status": status}
        self._client.redis.rpush(job_key(job_id, f"att:{delivery_id}"), json.dumps(doc))

    def delete(self, delivery_id: str) -> None:
        """Forget a delivery and its attempts."""
        job_id = self._job_of.pop(delivery_id, None)
        if job_id is None:
            return
        pipe = self._client.redis.pipeline(transaction=True)
        pipe.hdel(job_key(job_id, "dlv"), delivery_id)
        pipe.delete(job_key(job_id, f"att:{delivery_id}"))
        pipe.execute()

    def clear(self) -> None:
        """Forget every delivery."""
        r = self._client.redis
        for pattern in (f"{PREFIX}:{{*}}:dlv", f"{PREFIX}:{{*}}:att:*"):
            for key in self._client.scan(pattern):
                r.delete(key)
        self._job_of.clear()

    def close(self) -> None:
        """Nothing to do: the connection is the job store's."""


class RedisStore:
    """Jobs, results, event logs, tombstones, keys and deliveries in Redis.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS, ``unix://`` for a socket).
    """

    def __init__(self, url: str) -> None:
        self._client = _Client(url)
        self._deliveries = RedisDeliveryStore(self._client)
        self.deliveries: DeliveryStore = self._deliveries
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._commit: Any = None

    def open(self) -> LoadedState:
        """Connect and load what Redis holds (jobs in ``seq`` order)."""
        self._client.open()
        r = self._client.redis
        self._commit = r.register_script(_COMMIT)
        state = LoadedState()
        keys = list(self._client.scan(f"{PREFIX}:{{*}}:job"))
        for key, data in zip(keys, r.mget(keys) if keys else [], strict=True):
            if data is None:
                continue
            try:
                state.jobs.append(job_from_json(_text(data)))
            except ValueError as exc:
                self.quarantine_job(_job_id_of(key), str(exc))
        state.jobs.sort(key=lambda job: job.seq)
        pipe = r.pipeline(transaction=False)
        for job in state.jobs:
            pipe.xrange(job_key(job.id, "events"))
        for job, entries in zip(state.jobs, pipe.execute(), strict=True):
            state.events[job.id] = self._events(job.id, entries)[-EVENT_LOG_LIMIT:]
        for key in self._client.scan(f"{PREFIX}:{{*}}:tomb"):
            tomb = self._json(r.get(key))
            if tomb is not None:
                state.tombstones.append(
                    Tombstone(_job_id_of(key), str(tomb["owner"]), float(tomb["expired_at"]))
                )
        for key in self._client.scan(f"{PREFIX}:idem:*"):
            rec = self._json(r.get(key))
            if rec is not None:
                state.idempotency.append(IdempotencyRecord(**rec))
        state.deliveries = self.deliveries.open()
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
        for entry_id, fields in entries:
            try:
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

    def close(self) -> None:
        """Disconnect."""
        self._client.close()

    def _transaction(self, fill: Callable[[Any], None]) -> None:
        pipe = self._client.redis.pipeline(transaction=True)
        fill(pipe)
        pipe.execute()

    def save_job(self, job: JobRecord) -> None:
        """Update ``job`` unless another instance changed it meanwhile (then it re-reads)."""
        try:
            self.commit(job, None, ())
        except StaleJob:
            log.debug("job %s changed elsewhere: this update is dropped", job.id)

    def commit(
        self,
        job: JobRecord,
        event: EventRecord | None,
        deliveries: Sequence[PendingDelivery],
        *,
        key: IdempotencyRecord | None = None,
    ) -> None:
        """Compare-and-set the job's version, then write it all in one Lua script.

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
        ]
        for delivery in deliveries:
            self._deliveries.remember(delivery)
            args += [delivery.record.id, delivery_to_json(delivery)]
        keys = [job_key(job.id, p) for p in ("job", "ver", "events", "dlv")] + [idem]
        status, detail = self._commit(keys=keys, args=args)
        if status == 0:
            raise StaleJob(job.id)
        if status == 2:
            raise KeyTaken(str((self._json(detail) or {}).get("job_id", "")))

    # ------------------------------------------------------------ shared by instances
    def next_seq(self) -> int:
        """A job sequence number no other instance hands out (``INCR ar:seq``)."""
        return int(self._client.redis.incr(f"{PREFIX}:seq"))

    def fetch(self, job_id: str, after_event: int) -> Fetched:
        """The job now, with its logged events newer than ``after_event``."""
        pipe = self._client.redis.pipeline(transaction=True)
        pipe.get(job_key(job_id, "job"))
        pipe.xrange(job_key(job_id, "events"), min=f"{after_event + 1}-0")
        pipe.get(job_key(job_id, "tomb"))
        data, entries, tomb = pipe.execute()
        job = None
        if data is not None:
            try:
                job = job_from_json(_text(data))
            except ValueError as exc:
                log.error("redis store: job %s does not load (%s)", job_id, exc)
        doc = self._json(tomb)
        gone = Tombstone(job_id, str(doc["owner"]), float(doc["expired_at"])) if doc else None
        return Fetched(job, self._events(job_id, entries) if job else [], gone)

    def find_idempotency(self, user: str, key: str) -> IdempotencyRecord | None:
        """The live record of ``key`` for ``user`` (Redis drops it at its expiry)."""
        doc = self._json(self._client.redis.get(_idempotency_key(user, key)))
        return IdempotencyRecord(**doc) if doc is not None else None

    def lease(self, job_ids: Iterable[str], ttl: float) -> None:
        """Hold (or renew) this instance's lease on running jobs for ``ttl`` seconds."""
        pipe = self._client.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.set(job_key(job_id, "lease"), self.instance, px=max(int(ttl * 1000), 1))
        pipe.execute()

    def leased(self, job_ids: Sequence[str]) -> list[bool]:
        """Whether each job's lease is held (an instance renewed it within its TTL)."""
        pipe = self._client.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(job_key(job_id, "lease"))
        return [bool(n) for n in pipe.execute()]

    async def watch(self, on_change: Callable[[str], None]) -> None:
        """Call ``on_change(job_id)`` for each change another instance publishes.

        The feed (pub/sub on ``ar:changes``) is reconnected after an error; a change missed
        meanwhile is caught up by the next request for the job (each one re-reads it).
        """
        while True:
            client = redis.asyncio.Redis.from_url(self._client.url)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as feed:
                    await feed.subscribe(CHANGES)
                    async for message in feed.listen():
                        job_id, _, instance = _text(message["data"]).split(" ", 2)
                        if instance != self.instance:
                            on_change(job_id)
            except (redis.RedisError, OSError, ValueError) as exc:
                log.warning("redis change feed lost (%s): reconnecting", exc)
                await asyncio.sleep(0.5)
            finally:
                await client.aclose()

    def delete_job(self, job_id: str) -> None:
        """Delete a job with its result and events (its delivery records stay)."""
        parts = ("job", "ver", "events", "result", "lease")
        self._client.redis.delete(*(job_key(job_id, p) for p in parts))

    def quarantine_job(self, job_id: str, reason: str) -> None:
        """Move a job the server cannot serve aside (kept in ``ar:quarantine``)."""
        data = self._client.redis.get(job_key(job_id, "job"))
        text = _text(data) if data is not None else None
        log.error("redis store: job %s does not load (%s): quarantined", job_id, reason)
        self._client.redis.hset(
            f"{PREFIX}:quarantine", job_id, json.dumps({"data": text, "reason": reason})
        )
        self.delete_job(job_id)

    def put_result(self, job_id: str, result: StoredResult) -> None:
        """Store a job's result."""
        fields = {"kind": result.kind, "content_type": result.content_type, "data": result.data}
        if result.filename is not None:
            fields["filename"] = result.filename

        def fill(pipe: Any) -> None:
            pipe.delete(job_key(job_id, "result"))
            pipe.hset(job_key(job_id, "result"), mapping=fields)

        self._transaction(fill)

    def get_result(self, job_id: str) -> StoredResult | None:
        """Return a job's result, if stored."""
        fields = self._client.redis.hgetall(job_key(job_id, "result"))
        if not fields:
            return None
        filename = fields.get(b"filename")
        return StoredResult(
            _text(fields[b"kind"]),
            _raw(fields[b"data"]),
            _text(fields[b"content_type"]),
            _text(filename) if filename is not None else None,
        )

    def delete_result(self, job_id: str) -> None:
        """Drop a job's result."""
        self._client.redis.delete(job_key(job_id, "result"))

    def save_tombstone(self, tombstone: Tombstone) -> None:
        """Remember an expired job."""
        doc = {"owner": tombstone.owner, "expired_at": tombstone.expired_at}
        self._client.redis.set(job_key(tombstone.job_id, "tomb"), json.dumps(doc))

    def delete_tombstone(self, job_id: str) -> None:
        """Forget an expired job."""
        self._client.redis.delete(job_key(job_id, "tomb"))

    def save_idempotency(self, record: IdempotencyRecord) -> None:
        """Remember an idempotency key until it expires (Redis drops it then: ``PXAT``)."""
        self._client.redis.set(
            _idempotency_key(record.user, record.key),
            json.dumps(_key_doc(record)),
            pxat=max(int(record.expires_at * 1000), 1),
        )

    def delete_idempotency(self, user: str, key: str) -> None:
        """Forget an idempotency key."""
        self._client.redis.delete(_idempotency_key(user, key))

    def clear(self) -> None:
        """Delete every key of the store (``ar:*``), nothing else in the database."""
        r = self._client.redis
        batch: list[bytes] = []
        for key in self._client.scan(f"{PREFIX}:*"):
            batch.append(key)
            if len(batch) >= 500:
                r.delete(*batch)
                batch.clear()
        if batch:
            r.delete(*batch)
        self.deliveries.clear()
