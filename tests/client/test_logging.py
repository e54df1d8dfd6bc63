"""Logging under ``asyncreply``: a DEBUG line per request, an INFO line per state change,
nothing when logging is off, and never a secret (credentials, tokens, query secrets, cookies,
bodies) in any line."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import FixedInterval, RetryPolicy, SSEOptions, _log
from tests.client.harness import BOTH, open_client
from tests.client.otelkit import Traces

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"workers": 4, "retry_backoff": 0.01, "sse_retry_ms": 20}
SERVER = pytest.mark.parametrize("reference_server", [FAST], indirect=True, ids=["reference"])
BASE = "https://api.example.com"
SECRETS = (
    "SECRET-TOKEN",
    "SECRET-COOKIE",
    "SECRET-KEY",
    "SECRET-SIG",
    "SECRET-QUERY",
    "SECRET-BODY",
    "SECRET-RESULT",
)


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The client's records (the reference server's access log is ``asyncreply.server``)."""
    return [
        r
        for r in caplog.records
        if r.name.startswith("asyncreply") and r.name != "asyncreply.server"
    ]


@BOTH
@SERVER
async def test_a_debug_line_per_request_and_an_info_line_per_state_change(
    flavor: str, reference_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncreply")
    body = {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        await call(op.result, timeout=20, mode="poll")
    records = _ours(caplog)
    assert {r.name for r in records} <= {"asyncreply.client", "asyncreply.sse", "asyncreply.retry"}
    requests = [r.getMessage() for r in records if r.levelno == logging.DEBUG and " -> " in r.msg]
    base = reference_server.base_url
    assert requests[0] == f"POST {base}/jobs -> 202"
    polls = [m for m in requests if m.startswith(f"GET {base}/jobs/{op.id} ")]
    assert polls and all(m.endswith(("-> 200", "-> 303")) for m in polls)
    assert requests[-1] == f"GET {base}/jobs/{op.id}/result -> 200"
    changes = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert changes[0] == f"operation {op.id}: new -> pending"
    assert changes[-1].startswith(f"operation {op.id}: ") and changes[-1].endswith("-> completed")


@BOTH
async def test_state_changes_are_logged_once_each(
    flavor: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="asyncreply")
    running = {"id": "j1", "status": "running"}
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{BASE}/jobs").respond(
            202, json={"id": "j1", "status": "pending"}, headers={"Location": "/jobs/j1"}
        )
        router.get(f"{BASE}/jobs/j1").mock(
            side_effect=[
                httpx.Response(200, json=running),
                httpx.Response(200, json={**running, "percentComplete": 50}),
                httpx.Response(200, json={"id": "j1", "status": "succeeded", "result": 1}),
            ]
        )
        async with open_client(flavor, BASE, polling=FixedInterval(0)) as (client, call):
            op = await call(client.submit, "/jobs", json={})
            await call(op.result, timeout=5, mode="poll")
    assert [r.getMessage() for r in _ours(caplog)] == [
        "operation j1: new -> pending",
        "operation j1: pending -> processing",
        "operation j1: processing -> completed",
    ]
    assert all(r.levelno == logging.INFO and r.name == "asyncreply.client" for r in _ours(caplog))


def _leaky_server(router: respx.Router) -> None:
    """A server whose URLs carry secrets in their query strings, that sets cookies, answers a
    transient 503 and refuses its event stream (so SSE falls back with the URL in its reason)."""
    monitor = f"{BASE}/jobs/j1?sig=SECRET-SIG&api_key=SECRET-QUERY&wait=1"
    router.post(f"{BASE}/jobs").respond(
        202,
        json={"id": "j1", "status": "pending"},
        headers={
            "Location": monitor,
            "Set-Cookie": "session=SECRET-COOKIE",
            "Link": '</jobs/j1/events?access_token=SECRET-TOKEN>; rel="events"',
        },
    )
    router.get(url__startswith=f"{BASE}/jobs/j1/events").respond(503, json={"error": "SECRET-BODY"})
    router.get(url__startswith=f"{BASE}/jobs/j1").mock(
        side_effect=[
            httpx.Response(503, json={"error": "busy SECRET-BODY"}, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"id": "j1", "status": "running", "note": "SECRET-BODY"}),
            httpx.Response(
                200, json={"id": "j1", "status": "succeeded", "result": {"x": "SECRET-RESULT"}}
            ),
        ]
    )


