"""Bad input of every kind gets its documented error, and the server stays healthy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from .conftest import Server, ServerFactory, assert_healthy, error_code

pytestmark = pytest.mark.anyio


@dataclass
class Bad:
    """One bad request and its documented answer."""

    method: str
    path: str
    status: int
    code: str | None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    user: str | None = None


JSON = {"Content-Type": "application/json"}
ECHO = json.dumps({"type": "echo", "input": {}}).encode()

CASES: dict[str, Bad] = {
    "malformed-json": Bad("POST", "/jobs", 400, "invalid_json", b'{"type": ', JSON),
    "json-null": Bad("POST", "/jobs", 400, None, b"null", JSON),
    "truncated-utf8": Bad("POST", "/jobs", 400, "invalid_json", b'{"type": "\xe2\x82"}', JSON),
    "type-is-list": Bad("POST", "/jobs", 400, None, b'{"type": [], "input": {}}', JSON),
    "input-not-object": Bad(
        "POST", "/jobs", 400, "invalid_input", b'{"type": "sleep", "input": 5}', JSON
    ),
    "wrong-field-type": Bad(
        "POST", "/jobs", 400, "invalid_input", b'{"type": "sleep", "input": {"steps": "x"}}', JSON
    ),
    "unknown-type": Bad("POST", "/jobs", 400, "unknown_type", b'{"type": "x", "input": {}}', JSON),
    "not-json": Bad(
        "POST", "/jobs", 415, "unsupported_media_type", ECHO, {"Content-Type": "text/csv"}
    ),
    "oversized": Bad(
        "POST",
        "/jobs",
        413,
        "payload_too_large",
        b'{"type": "echo", "input": {"x": "' + b"y" * 9000 + b'"}}',
        JSON,
    ),
    "unknown-id": Bad("GET", "/jobs/000000000000", 404, "not_found"),
    "unknown-id-result": Bad("GET", "/jobs/000000000000/result", 404, "not_found"),
    "odd-id": Bad("GET", "/jobs/%2e%2e%2fetc", 404, "not_found"),
    "long-id": Bad("GET", "/jobs/" + "a" * 3000, 404, "not_found"),
    "negative-wait": Bad("GET", "/jobs/{job}", 400, "invalid_wait", params={"wait": "-3"}),
    "text-wait": Bad("GET", "/jobs/{job}", 400, "invalid_wait", params={"wait": "soon"}),
    "wrong-owner": Bad("GET", "/jobs/{job}", 404, "not_found", user="mallory"),
    "wrong-owner-delete": Bad("DELETE", "/jobs/{job}", 404, "not_found", user="mallory"),
    "bad-cursor": Bad("GET", "/jobs", 400, None, params={"cursor": "%%%garbage"}),
    "bad-limit": Bad("GET", "/jobs", 400, None, params={"limit": "1000"}),
    "unknown-route": Bad("GET", "/no/such/route", 404, "not_found"),
    "wrong-method": Bad("PUT", "/jobs", 405, "method_not_allowed", ECHO, JSON),
    "bad-deliveries-status": Bad("GET", "/webhooks/deliveries", 400, None, params={"status": "x"}),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_request_gets_its_documented_error(make_server: ServerFactory, name: str) -> None:
    srv = await make_server(max_body_bytes=4096)
    job_id = await srv.submit_ok("gate", {"key": "bad"})
    case = CASES[name]
    kwargs: dict[str, Any] = {"params": case.params, "headers": case.headers}
    if case.body is not None:
        kwargs["content"] = case.body
    response = await srv.request(
        case.method, case.path.replace("{job}", job_id), user=case.user, **kwargs
    )

    assert response.status_code == case.status, response.text
    code = error_code(response)
    if case.code is not None:
        assert code == case.code
    if case.status == 405:
        assert "POST" in response.headers["Allow"]
    # The server is still healthy, and the job it held is untouched.
    await assert_healthy(srv)
    assert (await srv.get(f"/jobs/{job_id}")).json()["status"] in ("pending", "processing")


async def test_huge_wait_is_capped_not_an_error(make_server: ServerFactory) -> None:
    srv = await make_server(max_wait=0.05)
    job_id = await srv.submit_ok("gate", {"key": "huge"})
    for wait in ("1e9", "99999999999999999999"):
        with anyio.fail_after(10):
            response = await srv.get(f"/jobs/{job_id}", params={"wait": wait})
        assert response.status_code == 200
    await assert_healthy(srv)


async def test_unauthorized_token_when_tokens_are_configured(make_server: ServerFactory) -> None:
    srv = await make_server(tokens={"good": "alice"})
    for user in ("bad", "Alice", ""):
        response = await srv.get("/jobs", user=user)
        assert response.status_code == 401, user
        assert error_code(response) == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="asyncreply"'
    health = await srv.get("/health", user="")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    srv.default_user = "good"
    await assert_healthy(srv)


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Token alice", "alice"])
async def test_malformed_authorization_is_always_401(srv: Server, header: str) -> None:
    response = await srv.request("GET", "/jobs", user="", headers={"Authorization": header})
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    await assert_healthy(srv)


async def test_no_token_is_the_anonymous_user(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {}, user="")
    assert (await srv.wait_terminal(job_id, user="")).status_code == 303
    assert (await srv.get(f"/jobs/{job_id}", user="alice")).status_code == 404


async def test_the_token_anonymous_is_reserved_in_dev_mode(srv: Server) -> None:
    # Issue 19 item 5: "Bearer anonymous" was the same user as no token at all.
    job_id = await srv.submit_ok("echo", {}, user="")
    for method, path in [("GET", f"/jobs/{job_id}"), ("GET", "/jobs"), ("POST", "/jobs")]:
        response = await srv.request(
            method, path, user="anonymous", json={"type": "echo", "input": {}}
        )
        assert response.status_code == 401, (method, path)
        assert error_code(response) == "unauthorized"
        assert "reserved" in response.json()["error"]["message"]
    assert [j["jobId"] for j in (await srv.get("/jobs", user="")).json()["jobs"]] == [job_id]


async def test_a_configured_token_may_name_any_user(make_server: ServerFactory) -> None:
    srv = await make_server(tokens={"anonymous": "carol"})
    job_id = await srv.submit_ok("echo", {}, user="anonymous")
    assert (await srv.get(f"/jobs/{job_id}", user="anonymous")).status_code in (200, 303)
    assert (await srv.get(f"/jobs/{job_id}", user="")).status_code == 401


async def test_many_concurrent_requests(srv: Server) -> None:
    results: list[int] = []

    async def one(n: int) -> None:
        response = await srv.submit("echo", {"n": n})
        results.append(response.status_code)

    async with anyio.create_task_group() as tg:
        for n in range(40):
            tg.start_soon(one, n)
    assert results == [202] * 40
    await assert_healthy(srv)
