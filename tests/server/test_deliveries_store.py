"""The SQLite delivery store: round trip of deliveries and attempts; a bad row is skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reference_server.deliveries_store import PendingDelivery, SqliteDeliveryStore
from reference_server.records import DeliveryRecord

pytestmark = pytest.mark.anyio


def pending(delivery_id: str, *, status: str = "pending") -> PendingDelivery:
    record = DeliveryRecord(
        id=delivery_id,
        job_id="job1",
        owner="alice",
        event="job.completed",
        url="https://hooks.example.com/x",
        created_at=1000.0,
        updated_at=1000.0,
        attempts=1,
        status=status,
        last_error="HTTP 503",
        response_status=503,
    )
    return PendingDelivery(record, {"type": "job.completed", "jobId": "job1", "data": {}}, 1002.0)


async def test_deliveries_and_attempts_round_trip(tmp_path: Path) -> None:
    store = SqliteDeliveryStore(tmp_path / "db.sqlite3")
    assert await store.open() == []
    await store.save(pending("msg_a"))
    await store.save(pending("msg_b", status="delivered"))
    await store.save(pending("msg_a"))  # an update keeps its place in the order
    await store.record_attempt("msg_a", 1, 1001.0, "HTTP 503", 503)
    await store.close()
    again = SqliteDeliveryStore(tmp_path / "db.sqlite3")
    loaded = await again.open()
    assert [d.pending.record.id for d in loaded] == ["msg_a", "msg_b"]
    first = loaded[0]
    assert first.pending.next_attempt_at == 1002.0
    assert first.pending.record.last_error == "HTTP 503"
    assert first.pending.event["jobId"] == "job1"
    assert first.attempts == [{"attempt": 1, "at": 1001.0, "outcome": "HTTP 503", "status": 503}]
    await again.delete("msg_a")
    await again.close()
    last = SqliteDeliveryStore(tmp_path / "db.sqlite3")
    assert [d.pending.record.id for d in await last.open()] == ["msg_b"]
    await last.close()


async def test_an_unreadable_row_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteDeliveryStore(tmp_path / "db.sqlite3")
    await store.open()
    await store.save(pending("msg_ok"))
    store.db.execute("INSERT INTO webhook_deliveries (id, seq, data) VALUES ('msg_bad', 99, '[1')")
    store.db.execute(
        "INSERT INTO webhook_deliveries (id, seq, data) VALUES ('msg_odd', 100, '{\"id\": 1}')"
    )
    await store.close()
    with caplog.at_level(logging.ERROR, logger="reference_server.webhooks"):
        reopened = SqliteDeliveryStore(tmp_path / "db.sqlite3")
        loaded = await reopened.open()
        await reopened.close()
    assert [d.pending.record.id for d in loaded] == ["msg_ok"]
    assert "msg_bad" in caplog.text and "msg_odd" in caplog.text
