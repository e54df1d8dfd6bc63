"""The reference server's OpenTelemetry spans (``reference_server.tracing``): one SERVER span
per request, continuing the caller's ``traceparent``; nothing without ``opentelemetry-api``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from reference_server import ServerConfig, serve, tracing
from tests.client.otelkit import Traces

from .conftest import FAST_DEFAULTS

# A traceparent as the W3C Trace Context spec writes it in its examples.
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7

pytestmark = pytest.mark.anyio
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


class ServerSpans(Traces):
    """The client tests' in-memory provider (never the global one), for the server's spans."""

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerSpans]:
    recorded = ServerSpans()
    monkeypatch.setattr(tracing, "tracer", lambda: recorded.provider.get_tracer("server"))
    yield recorded
    recorded.provider.shutdown()


@pytest.fixture
async def http() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with (
        serve(ServerConfig(**FAST_DEFAULTS)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        yield client, server.base_url


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_one_server_span_per_request_continuing_the_traceparent(
    spans: ServerSpans, http: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = http
    body = {"type": "echo", "input": {"secret": "do-not-record"}}
    created = await client.post(
        "/jobs?token=hunter2", json=body, headers={"traceparent": TRACEPARENT}
    )
    assert created.status_code == 202
    job_id = created.json()["jobId"]
    polled = await client.get(f"/jobs/{job_id}", headers={"traceparent": TRACEPARENT})
    assert polled.status_code in (200, 303)

    [post] = spans.named("POST /jobs")
    [get] = spans.named("GET /jobs/{job_id}")
    for span, status in ((post, 202), (get, polled.status_code)):
        assert span.kind is SpanKind.SERVER
        assert span.context.trace_id == TRACE_ID
        assert span.parent is not None and span.parent.span_id == PARENT_ID
        assert span.parent.is_remote
        assert attrs(span)["http.response.status_code"] == status
        assert attrs(span)["asyncreply.job_id"] == job_id  # created (Location) or in the route
        assert span.status.status_code is StatusCode.UNSET
    assert attrs(post) == {
        "http.request.method": "POST",
        "http.route": "/jobs",
        "url.path": "/jobs",  # the query string (which may carry a token) is left out
        "http.response.status_code": 202,
        "asyncreply.job_id": job_id,
    }
    assert attrs(get)["http.route"] == "/jobs/{job_id}"
    assert attrs(get)["url.path"] == f"/jobs/{job_id}"


async def test_without_a_traceparent_each_request_starts_a_trace(
    spans: ServerSpans, http: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = http
    await client.get("/health")
    await client.get("/health")
    first, second = spans.named("GET /health")
    assert first.parent is None and second.parent is None
    assert first.context.trace_id != second.context.trace_id


async def test_error_answers_mark_only_server_errors_as_errors(
    spans: ServerSpans, http: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = http
    missing = await client.get("/jobs/nope-nope")
    assert missing.status_code == 404
    bad = await client.post(
        "/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    unrouted = await client.get("/no/such/path")
    assert unrouted.status_code == 404
    [not_found] = spans.named("GET /jobs/{job_id}")
    [rejected] = spans.named("POST /jobs")
    for span in (not_found, rejected):
        assert span.status.status_code is StatusCode.UNSET  # 4xx is the client's error
        assert "error.type" not in attrs(span)
    [unknown] = [s for s in spans.exporter.get_finished_spans() if s.name == "GET"]
    assert "http.route" not in attrs(unknown)
    assert attrs(unknown)["http.response.status_code"] == 404


async def test_a_server_error_ends_the_span_in_error(
    spans: ServerSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reference_server import app as app_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    async with (
        serve(ServerConfig(**FAST_DEFAULTS)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        created = await client.post("/jobs", json={"type": "echo", "input": {}})
        monkeypatch.setattr(app_module, "_document", broken)  # the status answer's document
        answer = await client.get(f"/jobs/{created.json()['jobId']}")
    assert answer.status_code == 500
    [span] = spans.named("GET /jobs/{job_id}")
    assert attrs(span)["http.response.status_code"] == 500
    assert attrs(span)["error.type"] == "500"
    assert span.status.status_code is StatusCode.ERROR


def test_without_opentelemetry_the_server_serves_and_traces_nothing() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # the import fails as if it were not installed
        import httpx
        from reference_server import ServerConfig, serve, tracing

        async def main():
            assert not tracing.AVAILABLE
            async with serve(ServerConfig(workers=1)) as server:
                async with httpx.AsyncClient(base_url=server.base_url) as client:
                    answer = await client.get("/health", headers={"traceparent": "00-x"})
                    assert answer.status_code == 200, answer.status_code
            print("ok")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
