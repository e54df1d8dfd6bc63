"""A new user's first hour (issue 20, items 1-4): progress from the first second in every
wait mode, ``watch()`` of a finished job, and arguments refused at the call. Against the
real reference server, both clients."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import anyio
import httpx
import pydantic
import pytest

import asyncreply_client
from asyncreply_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    FixedInterval,
    JobNotFoundError,
    JobState,
    JobStatus,
    LongPolling,
    ProtocolError,
    RetryPolicy,
    SubmissionAuthenticationError,
    SubmissionRejectedError,
)
from reference_server import JobContext, JobType
from tests.client.harness import BOTH, Call, open_client

pytestmark = pytest.mark.anyio

#: What the gated job says it will take (its 202's ``Retry-After`` and estimate).
ESTIMATE = 6.0
#: How long the gated job waits for its watcher to see step 1 before it gives up.
PATIENCE = 5.0
_GATES: dict[str, threading.Event] = {}


class GateInput(pydantic.BaseModel):
    key: str


async def gated(ctx: JobContext, input: GateInput) -> dict[str, Any]:
    """Report step 1 of 2, then wait (up to ``PATIENCE`` s) until the client has seen it:
    the result says whether it was seen while the job was still running."""
    gate = _GATES[input.key]
    await ctx.progress(1, 2, "step 1/2")
    with anyio.move_on_after(PATIENCE):
        while not gate.is_set():
            await ctx.sleep(0.01)
    return {"seen": gate.is_set()}


GATED = {
    "workers": 2,
    "retry_backoff": 0.01,
    "sse_retry_ms": 20,
    "handlers": {"gated": JobType(run=gated, model=GateInput, estimate=lambda i: ESTIMATE)},
}
SERVER = pytest.mark.parametrize("reference_server", [GATED], indirect=True, ids=["gated"])


def _gate() -> tuple[dict[str, Any], Any]:
    """A gated job's body, and a progress callback that opens its gate at step 1."""
    key = str(uuid.uuid4())
    gate = _GATES[key] = threading.Event()

    def watcher(status: JobStatus) -> None:
        progress = status.progress
        if not status.is_terminal and progress is not None and progress.current == 1:
            gate.set()

    return {"type": "gated", "input": {"key": key}}, watcher


async def _watch(call: Call, op: Any, each: Any, **options: Any) -> None:
    """Iterate over ``op.watch(**options)``, calling ``each`` with every snapshot as it comes."""
    if call.is_async:
        async for status in op.watch(**options):
            each(status)
        return

    def iterate() -> None:
        for status in op.watch(**options):
            each(status)

    await anyio.to_thread.run_sync(iterate)


@BOTH
@SERVER
@pytest.mark.parametrize("where", ["run", "client"])
async def test_run_with_a_progress_callback_reports_while_the_job_runs(
    flavor: str, where: str, reference_server: Any
) -> None:
    # Item 1: run() held its submission up to 10 s: the callback saw nothing until then.
    body, watcher = _gate()
    seen: list[JobStatus] = []

    def record(status: JobStatus) -> None:
        seen.append(status)
        watcher(status)

    options = {"on_progress": record} if where == "client" else {}
    async with open_client(flavor, reference_server.base_url, **options) as (client, call):
        kwargs = {"on_progress": record} if where == "run" else {}
        result = await call(client.run, "/jobs", json=body, timeout=30, **kwargs)
    assert result == {"seen": True}
    assert seen[-1].state is JobState.COMPLETED
    assert len(seen) >= 2  # the running job, then its end


@BOTH
@SERVER
@pytest.mark.parametrize("mode", ["poll", "long-poll", "sse", "auto"])
@pytest.mark.parametrize("how", ["watch", "on_progress"])
async def test_each_wait_mode_reports_progress_before_the_hinted_end(
    flavor: str, mode: str, how: str, reference_server: Any
) -> None:
    # Item 2: the first poll waited for the 202's Retry-After (the whole estimate).
    body, watcher = _gate()
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        assert op.status.retry_after is not None and op.status.retry_after >= ESTIMATE
        if how == "watch":
            await _watch(call, op, watcher, timeout=30, mode=mode)
        else:
            await call(op.wait, timeout=30, mode=mode, on_progress=watcher)
        result = await call(op.result, timeout=30)
    assert result == {"seen": True}


@BOTH
@pytest.mark.parametrize("reference_server", [{"workers": 2}], indirect=True)
async def test_watch_of_a_finished_job_yields_its_end_once(
    flavor: str, reference_server: Any
) -> None:
    # Item 3: watch() of a finished job yielded nothing.
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {"a": 1}})
        final = await call(op.wait, timeout=30)
        again = await call.collect(op.watch, timeout=30)
        resumed = client.resume(op.to_token())
        await call(resumed.refresh)
        from_resumed = await call.collect(resumed.watch, timeout=30, mode="poll")
    assert final.state is JobState.COMPLETED
    assert [s.state for s in again] == [JobState.COMPLETED]
    assert [s.state for s in from_resumed] == [JobState.COMPLETED]


