"""Browser event streams: a status answer's ``eventsUrl`` works without ``Authorization``
(issue 12), for that job's events only, and its token never reaches a log.

No browser is installed on the test machines, so the browser is a client that sends no
``Authorization`` header at all, exactly as ``EventSource`` does.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web

from reference_server import ServerConfig, create_app
from reference_server.stream_tokens import RedactingAccessLogger, StreamTokens, redact

from .conftest import FAST_DEFAULTS, Server, ServerFactory

pytestmark = pytest.mark.anyio

USERS = {"t-alice": "alice", "t-bob": "bob"}


def token_of(events_url: str) -> str:
    (token,) = parse_qs(urlsplit(events_url).query)["access_token"]
    return token


async def users_server(make_server: ServerFactory) -> Server:
    srv = await make_server(tokens=USERS)
    srv.default_user = "t-alice"
    return srv


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_the_events_url_streams_without_authorization(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    srv = await users_server(make_server)
    submitted = await srv.submit("echo", {"n": 1})
    assert submitted.status_code == 202
    job_id = submitted.json()["jobId"]
    accepted_url = submitted.json()["eventsUrl"]
    assert accepted_url.startswith(f"/jobs/{job_id}/events?access_token=")
    status = await srv.wait_terminal(job_id)
    events_url = status.json()["eventsUrl"]
    assert events_url.startswith(f"/jobs/{job_id}/events?access_token=")
    for url in (accepted_url, events_url):
        stream = await srv.get(url, user="")  # no Authorization header, like EventSource
        assert stream.status_code == 200, stream.text
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "event: complete" in stream.text
    # Nothing the server logged holds a token (the test's own httpx client logs its URLs).
    server_log = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert caplog.records  # the capture works (it holds the client's records)
    assert token_of(events_url) not in server_log
    assert token_of(accepted_url) not in server_log


async def test_the_token_grants_nothing_else(make_server: ServerFactory) -> None:
    srv = await users_server(make_server)
    mine = (await srv.submit("echo", {"n": 1})).json()
    other = (await srv.submit("echo", {"n": 2})).json()
    bobs = (await srv.submit("echo", {"n": 3}, user="t-bob")).json()
    token = token_of(mine["eventsUrl"])
    job = mine["jobId"]
    forbidden = [
        ("GET", f"/jobs/{job}"),
        ("GET", f"/jobs/{job}/result"),
        ("DELETE", f"/jobs/{job}"),
        ("POST", f"/jobs/{job}/retry"),
        ("POST", f"/jobs/{job}/events"),
        ("GET", "/jobs"),
        ("GET", "/webhooks/deliveries"),
        ("GET", f"/jobs/{other['jobId']}/events"),
        ("GET", f"/jobs/{bobs['jobId']}/events"),
    ]
    for method, path in forbidden:
        answer = await srv.request(method, path, params={"access_token": token}, user="")
        assert answer.status_code in (401, 405), (method, path, answer.status_code)
        assert answer.status_code != 200
    events = f"/jobs/{job}/events"
    # Tampered, doubled, or beside a bearer token that does not hold: refused.
    user_part = token.split(".")[2]
    tampered = token.replace(user_part, "Ym9i")  # base64url("bob")
    assert (await srv.get(events, params={"access_token": tampered}, user="")).status_code == 401
    doubled = [("access_token", token), ("access_token", token)]
    assert (await srv.get(events, params=doubled, user="")).status_code == 401
    wrong_header = await srv.get(events, params={"access_token": token}, user="t-nobody")
    assert wrong_header.status_code == 401
    # Bob's own token for his job works for him only.
    bobs_token = token_of(bobs["eventsUrl"])
    answer = await srv.get(
        f"/jobs/{bobs['jobId']}/events", params={"access_token": bobs_token}, user=""
    )
    assert answer.status_code == 200


async def test_without_configured_users_urls_carry_no_token(srv: Server) -> None:
    submitted = await srv.submit("echo", {})
    job_id = submitted.json()["jobId"]
    assert submitted.json()["eventsUrl"] == f"/jobs/{job_id}/events"
    assert (await srv.wait_terminal(job_id)).json()["eventsUrl"] == f"/jobs/{job_id}/events"


def test_tokens_expire_and_are_job_scoped() -> None:
    now = [1_000.0]
    tokens = StreamTokens(ttl=60, clock=lambda: now[0], secret=b"s" * 32)
    token = tokens.issue("alice", "job1")
    assert tokens.user_for(token, "job1") == "alice"
    assert tokens.user_for(token, "job2") is None
    now[0] += 59
    assert tokens.user_for(token, "job1") == "alice"
    now[0] += 2
    assert tokens.user_for(token, "job1") is None
    other_process = StreamTokens(ttl=60, clock=lambda: 1_000.0, secret=b"t" * 32)
    assert other_process.user_for(token, "job1") is None
    for junk in ("", "v1", "v2.1.YQ.x", token + "x", "v1.99999999999.YQ." + "A" * 43):
        assert tokens.user_for(junk, "job1") is None


async def test_an_enabled_access_log_redacts_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.access")
    config = ServerConfig(**FAST_DEFAULTS, tokens=USERS)
    runner = web.AppRunner(
        create_app(config),
        access_log=logging.getLogger("test.access"),
        access_log_class=RedactingAccessLogger,
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            auth = {"Authorization": "Bearer t-alice"}
            job = (
                await client.post("/jobs", json={"type": "echo", "input": {}}, headers=auth)
            ).json()
            token = token_of(job["eventsUrl"])
            assert (await client.get(job["eventsUrl"])).status_code == 200
            encoded = f"/jobs/{job['jobId']}/events?access%5Ftoken={token}"
            assert (await client.get(encoded)).status_code == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access"]
    assert sum("access_token=REDACTED" in line for line in lines) == 2, lines
    assert token not in caplog.text


def test_redact_replaces_every_token() -> None:
    assert (
        redact("a?access_token=x.y&b=1&access_token=z")
        == "a?access_token=REDACTED&b=1&access_token=REDACTED"
    )
