"""The in-process admin handle: snapshots, counters, expiry and clearing, from both modes."""

from __future__ import annotations

import pytest

from reference_server import JobState

from .conftest import Server, assert_healthy

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_admin_sees_jobs_and_counts_requests(srv: Server) -> None:
    done = await srv.submit_ok("echo", {"x": 1})
    running = await srv.submit_ok("gate", {"key": "adm"})
    await srv.wait_terminal(done)
    await srv.gates.wait_started("adm")

    jobs = {job.id: job for job in srv.admin.jobs()}
    assert set(jobs) == {done, running}
    assert jobs[done].state is JobState.COMPLETED
    assert jobs[done].owner == "alice"
    assert jobs[running].state is JobState.PROCESSING
    assert jobs[running].attempt == 1
    snapshot = srv.admin.job(done)
    assert snapshot is not None and snapshot.result is not None
    assert snapshot.result.kind == "json"
    assert srv.admin.job("unknown") is None

    before = srv.admin.status_requests(running)
    await srv.get(f"/jobs/{running}")
    await srv.get(f"/jobs/{running}")
    assert srv.admin.status_requests(running) == before + 2
    assert srv.admin.request_count >= 4
    srv.gates.open("adm")


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_admin_clear_forgets_everything(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {})
    await srv.wait_terminal(job_id)
    srv.admin.clear()
    assert srv.admin.jobs() == []
    assert srv.admin.request_count == 0
    response = await srv.get(f"/jobs/{job_id}")
    assert response.status_code == 404
    await assert_healthy(srv)


async def test_admin_expire_of_an_unknown_job_is_false(srv: Server) -> None:
    assert srv.admin.expire("nope") is False
