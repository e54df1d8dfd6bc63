"""Spans without an OpenTelemetry SDK (the global provider still the API's proxy): no span
and no ``traceparent`` without an incoming trace (checked before any tracer is asked), and
an incoming trace continued, its ``traceparent`` sent, as with an SDK."""

from __future__ import annotations

import httpx
import pytest
import respx
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from asyncreply_client import Client, _otel

BASE = "https://api.example.com"
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0x00F067AA0BA902B7


@pytest.fixture(autouse=True)
def _no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """No global provider for the test, whatever another test of the process set: the API
    then answers with its proxy, as in a process with no SDK."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _job(router: respx.MockRouter) -> tuple[respx.Route, respx.Route]:
    post = router.post(f"{BASE}/jobs").respond(
        202, json={"id": "j1", "status": "pending"}, headers={"Location": "/jobs/j1"}
    )
    get = router.get(f"{BASE}/jobs/j1").respond(200, json={"id": "j1", "status": "running"})
    return post, get


def test_without_an_sdk_or_a_trace_there_is_no_span_and_no_traceparent() -> None:
    assert _otel.start_span({"asyncreply.origin": "submit"}) is None
    with respx.mock(assert_all_called=True) as router:
        post, get = _job(router)
        with Client(BASE) as client:
            client.submit("/jobs", json={}).refresh()
    sent: list[httpx.Request] = [call.request for call in [*post.calls, *get.calls]]
    assert sent and all("traceparent" not in request.headers for request in sent)


def test_an_incoming_trace_is_continued_without_an_sdk() -> None:
    incoming = SpanContext(
        TRACE_ID, PARENT_ID, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    with (
        trace.use_span(NonRecordingSpan(incoming)),
        respx.mock(assert_all_called=True) as router,
    ):
        span = _otel.start_span({"asyncreply.origin": "submit"})
        assert span is not None and not span.recording
        post, get = _job(router)
        with Client(BASE) as client:
            client.submit("/jobs", json={}).refresh()
    for call in [*post.calls, *get.calls]:
        _, trace_id, _, _ = call.request.headers["traceparent"].split("-")
        assert int(trace_id, 16) == TRACE_ID


def test_a_tracer_put_in_place_is_asked_even_without_an_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def tracer() -> object:
        asked.append("tracer")
        return trace.get_tracer("tests")

    monkeypatch.setattr(_otel, "tracer", tracer)
    assert _otel.start_span({"asyncreply.origin": "submit"}) is None
    assert asked == ["tracer"]