@BOTH
@pytest.mark.parametrize("reference_server", [{"workers": 2}], indirect=True)
@pytest.mark.parametrize("mode", ["SSE", "Poll", "LONG-POLL", "long_poll", " auto "])
async def test_modes_are_accepted_in_any_case(
    flavor: str, mode: str, reference_server: Any
) -> None:
    # Item 4: mode="SSE" was refused though dialect names are case-insensitive.
    job = {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=job)
        status = await call(op.wait, timeout=30, mode=mode)
        value = await call(client.run, "/jobs", json=job, timeout=30, mode=mode)
    assert status.state is JobState.COMPLETED
    assert value == {"slept": 0.05}


@BOTH
@pytest.mark.parametrize("reference_server", [{"workers": 2}], indirect=True)
async def test_a_number_for_polling_means_a_fixed_interval(
    flavor: str, reference_server: Any
) -> None:
    # Item 4: op.wait(polling=1.0) raised AttributeError: 'float' object has no 'schedule'.
    job = {"type": "sleep", "input": {"seconds": 0.05}}
    async with open_client(flavor, reference_server.base_url, polling=0.05) as (client, call):
        assert client._flow_cfg.polling == FixedInterval(0.05)
        op = await call(client.submit, "/jobs", json=job)
        status = await call(op.wait, timeout=30, mode="poll", polling=0.05)
        value = await call(op.result, timeout=30, polling=1)
    assert status.state is JobState.COMPLETED
    assert value == {"slept": 0.05}


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"timeout": -1}, ValueError, ["timeout", "seconds >= 0", "-1"]),
        ({"timeout": "30"}, TypeError, ["timeout", "httpx.Timeout", "'30'"]),
        ({"timeout": httpx.Timeout(5.0, read=-2)}, ValueError, ["timeout (read)"]),
        ({"timeout": float("nan")}, ValueError, ["timeout"]),
        ({"polling": "fast"}, TypeError, ["polling=", "FixedInterval", "'fast'"]),
        ({"polling": -1.0}, ValueError, ["polling=", ">= 0"]),
        ({"polling": FixedInterval}, TypeError, ["polling="]),
        ({"on_progress": 5}, TypeError, ["on_progress", "callable"]),
        ({"on_progress": [print, 5]}, TypeError, ["on_progress"]),
        ({"retry": 3}, TypeError, ["retry", "RetryPolicy"]),
        ({"sse": {"silence_timeout": 5}}, TypeError, ["sse", "SSEOptions"]),
        ({"trusted_origins": "https://a.test"}, TypeError, ["trusted_origins", "list"]),
        ({"headers": ["x"]}, TypeError, ["headers", "mapping"]),
        ({"max_redirects": -1}, ValueError, ["max_redirects"]),
        ({"clock": 1.0}, TypeError, ["clock", "now()"]),
        ({"events_url_template": 3}, TypeError, ["events_url_template", "{id}"]),
    ],
)
def test_bad_client_arguments_are_refused_at_the_call(
    cls: type[Any], options: dict[str, Any], error: type[Exception], names: list[str]
) -> None:
    with pytest.raises(error) as info:
        cls("http://127.0.0.1:8080", **options)
    for name in names:
        assert name in str(info.value)


def test_good_client_arguments_still_pass() -> None:
    timeout = httpx.Timeout(5.0, read=None)
    with Client(
        "http://127.0.0.1:8080",
        timeout=timeout,
        polling=LongPolling(),
        retry=RetryPolicy(),
        on_progress=[print],
        trusted_origins=["https://files.example.test"],
    ) as client:
        assert client._requests.timeout == timeout
    with Client("http://127.0.0.1:8080", timeout=None, polling=2) as client:
        assert client._requests.timeout == httpx.Timeout(None)
        assert client._flow_cfg.polling == FixedInterval(2.0)


@BOTH
@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"mode": "push"}, ValueError, ["mode", "'sse'", "'long-poll'", "'push'"]),
        ({"mode": 3}, ValueError, ["mode"]),
        ({"polling": object()}, TypeError, ["polling=", "a number of seconds"]),
        ({"timeout": -5}, ValueError, ["timeout", ">= 0"]),
        ({"timeout": "5"}, TypeError, ["timeout"]),
        ({"on_progress": "print"}, TypeError, ["on_progress"]),
    ],
)
async def test_bad_wait_arguments_are_refused_before_anything_is_sent(
    flavor: str, options: dict[str, Any], error: type[Exception], names: list[str]
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"id": "j", "status": "running"})

    transport: Any = httpx.MockTransport(handler)
    async with open_client(flavor, "http://127.0.0.1:8080", transport=transport) as (
        client,
        call,
    ):
        op = client.operation("/jobs/j")
        for method in (op.wait, op.result):
            with pytest.raises(error) as info:
                await call(method, **options)
            for name in names:
                assert name in str(info.value)
        with pytest.raises(error):
            await call(client.run, "/jobs", json={}, **options)
    assert sent == []


