"""The async store protocol on the local stores: awaiting a memory or SQLite store call never
suspends, so the job manager's steps (a submission, a cancel, a lookup) finish in one go, with
no loop turn in which another request could see a half-made change."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from reference_server import ServerConfig
from reference_server.deliveries_store import PendingDelivery
from reference_server.eager import finish_now
from reference_server.jobs import JobManager
from reference_server.records import (
    DeliveryRecord,
    EventRecord,
    IdempotencyRecord,
    JobRecord,
    JobState,
    StoredResult,
    Tombstone,
)
from reference_server.store import MemoryStore, SqliteStore, Store

pytestmark = pytest.mark.anyio


def make_store(kind: str, tmp_path: Path) -> Store:
    return MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "jobs.sqlite3")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_every_call_of_a_local_store_completes_without_suspending(
    kind: str, tmp_path: Path
) -> None:
    store = make_store(kind, tmp_path)
    finish_now(store.open())
    job = JobRecord(
        id="j1", seq=1, owner="alice", type="echo", input={}, callback=None,
        state=JobState.COMPLETED, created_at=1.0, updated_at=1.0, event_seq=1,
    )  # fmt: skip
    record = DeliveryRecord("msg_1", "j1", "alice", "job.completed", "https://h/x", 1.0, 1.0)
    delivery = PendingDelivery(record, {"type": "job.completed"}, 1.0)
    key = IdempotencyRecord("alice", "k", "h", "j1", 1.0, 9e9)
    finish_now(store.commit(job, EventRecord(1, "complete", {}), [delivery], key=key))
    finish_now(store.put_result("j1", StoredResult("json", b"{}", "application/json")))
    assert finish_now(store.get_result("j1")) == StoredResult("json", b"{}", "application/json")
    steps: list[Awaitable[Any]] = [
        store.save_job(job),
        store.deliveries.record_attempt("msg_1", 1, 2.0, "delivered", 200),
        store.deliveries.save(delivery),
        store.deliveries.delete("msg_1"),
        store.save_tombstone(Tombstone("gone", "alice", 1.0)),
        store.delete_tombstone("gone"),
        store.save_idempotency(key),
        store.delete_idempotency("alice", "k"),
        store.delete_result("j1"),
        store.quarantine_job("j1", "a test"),
        store.delete_job("j1"),
        store.clear(),
        store.close(),
    ]
    for step in steps:
        finish_now(step)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_the_managers_steps_do_not_suspend_on_a_local_store(
    kind: str, tmp_path: Path
) -> None:
    async def parked(ctx: Any, input: Any) -> None:
        await ctx.sleep(3600)

    manager = JobManager(ServerConfig(workers=1), {"parked": parked}, make_store(kind, tmp_path))
    await manager.start()
    try:
        job = finish_now(manager.submit(owner="alice", type_name="parked", input={}))
        assert finish_now(manager.lookup(job.id, "alice")) is job
        assert finish_now(manager.cancel(job)) is True
        assert job.state is JobState.CANCELLED
        assert [e.event for e in manager.events_after(job.id, 0)] == ["status", "complete"]
        assert finish_now(manager.expire(job.id)) is True
    finally:
        await manager.stop()
