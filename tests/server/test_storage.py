"""The SQLite store: a restart in the middle of running jobs loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ServerFactory, read_sse

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_sqlite_store_survives_a_restart_mid_run(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    path = str(tmp_path / "restart.sqlite3")
    first = await make_server(store="sqlite", sqlite_path=path, workers=2)

    finished = await first.submit_ok("echo", {"kept": "yes"})
    report = await first.submit_ok("report", {"rows": 3})
    assert (await first.wait_terminal(finished)).status_code == 303
    assert (await first.wait_terminal(report)).status_code == 303
    report_bytes = (await first.get(f"/jobs/{report}/result")).content

    gated = await first.submit_ok("gate", {"key": "restart"})
    sleeper = await first.submit_ok("sleep", {"seconds": 0.3, "steps": 6})
    queued = await first.submit_ok("echo", {"queued": True})  # no free worker yet
    await first.gates.wait_started("restart")
    await first.wait_until(sleeper, lambda r: r.json().get("progress") is not None)
    assert (await first.get(f"/jobs/{queued}")).json()["status"] == "pending"
    assert first.stop is not None
    await first.stop()

    second = await make_server(store="sqlite", sqlite_path=path, workers=2)
    # The interrupted gate job runs again, as attempt 2.
    await second.gates.wait_started("restart", count=2)
    assert second.gates.started["restart"] == [1, 2]
    second.gates.open("restart")

    gated_final = await second.wait_terminal(gated)
    assert gated_final.status_code == 303
    assert gated_final.json()["attempt"] == 2
    assert (await second.get(f"/jobs/{gated}/result")).json() == {"key": "restart", "attempt": 2}

    sleeper_final = await second.wait_terminal(sleeper)
    assert sleeper_final.status_code == 303
    assert sleeper_final.json()["attempt"] >= 2

    queued_final = await second.wait_terminal(queued)
    assert queued_final.status_code == 303
    assert (await second.get(f"/jobs/{queued}/result")).json() == {"queued": True}

    # Finished jobs keep their results and their state.
    done = await second.get(f"/jobs/{finished}")
    assert done.status_code == 303
    assert done.json()["attempt"] == 1
    assert (await second.get(f"/jobs/{finished}/result")).json() == {"kept": "yes"}
    file_result = await second.get(f"/jobs/{report}/result")
    assert file_result.content == report_bytes
    assert file_result.headers["Content-Type"].startswith("text/csv")

    listed = (await second.get("/jobs", params={"limit": 100})).json()["jobs"]
    assert {job["jobId"] for job in listed} == {finished, report, gated, sleeper, queued}

    # SSE ids continue across the restart: one log, both servers' entries, in order.
    log = await read_sse(second, gated, last_event_id="0")
    assert [int(e.id or 0) for e in log.events] == list(range(1, len(log.events) + 1))
    attempts = [(e.event, e.json()["status"], e.json()["attempt"]) for e in log.events]
    assert attempts[:2] == [("status", "pending", 0), ("status", "processing", 1)]
    assert ("status", "pending", 1) in attempts  # back to pending at the restart
    assert ("status", "processing", 2) in attempts
    assert attempts[-1] == ("complete", "completed", 2)


async def test_sqlite_keeps_failures_idempotency_keys_and_expiry(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    path = str(tmp_path / "keys.sqlite3")
    first = await make_server(store="sqlite", sqlite_path=path)
    keyed = await first.submit("echo", {"k": 1}, headers={"Idempotency-Key": "persist-me"})
    failed = await first.submit_ok("fail", {"code": "nope", "message": "m", "retryable": False})
    expired = await first.submit_ok("echo", {})
    await first.wait_terminal(keyed.json()["jobId"])
    await first.wait_terminal(failed)
    await first.wait_terminal(expired)
    first.admin.expire(expired)
    assert first.stop is not None
    await first.stop()

    second = await make_server(store="sqlite", sqlite_path=path)
    replay = await second.submit("echo", {"k": 1}, headers={"Idempotency-Key": "persist-me"})
    assert replay.status_code == 202
    assert replay.json()["jobId"] == keyed.json()["jobId"]
    assert replay.json()["status"] == "completed"  # the job as it is now
    assert replay.headers["Idempotent-Replayed"] == "true"
    failure = (await second.get(f"/jobs/{failed}")).json()
    assert failure["status"] == "failed"
    assert failure["error"]["code"] == "nope"
    assert (await second.get(f"/jobs/{expired}")).status_code == 410


async def test_sqlite_event_log_survives_for_replay(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    path = str(tmp_path / "events.sqlite3")
    first = await make_server(store="sqlite", sqlite_path=path)
    job_id = await first.submit_ok("sleep", {"seconds": 0.01, "steps": 2})
    await first.wait_terminal(job_id)
    assert first.stop is not None
    await first.stop()

    second = await make_server(store="sqlite", sqlite_path=path)
    replay = await read_sse(second, job_id, last_event_id="0")
    assert replay.ended
    assert replay.names[-1] == "complete"
    assert [int(e.id or 0) for e in replay.events] == list(range(1, len(replay.events) + 1))
