"""Each decision of a wait is visible twice: a DEBUG line on the ``asyncreply`` loggers
(caplog) and an event on the operation's span (in-memory exporter). A poll (mode, each delay
and its reason), an SSE fallback, an SSE reconnect with ``Last-Event-ID``, and a retried
request (with the ``before_sleep`` hook). Both clients, one test body."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import (
    FixedInterval,
    JobState,
    RetryEvent,
    RetryPolicy,
    SSEOptions,
    WaitTimeoutError,
)
from asyncreply_client.testing import FakeClock
from reference_server import FaultConfig
from tests.client.harness import BOTH, open_client
from tests.client.otelkit import Traces, events

pytestmark = pytest.mark.anyio

BASE = "https://api.example.com"
RUNNING = {"id": "j1", "status": "running"}
DONE = {"id": "j1", "status": "succeeded", "result": {"ok": True}}


def _lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


@BOTH
async def test_poll_decisions_mode_and_each_delay_with_its_reason(
    flavor: str, caplog: pytest.LogCaptureFixture, traces: Traces
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncreply")
    clock = FakeClock()
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{BASE}/jobs").respond(
            202,
            json={"id": "j1", "status": "pending"},
            headers={"Location": "/jobs/j1", "Retry-After": "1"},
        )
        router.get(f"{BASE}/jobs/j1").mock(
            side_effect=[httpx.Response(200, json=RUNNING)] * 3 + [httpx.Response(200, json=DONE)]
        )
        async with open_client(flavor, BASE, clock=clock, polling=FixedInterval(5)) as (
            client,
            call,
        ):
            op = await call(client.submit, "/jobs", json={})
            with pytest.raises(WaitTimeoutError):
                await call(op.wait, timeout=7, mode="auto")
            assert traces.operations() == []  # the job goes on
            await call(op.refresh)
    lines = _lines(caplog, "asyncreply.client")
    decisions = [line for line in lines if "waiting by" in line or "next poll" in line]
    assert decisions == [
        "operation j1: waiting by poll (no events URL is known)",
        "operation j1: next poll in 1.000 s (hint)",
        "operation j1: next poll in 5.000 s (backoff)",
        "operation j1: next poll in 1.000 s (deadline)",
    ]
    assert clock.sleeps == [1.0, 5.0, 1.0]
    span = traces.operation()  # ended by the refresh that saw it completed
    assert dict(span.attributes or {})["asyncreply.mode"] == "poll"
    delays = [
        (e["asyncreply.delay"], e["asyncreply.delay_reason"])
        for e in events(span, "asyncreply.delay")
    ]
    assert delays == [(1.0, "hint"), (5.0, "backoff"), (1.0, "deadline")]
    assert [e["asyncreply.polls"] for e in events(span, "asyncreply.poll")] == [1, 2, 3, 4]
    [mode] = events(span, "asyncreply.mode")
    assert mode == {"asyncreply.mode": "poll", "asyncreply.reason": "no events URL is known"}


def _sse_fallback_routes(router: respx.Router, events: httpx.Response) -> respx.Route:
    router.post(f"{BASE}/jobs").respond(
        202,
        json={"id": "j1", "status": "pending"},
        headers={
            "Location": "/jobs/j1",
            "Link": '</jobs/j1/events?sse_token=SECRET-SSE>; rel="events"',
        },
    )
    stream = router.get(url__startswith=f"{BASE}/jobs/j1/events").mock(return_value=events)
    router.get(f"{BASE}/jobs/j1").respond(200, json=DONE)
    router.get(f"{BASE}/jobs/j1/result").respond(200, json={"ok": True})
    return stream


@BOTH
@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(404, json={"error": "no events"}), "HTTP 404"),
        (httpx.Response(503, headers={"Retry-After": "0"}), "could not open the event stream"),
    ],
    ids=["refused", "unavailable"],
)
async def test_an_sse_fallback_is_logged_and_traced(
    flavor: str,
    answer: httpx.Response,
    reason: str,
    caplog: pytest.LogCaptureFixture,
    traces: Traces,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncreply")
    sse = SSEOptions(max_reconnects=0)
    with respx.mock(assert_all_called=False) as router:
        stream = _sse_fallback_routes(router, answer)
        async with open_client(flavor, BASE, sse=sse, polling=FixedInterval(0)) as (client, call):
            op = await call(client.submit, "/jobs", json={})
            assert await call(op.result, timeout=5) == {"ok": True}
    assert stream.called
    client_lines = _lines(caplog, "asyncreply.client")
    assert "operation j1: waiting by sse (an events URL is known)" in client_lines
    assert "operation j1: waiting by poll (fallback from SSE)" in client_lines
    [fallback] = [line for line in _lines(caplog, "asyncreply.sse") if "falls back" in line]
    assert fallback.startswith("operation j1: SSE falls back to polling: ")
    assert reason in fallback and "SECRET-SSE" not in fallback
    span = traces.operation()
    modes = [e["asyncreply.mode"] for e in events(span, "asyncreply.mode")]
    assert modes == ["sse", "poll"]
    [traced] = events(span, "asyncreply.sse.fallback")
    assert reason in traced["asyncreply.reason"] and "SECRET" not in traced["asyncreply.reason"]
    attributes = dict(span.attributes or {})
    assert attributes["asyncreply.mode"] == "poll"
    assert attributes["asyncreply.final_state"] == "completed"


@BOTH
@pytest.mark.parametrize(
    "reference_server",
    [{"workers": 4, "sse_retry_ms": 10, "faults": FaultConfig(sse_cut_after=1)}],
    indirect=True,
    ids=["cut-after-1"],
)
async def test_an_sse_reconnect_with_last_event_id_is_logged_and_traced(
    flavor: str, reference_server: Any, caplog: pytest.LogCaptureFixture, traces: Traces
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncreply.sse")
    sse = SSEOptions(max_reconnects=20, retry_delay=0.01, backoff=0.0)
    body = {"type": "sleep", "input": {"seconds": 0.1, "steps": 3}}
    async with open_client(flavor, reference_server.base_url, sse=sse) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        status = await call(op.wait, timeout=20, mode="sse")
    assert status.state is JobState.COMPLETED
    lines = _lines(caplog, "asyncreply.sse")
    reconnects = [line for line in lines if "reconnecting" in line]
    assert reconnects and all("with Last-Event-ID '" in line for line in reconnects)
    opened = [line for line in lines if line.startswith("event stream ")]
    assert opened[0].endswith("open (Last-Event-ID None)")
    assert any("open (Last-Event-ID '" in line for line in opened[1:])
    assert any(line.startswith("SSE message ") for line in lines)
    span = traces.operation()
    assert events(span, "asyncreply.sse.message")
    resumed = events(span, "asyncreply.sse.reconnect")
    assert resumed and all(e["asyncreply.sse.last_event_id"] for e in resumed)
    assert dict(span.attributes or {})["asyncreply.mode"] == "sse"


@BOTH
async def test_a_retried_request_is_logged_traced_and_hooked(
    flavor: str, caplog: pytest.LogCaptureFixture, traces: Traces
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncreply")
    hooked: list[RetryEvent] = []
    policy = RetryPolicy(attempts=4, initial=0.0, jitter=False, before_sleep=hooked.append)
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{BASE}/jobs").respond(
            202, json={"id": "j1", "status": "pending"}, headers={"Location": "/jobs/j1"}
        )
        router.get(f"{BASE}/jobs/j1").mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "0"}),
                httpx.ConnectError("refused"),
                httpx.Response(200, json=DONE),
            ]
        )
        async with open_client(flavor, BASE, retry=policy) as (client, call):
            op = await call(client.submit, "/jobs", json={})
            status = await call(op.refresh)
    assert status.state is JobState.COMPLETED
    assert _lines(caplog, "asyncreply.retry") == [
        f"retrying GET {BASE}/jobs/j1 after attempt 1 of 4 failed (HTTP 503) in 0.000 s"
        " (retry-after)",
        f"retrying GET {BASE}/jobs/j1 after attempt 2 of 4 failed (ConnectError) in 0.000 s"
        " (backoff)",
    ]
    client_lines = _lines(caplog, "asyncreply.client")
    assert f"GET {BASE}/jobs/j1 -> 503" in client_lines
    assert f"GET {BASE}/jobs/j1 failed: ConnectError" in client_lines
    assert f"GET {BASE}/jobs/j1 -> 200" in client_lines
    assert [(e.attempt, e.cause, e.status_code, e.retry_after) for e in hooked] == [
        (1, "HTTP 503", 503, True),
        (2, "ConnectError", None, False),
    ]
    assert isinstance(hooked[1].exception, httpx.ConnectError)
    assert hooked[0].url == f"{BASE}/jobs/j1" and hooked[0].method == "GET"
    span = traces.operation()
    retries = [
        (e["asyncreply.attempt"], e["asyncreply.cause"]) for e in events(span, "asyncreply.retry")
    ]
    assert retries == [(1, "HTTP 503"), (2, "ConnectError")]


def test_a_retry_policy_with_a_hook_still_compares_and_prints_as_before() -> None:
    hooked = RetryPolicy(before_sleep=print)
    assert hooked == RetryPolicy() and hash(hooked) == hash(RetryPolicy())
    assert repr(hooked) == repr(RetryPolicy())
