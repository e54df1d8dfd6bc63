"""RetryPolicy in tenacity's words: tenacity's own ``stop=`` / ``wait=`` / ``retry=`` /
``before_sleep=`` objects drive the retry sub-flow by hand (scripted replies, a virtual
clock: ``stop_after_delay`` measures the flow's clock, not the process's); a refused
connection's time budget (``connect_for``); what a ``TransportError`` carries to submit
again safely (the ``Idempotency-Key``, the request)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
import tenacity

from asyncreply_client import RetryEvent, RetryPolicy, TransportError, _flow, retry_if_transient
from asyncreply_client._commands import Sleep
from asyncreply_client._retry import set_testing
from asyncreply_client.testing import FakeClock
from tests.client.harness import BOTH, open_client

from .flowkit import Clock, config, doc, drive, response

OK = response(200, doc("pending"))
BUSY = response(503)  # no Retry-After: the policy's wait decides
HINTED = response(503, headers={"Retry-After": "4"})
MISSING = response(404, {"error": {"code": "not_found"}})


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


@pytest.fixture
def testing_mode() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


# --------------------------------------------------------------------------------------------
# tenacity's strategies, on the flow's clock


def test_stop_after_delay_measures_the_flows_clock() -> None:
    """The process's clock hardly moves during this test: only the virtual one can stop it."""
    clock = Clock()
    policy = RetryPolicy(stop=tenacity.stop_after_delay(5), wait=tenacity.wait_fixed(2))
    flow = _flow.send(config(clock=clock, retry=policy), "GET", "/jobs/1")
    run = drive(flow, [BUSY] * 4, clock=clock)
    # attempts at t+0, t+2, t+4, t+6: the fourth is 6 s after the first, past 5 s
    assert run.sleeps == [2.0, 2.0, 2.0]
    assert isinstance(run.error, TransportError) and run.error.attempts == 4


def test_stop_after_attempt_and_a_custom_wait() -> None:
    policy = RetryPolicy(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(multiplier=1, min=0, max=10),
    )
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [BUSY, BUSY, BUSY])
    assert run.sleeps == [1.0, 2.0]
    assert isinstance(run.error, TransportError)
    assert str(run.error).endswith("failed after 3 attempts (HTTP 503)")


def test_the_servers_retry_after_still_wins_over_a_custom_wait_capped() -> None:
    policy = RetryPolicy(wait=tenacity.wait_fixed(1.5), max_retry_after=3.0)
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [HINTED, BUSY, OK])
    assert run.sleeps == [3.0, 1.5] and run.value.response.status_code == 200


def test_testing_mode_zeroes_a_custom_wait_too(testing_mode: None) -> None:
    policy = RetryPolicy(wait=tenacity.wait_fixed(7))
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [BUSY, OK])
    assert run.sleeps == [] and run.value.response.status_code == 200


def test_an_answer_is_judged_with_retry_if_result() -> None:
    policy = RetryPolicy(
        attempts=3,
        retry=retry_if_transient | tenacity.retry_if_result(lambda a: a.status_code == 404),
    )
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [MISSING, BUSY, OK])
    assert len(run.sends) == 3 and run.value.response.status_code == 200
    # Given up on a 404: the answer is the caller's (a 404, not a transport fault).
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [MISSING] * 3)
    assert len(run.sends) == 3 and run.value.response.status_code == 404


def test_a_narrower_retry_strategy_retries_only_what_it_names() -> None:
    policy = RetryPolicy(retry=tenacity.retry_if_exception_type(httpx.ReadTimeout))
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [BUSY])
    assert isinstance(run.error, TransportError) and run.error.attempts == 1
    slow = httpx.ReadTimeout("slow")
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [slow, OK])
    assert len(run.sends) == 2 and run.value.response.status_code == 200
    broken = httpx.RemoteProtocolError("eof")
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [broken])
    assert isinstance(run.error, TransportError) and run.error.__cause__ is broken


