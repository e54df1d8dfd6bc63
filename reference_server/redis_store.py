"""A Redis store (``--store redis://host:port/db``): jobs, results, event logs, tombstones,
idempotency keys and webhook deliveries in Redis, through redis-py.

Key layout (prefix ``ar``; every key of one job carries the job id as a Redis Cluster hash
tag, ``{<job id>}``, so a job's keys live on one shard and its commit is one ``MULTI``)::

    ar:{J}:job          STRING  the job record (JSON, as SQLite keeps it)
    ar:{J}:events       STREAM  its event log: entry id ``<event id>-0``, fields ``e``, ``d``;
                                trimmed to about EVENT_LOG_LIMIT entries (MAXLEN ~)
    ar:{J}:result       HASH    kind, content_type, filename, data
    ar:{J}:tomb         STRING  what remains once it expired: {"owner", "expired_at"}
    ar:{J}:dlv          HASH    delivery id -> the delivery (JSON, as SQLite keeps it)
    ar:{J}:att:<D>      LIST    the attempts of delivery D (JSON, oldest first)
    ar:idem:<H>         STRING  an Idempotency-Key record; H = sha256(user NUL key); PXAT its
                                expiry, so Redis itself forgets it
    ar:quarantine       HASH    job id -> {"data", "reason"} of rows that did not load

:meth:`RedisStore.commit` writes a job, its event and the deliveries it causes in one
``MULTI``/``EXEC`` transaction: Redis applies all of it or none of it, whatever happens to
the server process. With ``appendonly yes`` and ``appendfsync always`` a Redis restart loses
no acknowledged write. The store protocol is synchronous (the job manager orders its writes
with its in-memory state, as with SQLite), so the store uses redis-py's blocking client: one
loopback round trip per write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .deliveries_store import (
    DeliveryStore,
    PendingDelivery,
    StoredDelivery,
    delivery_from_json,
    delivery_to_json,
)
from .records import EventRecord, IdempotencyRecord, JobRecord, StoredResult, Tombstone
from .store import EVENT_LOG_LIMIT, LoadedState, job_from_json, job_to_json

try:
    import redis
except ImportError:  # pragma: no cover - the server extra installs it
    redis = None  # type: ignore[assignment]

__all__ = ["RedisDeliveryStore", "RedisStore", "job_key"]

log = logging.getLogger("reference_server.store")

PREFIX = "ar"


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

    def write(self, pipe: Any, delivery: PendingDelivery) -> None:
        """Queue the write of ``delivery`` on a pipeline (a commit's transaction)."""
        rec = delivery.record
        self._job_of[rec.id] = rec.job_id
        pipe.hset(job_key(rec.job_id, "dlv"), rec.id, delivery_to_json(delivery))

    def save(self, delivery: PendingDelivery) -> None:
        """Insert or update a delivery."""
        pipe = self._client.redis.pipeline(transaction=True)
        self.write(pipe, delivery)
        pipe.execute()

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

    def open(self) -> LoadedState:
        """Connect and load what Redis holds (jobs in ``seq`` order)."""
        self._client.open()
        r = self._client.redis
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
        """Insert or update ``job``."""
        self._client.redis.set(job_key(job.id, "job"), job_to_json(job))

    def commit(
        self, job: JobRecord, event: EventRecord | None, deliveries: Sequence[PendingDelivery]
    ) -> None:
        """Write ``job``, append ``event`` and insert ``deliveries`` in one MULTI/EXEC."""

        def fill(pipe: Any) -> None:
            pipe.set(job_key(job.id, "job"), job_to_json(job))
            if event is not None:
                pipe.xadd(
                    job_key(job.id, "events"),
                    {"e": event.event, "d": json.dumps(event.data, separators=(",", ":"))},
                    id=f"{event.id}-0",
                    maxlen=EVENT_LOG_LIMIT,
                    approximate=True,
                )
            for delivery in deliveries:
                self._deliveries.write(pipe, delivery)

        self._transaction(fill)

    def delete_job(self, job_id: str) -> None:
        """Delete a job with its result and events (its delivery records stay)."""
        self._client.redis.delete(*(job_key(job_id, p) for p in ("job", "events", "result")))

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
        doc = {
            "user": record.user,
            "key": record.key,
            "body_hash": record.body_hash,
            "job_id": record.job_id,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
        }
        self._client.redis.set(
            _idempotency_key(record.user, record.key),
            json.dumps(doc),
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
