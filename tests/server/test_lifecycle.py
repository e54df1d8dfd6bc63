"""GET /jobs/{id}, results, cancel, retry, expiry and ownership (reference dialect)."""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import httpx
import pytest

from .conftest import (
    Server,
    ServerFactory,
    assert_healthy,
    error_code,
    poll_status,
    poll_until,
    read_sse,
)

pytestmark = pytest.mark.anyio

BOTH_MODES = pytest.mark.parametrize("mode", ["async", "thread"])
BOTH_STORES = pytest.mark.parametrize("store", ["memory", "sqlite"])
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_time(value: str) -> datetime:
    assert RFC3339.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_retry_headers(response: httpx.Response) -> None:
    """The poll hint of a non-final job: ``Retry-After = ceil(ms / 1000)``, body in seconds."""
    ms = int(response.headers["Retry-After-Ms"])
    assert ms >= 0
    assert int(response.headers["Retry-After"]) == math.ceil(ms / 1000)
    body = response.json()
    assert body["retryAfter"] == pytest.approx(ms / 1000, abs=0.0011)
    assert response.headers["Link"] == f'</jobs/{body["jobId"]}/events>; rel="events"'


def assert_final_headers(response: httpx.Response) -> None:
    """A final job: no poll hint, ``retryAfter: null``, still the events link."""
    assert "Retry-After" not in response.headers
    assert "Retry-After-Ms" not in response.headers
    body = response.json()
    assert body["retryAfter"] is None
    assert response.headers["Link"] == f'</jobs/{body["jobId"]}/events>; rel="events"'


def assert_links(job: dict[str, Any]) -> None:
    job_id = job["jobId"]
    assert job["statusUrl"] == f"/jobs/{job_id}"
    assert job["eventsUrl"] == f"/jobs/{job_id}/events"
    assert job["cancelUrl"] == f"/jobs/{job_id}"


# ---------------------------------------------------------------------------- status


@BOTH_MODES
@BOTH_STORES
async def test_processing_status_reports_progress_and_timestamps(srv: Server) -> None:
    job_id = await srv.submit_ok("steps", {"key": "p", "total": 3})

    def at_step_one(response: httpx.Response) -> bool:
        progress = response.json().get("progress")
        return progress is not None and progress["current"] == 1

    response = await srv.wait_until(job_id, at_step_one)
    assert response.status_code == 200
    job = response.json()
    assert job["jobId"] == job_id
    assert job["type"] == "steps"
    assert job["status"] == "processing"
    assert job["attempt"] == 1
    assert job["progress"] == {"current": 1, "total": 3, "message": "step 1/3"}
    assert_links(job)
    created, started = parse_time(job["createdAt"]), parse_time(job["startedAt"])
    updated = parse_time(job["updatedAt"])
    assert created <= started <= updated
    if job["estimatedCompletion"] is not None:
        assert parse_time(job["estimatedCompletion"]) >= started
    assert job["retryAfter"] >= 0
    assert_retry_headers(response)
    assert "resultUrl" not in job or job["resultUrl"] is None

    srv.gates.open("p-1")
    response = await srv.wait_until(job_id, lambda r: r.json()["progress"]["current"] == 2)
    assert response.json()["progress"]["message"] == "step 2/3"
    srv.gates.open("p-2")
    srv.gates.open("p-3")
    final = await srv.wait_terminal(job_id)
    assert final.status_code == 303
    assert final.json()["status"] == "completed"


async def test_pending_status_while_workers_are_busy(make_server: ServerFactory) -> None:
    srv = await make_server(workers=1)
    busy = await srv.submit_ok("gate", {"key": "busy"})
    await srv.gates.wait_started("busy")
    queued = await srv.submit_ok("echo", {"x": 1})

    response = await srv.get(f"/jobs/{queued}")
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "pending"
    assert job["attempt"] == 0
    assert job["startedAt"] is None
    assert job["progress"] is None
    assert_retry_headers(response)
    assert_links(job)

    srv.gates.open("busy")
    assert (await srv.wait_terminal(busy)).status_code == 303
    assert (await srv.wait_terminal(queued)).status_code == 303


