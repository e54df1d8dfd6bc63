"""The caller's own httpx client: used as given, except that its credentials never leave the
submission's origin and redirects are never followed for the checker."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from asyncreply_client.contract import ContractReport, Outcome, acheck, check

from .conftest import FAST

SEEN: list[httpx.Request] = []


def monitor(
    status_answer: Callable[[httpx.Request], httpx.Response], *, location: str = "/jobs/j1"
) -> Callable[[httpx.Request], httpx.Response]:
    """A server whose submissions are accepted (monitor at ``location``) and whose other
    URLs answer ``status_answer``; it records every request in ``SEEN``."""

    def serve(request: httpx.Request) -> httpx.Response:
        SEEN.append(request)
        if request.method == "POST":
            return httpx.Response(
                202,
                json={"jobId": "j1", "status": "pending"},
                headers={"Location": location, "Retry-After": "0"},
            )
        return status_answer(request)

    return serve


def elsewhere(request: httpx.Request) -> httpx.Response:
    """A monitor on another origin whose 303 sends back to the API's origin."""
    if request.url.host == "ops.other.test" and request.url.path == "/ops/j1":
        return httpx.Response(
            303,
            json={"jobId": "j1", "status": "completed"},
            headers={"Location": "https://api.test/results/j1"},
        )
    if request.url.path == "/results/j1":
        return httpx.Response(200, json={"answer": 42})
    return httpx.Response(404, json={"error": {"code": "not_found"}})


handler = monitor(elsewhere, location="https://ops.other.test/ops/j1")


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


async def run_check(
    flavor: str, serve: Callable[[httpx.Request], httpx.Response]
) -> ContractReport:
    SEEN.clear()
    transport = httpx.MockTransport(serve)
    if flavor == "async":
        async with httpx.AsyncClient(transport=transport) as client:
            return await acheck("https://api.test/jobs", json={}, http_client=client, **FAST)
    with httpx.Client(transport=transport) as sync_client:
        return check("https://api.test/jobs", json={}, http_client=sync_client, **FAST)


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", ["sync", "async"])
async def test_transient_answers_are_observed_never_retried_behind_the_checkers_back(
    flavor: str,
) -> None:
    report = await run_check(flavor, monitor(lambda r: httpx.Response(503)))
    polls = [r for r in SEEN if r.url.path == "/jobs/j1"]
    assert len(polls) == 4  # the checker's own 4 polls, each one attempt
    assert report["terminal_state"].summary == "the status monitor kept answering HTTP 503"


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def undecodable(request: httpx.Request) -> httpx.Response:
    garbage = httpx.ByteStream(b"not gzip")
    return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=garbage)


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.parametrize(
    ("status", "note"),
    [(refused, "no answer: ConnectError: refused"), (undecodable, "no answer: DecodingError")],
)
async def test_a_request_without_an_answer_is_evidence_not_a_crash(
    flavor: str, status: Callable[[httpx.Request], httpx.Response], note: str
) -> None:
    report = await run_check(flavor, monitor(status))
    result = report["submit"]
    assert result.outcome is Outcome.FAIL
    assert result.summary == "the status monitor https://api.test/jobs/j1 cannot be reached"
    assert result.evidence is not None and result.evidence.note is not None
    assert result.evidence.note.startswith(note)
    assert (result.evidence.method, result.evidence.url) == ("GET", "https://api.test/jobs/j1")
