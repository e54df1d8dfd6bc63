"""GET /jobs: the caller's jobs, newest first, filtered and paginated with a cursor."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Server, ServerFactory, assert_healthy, error_code

pytestmark = pytest.mark.anyio


async def list_all(srv: Server, **params: Any) -> list[dict[str, Any]]:
    """Follow ``nextCursor`` to the end (bounded) and return every job."""
    jobs: list[dict[str, Any]] = []
    query: dict[str, Any] = dict(params)
    for _ in range(50):
        response = await srv.get("/jobs", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) >= {"jobs", "nextCursor"}
        jobs.extend(page["jobs"])
        if page["nextCursor"] is None:
            return jobs
        query = {**params, "cursor": page["nextCursor"]}
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("mode", ["async", "thread"])
@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_listing_is_newest_first_and_paginated(srv: Server) -> None:
    created = [await srv.submit_ok("echo", {"n": n}) for n in range(7)]
    for job_id in created:
        await srv.wait_terminal(job_id)

    first = await srv.get("/jobs", params={"limit": 3})
    assert first.status_code == 200
    page = first.json()
    assert [job["jobId"] for job in page["jobs"]] == created[::-1][:3]
    assert isinstance(page["nextCursor"], str)
    job = page["jobs"][0]
    assert job["status"] == "completed"
    assert job["statusUrl"] == f"/jobs/{job['jobId']}"

    everything = await list_all(srv, limit=3)
    assert [job["jobId"] for job in everything] == created[::-1]


async def test_cursor_is_stable_while_jobs_are_added(srv: Server) -> None:
    older = [await srv.submit_ok("echo", {"n": n}) for n in range(4)]
    first = (await srv.get("/jobs", params={"limit": 2})).json()
    assert [job["jobId"] for job in first["jobs"]] == older[::-1][:2]
    newer = await srv.submit_ok("echo", {"n": "new"})
    second = (await srv.get("/jobs", params={"limit": 2, "cursor": first["nextCursor"]})).json()
    assert [job["jobId"] for job in second["jobs"]] == older[::-1][2:]
    assert second["nextCursor"] is None
    assert (await list_all(srv))[0]["jobId"] == newer


async def test_default_limit_is_20(srv: Server) -> None:
    for n in range(22):
        await srv.submit_ok("echo", {"n": n})
    page = (await srv.get("/jobs")).json()
    assert len(page["jobs"]) == 20
    assert page["nextCursor"] is not None
    assert len(await list_all(srv)) == 22


async def test_listing_filters_by_status(srv: Server) -> None:
    done = await srv.submit_ok("echo", {})
    failed = await srv.submit_ok("fail", {"code": "x", "message": "m", "retryable": False})
    running = await srv.submit_ok("gate", {"key": "list-running"})
    await srv.wait_terminal(done)
    await srv.wait_terminal(failed)
    await srv.gates.wait_started("list-running")

    def ids(jobs: list[dict[str, Any]]) -> list[str]:
        return [job["jobId"] for job in jobs]

    assert ids(await list_all(srv, status="completed")) == [done]
    assert ids(await list_all(srv, status="failed")) == [failed]
    assert ids(await list_all(srv, status="processing")) == [running]
    assert await list_all(srv, status="cancelled") == []
    assert all(job["status"] == "failed" for job in await list_all(srv, status="failed", limit=1))


async def test_listing_shows_only_the_callers_jobs(srv: Server) -> None:
    mine = await srv.submit_ok("echo", {}, user="alice")
    await srv.submit_ok("echo", {}, user="bob")
    assert [job["jobId"] for job in await list_all(srv)] == [mine]
    srv.default_user = "nobody-yet"
    assert await list_all(srv) == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "-5"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"limit": "2.5"}, "invalid_limit"),
        ({"limit": ""}, "invalid_limit"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "!!!"}, "invalid_cursor"),
        ({"cursor": ""}, "invalid_cursor"),
        ({"status": "exploded"}, "invalid_status"),
        ({"status": "inFlight"}, "invalid_status"),
    ],
)
async def test_bad_listing_parameters_are_400(
    srv: Server, params: dict[str, str], code: str
) -> None:
    await srv.submit_ok("echo", {})
    response = await srv.get("/jobs", params=params)
    assert response.status_code == 400
    assert error_code(response) == code
    await assert_healthy(srv)


async def test_listing_never_inlines_results(make_server: ServerFactory) -> None:
    srv = await make_server(completion_style="inline")
    job_id = await srv.submit_ok("echo", {"x": 1})
    await srv.wait_terminal(job_id)
    [job] = (await srv.get("/jobs")).json()["jobs"]
    assert job["status"] == "completed"
    assert "result" not in job
    assert job["resultUrl"] == f"/jobs/{job_id}/result"


@pytest.mark.parametrize("dialect", ["status-code"])
async def test_status_code_listing_documents_carry_state(srv: Server) -> None:
    running = await srv.submit_ok("gate", {"key": "ls"})
    await srv.gates.wait_started("ls")
    [job] = (await srv.get("/jobs")).json()["jobs"]
    assert job["jobId"] == running
    assert job["status"] == "processing"
    assert job["state"] == "inFlight"
    srv.gates.open("ls")


async def test_limit_bounds_are_inclusive(srv: Server) -> None:
    await srv.submit_ok("echo", {})
    for limit in ("1", "100"):
        response = await srv.get("/jobs", params={"limit": limit})
        assert response.status_code == 200
        assert len(response.json()["jobs"]) == 1