async def test_retry_after_is_shorter_near_the_expected_end(srv: Server) -> None:
    # Step 1 comes after a pause, the other steps right after it: at 1/10 the progress
    # rate predicts a long remaining time, at 9/10 almost none.
    job_id = await srv.submit_ok("steps", {"key": "ra", "total": 10, "first_delay": 0.2})
    early = await srv.wait_until(
        job_id, lambda r: (r.json().get("progress") or {}).get("current") == 1
    )
    for step in range(1, 9):
        srv.gates.open(f"ra-{step}")
    late = await srv.wait_until(job_id, lambda r: r.json()["progress"]["current"] == 9)
    assert int(late.headers["Retry-After-Ms"]) < int(early.headers["Retry-After-Ms"])
    assert late.json()["retryAfter"] < early.json()["retryAfter"]
    assert late.json()["retryAfter"] * 1000 == pytest.approx(
        int(late.headers["Retry-After-Ms"]), abs=1
    )
    assert early.json()["estimatedCompletion"] is not None
    # Never in the past.
    assert parse_time(late.json()["estimatedCompletion"]) >= parse_time(late.json()["updatedAt"])
    assert parse_time(late.json()["estimatedCompletion"]) <= parse_time(
        early.json()["estimatedCompletion"]
    )


@BOTH_MODES
@BOTH_STORES
async def test_completed_json_job_redirects_to_its_result(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {"greeting": "hi", "n": [1, 2]})
    response = await srv.wait_terminal(job_id)

    assert response.status_code == 303
    assert response.headers["Location"] == f"/jobs/{job_id}/result"
    job = response.json()
    assert job["status"] == "completed"
    assert job["resultUrl"] == f"/jobs/{job_id}/result"
    assert parse_time(job["updatedAt"]) >= parse_time(job["createdAt"])
    assert parse_time(job["completedAt"]) >= parse_time(job["startedAt"])
    assert "result" not in job
    assert_final_headers(response)

    result = await srv.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.json() == {"greeting": "hi", "n": [1, 2]}


@BOTH_STORES
async def test_file_result_has_content_type_and_disposition(srv: Server) -> None:
    job_id = await srv.submit_ok("report", {"rows": 4})
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/jobs/{job_id}/result"

    result = await srv.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.headers["Content-Type"].startswith("text/csv")
    disposition = result.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="[^"]+\.csv"', disposition), disposition
    rows = list(csv.reader(io.StringIO(result.text)))
    assert len(rows) == 4 + 1  # header + rows


async def test_inline_completion_style_still_redirects_to_files(make_server: ServerFactory) -> None:
    srv = await make_server(completion_style="inline")
    job_id = await srv.submit_ok("report", {"rows": 1})
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/jobs/{job_id}/result"
    assert "result" not in response.json()


async def test_inline_completion_style(make_server: ServerFactory) -> None:
    srv = await make_server(completion_style="inline")
    job_id = await srv.submit_ok("echo", {"inline": True})
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "completed"
    assert job["result"] == {"inline": True}
    assert job["resultUrl"] == f"/jobs/{job_id}/result"
    assert response.headers["Content-Location"] == f"/jobs/{job_id}/result"
    assert "Location" not in response.headers
    assert (await srv.get(job["resultUrl"])).json() == {"inline": True}


# ---------------------------------------------------------------------------- failures


@BOTH_STORES
async def test_non_retryable_failure(srv: Server) -> None:
    job_id = await srv.submit_ok(
        "fail", {"code": "bad_data", "message": "row 3 is broken", "retryable": False}
    )
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "failed"
    assert job["error"] == {"code": "bad_data", "message": "row 3 is broken", "retryable": False}
    assert job["deadLetter"] is False
    assert job.get("retryUrl") is None
    assert job["attempt"] == 1
    parse_time(job["failedAt"])
    assert_final_headers(response)

    result = await srv.get(f"/jobs/{job_id}/result")
    assert result.status_code == 409
    assert error_code(result) == "not_completed"
    retry = await srv.post(f"/jobs/{job_id}/retry")
    assert retry.status_code == 409
    assert error_code(retry) == "not_retryable"


@BOTH_STORES
async def test_retryable_failure_is_retried_then_dead_lettered(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=3)
    job_id = await srv.submit_ok(
        "fail", {"code": "flaky", "message": "upstream down", "retryable": True}
    )
    response = await srv.wait_terminal(job_id)
    job = response.json()
    assert job["status"] == "failed"
    assert job["attempt"] == 3
    assert job["deadLetter"] is True
    assert job["error"]["code"] == "flaky"
    assert job["error"]["retryable"] is True
    assert job["retryUrl"] == f"/jobs/{job_id}/retry"


