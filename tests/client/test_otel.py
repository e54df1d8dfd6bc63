"""OpenTelemetry: one span per operation (submit → terminal) with its attributes and events,
``traceparent`` on every request, the span current while a request is sent, and nothing at
all without the ``otel`` extra. Spans are read from the SDK's in-memory exporter."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode

from asyncreply_client import (
    AsyncClient,
    JobFailedError,
    JobState,
    RetryPolicy,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
    _otel,
)
from tests.client.harness import BOTH, open_client
from tests.client.otelkit import Traces, events

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"workers": 4, "retry_backoff": 0.01, "sse_retry_ms": 20}
SERVER = pytest.mark.parametrize("reference_server", [FAST], indirect=True, ids=["reference"])
BASE = "https://api.example.com"


def _traceparent_ids(request: httpx.Request) -> tuple[int, int]:
    _, trace_id, span_id, _ = request.headers["traceparent"].split("-")
    return int(trace_id, 16), int(span_id, 16)


@BOTH
@SERVER
async def test_one_span_per_operation_from_submit_to_terminal(
    flavor: str, reference_server: Any, traces: Traces
) -> None:
    body = {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        assert traces.operations() == []  # still running: not ended
        await call(op.result, timeout=20, mode="poll")
    span = traces.operation()
    attributes = dict(span.attributes or {})
    assert attributes["asyncreply.operation.id"] == op.id
    assert attributes["asyncreply.status_url"] == op.status_url
    assert attributes["asyncreply.dialect"] == client.dialect.name
    assert attributes["asyncreply.mode"] == "poll"
    assert attributes["asyncreply.final_state"] == "completed"
    assert attributes["asyncreply.origin"] == "submit"
    polls = events(span, "asyncreply.poll")
    assert polls and attributes["asyncreply.polls"] == len(polls)
    assert [p["asyncreply.polls"] for p in polls] == list(range(1, len(polls) + 1))
    states = [e["asyncreply.state"] for e in events(span, "asyncreply.status")]
    assert states[0] == "pending" and states[-1] == "completed"
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in attributes


@BOTH
async def test_traceparent_on_every_request_and_the_span_is_current_while_sending(
    flavor: str, traces: Traces
) -> None:
    current: list[trace.SpanContext] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # What an httpx instrumentation would take as the parent of its request span.
        current.append(trace.get_current_span().get_span_context())
        if request.method == "POST":
            return httpx.Response(
                202, json={"id": "j1", "status": "pending"}, headers={"Location": "/jobs/j1"}
            )
        done = len(current) > 2
        return httpx.Response(200, json={"id": "j1", "status": "succeeded" if done else "running"})

    transport: Any = httpx.MockTransport(handler)
    with traces.tracer.start_as_current_span("caller") as parent:
        async with open_client(flavor, BASE, transport=transport) as (client, call):
            op = await call(client.submit, "/jobs", json={})
            await call(op.wait, timeout=5, mode="poll")
    span = traces.operation()
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert len(current) == 3
    assert all(c.span_id == span.context.span_id for c in current)
    assert trace.get_current_span().get_span_context().span_id != span.context.span_id


async def test_traceparent_is_injected_into_each_request() -> None:
    provider = TracerProvider()
    with (
        respx.mock(assert_all_called=True) as router,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(_otel, "tracer", lambda: provider.get_tracer("asyncreply"))
        post = router.post(f"{BASE}/jobs").respond(
            202, json={"id": "j1", "status": "pending"}, headers={"Location": "/jobs/j1"}
        )
        get = router.get(f"{BASE}/jobs/j1").respond(200, json={"id": "j1", "status": "running"})
        async with AsyncClient(BASE) as client:
            op = await client.submit("/jobs", json={})
            await op.refresh()
            await op.refresh()
    ids = {_traceparent_ids(call.request) for call in [*post.calls, *get.calls]}
    assert len(ids) == 1 and len(get.calls) == 2


@BOTH
@SERVER
async def test_a_failed_job_ends_its_span_in_error(
    flavor: str, reference_server: Any, traces: Traces
) -> None:
    body = {"type": "fail", "input": {"code": "boom", "message": "it broke"}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        with pytest.raises(JobFailedError):
            await call(op.result, timeout=20)
    attributes = dict(traces.operation().attributes or {})
    assert attributes["asyncreply.final_state"] == "failed"
    assert attributes["error.type"] == "JobFailedError"
    assert traces.operation().status.status_code is StatusCode.ERROR


@BOTH
@SERVER
async def test_a_failed_job_seen_by_wait_ends_in_error_with_its_code(
    flavor: str, reference_server: Any, traces: Traces
) -> None:
    body = {"type": "fail", "input": {"code": "boom", "message": "it broke"}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        status = await call(op.wait, timeout=20)
    assert status.state is JobState.FAILED
    span = traces.operation()
    assert dict(span.attributes or {})["error.type"] == "boom"
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "it broke"


@BOTH
@SERVER
async def test_a_rejected_submission_ends_its_span(
    flavor: str, reference_server: Any, traces: Traces
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        with pytest.raises(SubmissionRejectedError):
            await call(client.submit, "/jobs", json={"type": "no-such-type", "input": {}})
    span = traces.operation()
    assert dict(span.attributes or {})["error.type"] == "SubmissionRejectedError"
    assert span.status.status_code is StatusCode.ERROR


@BOTH
@SERVER
async def test_a_wait_timeout_leaves_the_span_open_until_the_end(
    flavor: str, reference_server: Any, traces: Traces
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        with pytest.raises(WaitTimeoutError):
            await call(op.wait, timeout=0.05, mode="poll")
        assert traces.operations() == []  # the job goes on
        await call(op.cancel)
    attributes = dict(traces.operation().attributes or {})
    assert attributes["asyncreply.final_state"] == "cancelled"
    assert "error.type" not in attributes


@SERVER
async def test_an_abandoned_operation_ends_its_span_when_collected(
    reference_server: Any, traces: Traces
) -> None:
    async with AsyncClient(reference_server.base_url) as client:
        op = await client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        status_url = op.status_url
        assert traces.operations() == []
        del op
        gc.collect()
        attributes = dict(traces.operation().attributes or {})
        assert attributes["asyncreply.status_url"] == status_url
        assert "asyncreply.final_state" not in attributes
        await client.operation(status_url or "").cancel()


def test_without_the_extra_the_client_works_and_sends_no_traceparent(tmp_path: Path) -> None:
    """opentelemetry blocked at import: the client runs, with no tracing and no header."""
    script = tmp_path / "blocked.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            sys.modules["opentelemetry"] = None  # an import of it raises ImportError
            import httpx
            from asyncreply_client import Client, _otel

            seen = []

            def handler(request):
                seen.append(request.headers.get("traceparent"))
                if request.method == "POST":
                    return httpx.Response(202, json={"id": "j", "status": "pending"},
                                          headers={"Location": "/jobs/j"})
                return httpx.Response(200, json={"id": "j", "status": "succeeded",
                                                 "result": {"ok": True}})

            http = httpx.Client(transport=httpx.MockTransport(handler))
            with Client("https://api.example.com", http_client=http) as client:
                value = client.run("/jobs", json={}, timeout=5, mode="poll")
            assert value == {"ok": True}, value
            assert not _otel.AVAILABLE and _otel.start_span({}) is None
            assert seen == [None, None], seen
            print("ok")
            """
        )
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


