"""Dialects driven by hand: the reference and status-code shapes, auto recognition, SSE
events and the failure-versus-fault rule. Scenario tables, no sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncreply_client._errors import (
    AuthenticationError,
    JobExpiredError,
    JobNotFoundError,
    NoStatusUrlError,
    PermissionDeniedError,
    ProtocolError,
    RequestRejectedError,
    SubmissionRejectedError,
)
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobState, JobStatus, Progress, ResultFile
from asyncreply_client.dialects import (
    AutoDialect,
    Dialect,
    ReferenceDialect,
    StatusCodeDialect,
    Submission,
    is_job_failure_response,
    parse_state,
)

BASE = "http://api.test:8080"
WALL = 1_795_424_400.0  # 2026-11-23T09:00:00Z
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"


def resp(
    code: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    url: str = f"{BASE}/jobs/j1",
    method: str = "GET",
) -> HttpResponse:
    """A response view; a non-bytes body is JSON-encoded with a JSON Content-Type."""
    h = dict(headers or {})
    if body is None:
        content = b""
    elif isinstance(body, bytes):
        content = body
    else:
        content = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    return HttpResponse(code, httpx.Headers(h), content, url, method)


def submit(code: int, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    return resp(code, body, headers, url=f"{BASE}/jobs", method="POST")


def ref() -> ReferenceDialect:
    return ReferenceDialect(wall_clock=lambda: WALL)


def auto() -> AutoDialect:
    return AutoDialect(wall_clock=lambda: WALL)


def sc() -> StatusCodeDialect:
    return StatusCodeDialect(wall_clock=lambda: WALL)


def doc(status: str, **extra: Any) -> dict[str, Any]:
    """A reference status document."""
    base: dict[str, Any] = {
        "jobId": "j1",
        "type": "sleep",
        "status": status,
        "attempt": 1,
        "progress": None,
        "createdAt": "2026-11-23T08:59:59.000Z",
        "startedAt": None,
        "updatedAt": "2026-11-23T08:59:59.500Z",
        "estimatedCompletion": None,
        "retryAfter": 0.1,
        "statusUrl": "/jobs/j1",
        "eventsUrl": "/jobs/j1/events",
        "cancelUrl": "/jobs/j1",
    }
    base.update(extra)
    return base


ACCEPTED_BODY = {
    "jobId": "j1",
    "status": "pending",
    "statusUrl": "/jobs/j1",
    "eventsUrl": "/jobs/j1/events",
    "cancelUrl": "/jobs/j1",
    "estimatedWaitTime": 0.25,
}
ACCEPTED_HEADERS = {
    "Location": "/jobs/j1",
    "Retry-After": "1",
    "Retry-After-Ms": "250",
    "Link": '</jobs/j1/events>; rel="events"',
}

# --------------------------------------------------------------------------------------------
# State vocabulary


@pytest.mark.parametrize(
    ("word", "state"),
    [
        *[(w, JobState.PENDING) for w in ("pending", "Queued", "NotStarted", "ACCEPTED")],
        *[(w, JobState.PENDING) for w in ("waiting", "scheduled", "not_started")],
        *[(w, JobState.PROCESSING) for w in ("processing", "Running", "InProgress", "in_progress")],
        *[(w, JobState.PROCESSING) for w in ("inFlight", "in-flight", "started", "active")],
        *[(w, JobState.PROCESSING) for w in ("Updating", "Creating", "Deleting")],
        *[(w, JobState.COMPLETED) for w in ("completed", "Succeeded", "success", "done")],
        *[(w, JobState.COMPLETED) for w in ("finished", "SUCCEEDED")],
        *[(w, JobState.FAILED) for w in ("failed", "Failure", "error", "deadLetter")],
        *[(w, JobState.FAILED) for w in ("dead_letter", "DeadLetter")],
        *[(w, JobState.CANCELLED) for w in ("cancelled", "Canceled", "aborted")],
        *[(w, None) for w in ("", "banana", "complete-ish", "x" * 100)],
        (None, None),
        (3, None),
        (True, None),
    ],
)
def test_parse_state(word: object, state: JobState | None) -> None:
    assert parse_state(word) is state


# --------------------------------------------------------------------------------------------
# Reference dialect: the submit


@pytest.mark.parametrize("dialect", [ref(), auto()], ids=["reference", "auto"])
def test_reference_202_submission(dialect: Dialect) -> None:
    sub = dialect.interpret_submit(submit(202, ACCEPTED_BODY, ACCEPTED_HEADERS))
    assert sub == Submission(
        status=sub.status,
        status_url=f"{BASE}/jobs/j1",
        events_url=f"{BASE}/jobs/j1/events",
        cancel_url=f"{BASE}/jobs/j1",
        final_url=None,
        retry_after=0.25,  # Retry-After-Ms wins over the rounded Retry-After
        monitored_by="location",
    )
    status = sub.status
    assert status.id == "j1"
    assert status.state is JobState.PENDING
    assert status.http_status == 202
    assert status.estimated_remaining == 0.25
    assert status.raw == ACCEPTED_BODY
    assert not status.is_terminal


@pytest.mark.parametrize(
    ("headers", "body", "status_url", "events_url"),
    [
        # Location only, events from the Link header
        (
            {"Location": "/jobs/j1", "Link": '</jobs/j1/events>; rel="events"'},
            None,
            f"{BASE}/jobs/j1",
            f"{BASE}/jobs/j1/events",
        ),
        # No Location: the body's statusUrl
        ({}, {"jobId": "j1", "status": "pending", "statusUrl": "/s/j1"}, f"{BASE}/s/j1", None),
        ({}, {"status_url": "s/j1"}, f"{BASE}/s/j1", None),
        ({}, {"monitorUrl": "https://other.test/m/1"}, "https://other.test/m/1", None),
        ({}, {"_links": {"status": {"href": "/hal/j1"}}}, f"{BASE}/hal/j1", None),
        ({}, {"href": "/j1"}, f"{BASE}/j1", None),
        ({"Link": '</m/j1>; rel="monitor"'}, None, f"{BASE}/m/j1", None),
        # Location wins over the body
        ({"Location": "/a"}, {"statusUrl": "/b"}, f"{BASE}/a", None),
    ],
)
def test_202_monitor_sources(
    headers: dict[str, str], body: Any, status_url: str, events_url: str | None
) -> None:
    for dialect in (ref(), auto(), sc()):
        sub = dialect.interpret_submit(submit(202, body, headers))
        assert sub.status_url == status_url
        assert sub.events_url == events_url
        assert sub.status.state is JobState.PENDING


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, None),
        ({}, {"jobId": "j1", "status": "pending"}),
        ({"Location": "javascript:alert(1)"}, None),
        ({"Location": "http://[::1"}, None),
        ({}, {"statusUrl": 42}),
        ({}, b"<html>Accepted</html>"),
    ],
)
def test_202_without_a_monitor_is_a_protocol_error(headers: dict[str, str], body: Any) -> None:
    for dialect in (ref(), auto(), sc()):
        with pytest.raises(ProtocolError) as info:
            dialect.interpret_submit(submit(202, body, headers))
        assert info.value.status_code == 202
        assert info.value.url == f"{BASE}/jobs"
        assert "monitor" in str(info.value)


def test_submit_303_is_done_with_the_result_at_location() -> None:
    for dialect in (ref(), auto(), sc()):
        sub = dialect.interpret_submit(
            submit(303, doc("completed"), {"Location": "/jobs/j1/result"})
        )
        assert sub.status.state is JobState.COMPLETED
        assert sub.status.result_url == f"{BASE}/jobs/j1/result"
        assert not sub.status.has_result


def test_submit_303_without_location_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ref().interpret_submit(submit(303, doc("completed")))


@pytest.mark.parametrize(
    ("code", "body", "headers", "expected"),
    [
        # A plain 200/201 is an already-finished operation: the body is the result.
        (200, {"answer": 42}, {}, {"answer": 42}),
        (201, {"id": 7, "name": "order"}, {"Location": "/orders/7"}, {"id": 7, "name": "order"}),
        (200, [1, 2, 3], {}, [1, 2, 3]),
        (204, None, {}, None),
        # A completed status with nothing else: the body is the result.
        (200, {"id": 1, "status": "completed"}, {}, {"id": 1, "status": "completed"}),
    ],
)
def test_submit_2xx_is_finished(
    code: int, body: Any, headers: dict[str, str], expected: Any
) -> None:
    sub = auto().interpret_submit(submit(code, body, headers))
    assert sub.status.state is JobState.COMPLETED
    assert sub.status.has_result
    assert sub.status.result == expected
    assert sub.status.http_status == code


def test_submit_running_without_a_monitor_is_never_a_result() -> None:
    # A running state and nothing to follow it by: a typed error naming the option.
    with pytest.raises(NoStatusUrlError, match="status_url"):
        auto().interpret_submit(submit(201, {"id": 1, "status": "pending"}))


def test_submit_200_non_json_body_is_a_result_file() -> None:
    sub = auto().interpret_submit(
        submit(
            200,
            b"a,b\n1,2\n",
            {"Content-Type": "text/csv", "Content-Disposition": 'attachment; filename="r.csv"'},
        )
    )
    assert sub.status.result == ResultFile(
        content_type="text/csv", filename="r.csv", content=b"a,b\n1,2\n"
    )


def test_submit_200_running_with_monitor_is_pending() -> None:
    body = {"jobId": "j1", "status": "processing", "statusUrl": "/jobs/j1"}
    sub = auto().interpret_submit(submit(200, body))
    assert sub.status.state is JobState.PROCESSING
    assert sub.status_url == f"{BASE}/jobs/j1"


@pytest.mark.parametrize("dialect", [ref(), auto()], ids=["reference", "auto"])
def test_prefer_wait_answers_on_submit(dialect: Dialect) -> None:
    """With ``Prefer: wait`` the submit answers what a status request would."""
    inline = doc("completed", result={"x": 1}, resultUrl="/jobs/j1/result")
    sub = dialect.interpret_submit(submit(200, inline, {"Preference-Applied": "wait=5"}))
    assert sub.status.state is JobState.COMPLETED
    assert sub.status.result == {"x": 1}
    assert sub.status.has_result
    assert sub.status.held
    failed = doc("failed", error={"code": "boom", "message": "m", "retryable": False})
    sub = dialect.interpret_submit(submit(200, failed))
    assert sub.status.state is JobState.FAILED
    assert sub.status.error is not None and sub.status.error.code == "boom"
    assert sub.status_url == f"{BASE}/jobs/j1"


def test_status_code_prefer_wait_answers_on_submit() -> None:
    body = {"jobId": "j1", "state": "failed", "error": {"code": "boom", "message": "m"}}
    sub = sc().interpret_submit(submit(500, body))
    assert sub.status.state is JobState.FAILED
    sub = sc().interpret_submit(
        submit(409, {"jobId": "j1", "state": "cancelled", "error": {"code": "cancelled"}})
    )
    assert sub.status.state is JobState.CANCELLED
    # 200: the body is the result, whatever fields it has.
    sub = sc().interpret_submit(submit(200, {"status": "pending", "statusUrl": "/x"}))
    assert sub.status.state is JobState.COMPLETED
    assert sub.status.result == {"status": "pending", "statusUrl": "/x"}


@pytest.mark.parametrize(
    ("code", "body", "error"),
    [
        (
            400,
            {"error": {"code": "unknown_type", "message": "no such type"}},
            SubmissionRejectedError,
        ),
        (422, {"error": {"code": "idempotency_key_reused"}}, SubmissionRejectedError),
        (409, {"error": {"code": "conflict"}}, SubmissionRejectedError),
        (500, b"Internal Server Error", ProtocolError),
        (301, None, ProtocolError),
        (100, None, ProtocolError),
    ],
)
def test_submit_errors(code: int, body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        auto().interpret_submit(submit(code, body))


def test_rejection_carries_the_error_body() -> None:
    body = {"error": {"code": "unknown_type", "message": "no such type"}}
    with pytest.raises(SubmissionRejectedError) as info:
        ref().interpret_submit(submit(400, body))
    assert info.value.status_code == 400
    assert info.value.error == body["error"]
    assert "unknown_type" in str(info.value)


# --------------------------------------------------------------------------------------------
# Reference dialect: status answers, as a scenario 202 → 200 processing → 303


def test_reference_scenario_202_200_303() -> None:
    d = ref()
    sub = d.interpret_submit(submit(202, ACCEPTED_BODY, ACCEPTED_HEADERS))
    running = d.interpret_status(
        resp(
            200,
            doc(
                "processing",
                progress={"current": 2, "total": 5, "message": "step 2/5"},
                startedAt="2026-11-23T08:59:59.500Z",
                estimatedCompletion="2026-11-23T09:00:01.500Z",
                retryAfter=1.2,
            ),
            {"Retry-After": "1", "Retry-After-Ms": "800", "Date": DATE},
        ),
        submission=sub,
    )
    assert running.state is JobState.PROCESSING
    assert running.progress == Progress(current=2, total=5, message="step 2/5")
    assert running.progress.fraction == 0.4
    assert running.retry_after == 0.8  # headers win over the body's retryAfter
    assert running.estimated_remaining == pytest.approx(1.5)
    assert running.started_at is not None and running.started_at.isoformat().startswith(
        "2026-11-23T08:59:59.5"
    )
    assert running.events_url == f"{BASE}/jobs/j1/events"
    assert running.status_url == f"{BASE}/jobs/j1"

    done = d.interpret_status(
        resp(
            303,
            doc("completed", resultUrl="/jobs/j1/result", retryAfter=None),
            {"Location": "/jobs/j1/result"},
        ),
        submission=sub,
    )
    assert done.state is JobState.COMPLETED
    assert done.result_url == f"{BASE}/jobs/j1/result"
    assert not done.has_result
    assert done.http_status == 303
    assert done.retry_after is None


def test_reference_inline_result() -> None:
    status = ref().interpret_status(
        resp(200, doc("completed", result={"a": [1]}, resultUrl="/jobs/j1/result"))
    )
    assert status.state is JobState.COMPLETED
    assert status.has_result
    assert status.result == {"a": [1]}
    assert status.result_url is None


def test_reference_completed_with_result_url_only() -> None:
    status = ref().interpret_status(resp(200, doc("completed", resultUrl="/jobs/j1/result")))
    assert status.result_url == f"{BASE}/jobs/j1/result"
    assert not status.has_result


def test_reference_failed_retryable() -> None:
    status = ref().interpret_status(
        resp(
            200,
            doc(
                "failed",
                error={"code": "flaky", "message": "try again", "retryable": True},
                deadLetter=False,
                retryUrl="/jobs/j1/retry",
            ),
        )
    )
    assert status.state is JobState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.message, status.error.retryable) == (
        "flaky",
        "try again",
        True,
    )
    assert status.retry_url == f"{BASE}/jobs/j1/retry"


def test_reference_failed_without_error_object_still_has_an_error() -> None:
    status = ref().interpret_status(resp(200, doc("failed")))
    assert status.state is JobState.FAILED
    assert status.error is not None


def test_reference_cancelled() -> None:
    status = ref().interpret_status(resp(200, doc("cancelled", cancelledAt="2026-11-23T09:00:00Z")))
    assert status.state is JobState.CANCELLED
    assert status.is_terminal


@pytest.mark.parametrize(
    ("code", "body", "error"),
    [
        (404, {"error": {"code": "not_found", "message": "no such job"}}, JobNotFoundError),
        (410, {"error": {"code": "expired"}}, JobExpiredError),
        (404, b"Not Found", JobNotFoundError),
        (410, None, JobExpiredError),
        # The reference dialect needs a status document on a 200.
        (200, {"hello": "world"}, ProtocolError),
        (200, b"<html>proxy page</html>", ProtocolError),
        (200, None, ProtocolError),
        (200, {"status": "weird"}, ProtocolError),
        (303, doc("completed"), ProtocolError),  # no Location
        (500, b"Internal Server Error", ProtocolError),
        (500, {"error": {"code": "internal"}}, ProtocolError),
        (409, {"error": {"code": "conflict"}}, RequestRejectedError),
        (401, {"error": {"code": "unauthorized"}}, AuthenticationError),
        (403, {"error": {"code": "forbidden"}}, PermissionDeniedError),
        (400, b"bad request", RequestRejectedError),
        (302, None, ProtocolError),
    ],
)
def test_reference_status_errors(code: int, body: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        ref().interpret_status(resp(code, body, {"Location": ""} if code == 303 else None))
    if isinstance(info.value, ProtocolError):
        assert info.value.status_code == code
        assert info.value.url == f"{BASE}/jobs/j1"


@pytest.mark.parametrize(
    "content_type", ["text/html", "Text/HTML; charset=utf-8", "application/xhtml+xml"]
)
def test_auto_dialect_reads_a_web_page_status_answer_as_a_protocol_error(
    content_type: str,
) -> None:
    page = b"<html><body>Proxy login</body></html>"
    with pytest.raises(ProtocolError) as info:
        auto().interpret_status(resp(200, page, {"Content-Type": content_type}))
    assert info.value.status_code == 200
    assert info.value.url == f"{BASE}/jobs/j1"
    assert "Proxy login" in info.value.body_excerpt


def test_status_code_dialect_keeps_a_web_page_status_answer_as_a_result_file() -> None:
    page = b"<html><body>report</body></html>"
    status = sc().interpret_status(resp(200, page, {"Content-Type": "text/html"}))
    assert status.state is JobState.COMPLETED
    assert isinstance(status.result, ResultFile)
    assert status.result.content == page


def test_auto_dialect_still_reads_other_non_json_status_answers_as_results() -> None:
    # The status-code server says the body represents the result (Content-Location).
    headers = {"Content-Type": "text/csv", "Content-Location": "/jobs/j1/result"}
    status = auto().interpret_status(resp(200, b"a,b\n1,2\n", headers))
    assert status.state is JobState.COMPLETED
    assert isinstance(status.result, ResultFile)


def test_protocol_error_carries_a_body_excerpt() -> None:
    with pytest.raises(ProtocolError) as info:
        ref().interpret_status(resp(200, b"<html>" + b"x" * 1000))
    assert info.value.body_excerpt.startswith("<html>")
    assert len(info.value.body_excerpt) < 300


# --------------------------------------------------------------------------------------------
# Status-code dialect


def _sc_body(state: str, **extra: Any) -> dict[str, Any]:
    return {"jobId": "j1", "state": state, **extra}


@pytest.mark.parametrize(
    ("code", "body", "headers", "state"),
    [
        (202, _sc_body("pending"), {"Retry-After": "1", "Retry-After-Ms": "300"}, JobState.PENDING),
        (202, _sc_body("inFlight", progress={"current": 1, "total": 2}), {}, JobState.PROCESSING),
        (202, None, {}, JobState.PENDING),
        (202, b"still working", {}, JobState.PENDING),
        (200, {"key": "sc", "steps": 2}, {}, JobState.COMPLETED),
        (303, None, {"Location": "/jobs/j1/result"}, JobState.COMPLETED),
        (
            500,
            _sc_body("failed", error={"code": "boom", "message": "it broke"}),
            {},
            JobState.FAILED,
        ),
        (
            500,
            _sc_body("deadLetter", error={"code": "flaky"}, retryUrl="/jobs/j1/retry"),
            {},
            JobState.FAILED,
        ),
        (500, {"error": {"code": "boom"}}, {}, JobState.FAILED),  # an error object suffices
        (409, _sc_body("cancelled", error={"code": "cancelled"}), {}, JobState.CANCELLED),
    ],
)
def test_status_code_dialect(
    code: int, body: Any, headers: dict[str, str], state: JobState
) -> None:
    status = sc().interpret_status(resp(code, body, headers))
    assert status.state is state
    assert status.http_status == code


def test_status_code_scenario_202_202_200() -> None:
    d = sc()
    sub = d.interpret_submit(
        submit(202, ACCEPTED_BODY, {"Location": "/jobs/j1", "Retry-After": "0"})
    )
    assert sub.retry_after == 0.0  # "poll now", not "no hint"
    first = d.interpret_status(
        resp(202, _sc_body("pending"), {"Retry-After-Ms": "100"}), submission=sub
    )
    second = d.interpret_status(
        resp(202, _sc_body("inFlight", progress={"current": 1, "total": 4})), submission=sub
    )
    final = d.interpret_status(resp(200, {"key": "sc", "steps": 2}), submission=sub)
    assert [s.state for s in (first, second, final)] == [
        JobState.PENDING,
        JobState.PROCESSING,
        JobState.COMPLETED,
    ]
    assert first.retry_after == 0.1
    assert second.progress is not None and second.progress.fraction == 0.25
    assert final.has_result and final.result == {"key": "sc", "steps": 2}


def test_status_code_results_of_every_kind() -> None:
    d = sc()
    csv = d.interpret_status(
        resp(
            200,
            b"a,b\n",
            {
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.csv",
            },
        )
    )
    assert csv.result == ResultFile(
        content_type="text/csv; charset=utf-8", filename="résumé.csv", content=b"a,b\n"
    )
    pdf = d.interpret_status(resp(200, b"%PDF-1.7\x00\xff", {"Content-Type": "application/pdf"}))
    assert isinstance(pdf.result, ResultFile) and pdf.result.filename is None
    untyped = d.interpret_status(resp(200, b"\x00\x01binary"))
    assert isinstance(untyped.result, ResultFile)
    assert untyped.result.content_type == "application/octet-stream"
    untyped_json = d.interpret_status(resp(200, b'{"x": 1}'))
    assert untyped_json.result == {"x": 1}
    null = d.interpret_status(resp(200, b"null", {"Content-Type": "application/json"}))
    assert null.has_result and null.result is None
    text = d.interpret_status(resp(200, b'"hello"', {"Content-Type": "application/json"}))
    assert text.result == "hello"
    empty = d.interpret_status(resp(204))
    assert empty.state is JobState.COMPLETED and empty.has_result and empty.result is None
    with pytest.raises(ProtocolError, match="body is not valid JSON"):
        d.interpret_status(resp(200, b"{not json", {"Content-Type": "application/json"}))


def test_status_code_failed_details() -> None:
    status = sc().interpret_status(
        resp(
            500,
            _sc_body(
                "deadLetter",
                error={"code": "flaky", "message": "m", "retryable": True},
                retryUrl="/jobs/j1/retry",
            ),
        )
    )
    assert status.error is not None and status.error.retryable
    assert status.retry_url == f"{BASE}/jobs/j1/retry"
    assert status.raw["state"] == "deadLetter"


@pytest.mark.parametrize(
    ("code", "body", "error"),
    [
        (410, {"error": {"code": "expired"}}, JobExpiredError),
        (404, {"error": {"code": "not_found"}}, JobNotFoundError),
        (500, b"Internal Server Error", ProtocolError),
        (500, {"state": "inFlight"}, ProtocolError),
        (409, {"error": {"code": "already_terminal"}}, RequestRejectedError),
        (303, None, ProtocolError),
    ],
)
def test_status_code_errors(code: int, body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        sc().interpret_status(resp(code, body))


# --------------------------------------------------------------------------------------------
# Auto: the reference and status-code servers both work without configuration


@pytest.mark.parametrize(
    ("code", "body", "headers", "state", "has_result"),
    [
        (200, doc("processing"), {}, JobState.PROCESSING, False),
        (200, doc("completed", result=1), {}, JobState.COMPLETED, True),
        (303, doc("completed"), {"Location": "/jobs/j1/result"}, JobState.COMPLETED, False),
        (202, _sc_body("inFlight"), {}, JobState.PROCESSING, False),
        (200, {"key": "sc"}, {"Content-Location": "/r"}, JobState.COMPLETED, True),
        (500, _sc_body("failed", error={"code": "boom"}), {}, JobState.FAILED, False),
        (500, _sc_body("deadLetter"), {}, JobState.FAILED, False),
        (409, _sc_body("cancelled"), {}, JobState.CANCELLED, False),
        (204, None, {}, JobState.COMPLETED, True),
    ],
)
def test_auto_reads_both_reference_dialects(
    code: int, body: Any, headers: dict[str, str], state: JobState, has_result: bool
) -> None:
    status = auto().interpret_status(resp(code, body, headers))
    assert status.state is state
    assert status.has_result is has_result


def test_auto_500_without_a_failed_state_is_not_a_job_state() -> None:
    with pytest.raises(ProtocolError):
        auto().interpret_status(resp(500, {"error": {"code": "internal", "message": "db down"}}))


def test_held_request_is_visible() -> None:
    status = auto().interpret_status(
        resp(200, doc("processing"), {"Preference-Applied": "wait=30"})
    )
    assert status.held
    assert not auto().interpret_status(resp(200, doc("processing"))).held


def test_retry_after_http_date_relative_to_date_header() -> None:
    status = auto().interpret_status(
        resp(
            200,
            doc("processing", retryAfter=None),
            {"Retry-After": "Mon, 23 Nov 2026 09:00:07 GMT", "Date": DATE},
        )
    )
    assert status.retry_after == 7.0


def test_retry_after_http_date_without_date_header_uses_the_wall_clock() -> None:
    d = AutoDialect(wall_clock=lambda: WALL + 2)
    status = d.interpret_status(
        resp(
            200,
            doc("processing", retryAfter=None),
            {"Retry-After": "Mon, 23 Nov 2026 09:00:07 GMT"},
        )
    )
    assert status.retry_after == 5.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("garbage", 0.1), ("99999999999999", 1e9), ("", 0.1)],
)
def test_retry_after_edge_values_in_status(value: str, expected: float) -> None:
    # garbage headers fall back to the body's retryAfter hint (0.1)
    status = auto().interpret_status(resp(200, doc("processing"), {"Retry-After": value}))
    assert status.retry_after == expected


def test_lenient_timestamps_and_ids() -> None:
    status = auto().interpret_status(
        resp(
            200,
            doc(
                "processing",
                jobId=12345,
                createdAt="not a time",
                startedAt="2026-02-30T00:00:00Z",
                updatedAt=17,
                estimatedCompletion={"when": "soon"},
            ),
        )
    )
    assert status.id == "12345"
    assert status.created_at is None
    assert status.started_at is None
    assert status.updated_at is not None  # epoch seconds are accepted
    assert status.estimated_completion is None
    assert status.estimated_remaining is None


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        ({"current": 2, "total": 5}, Progress(current=2, total=5)),
        ({"current": "x", "total": None, "message": "warming up"}, Progress(message="warming up")),
        ({"percent": 30}, Progress(current=30, total=100)),
        (0.5, Progress(current=0.5, total=1)),
        (40, Progress(current=40, total=100)),
        (-3, None),
        ("half", None),
        ({}, None),
        ([1, 2], None),
    ],
)
def test_progress_shapes(progress: Any, expected: Progress | None) -> None:
    status = auto().interpret_status(resp(200, doc("processing", progress=progress)))
    assert status.progress == expected


# --------------------------------------------------------------------------------------------
# SSE events


@pytest.mark.parametrize("dialect", [ref(), auto(), sc()], ids=["reference", "auto", "sc"])
def test_events(dialect: Dialect) -> None:
    url = f"{BASE}/jobs/j1/events"
    status = dialect.interpret_event(
        "progress", json.dumps(doc("processing", progress={"current": 1, "total": 2})), url=url
    )
    assert status is not None
    assert status.state is JobState.PROCESSING
    assert status.http_status is None
    assert status.progress is not None and status.progress.fraction == 0.5
    complete = dialect.interpret_event(
        "complete", json.dumps(doc("completed", resultUrl="/jobs/j1/result")), url=url
    )
    assert complete is not None
    assert complete.state is JobState.COMPLETED
    assert complete.result_url == f"{BASE}/jobs/j1/result"
    failed = dialect.interpret_event(
        "complete", json.dumps(doc("failed", error={"code": "boom"})), url=url
    )
    assert failed is not None and failed.error is not None and failed.error.code == "boom"


@pytest.mark.parametrize(
    ("event", "data"),
    [("status", "not json"), ("complete", "{}"), ("progress", "[1]"), ("status", "")],
)
def test_bad_status_events_are_protocol_errors(event: str, data: str) -> None:
    with pytest.raises(ProtocolError):
        auto().interpret_event(event, data, url=f"{BASE}/e")


@pytest.mark.parametrize(
    ("event", "data"), [("message", "hello"), ("ping", "{}"), ("", "[]"), ("keepalive", "")]
)
def test_other_events_are_ignored(event: str, data: str) -> None:
    assert auto().interpret_event(event, data, url=f"{BASE}/e") is None


def test_unnamed_event_carrying_a_status_document() -> None:
    status = auto().interpret_event("message", json.dumps(doc("pending")), url=f"{BASE}/e")
    assert isinstance(status, JobStatus) and status.state is JobState.PENDING


# --------------------------------------------------------------------------------------------
# Failure versus fault


@pytest.mark.parametrize(
    ("response", "dialect", "expected"),
    [
        (resp(500, _sc_body("failed", error={"code": "x"})), None, True),
        (resp(500, _sc_body("deadLetter")), None, True),
        (resp(409, _sc_body("cancelled")), None, True),
        (resp(500, {"error": {"code": "x"}}), None, False),
        (resp(500, {"error": {"code": "x"}}), sc(), True),
        (resp(500, {"error": {"code": "x"}}), ref(), False),
        (resp(500, b"oops"), sc(), False),
        (resp(500, b"oops"), None, False),
        (resp(502, _sc_body("failed")), None, True),
        (resp(200, _sc_body("failed")), None, False),
        (resp(409, {"error": {"code": "already_terminal"}}), None, False),
    ],
)
def test_is_job_failure_response(
    response: HttpResponse, dialect: Dialect | None, expected: bool
) -> None:
    assert is_job_failure_response(response, dialect=dialect) is expected


def test_is_job_failure_response_with_a_foreign_dialect() -> None:
    class Always:
        name = "always"

        def interpret_submit(self, response: HttpResponse) -> Submission:
            raise NotImplementedError

        def interpret_status(
            self, response: HttpResponse, *, submission: Submission | None = None
        ) -> JobStatus:
            if response.content == b"ok":
                return JobStatus(state=JobState.FAILED)
            raise ProtocolError("no")

        def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
            return None

    assert is_job_failure_response(resp(500, b"ok"), dialect=Always())
    assert not is_job_failure_response(resp(500, b"no"), dialect=Always())


def test_dialect_names_and_repr() -> None:
    assert [d.name for d in (ref(), sc(), auto())] == ["reference", "status-code", "auto"]
    assert repr(ref()) == "ReferenceDialect()"


def test_auto_completed_document_pointing_nowhere_is_its_own_result() -> None:
    jsend = {"status": "success", "data": {"rows": 3}}
    status = auto().interpret_status(resp(200, jsend))
    assert status.state is JobState.COMPLETED
    assert status.has_result and status.result == jsend
    # The reference dialect does not guess: a completed document without a result or a
    # result URL has no result.
    bare = ref().interpret_status(resp(200, doc("completed")))
    assert not bare.has_result and bare.result_url is None


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        (WALL + 0.9, 0.6),  # Date is whole seconds: the precise wall clock is used
        (WALL - 3600, 1.5),  # the wall clock is an hour off: trust the server's Date
    ],
)
def test_estimated_remaining_reference_clock(wall: float, expected: float) -> None:
    d = AutoDialect(wall_clock=lambda: wall)
    status = d.interpret_status(
        resp(
            200,
            doc("processing", retryAfter=None, estimatedCompletion="2026-11-23T09:00:01.500Z"),
            {"Date": DATE},
        )
    )
    assert status.estimated_remaining == pytest.approx(expected)


@pytest.mark.parametrize(
    "body",
    [b"[" * 200_000, b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000],
)
def test_absurdly_nested_json_is_a_protocol_error_not_a_crash(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        ref().interpret_status(resp(200, body, {"Content-Type": "application/json"}))
    with pytest.raises(ProtocolError):
        auto().interpret_event("status", body.decode(), url=f"{BASE}/e")
    status = sc().interpret_status(resp(200, body, {"Content-Type": "text/plain"}))
    assert isinstance(status.result, ResultFile)


def test_state_vocabulary_has_no_word_twice() -> None:
    from asyncreply_client.dialects._fields import _STATE_VOCABULARY, _STATE_WORDS

    words = [w for text in _STATE_VOCABULARY.values() for w in text.split()]
    assert len(words) == len(set(words)) == len(_STATE_WORDS)
    for word, state in _STATE_WORDS.items():
        assert parse_state(word.upper()) is state


def test_a_snapshot_sets_only_the_fields_the_answer_gave() -> None:
    # Pydantic keeps one set of field names per model: a snapshot lists only what it holds
    # (every operation keeps a few snapshots, so the twenty names would cost ~2 KB each).
    body = {"jobId": "j1", "status": "processing"}
    status = ref().interpret_status(resp(200, body))
    assert status.model_fields_set == {"id", "state", "http_status", "raw"}
    assert status.has_result is False and status.held is False and status.result is None
    assert status == JobStatus(id="j1", state=JobState.PROCESSING, http_status=200, raw=body)


def test_decoded_documents_share_their_keys() -> None:
    def body(text: str) -> Any:
        return HttpResponse(200, httpx.Headers(), text.encode(), "http://x/jobs/1").json()

    one = body('{"jobId": "1", "progress": {"current": 1}}')
    two = body('{"jobId": "2", "progress": {"current": 2}}')
    assert one == {"jobId": "1", "progress": {"current": 1}}
    keys_one, keys_two = list(one) + list(one["progress"]), list(two) + list(two["progress"])
    assert all(a is b for a, b in zip(keys_one, keys_two, strict=True))
    assert body('{"a": 1') is None and body("\ufeff") is None
    utf16 = HttpResponse(200, httpx.Headers(), '{"k": "v"}'.encode("utf-16"), "http://x")
    assert utf16.json() == {"k": "v"}


def test_a_document_read_again_gives_the_same_snapshot_with_its_own_headers_and_body() -> None:
    """What a running job's document says is read once per distinct body (a poller's
    answers repeat it): the same body answered again, with other headers, at another URL or
    with another body, reads exactly as a first reading would."""
    body = {
        **doc("processing", progress={"current": 1, "total": 4}),
        "estimatedCompletion": "2026-11-23T09:00:30Z",
        "cancelUrl": "j1/cancel",  # relative: resolved against each answer's URL
    }
    first = auto().interpret_status(resp(200, body, {"Date": DATE}))
    again = auto().interpret_status(
        resp(200, body, {"Date": DATE, "Retry-After": "7", "Link": '</e>; rel="events"'})
    )
    elsewhere = auto().interpret_status(resp(200, body, url=f"{BASE}/v2/jobs/j1"))
    fresh = auto().interpret_status(resp(200, {**body, "statusUrl": "/jobs/j9"}))
    assert first.progress == Progress(current=1, total=4)
    assert first.estimated_remaining == 30.0
    assert again.model_dump(exclude={"retry_after", "raw"}) == first.model_dump(
        exclude={"retry_after", "raw"}
    )
    assert (first.retry_after, again.retry_after) == (0.1, 7.0)  # the header wins
    assert (first.events_url, again.events_url) == (f"{BASE}/jobs/j1/events",) * 2
    assert again.raw == first.raw and again.raw is not first.raw  # each answer's own body
    assert first.cancel_url == f"{BASE}/jobs/j1/cancel"
    assert elsewhere.cancel_url == f"{BASE}/v2/jobs/j1/cancel"
    assert (first.status_url, fresh.status_url) == (f"{BASE}/jobs/j1", f"{BASE}/jobs/j9")


def test_state_words_read_again_are_read_alike_and_the_memo_is_bounded() -> None:
    from asyncreply_client.dialects import _fields

    words = ["In_Progress", "done", "banana", "", " queued ", "x" * 65, "succeeded"]
    first = [parse_state(word) for word in words]
    assert first == [parse_state(word) for word in words]  # read from the memo now
    assert first[:3] == [JobState.PROCESSING, JobState.COMPLETED, None]
    assert first[5] is None and "x" * 65 not in _fields._STATES_READ

    class Word(str):
        pass

    assert parse_state(Word("done")) is JobState.COMPLETED
    for i in range(_fields._MAX_STATES_READ * 2):
        assert parse_state(f"nonsense{i}") is None
    assert len(_fields._STATES_READ) <= _fields._MAX_STATES_READ
    assert parse_state("FAILED") is JobState.FAILED


def test_progress_read_again_is_the_same_and_the_memo_is_bounded() -> None:
    from asyncreply_client.dialects import _fields
    from asyncreply_client.dialects._fields import progress_of

    doc = {"progress": {"current": 2.0, "total": 4, "message": "half"}}
    first = progress_of(doc)
    again = progress_of({"progress": {"current": 2, "total": "4", "message": "half"}})
    assert first == again == Progress(current=2, total=4, message="half")
    assert (
        first is not None
        and type(first.current) is int
        and first.model_dump()
        == {
            "current": 2,
            "total": 4,
            "message": "half",
        }
    )
    assert progress_of({"progress": {"current": -0.0, "total": 0.5}}) == Progress(
        current=0, total=0.5
    )
    assert progress_of({"progress": {"current": 2**60, "total": None}}) == Progress(
        current=float(2**60)
    )
    assert progress_of({"progress": {"message": "only words"}}) == Progress(message="only words")
    for i in range(_fields._MAX_PROGRESSES * 2):
        assert progress_of({"progress": {"current": i}}) == Progress(current=i)
    assert len(_fields._PROGRESSES) <= _fields._MAX_PROGRESSES