async def test_server_side_retries_back_off(make_server: ServerFactory) -> None:
    backoff = 0.05
    srv = await make_server(max_attempts=3, retry_backoff=backoff)
    job_id = await srv.submit_ok("fail", {"code": "c", "message": "m", "retryable": True})
    await srv.wait_terminal(job_id)
    log = await read_sse(srv, job_id, last_event_id="0")
    docs = [e.json() for e in log.events]
    # After a failure of attempt k the job is pending again; attempt k+1 starts no sooner
    # than retry_backoff * 2**(k-1) later (server timestamps; a lower bound only).
    for before, after in itertools.pairwise(docs):
        if before["status"] == "pending" and before["attempt"] >= 1:
            assert after["status"] == "processing"
            assert after["attempt"] == before["attempt"] + 1
            waited = parse_time(after["startedAt"]) - parse_time(before["updatedAt"])
            expected = backoff * 2 ** (before["attempt"] - 1)
            assert waited.total_seconds() >= expected - 0.002, (before, after)
    assert [d["attempt"] for d in docs if d["status"] == "processing"] == [1, 2, 3]


async def test_server_side_retries_increase_the_attempt(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=3)
    srv.gates.open("flaky")
    job_id = await srv.submit_ok("gate", {"key": "flaky", "fail_code": "x", "retryable": True})
    job = (await srv.wait_terminal(job_id)).json()
    assert srv.gates.started["flaky"] == [1, 2, 3]
    assert job["attempt"] == 3
    assert job["deadLetter"] is True


@BOTH_STORES
async def test_fail_attempts_succeeds_on_a_later_attempt(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=4)
    job_id = await srv.submit_ok(
        "fail", {"code": "flaky", "message": "m", "retryable": True, "fail_attempts": 2}
    )
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 303
    job = response.json()
    assert job["status"] == "completed"
    assert job["attempt"] == 3
    assert (await srv.get(f"/jobs/{job_id}/result")).status_code == 200


async def test_retry_endpoint_creates_a_new_job(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=1)
    job_input = {"code": "flaky", "message": "m", "retryable": True, "fail_attempts": 1}
    original = await srv.submit_ok("fail", job_input)
    failed = (await srv.wait_terminal(original)).json()
    assert failed["status"] == "failed"

    retry = await srv.post(failed["retryUrl"])
    assert retry.status_code == 202
    body = retry.json()
    new_id = body["jobId"]
    assert new_id != original
    assert body["originalJobId"] == original
    assert body["status"] == "pending"
    assert retry.headers["Location"] == f"/jobs/{new_id}"
    assert retry.headers["Link"] == f'</jobs/{new_id}/events>; rel="events"'
    assert int(retry.headers["Retry-After"]) >= 0
    assert int(retry.headers["Retry-After-Ms"]) >= 0
    assert body["statusUrl"] == f"/jobs/{new_id}"
    new_job = (await srv.get(f"/jobs/{new_id}")).json()
    assert new_job["type"] == "fail"
    # The original stays failed.
    assert (await srv.get(f"/jobs/{original}")).json()["status"] == "failed"


async def test_retry_is_409_unless_failed_and_retryable(srv: Server) -> None:
    running = await srv.submit_ok("gate", {"key": "r409"})
    await srv.gates.wait_started("r409")
    response = await srv.post(f"/jobs/{running}/retry")
    assert response.status_code == 409
    assert error_code(response) == "not_retryable"
    srv.gates.open("r409")
    await srv.wait_terminal(running)
    completed = await srv.post(f"/jobs/{running}/retry")
    assert completed.status_code == 409
    assert error_code(completed) == "not_retryable"
    unknown = await srv.post("/jobs/does-not-exist/retry")
    assert unknown.status_code == 404


# ---------------------------------------------------------------------------- cancel


@BOTH_MODES
@BOTH_STORES
async def test_cancel_a_running_job(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "c1"})
    await srv.gates.wait_started("c1")

    response = await srv.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "cancelled"
    parse_time(job["cancelledAt"])
    assert_links(job)

    await poll_until(srv.gates.cancel_seen("c1").is_set)

    status = await srv.get(f"/jobs/{job_id}")
    assert status.status_code == 200
    assert status.json()["status"] == "cancelled"
    assert status.json()["cancelledAt"] == job["cancelledAt"]
    again = await srv.delete(f"/jobs/{job_id}")
    assert again.status_code == 409
    assert error_code(again) == "already_terminal"
    result = await srv.get(f"/jobs/{job_id}/result")
    assert result.status_code == 409
    assert error_code(result) == "not_completed"