@BOTH
async def test_a_failed_submission_ends_its_span_without_query_secrets(
    flavor: str, traces: Traces
) -> None:
    with respx.mock(assert_all_called=True) as router:
        router.post(url__startswith=f"{BASE}/jobs").mock(side_effect=httpx.ConnectError("down"))
        # connect_for=0: a refused connection counts as an attempt at once (one retry).
        retry = RetryPolicy(attempts=2, initial=0.0, connect_for=0.0)
        async with open_client(flavor, BASE, retry=retry) as (client, call):
            with pytest.raises(TransportError, match="SECRET-KEY"):  # the error itself: as sent
                await call(client.submit, "/jobs?api_key=SECRET-KEY", json={})
    span = traces.operation()
    assert dict(span.attributes or {})["error.type"] == "TransportError"
    assert span.status.status_code is StatusCode.ERROR
    description = span.status.description or ""
    assert "api_key=REDACTED" in description and "SECRET" not in description
    assert [e["asyncreply.cause"] for e in events(span, "asyncreply.retry")] == ["ConnectError"]


@BOTH
@SERVER
async def test_the_reference_servers_spans_are_children_of_the_operation_span(
    flavor: str, reference_server: Any, traces: Traces, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reference_server import tracing

    # The server's spans go to the same provider (still not the global one).
    monkeypatch.setattr(tracing, "tracer", lambda: traces.provider.get_tracer("server"))
    body = {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        await call(op.result, timeout=20, mode="poll")
    operation = traces.operation()
    served = [s for s in traces.exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    routes = {dict(s.attributes or {}).get("http.route") for s in served}
    assert {"/jobs", "/jobs/{job_id}"} <= routes
    for span in served:
        assert span.context.trace_id == operation.context.trace_id
        assert span.parent is not None and span.parent.span_id == operation.context.span_id
        assert dict(span.attributes or {})["asyncreply.job_id"] == op.id
