"""Base URL paths and cookies (issue 10): user-given URLs join the base URL exactly as httpx
joins a ``base_url``; the httpx client's cookie jar, affinity cookies set during the
operation included, goes with every request to a trusted origin and never elsewhere.
Both clients, respx for shapes and a loopback server that pins jobs with a cookie."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from aiohttp import web

from asyncreply_client import FixedInterval
from asyncreply_client._security import RequestFactory
from asyncreply_client.testing import FakeClock
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio

API = "https://api.example.test"
OTHER = "https://status.other.test"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def options(**extra: Any) -> dict[str, Any]:
    return {"clock": FakeClock(), "polling": FixedInterval(1.0), **extra}


def accepted(location: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        202, headers={"Location": location, **headers}, json={"jobId": "1", "status": "pending"}
    )


def done(**headers: str) -> httpx.Response:
    doc = {"jobId": "1", "status": "completed", "result": {"ok": True}}
    return httpx.Response(200, headers=headers, json=doc)


# --------------------------------------------------------------------------------------------
# Base URL path


BASES = [
    "https://api.example.test/api/v1",
    "https://api.example.test/api/v1/",
    "https://api.example.test",
    "http://127.0.0.1:8080/prefix",
]
REFS = [
    "/jobs",
    "jobs",
    "jobs/",
    "/jobs?x=1",
    "jobs/a%20b",
    "../jobs",
    "/a/../b",
    "",
    "//other.test/path",
    "https://other.test/x",
    "http://API.Example.test:80/x",
]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("ref", REFS)
def test_user_urls_join_the_base_url_as_httpx_does(base: str, ref: str) -> None:
    factory = RequestFactory.create(base, timeout=httpx.Timeout(5.0))
    with httpx.Client(base_url=base) as http:
        expected = str(http.build_request("POST", ref).url)
    assert factory.resolve(ref) == expected
    assert str(factory.build("POST", ref).url) == expected


@BOTH
@pytest.mark.parametrize("base", [f"{API}/api/v1", f"{API}/api/v1/"])
async def test_submit_keeps_the_base_url_path(
    flavor: str, base: str, router: respx.MockRouter
) -> None:
    submit = router.post(f"{API}/api/v1/jobs").mock(
        return_value=accepted("/api/v1/jobs/1", **{"Retry-After": "0"})
    )
    router.get(f"{API}/api/v1/jobs/1").mock(return_value=done())
    async with open_client(flavor, base, **options()) as (client, call):
        assert await call(client.run, "/jobs", json={}, timeout=10) == {"ok": True}
        attached = client.operation("jobs/1")
        assert attached.status_url == f"{API}/api/v1/jobs/1"
    assert submit.call_count == 1


# --------------------------------------------------------------------------------------------
# Cookies, respx


def _cookie(request: httpx.Request) -> str | None:
    value: str | None = request.headers.get("cookie")
    return value


@BOTH
async def test_the_users_cookie_jar_goes_to_trusted_origins_only(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted(f"{OTHER}/ops/1"))
    status = router.get(f"{OTHER}/ops/1").mock(return_value=done())
    http: Any = (httpx.AsyncClient if flavor == "async" else httpx.Client)(
        cookies={"session": "s1"}
    )
    try:
        async with open_client(flavor, API, http_client=http, **options()) as (client, call):
            await call(client.run, "/jobs", json={}, timeout=10)
    finally:
        await _close(http)
    assert _cookie(router.calls[0].request) == "session=s1"
    assert status.call_count == 1
    assert _cookie(status.calls[0].request) is None  # another origin: no cookie


@BOTH
async def test_a_trusted_origin_gets_its_own_cookies(flavor: str, router: respx.MockRouter) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted(f"{OTHER}/ops/1"))
    status = router.get(f"{OTHER}/ops/1").mock(
        side_effect=[
            httpx.Response(
                200,
                headers={"Set-Cookie": "lb=node7; Path=/ops"},
                json={"jobId": "1", "status": "running"},
            ),
            done(),
        ]
    )
    async with open_client(flavor, API, trusted_origins=[OTHER], **options()) as (client, call):
        await call(client.run, "/jobs", json={}, timeout=10)
    first, second = (c.request for c in status.calls)
    assert _cookie(first) is None
    assert _cookie(second) == "lb=node7"


@BOTH
async def test_an_affinity_cookie_set_by_the_submit_goes_with_every_poll(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(
        return_value=accepted("/jobs/1", **{"Set-Cookie": "affinity=b1; Path=/; HttpOnly"})
    )
    running = httpx.Response(200, json={"jobId": "1", "status": "running"})
    status = router.get(f"{API}/jobs/1").mock(side_effect=[running, running, done()])
    async with open_client(flavor, API, **options()) as (client, call):
        await call(client.run, "/jobs", json={}, timeout=10)
    assert [_cookie(c.request) for c in status.calls] == ["affinity=b1"] * 3


@BOTH
async def test_each_retry_carries_the_cookies_set_by_the_failed_attempt(
    flavor: str, router: respx.MockRouter
) -> None:
    # A load balancer answers 503 and moves the job's affinity to another backend: the retry
    # is built afresh, with the jar as it is now.
    router.post(f"{API}/jobs").mock(
        return_value=accepted("/jobs/1", **{"Set-Cookie": "affinity=b1; Path=/"})
    )
    status = router.get(f"{API}/jobs/1").mock(
        side_effect=[
            httpx.Response(503, headers={"Set-Cookie": "affinity=b2; Path=/", "Retry-After": "0"}),
            done(),
        ]
    )
    async with open_client(flavor, API, **options()) as (client, call):
        await call(client.run, "/jobs", json={}, timeout=10)
    assert [_cookie(c.request) for c in status.calls] == ["affinity=b1", "affinity=b2"]


@BOTH
async def test_a_cookie_header_of_the_users_own_wins_over_the_jar(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(
        return_value=accepted("/jobs/1", **{"Set-Cookie": "affinity=b1; Path=/"})
    )
    router.get(f"{API}/jobs/1").mock(return_value=done())
    opts = options(headers={"Cookie": "mine=1"})
    async with open_client(flavor, API, **opts) as (client, call):
        await call(client.run, "/jobs", json={}, timeout=10)
    assert [_cookie(c.request) for c in router.calls] == ["mine=1", "mine=1"]


async def _close(http: httpx.Client | httpx.AsyncClient) -> None:
    if isinstance(http, httpx.AsyncClient):
        await http.aclose()
    else:
        http.close()  # noqa: ASYNC212 (a sync client: nothing to await)


# --------------------------------------------------------------------------------------------
# A server that pins each job to a backend with a cookie (over loopback)


class PinnedServer:
    """Jobs live on backend ``b1``; a request without ``backend=b1`` reaches another backend,
    which knows no job (404). Each job completes on its third status request."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.polls: dict[str, int] = {}
        self.cookies: list[str | None] = []
        self.app = web.Application()
        self.app.router.add_post("/api/jobs", self.submit)
        self.app.router.add_get("/api/jobs/{id}", self.status)

    async def submit(self, request: web.Request) -> web.Response:
        job_id = str(next(self.ids))
        self.polls[job_id] = 0
        response = web.json_response(
            {"jobId": job_id, "status": "pending", "statusUrl": f"/api/jobs/{job_id}"},
            status=202,
            headers={"Retry-After": "0"},
        )
        response.set_cookie("backend", "b1", path="/api")
        return response

    async def status(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        self.cookies.append(request.headers.get("Cookie"))
        if request.cookies.get("backend") != "b1" or job_id not in self.polls:
            return web.json_response({"error": {"code": "not_found"}}, status=404)
        self.polls[job_id] += 1
        if self.polls[job_id] < 3:
            return web.json_response(
                {"jobId": job_id, "status": "running"}, headers={"Retry-After": "0"}
            )
        return web.json_response({"jobId": job_id, "status": "completed", "result": job_id})


@contextlib.asynccontextmanager
async def pinned_server() -> AsyncIterator[tuple[PinnedServer, str]]:
    server = PinnedServer()
    runner = web.AppRunner(server.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}/api"
    finally:
        await runner.cleanup()


@BOTH
@pytest.mark.parametrize("mode", ["poll", "long-poll"])
async def test_affinity_cookies_keep_polls_on_the_jobs_backend(flavor: str, mode: str) -> None:
    async with pinned_server() as (server, base), open_client(flavor, base) as (client, call):
        first = await call(client.run, "/jobs", json={}, mode=mode, timeout=10)
        second = await call(client.run, "jobs", json={}, mode=mode, timeout=10)
    assert (first, second) == ("1", "2")
    assert server.cookies == ["backend=b1"] * 6


def test_each_request_starts_from_the_configured_headers_of_its_factory_alone() -> None:
    """The headers a request starts from are made once per factory (by trust): a request's
    own headers never leak into the next request, an untrusted origin never gets the
    configured ones, and a factory made by ``dataclasses.replace`` uses its own."""
    factory = RequestFactory.create(
        "http://api.test", headers={"X-Key": "k"}, timeout=httpx.Timeout(5.0)
    )
    first = factory.build("GET", "http://api.test/a", headers={"Prefer": "wait=5"})
    second = factory.build("GET", "http://api.test/b")
    elsewhere = factory.build("GET", "http://other.test/c")
    replaced = dataclasses.replace(factory, headers=httpx.Headers({"X-Key": "new"}))
    assert (first.headers["x-key"], first.headers["prefer"]) == ("k", "wait=5")
    assert second.headers["x-key"] == "k" and "prefer" not in second.headers
    assert "x-key" not in elsewhere.headers
    assert replaced.build("GET", "http://api.test/a").headers["x-key"] == "new"


# A URL argument that is not http(s): refused at the call, before anything is sent, naming the
# argument and the scheme found.


@BOTH
@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("ftp://x/jobs", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("mailto:ops@example.test?token=S3CRET", "scheme 'mailto'"),
        ("http://", "no usable host or path"),
    ],
)
async def test_a_submit_url_that_is_not_http_names_url_and_its_scheme(
    flavor: str, url: str, found: str
) -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    transport = httpx.MockTransport(server)
    async with open_client(flavor, API, transport=transport, clock=FakeClock()) as (client, call):
        with pytest.raises(ValueError) as raised:
            await call(client.submit, url, json={})
    message = str(raised.value)
    assert message.startswith("url must be an http(s) URL"), message
    assert f"({found})" in message and "S3CRET" not in message, message
    assert sent == []


@BOTH
@pytest.mark.parametrize("argument", ["status_url", "events_url", "cancel_url"])
async def test_an_attach_url_that_is_not_http_names_its_argument(
    flavor: str, argument: str
) -> None:
    urls = {"status_url": f"{API}/jobs/1", argument: "ftp://x/jobs/1"}
    async with open_client(flavor, API, clock=FakeClock()) as (client, _):
        with pytest.raises(ValueError) as raised:
            client.operation(**urls)
    assert str(raised.value).startswith(f"{argument} must be an http(s) URL"), raised.value
    assert "scheme 'ftp'" in str(raised.value), raised.value