async def test_cancel_a_pending_job_means_it_never_runs(make_server: ServerFactory) -> None:
    srv = await make_server(workers=1)
    busy = await srv.submit_ok("gate", {"key": "busy"})
    await srv.gates.wait_started("busy")
    queued = await srv.submit_ok("gate", {"key": "queued"})
    response = await srv.delete(f"/jobs/{queued}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    srv.gates.open("busy")
    srv.gates.open("queued")
    await srv.wait_terminal(busy)
    follow = await srv.submit_ok("echo", {})  # runs after the cancelled one would have
    await srv.wait_terminal(follow)
    assert "queued" not in srv.gates.started
    assert (await srv.get(f"/jobs/{queued}")).json()["status"] == "cancelled"


async def test_cancel_a_completed_job_is_409(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {})
    await srv.wait_terminal(job_id)
    response = await srv.delete(f"/jobs/{job_id}")
    assert response.status_code == 409
    assert error_code(response) == "already_terminal"
    assert (await srv.get(f"/jobs/{job_id}/result")).status_code == 200


# ---------------------------------------------------------------------------- result 409


async def test_result_is_409_while_not_completed(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "nc"})
    response = await srv.get(f"/jobs/{job_id}/result")
    assert response.status_code == 409
    assert error_code(response) == "not_completed"
    srv.gates.open("nc")
    await srv.wait_terminal(job_id)
    assert (await srv.get(f"/jobs/{job_id}/result")).status_code == 200


# ---------------------------------------------------------------------------- expiry


@BOTH_STORES
async def test_admin_expire_makes_status_and_result_410(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {"x": 1})
    await srv.wait_terminal(job_id)
    srv.admin.expire(job_id)
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result"):
        response = await srv.get(path)
        assert response.status_code == 410
        assert error_code(response) == "expired"
    await assert_healthy(srv)


async def test_job_ttl_expires_jobs(make_server: ServerFactory) -> None:
    srv = await make_server(job_ttl=0.1)
    job_id = await srv.submit_ok("echo", {"x": 1})
    with anyio.fail_after(10):
        while (response := await srv.get(f"/jobs/{job_id}")).status_code != 410:
            assert response.status_code in (200, 303)
            await anyio.sleep(0.02)
    assert error_code(response) == "expired"
    result = await srv.get(f"/jobs/{job_id}/result")
    assert result.status_code == 410


async def test_result_ttl_expires_results(make_server: ServerFactory) -> None:
    srv = await make_server(result_ttl=0.1)
    job_id = await srv.submit_ok("echo", {"x": 1})
    await srv.wait_terminal(job_id)
    with anyio.fail_after(10):
        while (response := await srv.get(f"/jobs/{job_id}/result")).status_code != 410:
            assert response.status_code == 200
            await anyio.sleep(0.02)
    assert error_code(response) == "expired"


# ---------------------------------------------------------------------------- not found


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/result"), ("GET", "/events"), ("DELETE", ""), ("POST", "/retry")],
)
async def test_unknown_job_is_404(srv: Server, method: str, suffix: str) -> None:
    response = await srv.request(method, f"/jobs/no-such-job{suffix}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    await assert_healthy(srv)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/result"), ("GET", "/events"), ("DELETE", ""), ("POST", "/retry")],
)
async def test_another_users_job_is_404_never_403(srv: Server, method: str, suffix: str) -> None:
    job_id = await srv.submit_ok("fail", {"code": "c", "message": "m", "retryable": True})
    await srv.wait_terminal(job_id, user="alice")
    for intruder in ("mallory", ""):
        response = await srv.request(method, f"/jobs/{job_id}{suffix}", user=intruder)
        assert response.status_code == 404, (intruder, response.text)
        assert error_code(response) == "not_found"
    # The owner still sees it.
    assert (await srv.get(f"/jobs/{job_id}", user="alice")).status_code == 200


async def test_configured_tokens_map_to_users(make_server: ServerFactory) -> None:
    srv = await make_server(tokens={"tok-alice": "alice", "tok-alice-2": "alice", "tok-bob": "bob"})
    job_id = await srv.submit_ok("echo", {}, user="tok-alice")
    # The same user through another token sees it; another user does not.
    assert (await srv.wait_terminal(job_id, user="tok-alice-2")).status_code == 303
    assert (await srv.get(f"/jobs/{job_id}", user="tok-bob")).status_code == 404
    for bad in ("wrong-token", "alice"):
        response = await srv.get(f"/jobs/{job_id}", user=bad)
        assert response.status_code == 401
        assert error_code(response) == "unauthorized"
        submit = await srv.submit("echo", {}, user=bad)
        assert submit.status_code == 401
    srv.default_user = "tok-bob"
    await assert_healthy(srv)


# ---------------------------------------------------------------------------- notBefore


