"""A job's terminal state and its webhook delivery are written in one atomic step (issue 19.2).

- At every commit point of a SQLite-backed server (observed by reading the database file
  from a second connection before each statement), a final job whose callback wants its
  event has its delivery on record: a ``kill -9`` at any instant loses no webhook.
- On start-up, a final job without its delivery on record (written by an older server) gets
  one derived; an existing record of its event is adopted, never duplicated.
- A kill storm (``kill -9`` of the server process again and again during a webhook run):
  every completed job has exactly one delivery id. The full-size storm (at least 5,000 jobs)
  is ``benchmarks/kill_storm.py``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.kill_storm import run_kill_storm
from reference_server.deliveries_store import PendingDelivery
from reference_server.records import DeliveryRecord, JobRecord, JobState
from reference_server.store import SqliteStore

from .conftest import Receiver, ServerFactory, poll_until, served_receiver

pytestmark = pytest.mark.anyio

#: Final jobs with a callback and no delivery of their terminal event (read by a second
#: connection: only what is committed). ``cancelled`` is optional, so it is not checked.
_ORPHANS = """
SELECT j.id FROM jobs j
WHERE json_extract(j.data, '$.state') IN ('completed', 'failed')
  AND json_extract(j.data, '$.callback') IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM webhook_deliveries d
    WHERE json_extract(d.data, '$.job_id') = j.id
      AND json_extract(d.data, '$.event') = 'job.' || json_extract(j.data, '$.state'))
"""


@pytest.fixture
def orphans_at_commit_points(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[list[str]]:
    """Before every statement of every server connection, the committed orphans so far."""
    seen: list[str] = []
    connect = sqlite3.connect
    readers: dict[str, sqlite3.Connection] = {}

    def check(path: str) -> None:
        reader = readers.get(path)
        if reader is None:
            reader = readers[path] = connect(path, check_same_thread=False)
        with contextlib.suppress(sqlite3.OperationalError):  # no tables yet
            seen.extend(row[0] for row in reader.execute(_ORPHANS))

    def traced(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(path, *args, **kwargs)
        db.set_trace_callback(lambda _statement: check(str(path)))
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    yield seen
    for reader in readers.values():
        reader.close()


async def test_no_commit_point_has_a_final_job_without_its_delivery(
    make_server: ServerFactory, receiver: Receiver, orphans_at_commit_points: list[str]
) -> None:
    srv = await make_server(store="sqlite")
    callback = {"callback": {"url": receiver.url, "events": ["progress"]}}
    jobs = [await srv.submit_ok("echo", {"n": i}, extra=callback) for i in range(15)]
    jobs += [await srv.submit_ok("fail", {}, extra=callback) for _ in range(5)]
    for job_id in jobs:
        await srv.wait_terminal(job_id)
    await receiver.wait_for(lambda got: len(got) >= len(jobs))
    assert orphans_at_commit_points == []
    assert len({d.headers["webhook-id"] for d in receiver.received}) == len(jobs)


def final_job(job_id: str, url: str, *, delivery_id: str | None = None) -> JobRecord:
    return JobRecord(
        id=job_id,
        seq=int(job_id[-1]),
        owner="alice",
        type="echo",
        input={},
        callback={"url": url},
        state=JobState.COMPLETED,
        created_at=1000.0,
        updated_at=1000.0,
        finished_at=1000.0,
        webhook_delivery_id=delivery_id,
    )


async def test_a_final_job_without_its_delivery_gets_one_on_start(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    db = tmp_path / "old.sqlite3"
    async with served_receiver() as hook:
        old = SqliteStore(db)
        await old.open()
        await old.save_job(final_job("job1", hook.url))  # killed before its delivery was saved
        await old.save_job(final_job("job2", hook.url))  # saved separately: adopted, not repeated
        kept = DeliveryRecord(
            "msg_kept", "job2", "alice", "job.completed", hook.url, 1000.0, 1000.0,
            status="delivered",
        )  # fmt: skip
        await old.deliveries.save(PendingDelivery(kept, {"type": "job.completed"}, 1000.0))
        await old.save_job(final_job("job3", hook.url, delivery_id="msg_gone"))  # dropped finished
        await old.close()
        for _ in range(2):  # the second start finds nothing left to derive
            srv = await make_server(store="sqlite", sqlite_path=str(db))
            await poll_until(lambda: len(hook.received) >= 1)
            listed = (await srv.get("/webhooks/deliveries")).json()["deliveries"]
            assert sorted(d["jobId"] for d in listed) == ["job1", "job2"]
            await srv.stop()  # type: ignore[misc]
        assert [d.json()["jobId"] for d in hook.received] == ["job1"]


@pytest.mark.timeout(300)  # four server starts: slow on a loaded machine
async def test_kill_storm_every_completed_job_has_exactly_one_delivery(tmp_path: Path) -> None:
    report = await run_kill_storm(tmp_path, jobs=400, kill_every=0.2, jobs_between_kills=80)
    assert report.problems == []
    assert report.kills >= 3
    assert report.completed == report.jobs == 400
