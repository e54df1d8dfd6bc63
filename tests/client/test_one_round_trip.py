"""``run()`` in one round trip (issue 11): its submission asks the server to hold the answer
(``Prefer: wait=N``, RFC 7240), so an instant job costs one request on an inline-completion
server and two behind a 303; a held answer that is not final starts the wait at once; and a
first long poll goes out a little before the hinted time, so the server's answer, not the
client's timer, marks the job's end. Flows by hand, then both clients on the reference
server and on respx shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import FixedInterval, WaitTimeoutError, _flow
from asyncreply_client._admission import is_held
from asyncreply_client._commands import Tracker
from asyncreply_client._flow import OperationState, WaitOptions
from asyncreply_client._models import JobState, JobStatus
from asyncreply_client.pytest_plugin import RunningReferenceServer
from asyncreply_client.testing import FakeClock
from tests.client.flowkit import BASE, Clock, config, doc, drive, response
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------------------------
# The submission flow


def _submit(hold: float | None, **kwargs: Any) -> tuple[Any, httpx.Request]:
    cfg = kwargs.pop("cfg", None) or config()
    answer = kwargs.pop("answer", None) or response(202, doc("pending"), method="POST")
    run = drive(_flow.submit(cfg, "/jobs", json={}, hold=hold, **kwargs), [answer])
    assert run.error is None, run.error
    assert cfg.streams.open == 0  # the held submission's stream budget is given back
    return run.value, run.sends[0]


@pytest.mark.parametrize(("hold", "prefer"), [(7.9, "wait=7"), (1.0, "wait=1"), (30, "wait=30")])
def test_a_held_submission_asks_to_wait_whole_seconds(hold: float, prefer: str) -> None:
    _, request = _submit(hold)
    assert request.headers["Prefer"] == prefer
    assert is_held(request)  # a long-lived request: the stream lane
    read = request.extensions["timeout"]["read"]
    assert read >= int(prefer.split("=")[1]) + 5  # the read outlasts the hold


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hold": None},
        {"hold": 0.5},  # under a second: RFC 7240 wait is whole seconds
        {"hold": 5, "headers": {"prefer": "respond-async"}},  # the caller's own Prefer
        {"hold": 5, "cfg": config(streams=0)},  # no stream budget left
    ],
    ids=["submit", "short-timeout", "own-prefer", "no-budget"],
)
def test_a_submission_is_not_held(kwargs: dict[str, Any]) -> None:
    _, request = _submit(**kwargs)
    assert request.headers.get("Prefer", "") in ("", "respond-async")
    assert not is_held(request)


def test_a_held_answer_that_is_not_final_starts_the_wait_at_once() -> None:
    headers = {"Retry-After": "30", "Preference-Applied": "wait=7"}
    held, _ = _submit(7, answer=response(202, doc("pending"), headers=headers, method="POST"))
    assert held.first_delay is None
    plain, _ = _submit(7, answer=response(202, doc("pending"), headers={"Retry-After": "30"}))
    assert plain.first_delay == 30


# --------------------------------------------------------------------------------------------
# The first long poll


def _first_wait(first_delay: float, mode: str) -> list[float]:
    clock = Clock()
    cfg = config(clock=clock)
    state = OperationState(status_url=BASE + "/jobs/1", seen=True, first_delay=first_delay)
    state.learn(JobStatus(id="1", state=JobState.PENDING))
    flow = _flow.wait(cfg, state, WaitOptions(timeout=60, mode=mode), Tracker())
    run = drive(flow, [response(200, doc("completed", result=1))], clock=clock)
    assert run.error is None, run.error
    return run.sleeps


def test_a_first_long_poll_leads_the_hint_so_it_is_held_across_it() -> None:
    assert _first_wait(0.4, "long-poll") == [pytest.approx(0.35)]
    assert _first_wait(0.1, "long-poll") == [pytest.approx(0.075)]  # a quarter at most
    assert _first_wait(0.4, "poll") == [pytest.approx(0.4)]  # a plain poll: the hint


# --------------------------------------------------------------------------------------------
# Both clients, the reference server


@BOTH
@pytest.mark.parametrize(
    ("reference_server", "requests"),
    [({"completion_style": "inline"}, 1), ({"completion_style": "redirect"}, 2)],
    indirect=["reference_server"],
    ids=["inline", "redirect"],
)
@pytest.mark.parametrize("mode", ["auto", "poll", "long-poll"])
async def test_run_of_an_instant_job_is_one_round_trip(
    flavor: str, mode: str, requests: int, reference_server: RunningReferenceServer
) -> None:
    admin = reference_server.admin
    job = {"type": "echo", "input": {"message": "hi"}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        before = admin.request_count
        result = await call(client.run, "/jobs", json=job, mode=mode, timeout=20)
        assert admin.request_count - before == requests
    assert result == {"message": "hi"}


@BOTH
@pytest.mark.parametrize("reference_server", [{"completion_style": "inline"}], indirect=True)
async def test_progress_callbacks_see_the_end_of_a_job_finished_within_the_submission(
    flavor: str, reference_server: RunningReferenceServer
) -> None:
    seen: list[JobState] = []
    client_seen: list[JobState] = []
    job = {"type": "echo", "input": {"message": "hi"}}
    options = {"on_progress": lambda status: client_seen.append(status.state)}
    async with open_client(flavor, reference_server.base_url, **options) as (client, call):
        await call(
            client.run, "/jobs", json=job, timeout=20, on_progress=lambda s: seen.append(s.state)
        )
    assert seen == client_seen == [JobState.COMPLETED]


# --------------------------------------------------------------------------------------------
# Both clients, respx: a server that applies the preference without finishing

API = "https://api.test"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@BOTH
async def test_after_a_held_submission_a_long_poll_goes_out_at_once(
    flavor: str, router: respx.MockRouter
) -> None:
    held = httpx.Response(
        202,
        headers={"Location": "/jobs/1", "Retry-After": "30", "Preference-Applied": "wait=10"},
        json={"jobId": "1", "status": "running"},
    )
    submit = router.post(f"{API}/jobs").mock(return_value=held)
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(
            200,
            headers={"Preference-Applied": "wait=20"},
            json={"jobId": "1", "status": "completed", "result": 7},
        )
    )
    clock = FakeClock()
    async with open_client(flavor, API, clock=clock, polling=FixedInterval(1.0)) as (
        client,
        call,
    ):
        assert await call(client.run, "/jobs", json={}, mode="long-poll", timeout=60) == 7
    assert submit.calls[0].request.headers["Prefer"] == "wait=10"
    assert clock.now() == 0  # neither the 202's Retry-After nor anything else was slept


@BOTH
async def test_run_timeout_covers_the_held_submission(
    flavor: str, router: respx.MockRouter
) -> None:
    clock = FakeClock()

    def slow_submit(request: httpx.Request) -> httpx.Response:
        clock.advance(4.0)  # the server held the submission 4 s, then answered 202
        return httpx.Response(
            202, headers={"Location": "/jobs/1"}, json={"jobId": "1", "status": "running"}
        )

    router.post(f"{API}/jobs").mock(side_effect=slow_submit)
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(200, json={"jobId": "1", "status": "running"})
    )
    async with open_client(flavor, API, clock=clock, polling=FixedInterval(0.5)) as (
        client,
        call,
    ):
        with pytest.raises(WaitTimeoutError):
            await call(client.run, "/jobs", json={}, mode="poll", timeout=5)
    assert clock.now() == pytest.approx(5.0)  # 4 s held + 1 s of waiting, not 4 + 5
