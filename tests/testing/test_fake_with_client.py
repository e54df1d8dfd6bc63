"""Our own client against FakeAsyncAPI with a FakeClock: every scripted outcome, sync and async,
with long Retry-After hints that take no real time (dogfooding the test helpers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from asyncreply_client import (
    AsyncClient,
    Client,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    ProtocolError,
    ResultFile,
    SubmissionRejectedError,
    WaitTimeoutError,
)
from asyncreply_client.testing import FakeAsyncAPI, JobScript


@dataclass(frozen=True)
class Scenario:
    name: str
    script: Callable[[JobScript], object]
    expect: Any  # the result, or an exception type
    dialect: str = "reference"
    mode: str = "poll"
    events: bool = False
    min_slept: float = 0.0

    def __str__(self) -> str:
        return self.name


def _file(value: Any) -> bool:
    return isinstance(value, ResultFile) and value.content == b"a,b\n"


SCENARIOS = [
    Scenario(
        "30s-job-reference",
        lambda s: s.pending(retry_after=10).progress(0.5, retry_after=20).completed({"n": 1}),
        {"n": 1},
        min_slept=30,
    ),
    Scenario(
        "30s-job-status-code",
        lambda s: s.pending(retry_after=10).progress(0.5, retry_after=20).completed({"n": 2}),
        {"n": 2},
        dialect="status-code",
        min_slept=30,
    ),
    Scenario("inline-result", lambda s: s.pending().completed([1, 2], inline=True), [1, 2]),
    Scenario(
        "file-result",
        lambda s: s.completed(file=b"a,b\n", content_type="text/csv", filename="r.csv"),
        _file,
    ),
    Scenario("failed", lambda s: s.pending().failed(code="boom"), JobFailedError),
    Scenario("failed-status-code", lambda s: s.failed(code="boom"), JobFailedError, "status-code"),
    Scenario("cancelled", lambda s: s.pending().cancelled(), JobCancelledError),
    Scenario("expired", lambda s: s.pending().expired(), JobExpiredError),
    # A job seen once and then 404 has vanished: the client reports it as expired.
    Scenario("vanished", lambda s: s.pending().not_found(), JobExpiredError),
    Scenario("303-without-location", lambda s: s.respond(303), ProtocolError),
    Scenario(
        "transient-503-retried",
        lambda s: s.respond(503, headers={"Retry-After": "5"}).completed({"ok": 1}),
        {"ok": 1},
        min_slept=5,
    ),
    Scenario(
        "sse",
        lambda s: s.pending().progress(0.5).completed({"via": "sse"}),
        {"via": "sse"},
        mode="sse",
        events=True,
    ),
    Scenario(
        "sse-then-410",
        lambda s: s.pending().expired(),
        JobExpiredError,
        mode="auto",
        events=True,
    ),
    Scenario("rejected", lambda s: s.rejects(400, code="invalid_input"), SubmissionRejectedError),
]


def _setup(scenario: Scenario) -> FakeAsyncAPI:
    api = FakeAsyncAPI(dialect=scenario.dialect)  # type: ignore[arg-type]
    scenario.script(api.job("/jobs", retry_after=1, events=scenario.events))
    return api


def _check(scenario: Scenario, api: FakeAsyncAPI, outcome: Any, started: float) -> None:
    expect = scenario.expect
    if isinstance(expect, type):
        assert isinstance(outcome, expect), outcome
    elif callable(expect):
        assert expect(outcome), outcome
    else:
        assert outcome == expect
    assert api.clock.slept >= scenario.min_slept
    assert time.monotonic() - started < 10  # no real sleeping (a loose bound; see benchmarks)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_sync_client(scenario: Scenario) -> None:
    api = _setup(scenario)
    started = time.monotonic()
    with api, Client(api.base_url, clock=api.clock) as client:
        try:
            outcome: Any = client.run("/jobs", json={"type": "t"}, mode=scenario.mode, timeout=300)
        except Exception as exc:
            outcome = exc
    _check(scenario, api, outcome, started)


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_async_client(scenario: Scenario) -> None:
    api = _setup(scenario)
    started = time.monotonic()
    async with api, AsyncClient(api.base_url, clock=api.clock) as client:
        try:
            outcome: Any = await client.run(
                "/jobs", json={"type": "t"}, mode=scenario.mode, timeout=300
            )
        except Exception as exc:
            outcome = exc
    _check(scenario, api, outcome, started)


def test_failed_error_carries_the_scripted_error() -> None:
    api = FakeAsyncAPI()
    api.job().failed(code="quota", message="try later", retryable=True)
    client = Client(api.base_url, clock=api.clock)
    with api, client, pytest.raises(JobFailedError) as caught:
        client.run("/jobs", json={})
    status = caught.value.status
    assert status is not None and status.error is not None
    assert (status.error.code, status.error.message, status.error.retryable) == (
        "quota",
        "try later",
        True,
    )


def test_wait_timeout_in_virtual_time() -> None:
    api = FakeAsyncAPI()
    script = api.job().pending(retry_after=100)
    with api, Client(api.base_url, clock=api.clock) as client:
        op = client.submit("/jobs", json={})
        with pytest.raises(WaitTimeoutError) as caught:
            op.wait(timeout=30)
    assert caught.value.operation is op
    assert api.clock.now() >= 30
    assert api.clock.slept <= 30  # never sleeps past the deadline
    assert script.job.state == "pending"


def test_watch_sees_each_scripted_state_and_progress_once() -> None:
    api = FakeAsyncAPI()
    api.job().pending().pending().progress(1, 4).progress(1, 4).progress(3, 4).completed({})
    with api, Client(api.base_url, clock=api.clock) as client:
        op = client.submit("/jobs", json={})
        seen = [(s.state, s.progress.current if s.progress else None) for s in op.watch()]
    # The submission's pending snapshot was already seen: watch reports only what is new.
    assert seen == [
        (JobState.PROCESSING, 1),
        (JobState.PROCESSING, 3),
        (JobState.COMPLETED, 3),
    ]


def test_unknown_job_is_not_found() -> None:
    api = FakeAsyncAPI()
    api.job()
    client = Client(api.base_url, clock=api.clock)
    with api, client, pytest.raises(JobNotFoundError):
        client.operation(api.base_url + "/jobs/nope").refresh()


def test_cancel_and_attach_by_status_url() -> None:
    api = FakeAsyncAPI()
    job = api.job().pending(retry_after=60).create()
    with api, Client(api.base_url, clock=api.clock) as client:
        op = client.operation(job.status_url)
        assert op.refresh().state is JobState.PENDING
        assert op.cancel().state is JobState.CANCELLED
        with pytest.raises(JobCancelledError):
            op.result()
    assert [r.method for r in job.requests] == ["GET", "DELETE", "GET"][: len(job.requests)]
    assert job.cancelled


def test_submission_is_retried_with_the_same_idempotency_key() -> None:
    api = FakeAsyncAPI()
    script = api.job().completed({"once": True})
    calls = 0
    original = api._on_submit

    def flaky(request: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            import httpx

            return httpx.Response(503, headers={"Retry-After": "2"})
        return original(request)

    api.router.routes[0].side_effect = flaky
    with api, Client(api.base_url, clock=api.clock) as client:
        assert client.run("/jobs", json={}) == {"once": True}
    assert len(script.jobs) == 1
    assert api.clock.slept >= 2


def test_retry_of_a_failed_job_sync() -> None:
    api = FakeAsyncAPI()
    api.job().pending(retry_after=5).failed(code="flaky", retryable=True).pending(
        retry_after=5
    ).completed({"attempt": 2})
    with api, Client(api.base_url, clock=api.clock) as client:
        op = client.submit("/jobs", json={})
        assert op.wait().state is JobState.FAILED
        again = op.retry()
        assert again.id != op.id
        assert again.result() == {"attempt": 2}


@pytest.mark.anyio
async def test_retry_of_a_failed_job_async() -> None:
    api = FakeAsyncAPI(dialect="status-code")
    api.job().failed(code="flaky", retryable=True).completed({"attempt": 2})
    async with api, AsyncClient(api.base_url, clock=api.clock) as client:
        op = await client.submit("/jobs", json={})
        with pytest.raises(JobFailedError):
            await op.result()
        again = await op.retry()
        assert await again.result() == {"attempt": 2}


@pytest.mark.parametrize("long_poll", [True, False], ids=["held", "ignored"])
def test_long_polling_mode(long_poll: bool) -> None:
    api = FakeAsyncAPI()
    script = api.job(long_poll=long_poll).pending(retry_after=3).progress(0.5, retry_after=3)
    script.completed({"x": 1})
    with api, Client(api.base_url, clock=api.clock) as client:
        assert client.run("/jobs", json={}, mode="long-poll") == {"x": 1}
    assert all(r.url.params.get("wait") for r in script.job.polls)
    # A server that holds requests is asked again at once; one that ignores ``wait`` is
    # polled at the pace of its Retry-After hints.
    assert (api.clock.slept < 3) if long_poll else (api.clock.slept >= 6)
