"""The ``status-code`` dialect: the HTTP status code carries the job's state."""

from __future__ import annotations

import pytest

from .conftest import Server, ServerFactory, error_code, poll_status

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("dialect", ["status-code"])]

BOTH_MODES = pytest.mark.parametrize("mode", ["async", "thread"])
BOTH_STORES = pytest.mark.parametrize("store", ["memory", "sqlite"])


@BOTH_MODES
@BOTH_STORES
async def test_pending_and_in_flight_are_202(make_server: ServerFactory) -> None:
    srv = await make_server(workers=1)
    running = await srv.submit_ok("steps", {"key": "sc", "total": 2})
    queued = await srv.submit_ok("echo", {"x": 1})

    def in_flight_with_progress(response: object) -> bool:
        body = response.json()  # type: ignore[attr-defined]
        return body.get("progress") is not None

    response = await srv.wait_until(running, in_flight_with_progress)
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "inFlight"
    assert body["jobId"] == running
    assert body["progress"]["current"] == 1
    assert int(response.headers["Retry-After"]) >= 0
    assert int(response.headers["Retry-After-Ms"]) >= 0

    pending = await srv.get(f"/jobs/{queued}")
    assert pending.status_code == 202
    assert pending.json()["state"] == "pending"

    srv.gates.open("sc-1")
    srv.gates.open("sc-2")
    final = await srv.wait_terminal(running)
    assert final.status_code == 200
    assert final.json() == {"key": "sc", "steps": 2}


@BOTH_MODES
async def test_completed_json_is_200_with_the_result(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {"a": [1, 2, 3]})
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 200
    assert response.json() == {"a": [1, 2, 3]}
    assert "Retry-After" not in response.headers
    assert response.headers["Content-Location"] == f"/jobs/{job_id}/result"
    assert response.headers["Link"] == f'</jobs/{job_id}/events>; rel="events"'
    result = await srv.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.json() == {"a": [1, 2, 3]}


async def test_completed_file_is_303_to_the_result(srv: Server) -> None:
    job_id = await srv.submit_ok("report", {"rows": 2})
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/jobs/{job_id}/result"
    result = await srv.get(response.headers["Location"])
    assert result.status_code == 200
    assert result.headers["Content-Type"].startswith("text/csv")
    assert result.headers["Content-Disposition"].startswith("attachment;")


@BOTH_STORES
async def test_failed_is_500_with_the_error(srv: Server) -> None:
    job_id = await srv.submit_ok(
        "fail", {"code": "boom", "message": "it broke", "retryable": False}
    )
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 500
    body = response.json()
    assert body["jobId"] == job_id
    assert body["state"] == "failed"
    assert body["error"] == {"code": "boom", "message": "it broke", "retryable": False}
    assert body.get("retryUrl") is None
    assert response.headers["Link"] == f'</jobs/{job_id}/events>; rel="events"'
    assert "Retry-After" not in response.headers


async def test_prefer_wait_answers_500_for_a_failure(srv: Server) -> None:
    response = await srv.submit(
        "fail", {"code": "x", "message": "m", "retryable": False}, headers={"Prefer": "wait=5"}
    )
    assert response.status_code == 500
    assert response.headers["Preference-Applied"] == "wait=5"
    assert response.json()["state"] == "failed"


async def test_dead_letter_is_500_with_state_dead_letter(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=2)
    job_id = await srv.submit_ok("fail", {"code": "flaky", "message": "m", "retryable": True})
    response = await srv.wait_terminal(job_id)
    assert response.status_code == 500
    body = response.json()
    assert body["state"] == "deadLetter"
    assert body["error"]["code"] == "flaky"
    assert body["retryUrl"] == f"/jobs/{job_id}/retry"
    retry = await srv.post(body["retryUrl"])
    assert retry.status_code == 202
    assert retry.json()["originalJobId"] == job_id


async def test_cancelled_is_409(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "scx"})
    await srv.gates.wait_started("scx")
    cancel = await srv.delete(f"/jobs/{job_id}")
    assert cancel.status_code == 200
    assert cancel.json()["state"] == "cancelled"
    assert cancel.json()["status"] == "cancelled"
    response = await srv.get(f"/jobs/{job_id}")
    assert response.status_code == 409
    body = response.json()
    assert body["jobId"] == job_id
    assert body["state"] == "cancelled"
    assert body["error"]["code"] == "cancelled"
    assert response.headers["Link"] == f'</jobs/{job_id}/events>; rel="events"'


async def test_expired_is_410_and_unknown_is_404(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {})
    await srv.wait_terminal(job_id)
    srv.admin.expire(job_id)
    response = await srv.get(f"/jobs/{job_id}")
    assert response.status_code == 410
    assert error_code(response) == "expired"
    unknown = await srv.get("/jobs/nope")
    assert unknown.status_code == 404
    assert error_code(unknown) == "not_found"


async def test_submit_is_still_202_with_the_same_body(srv: Server) -> None:
    response = await srv.submit("echo", {})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert response.headers["Location"] == f"/jobs/{body['jobId']}"


async def test_expired_result_is_410_on_the_status_too(make_server: ServerFactory) -> None:
    srv = await make_server(result_ttl=0.05)
    job_id = await srv.submit_ok("echo", {"x": 1})
    await srv.wait_terminal(job_id)
    await poll_status(srv, f"/jobs/{job_id}/result", 410)
    response = await srv.get(f"/jobs/{job_id}")
    assert response.status_code == 410
    assert error_code(response) == "expired"


async def test_status_documents_keep_the_reference_word(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=1)
    job_id = await srv.submit_ok("fail", {"code": "c", "message": "m", "retryable": True})
    body = (await srv.wait_terminal(job_id)).json()
    assert body["state"] == "deadLetter"
    assert body["status"] == "failed"
    assert body["deadLetter"] is True
