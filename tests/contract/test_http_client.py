"""The caller's own httpx client: used as given, except that its credentials never leave the
submission's origin and redirects are never followed for the checker."""

from __future__ import annotations

import httpx
import pytest

from asyncreply_client.contract import Outcome, acheck, check

from .conftest import FAST

SEEN: list[httpx.Request] = []


def handler(request: httpx.Request) -> httpx.Response:
    SEEN.append(request)
    if request.method == "POST":
        return httpx.Response(
            202,
            json={"jobId": "j1", "status": "pending"},
            headers={"Location": "https://ops.other.test/ops/j1", "Retry-After": "0"},
        )
    if request.url.host == "ops.other.test" and request.url.path == "/ops/j1":
        return httpx.Response(
            303,
            json={"jobId": "j1", "status": "completed"},
            headers={"Location": "https://api.test/results/j1"},
        )
    if request.url.path == "/results/j1":
        return httpx.Response(200, json={"answer": 42})
    return httpx.Response(404, json={"error": {"code": "not_found"}})


def assert_credentials_stayed_home() -> None:
    home = [r for r in SEEN if r.url.host == "api.test"]
    away = [r for r in SEEN if r.url.host == "ops.other.test"]
    assert home and away
    for request in home:
        assert request.headers["Authorization"] == "Basic dTpw"  # the client's auth
        assert request.headers["X-Tenant"] == "t1"  # the client's default header
    for request in away:
        assert "Authorization" not in request.headers
        assert "X-Tenant" not in request.headers


def test_sync_client_is_used_and_credentials_stay_on_their_origin() -> None:
    SEEN.clear()
    with httpx.Client(
        transport=httpx.MockTransport(handler),
        auth=("u", "p"),
        headers={"X-Tenant": "t1"},
        follow_redirects=True,
    ) as client:
        report = check("https://api.test/jobs", json={}, http_client=client, timeout=5, **FAST)
        assert not client.is_closed  # the caller's client is not closed

    assert report["terminal_state"].outcome is Outcome.PASS
    # The 303 was observed, not followed by httpx, and its target fetched by the checker.
    assert report["result"].summary.startswith("303 See Other to https://api.test/results/j1")
    assert_credentials_stayed_home()


@pytest.mark.anyio
async def test_async_client_is_used_and_credentials_stay_on_their_origin() -> None:
    SEEN.clear()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler),
        auth=("u", "p"),
        headers={"X-Tenant": "t1"},
        follow_redirects=True,
    ) as client:
        report = await acheck(
            "https://api.test/jobs", json={}, http_client=client, timeout=5, **FAST
        )

    assert report["terminal_state"].outcome is Outcome.PASS
    assert report["result"].outcome is Outcome.PASS
    assert_credentials_stayed_home()