def test_the_waits_deadline_stops_retries_whatever_the_stop_strategy() -> None:
    clock = Clock()
    policy = RetryPolicy(stop=tenacity.stop_never)
    state = _flow.OperationState(status_url="http://api.test/jobs/1", seen=True)
    flow = _flow.refresh(config(clock=clock, retry=policy), state, deadline=clock.t + 5)
    run = drive(flow, [HINTED, response(503, headers={"Retry-After": "2"})], clock=clock)
    # 4 s fits before the deadline, 2 s more would not (t+6 > t+5): final at once.
    assert run.sleeps == [4.0]
    assert isinstance(run.error, TransportError) and run.error.attempts == 2


def test_tenacitys_own_before_sleep_hook_works(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.retries")
    hook = tenacity.before_sleep_log(logging.getLogger("test.retries"), logging.INFO)
    policy = RetryPolicy(before_sleep=hook)
    drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [HINTED, refused(), OK])
    lines = [r.getMessage() for r in caplog.records if r.name == "test.retries"]
    assert len(lines) == 2
    assert re.fullmatch(
        r"Retrying \S+ in 4(\.0)? seconds as it returned Answer\(HTTP 503, transient\)\.",
        lines[0],
    )
    assert "as it raised ConnectError: connection refused" in lines[1]


def test_a_retry_event_is_a_snapshot_of_tenacitys_state() -> None:
    seen: list[RetryEvent] = []
    policy = RetryPolicy(before_sleep=seen.append)
    drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [HINTED, HINTED, OK])
    first, second = seen
    assert isinstance(first, tenacity.RetryCallState)
    assert (first.attempt, first.attempt_number, first.delay) == (1, 1, 4.0)
    assert (second.attempt, second.attempt_number, second.idle_for) == (2, 2, 8.0)
    assert first.next_action is not None and first.next_action.sleep == 4.0
    assert first.outcome is not None and first.outcome.result().status_code == 503
    assert first.retry_after and first.cause == "HTTP 503"


def test_a_policy_shows_its_strategies_and_compares_by_them() -> None:
    stop = tenacity.stop_after_delay(9)
    policy = RetryPolicy(stop=stop, before_sleep=print)
    assert repr(policy).startswith("RetryPolicy(attempts=4, ")
    assert f"stop={stop!r}" in repr(policy) and "before_sleep" not in repr(policy)
    assert policy == RetryPolicy(stop=stop) != RetryPolicy()
    assert "stop=" not in repr(RetryPolicy())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"stop": 3}, TypeError),
        ({"wait": "fast"}, TypeError),
        ({"retry": True}, TypeError),
        ({"connect_for": -1.0}, ValueError),
        ({"attempts": 2.5}, TypeError),
    ],
)
def test_bad_strategies_are_refused_at_construction(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RetryPolicy(**kwargs)


# --------------------------------------------------------------------------------------------
# A refused connection: retried for connect_for seconds (a server restarting)


def test_a_refused_connection_is_retried_for_connect_for_seconds() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=2, initial=1.0, factor=1.0, cap=1.0, jitter=False)
    policy = RetryPolicy(**{**_fields(policy), "connect_for": 3.5})
    flow = _flow.send(config(clock=clock, retry=policy), "GET", "/jobs/1")
    run = drive(flow, [refused()] * 5, clock=clock)
    # uncounted for 3.5 s (the last wait cut to end with it: 0.5); refused again at its
    # end: the server is not back, the fault is final
    assert run.sleeps == [1.0, 1.0, 1.0, 0.5] and clock.t == 1003.5
    assert isinstance(run.error, TransportError) and run.error.attempts == 5


def test_a_refused_connection_after_other_faults_still_gets_its_budget() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=2, initial=1.0, factor=1.0, cap=1.0, jitter=False)
    flow = _flow.send(config(clock=clock, retry=policy), "GET", "/jobs/1")
    run = drive(flow, [httpx.ReadError("cut"), refused(), refused(), OK], clock=clock)
    # the cut counts (1 of 2 attempts); the refusals that follow do not
    assert run.sleeps == [1.0, 1.0, 1.0] and run.value.response.status_code == 200


