"""Hostile load: results too large for the server, and work that must stay off the event loop.

A 60-byte ``report`` submission must not make a 112 MiB result on the loop: rows are
generated in a worker thread, and the configured caps (``max_result_rows``,
``max_result_bytes``) fail the job with ``result_too_large`` instead.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from reference_server import JobContext, job_types

from .conftest import ServerFactory, assert_healthy

pytestmark = pytest.mark.anyio

BOTH_STORES = pytest.mark.parametrize("store", ["memory", "sqlite"])


async def _failed_with(srv: Any, job_id: str) -> dict[str, Any]:
    final = await srv.wait_terminal(job_id, within=30)
    body = final.json()
    assert body["status"] == "failed", body
    error = body["error"]
    assert isinstance(error, dict)
    return error


@BOTH_STORES
async def test_too_many_rows_fail_the_job_before_any_work(make_server: ServerFactory) -> None:
    srv = await make_server(max_result_rows=50)
    job_id = await srv.submit_ok("report", {"rows": 51})
    error = await _failed_with(srv, job_id)
    assert error["code"] == "result_too_large"
    assert error["retryable"] is False
    assert "50" in error["message"]
    ok = await srv.submit_ok("report", {"rows": 50})
    assert (await srv.wait_terminal(ok)).status_code == 303
    await assert_healthy(srv)


@BOTH_STORES
async def test_too_many_bytes_fail_the_report(make_server: ServerFactory) -> None:
    srv = await make_server(max_result_bytes=4096)
    job_id = await srv.submit_ok("report", {"rows": 20_000, "columns": 10})
    error = await _failed_with(srv, job_id)
    assert error["code"] == "result_too_large"
    assert (await srv.get(f"/jobs/{job_id}/result")).status_code == 409
    await assert_healthy(srv)


async def _big_json(ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
    return {"blob": "x" * int(input["size"])}


@BOTH_STORES
async def test_any_handler_result_over_the_cap_fails_the_job(make_server: ServerFactory) -> None:
    srv = await make_server(max_result_bytes=2048, handlers={"big": _big_json})
    job_id = await srv.submit_ok("big", {"size": 5000})
    error = await _failed_with(srv, job_id)
    assert error["code"] == "result_too_large"
    small = await srv.submit_ok("big", {"size": 100})
    assert (await srv.wait_terminal(small)).status_code == 303


async def test_report_rows_are_generated_off_the_event_loop(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = await make_server(mode_="async")
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = job_types._csv_rows

    def spy(*args: Any) -> bytes:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(job_types, "_csv_rows", spy)
    job_id = await srv.submit_ok("report", {"rows": 12_000})
    final = await srv.wait_terminal(job_id, within=30)
    assert final.status_code == 303
    assert threads and loop_thread not in threads
    csv = (await srv.get(f"/jobs/{job_id}/result")).text.splitlines()
    assert len(csv) == 12_001
    assert csv[0] == "id,name,value"
    assert csv[-1] == "12000,name-12000,value-12000"
    progress = final.json()["progress"]
    assert progress["current"] == progress["total"] == 12_000


async def test_health_answers_while_huge_reports_run(make_server: ServerFactory) -> None:
    # The case: 100,000 x 100 rows (112 MiB) per report, five at once. With the
    # default caps each fails with result_too_large; meanwhile /health keeps answering.
    srv = await make_server(workers=5)
    jobs = [await srv.submit_ok("report", {"rows": 100_000, "columns": 100}) for _ in range(5)]
    answered = 0
    with anyio.fail_after(60):
        while True:
            health = await srv.get("/health", user="")
            assert health.status_code == 200
            answered += 1
            states = [j.state for j in srv.admin.jobs()]
            if all(s.is_terminal for s in states):
                break
            await anyio.sleep(0.01)
    assert answered >= 1
    for job_id in jobs:
        assert (await _failed_with(srv, job_id))["code"] == "result_too_large"
