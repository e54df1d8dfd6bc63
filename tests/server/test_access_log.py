"""The reference server's access log: one line per request on ``asyncreply.server`` with
method, path, status, user, job id and duration; never a token or a query secret."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reference_server import ServerConfig, serve
from reference_server.access_log import access_log

pytestmark = pytest.mark.anyio

LINE = re.compile(
    r"^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) user=(?P<user>\S+) "
    r"job=(?P<job>\S+) (?P<ms>\d+\.\d)ms$"
)


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    lines = []
    for record in caplog.records:
        if record.name == "asyncreply.server":
            assert record.levelno == logging.INFO
            match = LINE.match(record.getMessage())
            assert match is not None, record.getMessage()
            lines.append(match.groupdict())
    return lines


async def test_one_line_per_request_with_user_job_and_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="asyncreply.server")
    config = ServerConfig(workers=1, tokens={"tok-SECRET-alice": "alice"})
    async with (
        serve(config) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        auth = {"Authorization": "Bearer tok-SECRET-alice"}
        created = await http.post(
            "/jobs?api_key=SECRET-QUERY",
            json={"type": "echo", "input": {"secret": "SECRET-BODY"}},
            headers=auth,
        )
        job_id = created.json()["jobId"]
        polled = await http.get(f"/jobs/{job_id}?sig=SECRET-SIG", headers=auth)
        await http.get("/jobs/nope", headers=auth)
        await http.get("/jobs", headers={"Authorization": "Bearer wrong-SECRET"})
        await http.get("/health")
    lines = _lines(caplog)
    assert [(x["method"], x["path"], x["status"], x["user"], x["job"]) for x in lines] == [
        ("POST", "/jobs", "202", "alice", job_id),
        ("GET", f"/jobs/{job_id}", str(polled.status_code), "alice", job_id),
        ("GET", "/jobs/nope", "404", "alice", "nope"),
        ("GET", "/jobs", "401", "-", "-"),
        ("GET", "/health", "200", "-", "-"),
    ]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET" not in text


async def test_a_token_used_as_the_user_name_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without configured tokens the server takes the bearer token as the user's name."""
    caplog.set_level(logging.INFO, logger="asyncreply.server")
    async with serve(ServerConfig(workers=1)) as server, httpx.AsyncClient() as http:
        for token in ("tok-SECRET-1", "tok-SECRET-1", "tok-SECRET-2"):
            await http.get(f"{server.base_url}/jobs", headers={"Authorization": f"Bearer {token}"})
        await http.get(f"{server.base_url}/jobs")
    users = [line["user"] for line in _lines(caplog)]
    assert users[0] == users[1] != users[2] and users[3] == "anonymous"
    assert all(u.startswith("token:") for u in users[:3])
    assert "SECRET" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_silent_unless_enabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="asyncreply.server")
    async with serve(ServerConfig(workers=1)) as server, httpx.AsyncClient() as http:
        assert (await http.get(f"{server.base_url}/health")).status_code == 200
    assert [r for r in caplog.records if r.name == "asyncreply.server"] == []


@pytest.mark.parametrize("hash_users", [True, False])
async def test_user_names_that_are_credentials_are_hashed(
    hash_users: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """However the user was found (a stream token in the query, say), a server whose user
    names are its bearer tokens logs them hashed."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    names = {"/a": "tok-SECRET-9", "/b": "anonymous", "/c": None}
    app = web.Application(middlewares=[access_log(lambda r: names[r.path], hash_users=hash_users)])
    for path in names:
        app.router.add_get(path, ok)
    caplog.set_level(logging.INFO, logger="asyncreply.server")
    async with TestServer(app, host="127.0.0.1") as server, httpx.AsyncClient() as http:
        for path in names:
            await http.get(str(server.make_url(path)))
    users = [line["user"] for line in _lines(caplog)]
    assert users[1:] == ["anonymous", "-"]
    if hash_users:
        assert users[0].startswith("token:") and "SECRET" not in users[0]
    else:
        assert users[0] == "tok-SECRET-9"
