"""Retries: the pure decisions (which answers are transient, how long to back off), the retry
sub-flow driven by hand (scenario tables, virtual clock), and what reaches the dialect."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import (
    ArmDialect,
    FixedInterval,
    GoogleDialect,
    JobCancelledError,
    JobFailedError,
    JobState,
    MicrosoftDialect,
    ReferenceDialect,
    RetryPolicy,
    SSEOptions,
    StatusCodeDialect,
    _flow,
)
from asyncreply_client._commands import CloseStream, ReadBytes, Send, Sleep, Tracker
from asyncreply_client._errors import TransportError
from asyncreply_client._flow import OperationState, WaitOptions
from asyncreply_client._http import HttpResponse
from asyncreply_client._retry import (
    Verdict,
    backoff,
    classify,
    is_transient_exception,
    set_testing,
)
from asyncreply_client.testing import FakeClock
from tests.client.harness import BOTH, open_client

from .flowkit import BASE, Clock, config, doc, drive, response

WALL = 1_700_000_000.0


def answer(status: int, body: object = None, **headers: str) -> HttpResponse:
    content = b"" if body is None else json.dumps(body).encode()
    hdrs = httpx.Headers(headers)
    if body is not None:
        hdrs["content-type"] = "application/json"
    return HttpResponse(status, hdrs, content, "http://h/jobs/1")


FAILED_JOB = {"jobId": "1", "state": "failed", "error": {"code": "boom"}}
CANCELLED_JOB = {"jobId": "1", "state": "cancelled"}
GOOGLE_FAILED = {"name": "operations/1", "done": True, "error": {"code": 13, "message": "x"}}
ARM_FAILED = {"id": "/ops/1", "status": "Failed", "error": {"code": "Boom", "message": "x"}}

T, J, A = Verdict.TRANSIENT, Verdict.JOB_STATE, Verdict.ANSWER


@pytest.mark.parametrize(
    ("response_", "dialect", "verdict"),
    [
        (answer(429), ReferenceDialect(), T),
        (answer(502), ReferenceDialect(), T),
        (answer(503, FAILED_JOB), StatusCodeDialect(), T),  # 503 is "try later", always
        (answer(504), ReferenceDialect(), T),
        (answer(500, {"error": {"code": "internal_error"}}), ReferenceDialect(), T),
        (answer(500, FAILED_JOB), StatusCodeDialect(), J),  # a failed job, not a fault
        (answer(500, {"error": {"code": "boom"}}), StatusCodeDialect(), J),
        (answer(409, CANCELLED_JOB), StatusCodeDialect(), J),  # a cancelled job
        (answer(409, {"error": {"code": "conflict"}}), ReferenceDialect(), A),
        (answer(500, ARM_FAILED), ArmDialect(), J),  # Azure ARM: status Failed
        (answer(500, {"status": "Failed"}), MicrosoftDialect(), J),
        (answer(500, GOOGLE_FAILED), GoogleDialect(), T),  # AIP-151 states failures in 200s
        (answer(501), ReferenceDialect(), A),
        (answer(404), ReferenceDialect(), A),
        (answer(200, {"status": "pending"}), ReferenceDialect(), A),
    ],
)
def test_each_answer_is_classified_dialect_first(
    response_: HttpResponse, dialect: Any, verdict: Verdict
) -> None:
    assert classify(response_, dialect) is verdict


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("eof"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
        (httpx.LocalProtocolError("bad"), False),
        (ValueError("x"), False),
    ],
)
def test_transient_exceptions(error: BaseException, transient: bool) -> None:
    assert is_transient_exception(error) is transient


def test_backoff_is_full_jitter_from_the_injected_source_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(initial=0.1, factor=2.0, cap=1.0)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        assert backoff(policy, attempt, rand=lambda: 0.0) == 0.0
        assert backoff(policy, attempt, rand=lambda: 0.25) == pytest.approx(ceiling / 4)
        for _ in range(20):  # the default source: uniform
            assert 0.0 <= backoff(policy, attempt) <= ceiling
    exact = RetryPolicy(initial=0.1, factor=3.0, cap=10.0, jitter=False)
    assert [backoff(exact, n, rand=lambda: 0.0) for n in (1, 2, 3)] == pytest.approx(
        [0.1, 0.3, 0.9]
    )


def test_the_servers_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    assert backoff(policy, 1, retry_after=2.0) == 2.0
    assert backoff(policy, 1, retry_after=0.0) == 0.0
    assert backoff(policy, 1, retry_after=3600.0) == 5.0


@pytest.fixture
def testing_mode() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


def test_testing_mode_removes_backoff(testing_mode: None) -> None:
    assert backoff(RetryPolicy(jitter=False), 3) == 0.0
    assert backoff(RetryPolicy(), 1, retry_after=10.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"initial": -1.0}, {"factor": 0.5}, {"cap": -1.0}, {"max_retry_after": -1}],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# the retry sub-flow, driven by hand

BUSY = response(503, headers={"Retry-After": "4"})
OK = response(200, doc("pending"))
POLICY = RetryPolicy(attempts=3, initial=0.1, factor=2.0, cap=5.0)


@pytest.mark.parametrize(
    ("replies", "retry", "sleeps", "result"),
    [
        ([BUSY, BUSY, OK], True, [4.0, 4.0], 200),
        ([BUSY, BUSY, BUSY], True, [4.0, 4.0], "3 attempts (HTTP 503)"),
        ([BUSY], False, [], "1 attempt (HTTP 503)"),
        # jitter drawn from the configuration's source (0.5): half of 0.1, then of 0.2
        ([httpx.ConnectError("no"), httpx.ReadTimeout("slow"), OK], True, [0.05, 0.1], 200),
        ([httpx.UnsupportedProtocol("ftp")], True, [], "1 attempt (UnsupportedProtocol: ftp)"),
        ([response(429, headers={"Retry-After-Ms": "1500"}), OK], True, [1.5], 200),
        ([response(429, headers={"Retry-After": "600"}), OK], True, [30.0], 200),  # capped
        ([response(501)], True, [], 501),  # not transient: the caller's answer
    ],
)
def test_the_retry_sub_flow(
    replies: list[Any], retry: bool, sleeps: list[float], result: object
) -> None:
    run = drive(_flow.send(config(retry=POLICY), "GET", "/jobs/1", retry=retry), replies)
    assert run.sleeps == sleeps
    assert len(run.sends) == len(replies)
    if isinstance(result, int):
        assert run.value.response.status_code == result
    else:
        assert isinstance(run.error, TransportError)
        assert str(run.error).endswith(f"failed after {result}")
        assert run.error.attempts == len(replies)


def test_each_attempt_is_built_afresh_with_the_credentials_of_its_origin() -> None:
    cfg = config(retry=POLICY, headers={"Authorization": "Bearer t"})
    run = drive(_flow.send(cfg, "GET", "/jobs/1"), [BUSY, OK])
    first, second = run.sends
    assert first is not second
    assert [r.headers.get("Authorization") for r in run.sends] == ["Bearer t"] * 2
    commands = [c for c in run.commands if isinstance(c, Send)]
    assert [c.auth for c in commands] == [httpx.USE_CLIENT_DEFAULT] * 2
    elsewhere = drive(_flow.send(cfg, "GET", "https://other.test/x"), [BUSY, OK])
    assert [c.auth for c in elsewhere.commands if isinstance(c, Send)] == [None, None]
    assert [r.headers.get("Authorization") for r in elsewhere.sends] == [None, None]


def test_an_http_date_retry_after_is_measured_from_the_configured_wall_clock() -> None:
    busy = response(503, headers={"Retry-After": formatdate(WALL + 7, usegmt=True)})
    run = drive(_flow.send(config(retry=POLICY, wall=WALL), "GET", "/jobs/1"), [busy, OK])
    assert run.sleeps == [7.0]


def test_a_streamed_transient_answer_is_read_whole_then_retried() -> None:
    cfg = config(retry=POLICY)
    busy = response(503)  # its body (unread) holds the hint
    flow = _flow.send(cfg, "GET", "/jobs/1/file", stream=True)
    run = drive(flow, [busy, b'{"retryAfter": ', b"3}", None, response(200)])
    kinds = [type(c) for c in run.commands]
    assert kinds == [Send, ReadBytes, ReadBytes, ReadBytes, CloseStream, Sleep, Send]
    assert run.sleeps == [3.0] and run.value.response.status_code == 200


def _polled_state() -> OperationState:
    return OperationState(status_url=BASE + "/jobs/1", seen=True)


@pytest.mark.parametrize(
    ("hint", "sleeps", "sends", "ends"),
    [
        ("2", [2.0], 2, "pending"),  # within the deadline: retried
        ("10", [], 1, "gave up"),  # the retry would come after the deadline: final now
    ],
)
def test_retries_never_wait_past_the_deadline(
    hint: str, sleeps: list[float], sends: int, ends: str
) -> None:
    clock = Clock()
    cfg = config(clock=clock, retry=POLICY)
    busy = response(503, headers={"Retry-After": hint})
    flow = _flow.refresh(cfg, _polled_state(), deadline=clock.t + 5)
    run = drive(flow, [busy, OK][:sends], clock=clock)
    assert run.sleeps == sleeps and len(run.sends) == sends
    if ends == "pending":
        assert run.value.state is JobState.PENDING
    else:
        assert isinstance(run.error, TransportError) and run.error.attempts == 1


def test_testing_mode_retries_without_sleeping(testing_mode: None) -> None:
    run = drive(_flow.send(config(retry=POLICY), "GET", "/jobs/1"), [BUSY, BUSY, OK])
    assert run.sleeps == [] and run.value.response.status_code == 200


def test_an_event_stream_refused_with_a_transient_answer_is_a_drop() -> None:
    """The stream request goes through the sub-flow (one attempt): a 503 is a drop to
    reconnect from, not a refusal to fall back on."""
    clock = Clock()
    cfg = config(clock=clock, retry=POLICY)
    stream_ok = response(200, headers={"content-type": "text/event-stream"})
    event = b'event: status\ndata: {"jobId": "1", "status": "completed"}\n\n'
    flow = _flow.open_stream(cfg, BASE + "/jobs/1/events", headers={}, timeout={})
    run = drive(flow, [BUSY, None])  # its body is read (empty) before deciding
    assert isinstance(run.error, TransportError) and run.error.attempts == 1
    state = OperationState(status_url=BASE + "/jobs/1", events_url=BASE + "/jobs/1/events")
    cfg = dataclasses.replace(cfg, sse=SSEOptions(retry_delay=0.5))
    waited = drive(
        _flow.wait(cfg, state, WaitOptions(mode="sse"), Tracker()),
        [BUSY, None, stream_ok, event],
        clock=clock,
    )
    assert waited.sleeps == [0.5] and waited.value.state is JobState.COMPLETED


# --------------------------------------------------------------------------------------------
# answers that are not faults reach the dialect (both clients, respx)

API = "https://api.test"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("key", [None, "k1"])
@pytest.mark.parametrize(
    ("code", "body", "state", "error"),
    [
        (500, {"state": "failed", "error": {"code": "bad_input"}}, "failed", JobFailedError),
        (409, {"state": "cancelled"}, "cancelled", JobCancelledError),
    ],
)
async def test_a_submit_answered_with_a_terminal_job_state_reaches_the_dialect(
    flavor: str,
    router: respx.MockRouter,
    key: str | None,
    code: int,
    body: dict[str, Any],
    state: str,
    error: type[Exception],
) -> None:
    """A status-code server answers 500 ``{"state": "failed"}`` to the submission of a job
    that failed at once (409 for a cancelled one): that is the job's state, not a fault to
    retry nor a rejection."""
    route = router.post(f"{API}/jobs").mock(return_value=httpx.Response(code, json=body))
    options: dict[str, Any] = {
        "clock": FakeClock(),
        "polling": FixedInterval(1.0),
        "dialect": StatusCodeDialect(),
        "retry": RetryPolicy(attempts=3),
    }
    async with open_client(flavor, API, **options) as (client, call):
        op = await call(client.submit, "/jobs", json={}, idempotency_key=key)
        assert op.status.state is JobState(state)
        with pytest.raises(error):
            await call(op.result)
    assert route.call_count == 1


def test_with_retries_and_redirects_off_every_answer_is_the_callers_and_recorded() -> None:
    """The contract checker's settings: one attempt, raw answers, a record of each."""
    seen: list[tuple[str, object]] = []
    cfg = dataclasses.replace(
        config(retry=POLICY),
        retry=None,
        follow_redirects=False,
        record=lambda request, outcome: seen.append((str(request.url), outcome)),
    )
    moved = response(302, headers={"Location": "/elsewhere"})
    run = drive(_flow.send(cfg, "GET", "/jobs/1"), [BUSY])
    assert run.value.response is BUSY and run.value.verdict is Verdict.TRANSIENT
    run = drive(_flow.send(cfg, "GET", "/jobs/1"), [moved])
    assert run.value.response is moved and len(run.sends) == 1
    refused = httpx.ConnectError("refused")
    run = drive(_flow.send(cfg, "GET", "/jobs/1"), [refused])
    assert isinstance(run.error, TransportError) and run.error.__cause__ is refused
    url = BASE + "/jobs/1"
    assert seen == [(url, BUSY), (url, moved), (url, refused)]