def test_a_server_back_within_connect_for_answers_the_same_request() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=2, initial=1.0, jitter=False)
    flow = _flow.send(config(clock=clock, retry=policy), "GET", "/jobs/1")
    run = drive(flow, [refused(), refused(), refused(), OK], clock=clock)
    assert run.value.response.status_code == 200 and clock.t == pytest.approx(1007.0)


def test_other_faults_count_against_attempts_at_once() -> None:
    policy = RetryPolicy(attempts=2, initial=0.0)
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [httpx.ReadError("x")] * 2)
    assert isinstance(run.error, TransportError) and run.error.attempts == 2


@pytest.mark.parametrize(
    ("policy", "tries"),
    [
        (RetryPolicy(attempts=1), 1),  # never retries
        (RetryPolicy(attempts=2, connect_for=0.0), 2),  # refused counts at once
        (RetryPolicy(stop=tenacity.stop_after_attempt(2)), 2),  # stop= replaces connect_for
    ],
    ids=["attempts-1", "connect-for-0", "own-stop"],
)
def test_when_connect_for_does_not_apply(policy: RetryPolicy, tries: int) -> None:
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [refused()] * tries)
    assert isinstance(run.error, TransportError) and run.error.attempts == tries


def test_testing_mode_counts_a_refused_connection_at_once(testing_mode: None) -> None:
    run = drive(_flow.send(config(retry=RetryPolicy()), "GET", "/jobs/1"), [refused()] * 4)
    assert isinstance(run.error, TransportError) and run.error.attempts == 4


def test_a_frozen_clock_and_no_backoff_cannot_spin_for_ever() -> None:
    policy = RetryPolicy(attempts=2, initial=0.0)
    run = drive(_flow.send(config(retry=policy), "GET", "/jobs/1"), [refused()] * 65)
    assert isinstance(run.error, TransportError) and run.error.attempts == 65
    assert not [c for c in run.commands if isinstance(c, Sleep)]


def _fields(policy: RetryPolicy) -> dict[str, Any]:
    return {
        name: getattr(policy, name)
        for name in ("attempts", "initial", "factor", "cap", "jitter", "max_retry_after")
    }


# --------------------------------------------------------------------------------------------
# Submitting again safely: the error carries the key


def test_a_lost_submission_answer_carries_its_key_and_request() -> None:
    policy = RetryPolicy(attempts=2, initial=0.0, connect_for=0.0)
    flow = _flow.submit(config(retry=policy), "/jobs", json={"n": 1}, idempotency_key="k-1")
    run = drive(flow, [httpx.ReadError("lost"), httpx.ReadError("lost")])
    error = run.error
    assert isinstance(error, TransportError) and error.operation is None
    assert error.idempotency_key == "k-1"
    assert error.request is not None and error.request.method == "POST"
    assert error.request.headers["Idempotency-Key"] == "k-1"
    assert error.request.content == b'{"n":1}'


def test_a_polls_transport_error_has_no_key() -> None:
    run = drive(_flow.send(config(), "GET", "/jobs/1"), [BUSY])
    assert isinstance(run.error, TransportError) and run.error.idempotency_key is None


API = "https://api.test"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.mark.anyio
@BOTH
async def test_run_again_with_the_errors_key_is_the_same_job(
    flavor: str, router: respx.MockRouter
) -> None:
    lost = httpx.ReadError("the answer was lost")
    done = httpx.Response(200, json={"id": "j1", "status": "completed", "result": {"ok": 1}})
    route = router.post(f"{API}/jobs").mock(side_effect=[lost, lost, done])
    retry = RetryPolicy(attempts=2, initial=0.0, connect_for=0.0)
    async with open_client(flavor, API, retry=retry, clock=FakeClock()) as (client, call):
        with pytest.raises(TransportError) as info:
            await call(client.run, "/jobs", json={"n": 1})
        key = info.value.idempotency_key
        assert key is not None and info.value.operation is None
        result = await call(client.run, "/jobs", json={"n": 1}, idempotency_key=key)
    assert result == {"ok": 1}
    keys = [c.request.headers["Idempotency-Key"] for c in route.calls]
    assert keys == [key, key, key]  # every attempt, and the application's second call
