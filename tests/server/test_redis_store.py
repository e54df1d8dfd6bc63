"""The Redis store (``--store redis://…``) against a real redis-server (issue 18.1, 18.5).

- Everything a store keeps round-trips through Redis under the documented key layout, every
  key of a job hash-tagged by its id (one Redis Cluster slot per job).
- A server restarted on the same Redis serves its jobs, results, event logs, idempotency keys
  and webhook deliveries.
- A restart of Redis (``kill -9``, AOF with ``appendfsync always``) loses no acknowledged job.
- A kill storm of the server process on Redis: every completed job has exactly one delivery.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis

from benchmarks.kill_storm import run_kill_storm
from reference_server import ServerConfig
from reference_server.deliveries_store import PendingDelivery, SharedDeliveryStore
from reference_server.records import (
    DeliveryRecord,
    EventRecord,
    IdempotencyRecord,
    JobRecord,
    JobState,
    StoredResult,
    Tombstone,
)
from reference_server.redis_client import owner_key
from reference_server.redis_store import RedisStore, job_key
from reference_server.replica import Replica
from reference_server.store import Fetched
from tests.redis_server import RedisServer

from .conftest import Receiver, ServerFactory

pytestmark = pytest.mark.anyio


def job(job_id: str, seq: int, state: JobState = JobState.COMPLETED) -> JobRecord:
    return JobRecord(
        id=job_id,
        seq=seq,
        owner="alice",
        type="echo",
        input={"n": seq},
        callback={"url": "https://hooks.example.com/x"},
        state=state,
        created_at=1000.0,
        updated_at=1001.0,
        event_seq=1,
    )


def test_config_takes_a_redis_url_as_the_store() -> None:
    config = ServerConfig(store="redis://127.0.0.1:6390/3")
    assert (config.store, config.redis_url) == ("redis", "redis://127.0.0.1:6390/3")


def test_a_redis_that_does_not_answer_is_a_one_line_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    args = ["--store", f"redis://127.0.0.1:{port}/0", "--port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "reference_server", *args], capture_output=True, text=True
    )
    assert done.returncode == 1
    err = done.stderr.strip()
    assert err.startswith("asyncreply-server: error: the redis store at redis://127.0.0.1:")
    assert "does not answer" in err and "\n" not in err


async def test_everything_round_trips_under_the_key_layout(redis_url: str) -> None:
    store = RedisStore(redis_url, delivery_lease=0.05)
    assert (await store.open()).jobs == []
    delivery = PendingDelivery(
        DeliveryRecord("msg_1", "j1", "alice", "job.completed", "https://h/x", 1000.0, 1000.0),
        {"type": "job.completed", "jobId": "j1", "data": {}},
        1001.0,
    )
    await store.commit(job("j2", 2), EventRecord(1, "status", {"n": 2}), [])
    await store.commit(
        job("j1", 1), EventRecord(1, "complete", {"status": "completed"}), [delivery]
    )
    await store.put_result("j1", StoredResult("file", b"\x00pdf", "application/pdf", "r.pdf"))
    await store.deliveries.record_attempt("msg_1", 1, 1002.0, "HTTP 503", 503)
    await store.save_tombstone(Tombstone("gone", "bob", 999.0))
    await store.save_idempotency(IdempotencyRecord("alice", "k1", "h", "j1", 1000.0, 9e9))
    await store.save_idempotency(IdempotencyRecord("alice", "old", "h", "j2", 1.0, 2.0))  # expired
    await store.close()

    client = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in client.keys("*"))
    client.close()
    assert job_key("j1", "job") == "ar:{j1}:job"
    assert {k for k in keys if "{j1}" in k} == {
        "ar:{j1}:job",
        "ar:{j1}:ver",
        "ar:{j1}:events",
        "ar:{j1}:result",
        "ar:{j1}:dlv",
        "ar:{j1}:att:msg_1",
        "ar:{j1}:dlease:msg_1",  # the committing instance's lease on sending it
    }
    assert set(keys) >= {"ar:dlv:pending", owner_key("alice", "dlv:pending")}
    assert len([k for k in keys if k.startswith("ar:idem:")]) == 1  # Redis dropped the old key

    again = RedisStore(redis_url, delivery_lease=0.05)
    loaded = await again.open()
    assert [j.id for j in loaded.jobs] == ["j1", "j2"]  # seq order
    assert loaded.jobs[0].input == {"n": 1}
    assert loaded.events["j1"] == [EventRecord(1, "complete", {"status": "completed"})]
    assert loaded.tombstones == [Tombstone("gone", "bob", 999.0)]
    assert [(r.user, r.key, r.job_id) for r in loaded.idempotency] == [("alice", "k1", "j1")]
    assert loaded.deliveries == []  # they stay in Redis: listed, bounded and claimed there
    shared = again.deliveries
    assert isinstance(shared, SharedDeliveryStore)
    assert [r.id for r in await shared.records_of("alice")] == ["msg_1"]
    assert await shared.pending_count("alice") == 1
    deadline = time.monotonic() + 10
    while not (claimed := await shared.claim(0.05)):  # the first instance's lease lapses
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    (stored,) = claimed
    assert stored.pending.record.id == "msg_1" and stored.pending.next_attempt_at == 1001.0
    assert stored.attempts == [{"attempt": 1, "at": 1002.0, "outcome": "HTTP 503", "status": 503}]
    stored_result = await again.get_result("j1")
    assert stored_result == StoredResult("file", b"\x00pdf", "application/pdf", "r.pdf")
    await again.delete_job("j1")
    assert await again.get_result("j1") is None
    await again.clear()
    assert (await again.open()).jobs == []
    await again.close()


async def test_a_restarted_server_serves_everything_from_redis(
    make_server: ServerFactory, receiver: Receiver, redis_url: str
) -> None:
    options = {"store": "redis", "redis_url": redis_url}
    first = await make_server(**options)
    callback = {"callback": {"url": receiver.url}}
    done = await first.submit_ok("echo", {"v": 1}, extra=callback)
    await first.wait_terminal(done)
    await receiver.wait_for(lambda got: len(got) >= 1)
    keyed = await first.submit("echo", {"v": 2}, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 202
    await first.stop()  # type: ignore[misc]

    second = await make_server(**options)
    result = await second.get(f"/jobs/{done}/result")
    assert result.status_code == 200 and result.json() == {"v": 1}
    events = await second.get(f"/jobs/{done}/events", headers={"Accept": "text/event-stream"})
    assert "event: complete" in events.text
    replay = await second.submit("echo", {"v": 2}, headers={"Idempotency-Key": "k-1"})
    assert replay.json()["jobId"] == keyed.json()["jobId"]
    (delivery,) = (await second.get("/webhooks/deliveries")).json()["deliveries"]
    assert (delivery["jobId"], delivery["status"]) == (done, "delivered")


async def test_a_redis_restart_with_aof_loses_no_acknowledged_job(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    (tmp_path / "redis").mkdir()
    store = RedisServer.start(directory=tmp_path / "redis", aof=True)
    running = [store]
    try:
        # A job the first server was running when it stopped is run again once its lease
        # lapses: 0.5 s, not the default 5 s.
        options = {"store": "redis", "redis_url": store.url, "job_lease": 0.5}
        srv = await make_server(**options)
        acknowledged = [await srv.submit_ok("echo", {"i": i}) for i in range(30)]
        for job_id in acknowledged[:10]:
            await srv.wait_terminal(job_id)
        store.kill()  # a crash: only what reached the AOF survives
        running.append(RedisServer.start(port=store.port, directory=store.directory, aof=True))
        acknowledged.append(await srv.submit_ok("echo", {"after": True}))  # it reconnects
        await srv.stop()  # type: ignore[misc]

        again = await make_server(**options)
        for job_id in acknowledged:
            answer = await again.wait_terminal(job_id)
            assert answer.status_code in (200, 303), answer.text
        result = await again.get(f"/jobs/{acknowledged[0]}/result")
        assert result.json() == {"i": 0}
    finally:
        for server in running:
            server.stop()


@pytest.mark.timeout(300)  # several server starts: slow on a loaded machine
async def test_kill_storm_on_redis_every_completed_job_has_exactly_one_delivery(
    tmp_path: Path, redis_url: str
) -> None:
    report = await run_kill_storm(
        tmp_path, jobs=300, kill_every=0.2, jobs_between_kills=80, store=redis_url
    )
    assert report.problems == []
    assert report.kills >= 2
    assert report.completed == report.jobs == 300


def test_a_change_feed_re_read_older_than_the_copy_is_ignored() -> None:
    local = job("j1", 1, JobState.COMPLETED)
    local.event_seq = 3
    older = job("j1", 1, JobState.PROCESSING)
    older.event_seq = 2
    manager = SimpleNamespace(_jobs={"j1": local})
    replica = Replica(cast(Any, manager), cast(Any, None))
    assert replica.apply("j1", Fetched(older, [], None), newer_only=True) is local
    assert local.state is JobState.COMPLETED and local.event_seq == 3
