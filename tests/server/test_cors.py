"""CORS: a browser page on another origin uses the reference server (issue 20 item 16).

``--cors-origin`` (repeatable, or a comma-separated list) lets pages of the listed origins
call the API: preflights (``OPTIONS``) are answered before authentication, every answer to
an allowed origin (errors and event streams included) carries ``Access-Control-Allow-Origin``
and exposes the headers a client follows (``Location``, ``Retry-After``, …). The last test
drives a real headless Chromium: a page served from another origin submits a job with a
bearer token (preflighted), reads the exposed headers, and follows the job's events with
``EventSource`` on its ``access_token`` URL.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from reference_server import ServerConfig, ServerThread
from reference_server.__main__ import config_from_args

from .conftest import FAST_DEFAULTS, ServerFactory

PAGE_ORIGIN = "http://127.0.0.1:{port}"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.anyio


async def test_a_preflight_from_an_allowed_origin_is_answered_before_auth(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(tokens={"t-alice": "alice"}, cors_origins=("http://page.test:8000",))
    answer = await srv.request(
        "OPTIONS",
        "/jobs",
        user="",
        headers={
            "Origin": "http://page.test:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "http://page.test:8000"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "prefer"} <= allowed
    assert "Origin" in answer.headers.get_list("Vary")


async def test_a_preflight_from_another_origin_is_refused(make_server: ServerFactory) -> None:
    srv = await make_server(cors_origins=("http://page.test:8000",))
    answer = await srv.request(
        "OPTIONS",
        "/jobs",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "cors_origin_refused"
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_without_cors_origins_no_cors_header_is_sent(srv: Any) -> None:
    headers = {"Origin": "http://page.test", "Access-Control-Request-Method": "POST"}
    assert (await srv.request("OPTIONS", "/jobs", headers=headers)).status_code == 405
    answer = await srv.submit("echo", {}, headers={"Origin": "http://page.test"})
    assert answer.status_code == 202
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


async def test_answers_to_an_allowed_origin_expose_what_clients_follow(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(cors_origins=("http://a.test", "http://page.test:8000"))
    origin = {"Origin": "http://page.test:8000"}
    accepted = await srv.submit("echo", {}, headers=origin)
    assert accepted.status_code == 202
    assert accepted.headers["Access-Control-Allow-Origin"] == "http://page.test:8000"
    exposed = {h.strip() for h in accepted.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Retry-After", "Link", "Content-Location"} <= exposed
    job_id = accepted.json()["jobId"]
    await srv.wait_terminal(job_id)
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result", f"/jobs/{job_id}/events"):
        answer = await srv.get(path, headers=origin)
        assert answer.headers["Access-Control-Allow-Origin"] == "http://page.test:8000", path
    # Errors too, so that a page can read why: a 401 and a 404.
    for user, path in (("", "/nope"), (None, "/jobs/missing")):
        answer = await srv.get(path, user=user, headers=origin)
        assert answer.status_code in (401, 404)
        assert answer.headers["Access-Control-Allow-Origin"] == "http://page.test:8000"
    other = await srv.get(f"/jobs/{job_id}", headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_a_wildcard_allows_any_origin(make_server: ServerFactory) -> None:
    srv = await make_server(cors_origins=("*",))
    answer = await srv.get("/jobs", headers={"Origin": "http://anything.test:1234"})
    assert answer.headers["Access-Control-Allow-Origin"] == "http://anything.test:1234"


def test_cors_origins_on_the_command_line() -> None:
    config = config_from_args(
        ["--cors-origin", "https://app.example.com", "--cors-origin", "http://a.test:1,*"]
    )
    assert config.cors_origins == ("https://app.example.com", "http://a.test:1", "*")
    with pytest.raises(SystemExit):
        config_from_args(["--cors-origin", "https://app.example.com/path"])


# ----------------------------------------------------------------------- a real browser
_PAGE = """<!doctype html><html><body><script>
const api = API_URL;
async function run() {
  const out = {};
  const submitted = await fetch(api + "/jobs", {
    method: "POST",
    headers: {"Authorization": "Bearer t-alice", "Content-Type": "application/json",
              "Idempotency-Key": "browser-1"},
    body: JSON.stringify({type: "sleep", input: {seconds: 0.3, steps: 3}}),
  });
  out.submitStatus = submitted.status;
  out.location = submitted.headers.get("Location");
  out.retryAfter = submitted.headers.get("Retry-After");
  const accepted = await submitted.json();
  const status = await fetch(api + out.location, {headers: {"Authorization": "Bearer t-alice"}});
  out.statusStatus = status.status;
  const events = (await status.json()).eventsUrl;
  out.eventsUrlHasToken = events.includes("access_token=");
  out.events = [];
  await new Promise((resolve) => {
    const source = new EventSource(api + events);
    for (const name of ["status", "progress", "complete"]) {
      source.addEventListener(name, (e) => {
        out.events.push([name, JSON.parse(e.data).status]);
        if (name === "complete") { source.close(); resolve(); }
      });
    }
    source.onerror = () => { out.events.push(["error", null]); source.close(); resolve(); };
  });
  try {
    await fetch(api + "/jobs", {headers: {"Authorization": "Bearer t-alice"}, method: "GET"});
    out.listed = true;
  } catch (e) { out.listed = false; }
  out.jobId = accepted.jobId;
  return out;
}
run().then((r) => { window.result = r; }, (e) => { window.result = {failed: String(e)}; });
</script></body></html>"""


class _PageServer:
    """Serves the page from another origin (another port on loopback)."""

    def __init__(self) -> None:
        self.api_url = ""
        page = self

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = _PAGE.replace("API_URL", json.dumps(page.api_url)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.origin = PAGE_ORIGIN.format(port=self._server.server_address[1])

    @contextmanager
    def running(self) -> Iterator[_PageServer]:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for the module's pages (each test browses in a context of its own)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def _browse(chromium: Any, page_url: str) -> dict[str, Any]:
    # A fresh context: no cookies, cache or preflight cache from another test's pages.
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(page_url)
        page.wait_for_function("window.result !== undefined", timeout=60_000)
        result: dict[str, Any] = page.evaluate("window.result")
    finally:
        context.close()
    return result


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed-origin", "other-origin"])
def test_a_chromium_page_on_another_origin_follows_a_job(chromium: Any, allowed: bool) -> None:
    page = _PageServer()
    origins = (page.origin,) if allowed else ("http://127.0.0.1:1",)
    config = ServerConfig(
        **{**FAST_DEFAULTS, "tokens": {"t-alice": "alice"}, "cors_origins": origins}
    )
    with ServerThread(config) as api, page.running():
        page.api_url = api.base_url
        result = _browse(chromium, page.origin + "/")
        jobs = httpx.get(api.base_url + "/jobs", headers={"Authorization": "Bearer t-alice"})
    if not allowed:
        # The preflight is refused: the browser never sends the submission.
        assert "failed" in result, result
        assert jobs.json()["jobs"] == []
        return
    assert "failed" not in result, result
    assert result["submitStatus"] == 202
    assert result["location"] == f"/jobs/{result['jobId']}"
    assert result["retryAfter"] is not None
    assert result["statusStatus"] == 200
    assert result["eventsUrlHasToken"] is True
    names = [name for name, _ in result["events"]]
    assert "error" not in names, result["events"]
    assert names[0] == "status" and names[-1] == "complete"
    assert result["events"][-1][1] == "completed"
    assert result["listed"] is True
    assert [j["jobId"] for j in jobs.json()["jobs"]] == [result["jobId"]]