def _span_texts(traces: Traces) -> list[str]:
    texts = []
    for span in traces.exporter.get_finished_spans():
        texts += [str(v) for v in (span.attributes or {}).values()]
        texts += [str(span.status.description)]
        for event in span.events:
            texts += [event.name, *(str(v) for v in (event.attributes or {}).values())]
    return texts


@BOTH
async def test_no_secret_appears_in_any_log_line_or_span(
    flavor: str, caplog: pytest.LogCaptureFixture, traces: Traces
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncreply")
    headers = {
        "Authorization": "Bearer SECRET-TOKEN",
        "Cookie": "session=SECRET-COOKIE",
        "X-Api-Key": "SECRET-KEY",
    }
    sse = SSEOptions(max_reconnects=0)
    with respx.mock(assert_all_called=True) as router:
        _leaky_server(router)
        async with open_client(
            flavor, BASE, headers=headers, sse=sse, retry=RetryPolicy(attempts=3, initial=0.0)
        ) as (client, call):
            op = await call(client.submit, "/jobs", json={"secret": "SECRET-BODY"})
            assert await call(op.result, timeout=5) == {"x": "SECRET-RESULT"}
    lines = [r.getMessage() for r in _ours(caplog)]
    assert any("sig=REDACTED" in line and "api_key=REDACTED" in line for line in lines)
    assert any("access_token=REDACTED" in line for line in lines)  # the SSE fallback's reason
    assert any("retrying GET" in line for line in lines)
    assert any("wait=1" in line for line in lines)  # not a secret: kept
    texts = _span_texts(traces)
    assert any("sig=REDACTED" in text for text in texts)
    for text in lines + texts:
        for secret in SECRETS:
            assert secret not in text, text


@BOTH
@SERVER
async def test_logging_off_costs_no_formatting(
    flavor: str, reference_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the loggers above DEBUG/INFO, no line is built: redaction is never even called."""

    def forbidden(*args: object) -> str:
        raise AssertionError("a log line was built while logging is off")

    monkeypatch.setattr(_log, "redact_url", forbidden)
    logging.getLogger("asyncreply").setLevel(logging.WARNING)
    try:
        async with open_client(flavor, reference_server.base_url) as (client, call):
            op = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
            await call(op.result, timeout=20)
    finally:
        logging.getLogger("asyncreply").setLevel(logging.NOTSET)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/jobs/1", "https://api.example.com/jobs/1"),
        (
            "https://user:pass@api.example.com/jobs/1?wait=5",
            "https://api.example.com/jobs/1?wait=5",
        ),
        # Azure SAS
        (
            "https://acct.blob.core.windows.net/c/r.csv?sv=2022-11-02&sp=r&sig=abc%2Fdef",
            "https://acct.blob.core.windows.net/c/r.csv?sv=2022-11-02&sp=r&sig=REDACTED",
        ),
        # AWS S3 presigned
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=f00d&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Expires=60",
        ),
        # Azure Functions keys, OAuth tokens, API keys
        ("https://f.example.net/api/x?code=k1", "https://f.example.net/api/x?code=REDACTED"),
        (
            "http://h/p?access_token=t&apikey=k&Api-Key=k",
            "http://h/p?access_token=REDACTED&apikey=REDACTED&Api-Key=REDACTED",
        ),
        ("http://h/p#frag-secret", "http://h/p"),
        ("http://[::1/p", "<unparsable URL>"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert _log.redact_url(url) == expected