# --------------------------------------------------------------------------------------------
# Errors that say what to do (items 10 and 11)


class Wrong(pydantic.BaseModel):
    slept: float
    name: str


@BOTH
@pytest.mark.parametrize("reference_server", [{"workers": 2}], indirect=True)
@pytest.mark.parametrize("mode", ["poll", "sse"])
async def test_a_typed_result_mismatch_names_the_fields(
    flavor: str, mode: str, reference_server: Any
) -> None:
    job = {"type": "echo", "input": {"slept": "long"}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=job, result_type=Wrong)
        with pytest.raises(ProtocolError) as info:
            await call(op.result, timeout=30, mode=mode)
    message = str(info.value)
    assert "does not match Wrong" in message
    assert "field 'slept'" in message and "field 'name'" in message
    assert "HTTP None" not in message


@BOTH
@pytest.mark.parametrize(
    "reference_server", [{"workers": 2, "tokens": {"t-alice": "alice"}}], indirect=True
)
async def test_a_refused_submission_shows_a_public_class(
    flavor: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        with pytest.raises(AuthenticationError) as info:
            await call(client.submit, "/jobs", json={"type": "echo"})
    error = info.value
    assert isinstance(error, SubmissionRejectedError)
    assert type(error) is SubmissionAuthenticationError
    assert type(error).__name__ in asyncreply_client.__all__
    assert type(error).__qualname__ == type(error).__name__ == "SubmissionAuthenticationError"


def _localhost(base_url: str) -> str:
    return base_url.replace("127.0.0.1", "localhost")


@BOTH
@pytest.mark.parametrize("reference_server", [{"workers": 2}], indirect=True)
async def test_a_token_resumed_on_another_origin_says_why_it_finds_no_job(
    flavor: str, reference_server: Any
) -> None:
    # Item 10: the credentials were withheld (right), then "no such job" (wrong) said nothing.
    base = reference_server.base_url
    alice = {"Authorization": "Bearer alice"}
    async with open_client(flavor, base, headers=alice) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
        token = op.to_token()
    async with open_client(flavor, _localhost(base), headers=alice) as (client, call):
        with pytest.raises(JobNotFoundError) as info:
            await call(client.resume(token).refresh)
    message = str(info.value)
    assert f"origin {base}" in message
    assert f"trusted_origins=[{base!r}]" in message
    async with open_client(flavor, _localhost(base), headers=alice, trusted_origins=[base]) as (
        client,
        call,
    ):
        status = await call(client.resume(token).wait, timeout=30)
    assert status.state is JobState.COMPLETED


@BOTH
@pytest.mark.parametrize(
    "reference_server", [{"workers": 2, "tokens": {"t-alice": "alice"}}], indirect=True
)
async def test_a_401_on_another_origin_names_trusted_origins(
    flavor: str, reference_server: Any
) -> None:
    base = reference_server.base_url
    alice = {"Authorization": "Bearer t-alice"}
    async with open_client(flavor, base, headers=alice) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
        token = op.to_token()
    async with open_client(flavor, _localhost(base), headers=alice) as (client, call):
        with pytest.raises(AuthenticationError) as info:
            await call(client.resume(token).refresh)
    assert "trusted_origins" in str(info.value)


@BOTH
@pytest.mark.parametrize("reference_server", [{"workers": 2}], indirect=True)
async def test_without_credentials_a_404_elsewhere_is_only_a_404(
    flavor: str, reference_server: Any
) -> None:
    base = reference_server.base_url
    async with open_client(flavor, _localhost(base)) as (client, call):
        with pytest.raises(JobNotFoundError) as info:
            await call(client.operation(f"{base}/jobs/nope").refresh)
    assert "trusted_origins" not in str(info.value)


@BOTH
@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"method": "PO ST"}, ValueError, ["method", "'POST'"]),
        ({"method": None}, ValueError, ["method"]),
        ({"headers": [("a", "b")]}, TypeError, ["headers", "mapping"]),
        ({"idempotency_key": 5}, TypeError, ["idempotency_key", "string"]),
        ({"idempotency_key": ""}, TypeError, ["idempotency_key"]),
    ],
)
async def test_bad_submission_arguments_are_refused_before_anything_is_sent(
    flavor: str, options: dict[str, Any], error: type[Exception], names: list[str]
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    transport: Any = httpx.MockTransport(handler)
    async with open_client(flavor, "http://127.0.0.1:8080", transport=transport) as (
        client,
        call,
    ):
        for method in (client.submit, client.run):
            with pytest.raises(error) as info:
                await call(method, "/jobs", json={}, **options)
            for name in names:
                assert name in str(info.value)
    assert sent == []
