"""The pure flows, driven by hand with scripted replies (no sockets, no clocks)."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from asyncreply_client import _flow, _outcomes
from asyncreply_client._commands import ReadBytes, Send, Tracker
from asyncreply_client._errors import (
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    ProtocolError,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
)
from asyncreply_client._flow import OperationState, WaitOptions
from asyncreply_client._models import JobState, JobStatus, ResultFile
from asyncreply_client._retry import RetryPolicy

from .flowkit import BASE, Clock, Fixed, config, doc, drive, response, transport_error

ACCEPTED = response(
    202,
    doc("pending", eventsUrl="/jobs/1/events", cancelUrl="/jobs/1"),
    headers={"Location": "/jobs/1", "Retry-After": "1", "Retry-After-Ms": "250"},
    url=BASE + "/jobs",
    method="POST",
)


def submitted(clock: Clock | None = None, **cfg: Any) -> tuple[_flow.FlowConfig, OperationState]:
    cfg_ = config(clock=clock, **cfg)
    run = drive(_flow.submit(cfg_, "/jobs", json={"type": "t"}, idempotency_key="k1"), [ACCEPTED])
    assert run.error is None
    return cfg_, run.value


def state_at(status: str = "pending", *, seen: bool = True) -> OperationState:
    state = OperationState(status_url=BASE + "/jobs/1", seen=seen)
    if seen:
        state.learn(JobStatus(id="1", state=JobState(status)))
    return state


# --------------------------------------------------------------------------------------------
# submit


def test_only_the_submission_waits_behind_operations_under_way() -> None:
    cfg, state = submitted()
    submit = drive(_flow.submit(cfg, "/jobs", json={}, idempotency_key="k"), [ACCEPTED])
    check = drive(_flow.refresh(cfg, state), [response(200, doc("processing"))])
    assert [c.submission for c in submit.commands if isinstance(c, Send)] == [True]
    assert [c.submission for c in check.commands if isinstance(c, Send)] == [False]


def test_submit_builds_the_request_and_reads_the_202() -> None:
    cfg = config()
    body = {"type": "t", "input": {"n": 1}}
    run = drive(_flow.submit(cfg, "/jobs", json=body, idempotency_key="k1"), [ACCEPTED])
    state = run.value
    [request] = run.sends
    command = run.commands[0]
    assert isinstance(command, Send) and not command.stream
    assert request.method == "POST" and str(request.url) == BASE + "/jobs"
    assert request.headers["Idempotency-Key"] == "k1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == body
    assert state.status_url == BASE + "/jobs/1"
    assert state.events_url == BASE + "/jobs/1/events"
    assert state.id == "1" and state.seen
    assert state.first_delay == 0.25  # Retry-After-Ms wins over the coarse Retry-After
    assert state.last.state is JobState.PENDING


def test_a_later_snapshot_releases_the_submission_one() -> None:
    _, state = submitted()
    assert state.submission is not None
    first = state.submission.status
    assert state.last is first and first.state is JobState.PENDING
    later = JobStatus(id="1", state=JobState.PROCESSING)
    state.learn(later)
    # Only the latest snapshot is kept: the submission's URLs stay, its first snapshot goes.
    assert state.last is later and state.submission.status is later
    assert state.submission.status_url == BASE + "/jobs/1"
    assert state.submission.retry_after == 0.25


@pytest.mark.parametrize(("key", "sends"), [(None, 1), ("k", 2)])
def test_a_submit_is_retried_only_with_an_idempotency_key(key: str | None, sends: int) -> None:
    cfg = config(retry=RetryPolicy(attempts=3))
    busy = response(503, headers={"Retry-After": "1"}, method="POST")
    replies: list[Any] = [busy, ACCEPTED] if key else [busy]
    run = drive(_flow.submit(cfg, "/jobs", json={}, idempotency_key=key), replies)
    assert len(run.sends) == sends
    assert [r.headers.get("Idempotency-Key") for r in run.sends] == [key] * sends
    if key is None:
        assert isinstance(run.error, TransportError) and run.error.attempts == 1
    else:
        assert run.sleeps == [1.0] and run.value.status_url == BASE + "/jobs/1"


def test_callback_is_merged_into_a_copy_of_the_body() -> None:
    body = {"type": "t"}
    hook = {"url": "http://hooks.test/h", "events": ["completed"]}
    run = drive(
        _flow.submit(config(), "/jobs", json=body, idempotency_key="k", callback=hook), [ACCEPTED]
    )
    assert json.loads(run.sends[0].content) == {"type": "t", "callback": hook}
    assert body == {"type": "t"}
    run = drive(
        _flow.submit(config(), "/jobs", json=body, idempotency_key="k", callback="http://h/x"),
        [ACCEPTED],
    )
    assert json.loads(run.sends[0].content)["callback"] == {"url": "http://h/x"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"json": {}, "content": b"x"}, ValueError),
        ({"json": [1], "callback": "http://h/x"}, TypeError),
        ({"json": {}, "callback": {"events": []}}, ValueError),
    ],
)
def test_submit_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    run = drive(_flow.submit(config(), "/jobs", idempotency_key=None, **kwargs), [])
    assert isinstance(run.error, error)


def test_a_4xx_on_submit_is_rejected_with_the_server_error() -> None:
    err = {"error": {"code": "unknown_type", "message": "no such type"}}
    run = drive(
        _flow.submit(config(), "/jobs", json={}, idempotency_key="k"),
        [response(400, err, url=BASE + "/jobs")],
    )
    assert isinstance(run.error, SubmissionRejectedError)
    assert run.error.status_code == 400
    assert run.error.error == err["error"]
    assert "unknown_type" in str(run.error)


def test_a_303_on_submit_is_an_operation_already_done() -> None:
    run = drive(
        _flow.submit(config(), "/jobs", json={}, idempotency_key="k"),
        [response(303, headers={"Location": "/results/9"}, url=BASE + "/jobs")],
    )
    state = run.value
    assert state.last.state is JobState.COMPLETED
    assert state.last.result_url == BASE + "/results/9"
    assert len(run.sends) == 1  # a 303 is not followed blindly


def test_unexpected_5xx_on_submit_is_a_protocol_error() -> None:
    run = drive(
        _flow.submit(config(), "/jobs", json={}, idempotency_key="k"),
        [response(501, content=b"nope", url=BASE + "/jobs")],
    )
    assert isinstance(run.error, ProtocolError) and run.error.status_code == 501


# --------------------------------------------------------------------------------------------
# redirects


def redirect(code: int, location: str | None, url: str) -> Any:
    headers = {} if location is None else {"Location": location}
    return response(code, headers=headers, url=url)


@pytest.mark.parametrize(
    ("code", "method", "has_body"), [(307, "POST", True), (308, "POST", True), (302, "GET", False)]
)
def test_submit_follows_redirects(code: int, method: str, has_body: bool) -> None:
    run = drive(
        _flow.submit(config(), "/jobs", json={"a": 1}, idempotency_key="k"),
        [redirect(code, "/v2/jobs", BASE + "/jobs"), ACCEPTED],
    )
    assert run.error is None
    second = run.sends[1]
    assert second.method == method and str(second.url) == BASE + "/v2/jobs"
    assert bool(second.content) is has_body
    assert ("content-type" in second.headers) is has_body


@pytest.mark.parametrize(
    ("replies", "message"),
    [
        ([redirect(307, "/b", BASE + "/a"), redirect(307, "/a", BASE + "/b")], "loop"),
        ([redirect(307, None, BASE + "/a")], "without a Location"),
        ([redirect(307, "file:///etc/passwd", BASE + "/a")], "unusable Location"),
        ([redirect(307, f"/r{i}", BASE + "/x") for i in range(3)], "more than 2 redirects"),
    ],
)
def test_bad_redirects_are_protocol_errors(replies: list[Any], message: str) -> None:
    run = drive(_flow.submit(config(max_redirects=2), "/a", json={}, idempotency_key="k"), replies)
    assert isinstance(run.error, ProtocolError)
    assert message in str(run.error)


def test_credentials_and_call_headers_stay_on_their_origin() -> None:
    cfg = config(headers={"Authorization": "Bearer s3cret", "X-Api-Key": "k"})
    run = drive(
        _flow.submit(cfg, "/jobs", json={}, idempotency_key="k", headers={"X-Call": "1"}),
        [redirect(307, "https://elsewhere.test/jobs", BASE + "/jobs"), ACCEPTED],
    )
    first, second = run.sends
    assert first.headers["Authorization"] == "Bearer s3cret"
    assert first.headers["X-Api-Key"] == "k" and first.headers["X-Call"] == "1"
    for name in ("Authorization", "X-Api-Key", "X-Call"):
        assert name not in second.headers
    assert second.headers["Idempotency-Key"] == "k"  # protocol headers go everywhere


def test_trusted_origins_receive_the_credentials() -> None:
    cfg = config(headers={"Authorization": "Bearer s"}, trusted=("https://files.test",))
    assert cfg.requests.build("GET", "https://files.test/r").headers["Authorization"] == "Bearer s"
    assert "Authorization" not in cfg.requests.build("GET", "https://files.test:8443/r").headers
    assert cfg.requests.auth_for("https://other.test/") is None


# --------------------------------------------------------------------------------------------
# wait


def status(state: str, **extra: Any) -> Any:
    return response(200, doc(state, **extra))


def test_wait_honours_the_first_retry_after_then_the_policy_and_reports_each_change() -> None:
    clock = Clock()
    policy = Fixed(delay=2.0)
    cfg, state = submitted(clock, polling=policy)
    half = {"current": 1, "total": 2, "message": "half"}
    replies = [
        status("pending"),
        status("processing", progress=half),
        status("processing", progress=half),
        status("completed", result={"ok": True}),
    ]
    run = drive(
        _flow.wait(cfg, state, WaitOptions(mode="poll"), Tracker(state.last)), replies, clock=clock
    )
    assert run.value.state is JobState.COMPLETED
    assert run.sleeps == [0.25, 2.0, 2.0, 2.0]
    assert [s.state for s in run.emitted] == [JobState.PROCESSING, JobState.COMPLETED]
    assert [o.polls for o in policy.seen] == [0, 1, 2, 3]
    assert state.first_delay is None


def test_retry_after_zero_means_poll_now() -> None:
    cfg = config()
    state = state_at()
    state.first_delay = 0.0
    run = drive(_flow.wait(cfg, state, WaitOptions(mode="poll"), Tracker()), [status("completed")])
    assert run.sleeps == []


def test_wait_never_sleeps_past_the_deadline_and_checks_once_more() -> None:
    clock = Clock()
    cfg = config(clock=clock, polling=Fixed(delay=10.0))
    state = state_at("processing")
    run = drive(
        _flow.wait(cfg, state, WaitOptions(timeout=3.0, mode="poll"), Tracker()),
        [status("processing")],
        clock=clock,
    )
    assert run.sleeps == [3.0]
    assert isinstance(run.error, WaitTimeoutError)
    assert run.error.status is not None and run.error.status.state is JobState.PROCESSING


def test_wait_returns_at_once_for_a_terminal_operation() -> None:
    run = drive(_flow.wait(config(), state_at("failed"), WaitOptions(), Tracker()), [])
    assert run.value.state is JobState.FAILED and run.commands == []


def test_long_polling_asks_the_server_to_hold_within_the_deadline() -> None:
    clock = Clock()
    cfg = config(clock=clock)
    state = state_at("processing")
    run = drive(
        _flow.wait(cfg, state, WaitOptions(timeout=5.5, mode="long-poll"), Tracker()),
        [status("completed")],
        clock=clock,
    )
    [request] = run.sends
    assert request.url.params["wait"] == "5.5"
    assert request.headers["Prefer"] == "wait=5"
    assert request.extensions["timeout"]["read"] > 5.5


def test_a_transport_error_during_a_wait_propagates() -> None:
    run = drive(
        _flow.wait(config(), state_at(), WaitOptions(mode="poll"), Tracker()), [transport_error()]
    )
    assert isinstance(run.error, TransportError)


@pytest.mark.parametrize(
    ("seen", "code", "error"),
    [(False, 404, JobNotFoundError), (True, 404, JobExpiredError), (False, 410, JobExpiredError)],
)
def test_gone_jobs(seen: bool, code: int, error: type[Exception]) -> None:
    state = state_at(seen=seen)
    state.answered = seen  # a 404 is "vanished" only after the status URL answered
    run = drive(_flow.refresh(config(), state), [response(code, {"error": {"code": "x"}})])
    assert type(run.error) is error


def test_sse_mode_without_an_events_url_is_a_clear_error() -> None:
    # One status request first (it could announce the events URL); this one does not.
    replies = [status("processing")]
    run = drive(_flow.wait(config(), state_at(), WaitOptions(mode="sse"), Tracker()), replies)
    assert isinstance(run.error, ProtocolError) and "events URL" in str(run.error)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        WaitOptions(mode="push")


def test_auto_mode_follows_the_event_stream_and_falls_back_to_polling() -> None:
    clock = Clock()
    cfg = config(clock=clock, polling=Fixed(delay=0.5))
    state = state_at("pending")
    state.events_url = BASE + "/jobs/1/events"
    stream_ok = response(200, headers={"content-type": "text/event-stream"})
    progress = doc("processing", progress={"current": 1, "total": 2})
    replies = [
        stream_ok,
        f"event: progress\ndata: {json.dumps(progress)}\n\n".encode(),
        None,  # the stream ends before the job: a drop; max_reconnects=0 -> polling
        status("processing", progress={"current": 1, "total": 2}),  # seen already on SSE
        status("completed"),
    ]
    run = drive(_flow.wait(cfg, state, WaitOptions(), Tracker(state.last)), replies, clock=clock)
    assert run.value.state is JobState.COMPLETED
    assert [s.state for s in run.emitted] == [JobState.PROCESSING, JobState.COMPLETED]
    assert "wait" not in run.sends[-1].url.params


def test_events_url_template_applies_when_the_server_announces_none() -> None:
    accepted = response(
        202, {"jobId": "7", "status": "pending"}, headers={"Location": "/jobs/7"}, url=BASE + "/j"
    )
    cfg = config(template="/streams/{id}")
    run = drive(_flow.submit(cfg, "/j", json={}, idempotency_key=None), [accepted])
    assert run.value.events_url == BASE + "/streams/7"


# --------------------------------------------------------------------------------------------
# result


class Answer(pydantic.BaseModel):
    answer: int


DONE_303 = response(
    303, doc("completed", resultUrl="/jobs/1/result"), headers={"Location": "/jobs/1/result"}
)


def result_of(
    replies: list[Any], result_type: Any = None, state: OperationState | None = None
) -> Any:
    state = state or state_at("processing")
    return drive(
        _outcomes.result(config(), state, WaitOptions(mode="poll"), Tracker(), result_type), replies
    )


def test_result_follows_the_303_and_validates_the_type() -> None:
    run = result_of([DONE_303, response(200, {"answer": 42})], Answer)
    assert run.value == Answer(answer=42)
    assert str(run.sends[-1].url) == BASE + "/jobs/1/result"


def test_a_result_that_does_not_match_the_type_is_a_protocol_error() -> None:
    run = result_of([DONE_303, response(200, {"answer": "many"})], Answer)
    assert isinstance(run.error, ProtocolError) and "Answer" in str(run.error)


def test_inline_results_need_no_request() -> None:
    run = result_of([status("completed", result=[1, 2])])
    assert run.value == [1, 2] and len(run.sends) == 1


def test_file_results_come_back_as_result_files() -> None:
    csv = response(
        200,
        content=b"a,b\n1,2\n",
        headers={
            "content-type": "text/csv",
            "content-disposition": 'attachment; filename="report.csv"',
        },
    )
    run = result_of([DONE_303, csv])
    assert run.value == ResultFile(
        content_type="text/csv", filename="report.csv", content=b"a,b\n1,2\n"
    )


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        ([status("failed", error={"code": "boom", "message": "it broke"})], JobFailedError),
        ([status("cancelled")], JobCancelledError),
        ([DONE_303, response(410, {"error": {"code": "expired"}})], JobExpiredError),
        ([DONE_303, response(404, {"error": {"code": "not_found"}})], JobExpiredError),
        ([DONE_303, response(409, {"error": {"code": "not_completed"}})], ProtocolError),
        (
            [
                DONE_303,
                response(200, content=b"{garbage", headers={"content-type": "application/json"}),
            ],
            ProtocolError,
        ),
    ],
)
def test_result_errors(replies: list[Any], error: type[Exception]) -> None:
    run = result_of(replies)
    assert type(run.error) is error
    if error is JobFailedError:
        assert "boom" in str(run.error) and run.error.status.error.message == "it broke"


def test_download_streams_bytes_to_the_writer() -> None:
    written: list[bytes] = []
    state = state_at("processing")
    flow = _outcomes.download(config(), state, WaitOptions(mode="poll"), Tracker(), written.append)
    ok = response(200, headers={"content-type": "application/pdf"})
    run = drive(flow, [DONE_303, ok, b"%PDF", b"-1.7", None])
    assert run.value == 8 and written == [b"%PDF", b"-1.7"]
    sends = [c for c in run.commands if isinstance(c, Send)]
    assert sends[-1].stream is True
    assert sum(isinstance(c, ReadBytes) for c in run.commands) == 3


# --------------------------------------------------------------------------------------------
# cancel and retry


def test_cancel_returns_the_cancelled_status() -> None:
    state = state_at("processing")
    run = drive(_outcomes.cancel(config(), state), [status("cancelled")])
    assert run.value.state is JobState.CANCELLED
    assert run.sends[0].method == "DELETE"


def test_cancel_of_a_finished_job_returns_its_terminal_status() -> None:
    state = state_at("processing")
    conflict = response(409, {"error": {"code": "already_terminal"}})
    run = drive(_outcomes.cancel(config(), state), [conflict, status("completed")])
    assert run.value.state is JobState.COMPLETED
    assert [r.method for r in run.sends] == ["DELETE", "GET"]


def test_retry_posts_to_the_retry_url_with_a_key() -> None:
    state = state_at(seen=False)
    failed = status("failed", retryUrl="/jobs/1/retry", error={"code": "x", "retryable": True})
    run = drive(_outcomes.retry(config(), state, idempotency_key="r1"), [failed, ACCEPTED])
    post = run.sends[1]
    assert post.method == "POST" and str(post.url) == BASE + "/jobs/1/retry"
    assert post.headers["Idempotency-Key"] == "r1"
    assert run.value.status_url == BASE + "/jobs/1"


def test_retry_without_a_retry_url_says_so() -> None:
    run = drive(
        _outcomes.retry(config(), state_at(seen=False), idempotency_key="r"), [status("completed")]
    )
    assert isinstance(run.error, JobOutcomeError) and "cannot be retried" in str(run.error)


def test_after_a_refused_stream_later_auto_waits_poll_straight_away() -> None:
    clock = Clock()
    cfg = config(clock=clock, polling=Fixed(delay=1.0))
    state = state_at("processing")
    state.events_url = BASE + "/jobs/1/events"
    refused = response(404, {"error": {"code": "not_found"}}, url=BASE + "/jobs/1/events")
    first = drive(
        _flow.wait(cfg, state, WaitOptions(timeout=1.0), Tracker(state.last)),
        [refused, status("processing")],
        clock=clock,
    )
    assert isinstance(first.error, WaitTimeoutError) and state.sse_unusable
    second = drive(
        _flow.wait(cfg, state, WaitOptions(timeout=5.0), Tracker(state.last)),
        [status("completed")],
        clock=clock,
    )
    assert second.value.state is JobState.COMPLETED
    assert [str(r.url) for r in second.sends] == [BASE + "/jobs/1"]
    # An explicit mode="sse" still tries the stream.
    state.last = JobStatus(id="1", state=JobState.PROCESSING)
    third = drive(
        _flow.wait(cfg, state, WaitOptions(timeout=5.0, mode="sse"), Tracker(state.last)),
        [refused, status("completed")],
        clock=clock,
    )
    assert str(third.sends[0].url) == BASE + "/jobs/1/events"


def test_the_stream_budget_sends_auto_waits_to_polling_and_is_given_back() -> None:
    cfg = config(streams=1)
    holder = state_at("processing")
    holder.events_url = BASE + "/jobs/1/events"
    stream_ok = response(200, headers={"content-type": "text/event-stream"})
    # A first wait holds the only stream (the generator is paused inside the stream).
    first = _flow.wait(cfg, holder, WaitOptions(), Tracker(holder.last))
    assert isinstance(next(first), Send)
    first.send(stream_ok)  # now reading
    assert cfg.streams.open == 1
    other = state_at("processing")
    other.events_url = BASE + "/jobs/2/events"
    run = drive(_flow.wait(cfg, other, WaitOptions(), Tracker()), [status("completed")])
    assert [str(r.url) for r in run.sends] == [BASE + "/jobs/1"]  # polled, no stream
    other.last = JobStatus(id="1", state=JobState.PROCESSING)
    forced = _flow.wait(cfg, other, WaitOptions(mode="sse"), Tracker(other.last))
    command = next(forced)
    assert isinstance(command, Send) and command.request.url.path == "/jobs/2/events"
    assert cfg.streams.open == 2
    forced.close()
    first.close()  # an abandoned wait gives its stream back
    assert cfg.streams.open == 0