@BOTH_STORES
async def test_not_before_delays_the_start(srv: Server) -> None:
    not_before = datetime.now(timezone.utc) + timedelta(seconds=0.5)
    stamp = not_before.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    response = await srv.submit("echo", {"late": True}, extra={"notBefore": stamp})
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    answer = await srv.get(f"/jobs/{job_id}")
    pending = answer.json()
    assert pending["status"] == "pending"
    assert pending["startedAt"] is None
    assert pending["attempt"] == 0
    assert parse_time(pending["notBefore"]) == parse_time(stamp)
    # The poll hint points at notBefore (not later), but never below the minimum.
    assert 50 <= int(answer.headers["Retry-After-Ms"]) <= 501

    final = await srv.wait_terminal(job_id)
    assert final.status_code == 303
    started = parse_time(final.json()["startedAt"])
    assert started >= parse_time(stamp)


async def test_inline_completion_style_with_an_expired_result_redirects(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(completion_style="inline", result_ttl=0.05)
    job_id = await srv.submit_ok("echo", {"x": 1})
    await srv.wait_terminal(job_id)
    await poll_status(srv, f"/jobs/{job_id}/result", 410)
    response = await srv.get(f"/jobs/{job_id}")
    assert response.status_code == 303
    assert "result" not in response.json()


async def test_a_crashing_handler_fails_with_internal_error(srv: Server) -> None:
    srv.gates.open("crash")
    job_id = await srv.submit_ok("gate", {"key": "crash", "crash": True})
    job = (await srv.wait_terminal(job_id)).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "internal_error"
    assert job["error"]["retryable"] is False
    assert job["deadLetter"] is False
    assert "secret internal detail" not in job["error"]["message"]
    assert "Traceback" not in job["error"]["message"]
    assert srv.gates.started["crash"] == [1]


async def test_cancel_grace_then_the_handler_task_is_cancelled(make_server: ServerFactory) -> None:
    srv = await make_server(cancel_grace=0.05)
    job_id = await srv.submit_ok("gate", {"key": "stubborn", "ignore_cancel": True})
    await srv.gates.wait_started("stubborn")
    response = await srv.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    # The handler ignores the signal; after the grace period its task is cancelled.
    await poll_until(srv.gates.cancel_seen("stubborn").is_set)
    srv.gates.open("stubborn")
    status = await srv.get(f"/jobs/{job_id}")
    assert status.json()["status"] == "cancelled"
    assert (await srv.get(f"/jobs/{job_id}/result")).status_code == 409


async def test_retry_copies_type_input_and_callback(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=1)
    job_input = {"code": "c", "message": "m", "retryable": True, "delay": 0.0}
    callback = {"url": "http://127.0.0.1:9/hook", "events": ["progress"]}
    original = await srv.submit_ok("fail", job_input, extra={"callback": callback})
    await srv.wait_terminal(original)
    retry = await srv.post(f"/jobs/{original}/retry")  # no body needed
    assert retry.status_code == 202
    new_id = retry.json()["jobId"]
    first, second = srv.admin.job(original), srv.admin.job(new_id)
    assert first is not None and second is not None
    assert second.type == "fail"
    assert second.input == first.input
    assert second.callback == first.callback
    assert second.original_job_id == original
    doc = (await srv.wait_terminal(new_id)).json()
    assert doc["originalJobId"] == original
    assert doc["attempt"] == 1


async def test_expired_jobs_are_410_everywhere_for_the_owner_only(srv: Server) -> None:
    job_id = await srv.submit_ok("fail", {"code": "c", "message": "m", "retryable": True})
    await srv.wait_terminal(job_id)
    assert srv.admin.expire(job_id) is True
    for method, suffix in [
        ("GET", ""),
        ("GET", "/result"),
        ("GET", "/events"),
        ("DELETE", ""),
        ("POST", "/retry"),
    ]:
        owner = await srv.request(method, f"/jobs/{job_id}{suffix}")
        assert owner.status_code == 410, (method, suffix)
        assert error_code(owner) == "expired"
        other = await srv.request(method, f"/jobs/{job_id}{suffix}", user="mallory")
        assert other.status_code == 404, (method, suffix)
    listed = (await srv.get("/jobs")).json()["jobs"]
    assert job_id not in [job["jobId"] for job in listed]


async def test_running_and_pending_jobs_never_expire(make_server: ServerFactory) -> None:
    srv = await make_server(job_ttl=0.001, workers=1)
    running = await srv.submit_ok("gate", {"key": "forever"})
    await srv.gates.wait_started("forever")
    queued = await srv.submit_ok("echo", {})
    srv.admin.sweep()
    assert (await srv.get(f"/jobs/{running}")).json()["status"] == "processing"
    assert (await srv.get(f"/jobs/{queued}")).json()["status"] == "pending"
    srv.gates.open("forever")
    await srv.wait_terminal(queued)
