"""Long polling: ``GET /jobs/{id}?wait=N`` and ``Prefer: wait=N`` on the status endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from .conftest import Server, ServerFactory, assert_healthy, error_code, poll_until

pytestmark = pytest.mark.anyio

# Generous bound on a held request that should return early: the requested wait is far
# longer, so hitting this bound means the server did not answer on the change.
EARLY = 10.0
LONG_WAIT = "45"


def request_count(srv: Server) -> int:
    count = srv.admin.request_count
    return int(count() if callable(count) else count)


async def long_poll_after_change(
    srv: Server, job_id: str, change: Callable[[], Awaitable[None]], **request: Any
) -> httpx.Response:
    """Send a long poll, wait until the server has received it, then apply ``change``.

    Returns the long poll's answer, which must arrive well before its requested wait.
    """
    before = request_count(srv)
    answer: list[httpx.Response] = []
    answered = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def poll() -> None:
            answer.append(await srv.get(f"/jobs/{job_id}", **request))
            answered.set()

        tg.start_soon(poll)
        await poll_until(lambda: request_count(srv) > before, within=EARLY)
        # The request is in the server now; let it settle into its wait, then change state.
        await anyio.sleep(0.02)
        assert not answer, "the long poll answered before anything changed"
        await change()
        with anyio.fail_after(EARLY):
            await answered.wait()
    return answer[0]


def opener(srv: Server, key: str) -> Callable[[], Awaitable[None]]:
    async def change() -> None:
        srv.gates.open(key)

    return change


@pytest.mark.parametrize("mode", ["async", "thread"])
@pytest.mark.parametrize("how", ["query", "prefer"])
async def test_long_poll_returns_when_progress_changes(srv: Server, how: str) -> None:
    job_id = await srv.submit_ok("steps", {"key": "lp", "total": 3})
    snapshot = await srv.wait_until(
        job_id, lambda r: (r.json().get("progress") or {}).get("current") == 1
    )
    assert snapshot.json()["progress"]["current"] == 1

    request: dict[str, Any] = (
        {"params": {"wait": LONG_WAIT}}
        if how == "query"
        else {"headers": {"Prefer": f"wait={LONG_WAIT}"}}
    )
    answer = await long_poll_after_change(srv, job_id, opener(srv, "lp-1"), **request)

    assert answer.status_code == 200
    assert answer.json()["status"] == "processing"
    assert answer.json()["progress"]["current"] == 2
    assert answer.headers["Preference-Applied"] == f"wait={LONG_WAIT}"
    assert int(answer.headers["Retry-After-Ms"]) >= 0


@pytest.mark.parametrize("dialect", ["status-code"])
async def test_status_code_dialect_long_poll(srv: Server) -> None:
    job_id = await srv.submit_ok("steps", {"key": "sclp", "total": 2})
    await srv.wait_until(job_id, lambda r: (r.json().get("progress") or {}).get("current") == 1)
    answer = await long_poll_after_change(
        srv, job_id, opener(srv, "sclp-1"), params={"wait": LONG_WAIT}
    )
    assert answer.status_code == 202
    assert answer.json()["state"] == "inFlight"
    assert answer.json()["progress"]["current"] == 2
    answer = await long_poll_after_change(
        srv, job_id, opener(srv, "sclp-2"), params={"wait": LONG_WAIT}
    )
    assert answer.status_code == 200
    assert answer.json() == {"key": "sclp", "steps": 2}


async def test_long_poll_returns_when_the_job_completes(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "lc"})
    await srv.gates.wait_started("lc")
    answer = await long_poll_after_change(
        srv, job_id, opener(srv, "lc"), params={"wait": LONG_WAIT}
    )
    assert answer.json()["status"] in ("processing", "completed")
    assert answer.json()["status"] == "completed" or answer.json()["progress"] is not None


async def test_long_poll_returns_when_the_job_is_cancelled(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "lx"})
    await srv.gates.wait_started("lx")

    async def cancel() -> None:
        response = await srv.delete(f"/jobs/{job_id}")
        assert response.status_code == 200

    answer = await long_poll_after_change(srv, job_id, cancel, params={"wait": LONG_WAIT})
    assert answer.json()["status"] == "cancelled"


async def test_long_poll_on_a_terminal_job_answers_at_once(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {"x": 1})
    await srv.wait_terminal(job_id)
    with anyio.fail_after(EARLY):
        response = await srv.get(f"/jobs/{job_id}", params={"wait": LONG_WAIT})
    assert response.status_code == 303
    assert response.headers["Preference-Applied"] == f"wait={LONG_WAIT}"


async def test_long_poll_is_capped_by_max_wait(make_server: ServerFactory) -> None:
    srv = await make_server(max_wait=0.05)
    job_id = await srv.submit_ok("gate", {"key": "cap"})
    await srv.gates.wait_started("cap")
    with anyio.fail_after(EARLY):
        response = await srv.get(f"/jobs/{job_id}", params={"wait": "3000"})
    assert response.status_code == 200
    assert response.json()["status"] == "processing"
    assert response.headers["Preference-Applied"] == "wait=0.05"
    with anyio.fail_after(EARLY):
        preferred = await srv.get(f"/jobs/{job_id}", headers={"Prefer": "wait=3000"})
    assert preferred.status_code == 200
    assert preferred.headers["Preference-Applied"] == "wait=0.05"


async def test_the_query_parameter_wins_over_the_prefer_header(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "qw"})
    await srv.gates.wait_started("qw")
    with anyio.fail_after(EARLY):
        response = await srv.get(
            f"/jobs/{job_id}", params={"wait": "0.05"}, headers={"Prefer": f"wait={LONG_WAIT}"}
        )
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "wait=0.05"


async def test_a_held_submit_that_is_not_done_says_it_was_held(make_server: ServerFactory) -> None:
    srv = await make_server(max_wait=0.05)
    response = await srv.submit("gate", {"key": "held"}, headers={"Prefer": "wait=3000"})
    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "wait=0.05"
    plain = await srv.submit("gate", {"key": "unheld"})
    assert plain.status_code == 202
    assert "Preference-Applied" not in plain.headers


async def test_no_wait_no_preference_applied(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "nw"})
    response = await srv.get(f"/jobs/{job_id}")
    assert "Preference-Applied" not in response.headers


async def test_expiry_during_a_long_poll_answers_410(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "lexp"})
    await srv.gates.wait_started("lexp")

    async def expire() -> None:
        assert srv.admin.expire(job_id) is True

    answer = await long_poll_after_change(srv, job_id, expire, params={"wait": LONG_WAIT})
    assert answer.status_code == 410
    assert error_code(answer) == "expired"


@pytest.mark.parametrize("wait", ["-1", "-0.5", "abc", "", "1s", "nan"])
async def test_bad_wait_is_400_invalid_wait(srv: Server, wait: str) -> None:
    job_id = await srv.submit_ok("echo", {})
    response = await srv.get(f"/jobs/{job_id}", params={"wait": wait})
    assert response.status_code == 400
    assert error_code(response) == "invalid_wait"
    await assert_healthy(srv)


async def test_wait_zero_answers_immediately(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "w0"})
    with anyio.fail_after(EARLY):
        response = await srv.get(f"/jobs/{job_id}", params={"wait": "0"})
    assert response.status_code == 200
