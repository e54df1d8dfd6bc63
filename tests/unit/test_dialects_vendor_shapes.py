"""Issue 10's vendor shapes, pure: each row is an answer a real API gives at first contact
(Microsoft REST guidelines, Azure ARM, Google AIP-151, status-code servers, RFC 9457) and what
the dialects must make of it. Scenario tables, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncreply_client._errors import (
    MAX_MESSAGE,
    AuthenticationError,
    PermissionDeniedError,
    ProtocolError,
    RequestRejectedError,
    SubmissionRejectedError,
    excerpt,
    rejection_class,
)
from asyncreply_client._http import HttpResponse
from asyncreply_client.dialects import (
    ArmDialect,
    AutoDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
    ReferenceDialect,
    StatusCodeDialect,
    monitor_move,
    with_final_state_via,
)
from asyncreply_client.dialects._rejections import rejection_error
from tests.unit.test_dialects import resp as reference_resp

WALL = 1_795_424_400.0
API = "https://api.test"
JSON = {"Content-Type": "application/json"}


def resp(
    code: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    url: str = f"{API}/jobs/1",
    method: str = "GET",
) -> HttpResponse:
    """A response view; a non-bytes body is JSON-encoded with a JSON Content-Type."""
    return reference_resp(code, body, headers, url=url, method=method)


def every_dialect() -> list[Dialect]:
    clock = {"wall_clock": lambda: WALL}
    return [
        AutoDialect(**clock),
        ReferenceDialect(**clock),
        StatusCodeDialect(**clock),
        MicrosoftDialect(**clock),
        GoogleDialect(**clock),
        ArmDialect(**clock),
    ]


DIALECTS = pytest.mark.parametrize("dialect", every_dialect(), ids=lambda d: d.name)


# --------------------------------------------------------------------------------------------
# Invalid JSON on a status answer


@DIALECTS
@pytest.mark.parametrize("code", [200, 201, 202])
@pytest.mark.parametrize(
    "body", [b'{"status": "runn', b"not json at all", b"\xff\xfe{", b"[" * 100_000]
)
def test_a_status_answer_labelled_json_that_does_not_decode(
    dialect: Dialect, code: int, body: bytes
) -> None:
    with pytest.raises(ProtocolError) as info:
        dialect.interpret_status(resp(code, body, JSON))
    message = str(info.value)
    assert "status answer's body is not valid JSON" in message
    assert "result" not in message.split("(HTTP")[0]
    assert isinstance(info.value.__cause__, (json.JSONDecodeError, UnicodeError, RecursionError))
    assert info.value.status_code == code and info.value.url == f"{API}/jobs/1"


@pytest.mark.parametrize(
    "dialect",
    [ReferenceDialect(), MicrosoftDialect(), GoogleDialect()],
    ids=lambda d: d.name,
)
def test_an_unlabelled_garbage_body_is_not_json_where_documents_are_required(
    dialect: Dialect,
) -> None:
    with pytest.raises(ProtocolError, match="not valid JSON") as info:
        dialect.interpret_status(resp(200, b"{oops"))
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_an_unlabelled_non_json_200_stays_a_file_result_where_results_may_be_anything() -> None:
    status = StatusCodeDialect().interpret_status(resp(200, b"\x00\x01binary"))
    assert status.has_result and status.result.content_type == "application/octet-stream"


def test_valid_json_null_and_empty_bodies_are_not_decoding_errors() -> None:
    response = resp(200, b"null", JSON)
    assert response.json_error() is None
    assert resp(204).json_error() is None
    assert resp(200, {"a": 1}).json_error() is None
    assert isinstance(resp(200, b"{", JSON).json_error(), json.JSONDecodeError)


# --------------------------------------------------------------------------------------------
# The failure reason reaches JobError (status-code servers, RFC 9457, error arrays)

QUEUE_DETAILS = [{"attempt": 3, "at": "2026-11-23T09:00:00Z"}]


@pytest.mark.parametrize(
    ("body", "code", "message", "details"),
    [
        ({"state": "failed", "lastError": "queue exploded"}, None, "queue exploded", None),
        (
            {"state": "deadLetter", "lastError": {"code": "E_QUEUE", "message": "boom"}},
            "E_QUEUE",
            "boom",
            None,
        ),
        (
            {"state": "failed", "lastError": "boom", "details": QUEUE_DETAILS},
            None,
            "boom",
            QUEUE_DETAILS,
        ),
        (
            {"state": "failed", "error": {"code": "quota", "message": "out", "details": [1]}},
            "quota",
            "out",
            [1],
        ),
        ({"state": "failed", "error": "disk full"}, None, "disk full", None),
        ({"state": "failed", "message": "the input was empty"}, None, "the input was empty", None),
        (
            {"state": "failed", "errorCode": "E42", "errorMessage": "bad row 7"},
            "E42",
            "bad row 7",
            None,
        ),
        (  # RFC 9457 problem details: detail wins over title; type is not a code
            {
                "state": "failed",
                "type": "https://example.com/probs/out-of-credit",
                "title": "You do not have enough credit.",
                "detail": "Your current balance is 30, but that costs 50.",
            },
            None,
            "Your current balance is 30, but that costs 50.",
            None,
        ),
        ({"state": "failed", "title": "Out of credit"}, None, "Out of credit", None),
        (
            {"state": "failed", "errors": [{"code": "E1", "message": "first"}, {"code": "E2"}]},
            "E1",
            "first",
            [{"code": "E1", "message": "first"}, {"code": "E2"}],
        ),
        ({"state": "failed"}, None, None, None),
        ({"state": "failed", "lastError": ""}, None, None, None),
    ],
)
def test_a_failed_500_carries_every_common_error_field(
    body: dict[str, Any], code: str | None, message: str | None, details: Any
) -> None:
    for dialect in (StatusCodeDialect(), AutoDialect()):
        status = dialect.interpret_status(resp(500, body))
        assert status.state.value == "failed"
        assert status.error is not None
        assert (status.error.code, status.error.message, status.error.details) == (
            code,
            message,
            details,
        ), dialect.name


def test_no_code_is_invented_from_the_state_or_the_status() -> None:
    status = StatusCodeDialect().interpret_status(resp(500, {"state": "failed", "status": 500}))
    assert status.error is not None and status.error.code is None
    assert status.error.summary == ""
    named = StatusCodeDialect().interpret_status(
        resp(500, {"status": "failed", "lastError": "queue exploded"})
    )
    assert named.error is not None
    assert (named.error.code, named.error.summary) == (None, "queue exploded")


def test_google_error_status_stays_its_code() -> None:
    body = {"name": "operations/1", "done": True, "error": {"code": 5, "message": "gone"}}
    status = GoogleDialect().interpret_status(resp(200, body, url=f"{API}/v1/operations/1"))
    assert status.error is not None and (status.error.code, status.error.message) == ("5", "gone")


# --------------------------------------------------------------------------------------------
# 4xx answers: errors a user can act on, with bounded messages

CHALLENGE = 'Bearer realm="api", error="invalid_token"'


@DIALECTS
def test_a_401_on_a_poll_is_an_authentication_error(dialect: Dialect) -> None:
    body = {"error": {"code": "unauthorized", "message": "token expired"}}
    with pytest.raises(AuthenticationError) as info:
        dialect.interpret_status(resp(401, body, {"WWW-Authenticate": CHALLENGE}))
    error = info.value
    assert not isinstance(error, SubmissionRejectedError)
    assert (error.status_code, error.url, error.www_authenticate) == (
        401,
        f"{API}/jobs/1",
        CHALLENGE,
    )
    assert error.error == {"code": "unauthorized", "message": "token expired"}
    assert "authentication required" in str(error) and "token expired" in str(error)
    assert CHALLENGE in str(error)


@DIALECTS
def test_a_403_on_a_poll_is_a_permission_error(dialect: Dialect) -> None:
    with pytest.raises(PermissionDeniedError) as info:
        dialect.interpret_status(resp(403, b"Forbidden", {"Content-Type": "text/plain"}))
    assert info.value.error == "Forbidden" and info.value.www_authenticate is None


@DIALECTS
@pytest.mark.parametrize("code", [400, 405, 409, 422])
def test_another_4xx_on_a_poll_carries_the_parsed_error(dialect: Dialect, code: int) -> None:
    problem = {
        "type": "https://example.com/probs/bad",
        "title": "Bad request",
        "detail": "the id is malformed",
        "status": code,
    }
    with pytest.raises(RequestRejectedError) as info:
        dialect.interpret_status(resp(code, problem, {"Content-Type": "application/problem+json"}))
    assert type(info.value) is RequestRejectedError
    assert info.value.error == problem and info.value.status_code == code
    assert "the id is malformed" in str(info.value)


@DIALECTS
@pytest.mark.parametrize(
    ("code", "cls"), [(401, AuthenticationError), (403, PermissionDeniedError)]
)
def test_a_401_or_403_to_a_submission_is_both_errors(
    dialect: Dialect, code: int, cls: type[Exception]
) -> None:
    answer = resp(code, {"error": {"code": "nope"}}, url=f"{API}/jobs", method="POST")
    with pytest.raises(cls) as info:
        dialect.interpret_submit(answer)
    assert isinstance(info.value, SubmissionRejectedError)
    assert str(info.value).startswith(f"submission rejected with HTTP {code}")


def test_the_pure_classification() -> None:
    assert rejection_error(resp(200, {"status": "running"})) is None
    assert rejection_error(resp(503, b"busy")) is None
    assert type(rejection_error(resp(400, b"x"))) is RequestRejectedError
    assert type(rejection_error(resp(400, b"x"), submission=True)) is SubmissionRejectedError
    assert isinstance(rejection_error(resp(401, b"")), AuthenticationError)
    assert isinstance(rejection_error(resp(403, b"")), PermissionDeniedError)
    assert rejection_class(404, submission=False) is RequestRejectedError
    error = rejection_error(resp(400, b"x"), what="result request")
    assert error is not None and str(error).startswith("result request rejected with HTTP 400")


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "E", "message": "m" * 5_000_000}},
        {"error": "m" * 5_000_000},
        b"<html>" + b"m" * 5_000_000,
        ["m" * 5_000_000],
    ],
    ids=["error-object", "error-string", "text", "json-list"],
)
def test_messages_quote_a_bounded_excerpt_of_a_huge_body(body: Any) -> None:
    for answer, call in (
        (resp(400, body), StatusCodeDialect().interpret_status),
        (resp(422, body, url=f"{API}/jobs", method="POST"), StatusCodeDialect().interpret_submit),
    ):
        with pytest.raises(RequestRejectedError) as info:
            call(answer)
        assert len(str(info.value)) <= MAX_MESSAGE + 1
    failed = {"state": "failed", "lastError": "m" * 5_000_000}
    with pytest.raises(ProtocolError) as protocol:
        ReferenceDialect().interpret_status(resp(200, b"{" + b"m" * 5_000_000, JSON))
    assert len(str(protocol.value)) <= MAX_MESSAGE + 1
    status = StatusCodeDialect().interpret_status(resp(500, failed))
    assert status.error is not None and status.error.message is not None
    assert len(status.error.message) <= 4096


def test_excerpt_decodes_only_what_it_shows() -> None:
    assert excerpt(b"abc") == "abc"
    assert excerpt("é" * 300, 10) == "é" * 10 + "…"
    assert excerpt(b"\xc3\xa9" * 10_000_000, 5) == "é" * 5 + "…"
    assert excerpt(None) == ""


# --------------------------------------------------------------------------------------------
# Operation monitors must state a status; Location-polled 2xx are results

MONITOR = f"{API}/operations/7"
RESOURCE = f"{API}/items/7"


def submit_with(headers: dict[str, str], body: Any = None, method: str = "POST") -> HttpResponse:
    return resp(202, body, headers, url=f"{API}/items/7:run", method=method)


@DIALECTS
@pytest.mark.parametrize("header", ["Operation-Location", "Azure-AsyncOperation"])
@pytest.mark.parametrize(
    "answer",
    [resp(200, {}, url=MONITOR), resp(200, url=MONITOR), resp(204, url=MONITOR)],
    ids=["empty-object", "empty-200", "204"],
)
def test_an_operation_monitor_2xx_without_a_status_is_a_protocol_error(
    dialect: Dialect, header: str, answer: HttpResponse
) -> None:
    sub = dialect.interpret_submit(submit_with({header: MONITOR, "Location": RESOURCE}))
    assert (sub.status_url, sub.monitored_by) == (MONITOR, "operation")
    with pytest.raises(ProtocolError, match="no status") as info:
        dialect.interpret_status(answer, submission=sub)
    assert info.value.url == MONITOR


@DIALECTS
@pytest.mark.parametrize("header", ["Operation-Location", "Azure-AsyncOperation"])
def test_an_operation_monitor_with_a_status_is_read_as_before(
    dialect: Dialect, header: str
) -> None:
    if dialect.name == "google":
        return  # Google reads Operations, not status documents
    sub = dialect.interpret_submit(submit_with({header: MONITOR}))
    running = dialect.interpret_status(
        resp(200, {"status": "Running"}, url=MONITOR), submission=sub
    )
    assert running.state.value == "processing"
    done = dialect.interpret_status(resp(200, {"status": "Succeeded"}, url=MONITOR), submission=sub)
    assert done.state.value == "completed"


@pytest.mark.parametrize(
    "dialect",
    [AutoDialect(), ArmDialect(), MicrosoftDialect(), StatusCodeDialect()],
    ids=lambda d: d.name,
)
@pytest.mark.parametrize(
    ("answer", "result"),
    [
        (resp(200, {}, url=RESOURCE), {}),
        (resp(200, {"id": "7", "name": "seven"}, url=RESOURCE), {"id": "7", "name": "seven"}),
        (resp(204, url=RESOURCE), None),
    ],
    ids=["empty-object", "resource", "204"],
)
def test_a_location_polled_2xx_is_the_result(
    dialect: Dialect, answer: HttpResponse, result: Any
) -> None:
    sub = dialect.interpret_submit(submit_with({"Location": RESOURCE}))
    assert (sub.status_url, sub.monitored_by) == (RESOURCE, "location")
    running = dialect.interpret_status(resp(202, url=RESOURCE), submission=sub)
    assert running.state.value == "pending"
    status = dialect.interpret_status(answer, submission=sub)
    assert status.state.value == "completed" and status.has_result
    assert status.result == result


def test_microsoft_without_a_location_monitor_still_needs_documents() -> None:
    # Reached by client.operation(url) (no submission) or an Operation-Location monitor.
    with pytest.raises(ProtocolError, match="states no job state"):
        MicrosoftDialect().interpret_status(resp(200, {"id": "7"}, url=RESOURCE))


# --------------------------------------------------------------------------------------------
# A 202 whose body is a resource that provisioned: the operation is still running

ARM_RESOURCE = {"id": "/subscriptions/1/rg/vm1", "properties": {"provisioningState": "Succeeded"}}


@pytest.mark.parametrize(
    "dialect", [AutoDialect(), ArmDialect(), MicrosoftDialect()], ids=lambda d: d.name
)
@pytest.mark.parametrize("header", ["Azure-AsyncOperation", "Operation-Location", "Location"])
@pytest.mark.parametrize(
    "body",
    [
        ARM_RESOURCE,
        {"provisioningState": "Succeeded"},
        {"properties": {"provisioningState": "Failed"}},
    ],
    ids=["properties", "top-level", "failed-resource"],
)
def test_a_202_with_a_monitor_and_a_provisioned_resource_is_still_running(
    dialect: Dialect, header: str, body: dict[str, Any]
) -> None:
    sub = dialect.interpret_submit(submit_with({header: MONITOR}, body, method="PUT"))
    assert sub.status.state.value == "pending" and not sub.status.is_terminal
    assert sub.status_url == MONITOR
    polled = dialect.interpret_status(resp(202, body, url=MONITOR), submission=sub)
    assert polled.state.value == "pending"


@pytest.mark.parametrize("dialect", [AutoDialect(), ArmDialect()], ids=lambda d: d.name)
def test_a_202_whose_operation_state_is_terminal_stays_terminal(dialect: Dialect) -> None:
    body = {"status": "Failed", "error": {"code": "Quota"}, **ARM_RESOURCE}
    sub = dialect.interpret_submit(submit_with({"Azure-AsyncOperation": MONITOR}, body))
    assert sub.status.state.value == "failed"
    creating = {"properties": {"provisioningState": "Creating"}}
    sub = dialect.interpret_submit(submit_with({"Azure-AsyncOperation": MONITOR}, creating))
    assert sub.status.state.value == "processing"


# --------------------------------------------------------------------------------------------
# Auto: a 200 that is neither a job's status nor a result of a job it saw submitted

JOBS_PAGE = {"jobs": [{"jobId": "1", "status": "completed"}], "nextCursor": None}


def seen_submitted() -> Any:
    return AutoDialect().interpret_submit(resp(202, b"", {"Location": "/jobs/1"}, method="POST"))


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (resp(200, JOBS_PAGE), "a listing of jobs"),
        (resp(200, [{"id": "1", "state": "running"}]), "a listing of jobs"),
        (resp(200, [1, 2, 3]), "a JSON list of 3 entries"),
        (resp(200, {"hello": "world"}), "a JSON document with keys 'hello'"),
        (resp(200, {}), "an empty JSON document"),
        (resp(200, b"plain words", {"Content-Type": "text/plain"}), "a text/plain body"),
        (resp(200, b"<html>x</html>", {"Content-Type": "text/html"}), "web page"),
        (resp(200, "a string"), "a JSON str"),
    ],
)
def test_auto_refuses_what_is_no_job_from_a_url_it_was_given(
    answer: HttpResponse, words: str
) -> None:
    with pytest.raises(ProtocolError, match=words) as info:
        AutoDialect().interpret_status(answer)
    assert info.value.status_code == 200 and info.value.url == f"{API}/jobs/1"


@pytest.mark.parametrize(
    "answer",
    [
        resp(200, {"hello": "world"}),
        resp(200, [1, 2, 3]),
        resp(200, []),
        resp(200, {"items": []}),
        resp(200, b"a,b\n", {"Content-Type": "text/csv"}),
    ],
)
def test_auto_reads_a_stateless_200_as_the_result_of_a_job_it_submitted(
    answer: HttpResponse,
) -> None:
    status = AutoDialect().interpret_status(answer, submission=seen_submitted())
    assert status.state.value == "completed" and status.has_result


def test_a_listing_is_refused_even_for_a_submitted_job() -> None:
    with pytest.raises(ProtocolError, match="a listing of jobs"):
        AutoDialect().interpret_status(resp(200, JOBS_PAGE), submission=seen_submitted())


@pytest.mark.parametrize(
    "answer",
    [
        # The status-code server's completed answer names the result it represents.
        resp(200, {"hello": "world"}, {"Content-Location": "/jobs/1/result"}),
        resp(204),
        resp(200, {"status": "completed", "data": 1}),
        resp(303, b"", {"Location": "/jobs/1/result"}),
    ],
)
def test_auto_still_reads_job_answers_from_a_url_it_was_given(answer: HttpResponse) -> None:
    status = AutoDialect().interpret_status(answer)
    assert status.state.value == "completed"


def test_a_content_location_naming_the_status_url_itself_is_no_evidence() -> None:
    with pytest.raises(ProtocolError, match="states no job state"):
        AutoDialect().interpret_status(resp(200, {"a": 1}, {"Content-Location": "/jobs/1"}))


# --------------------------------------------------------------------------------------------
# A 202 poll answer that names a new monitor


@pytest.mark.parametrize(
    ("headers", "monitored_by", "move"),
    [
        ({"Location": "/q/2"}, "location", (f"{API}/q/2", "location")),
        ({"Location": "/q/2"}, None, (f"{API}/q/2", "location")),
        ({"Location": "/q/2"}, "operation", None),  # an operation keeps its monitor
        ({"Operation-Location": "/op/2"}, "operation", (f"{API}/op/2", "operation")),
        (
            {"Azure-AsyncOperation": "/op/2", "Location": "/q/2"},
            "location",
            (f"{API}/op/2", "operation"),
        ),
        ({"Location": "/jobs/1"}, "location", None),  # the same URL
        ({}, "location", None),
    ],
)
def test_monitor_move(headers: dict[str, str], monitored_by: Any, move: Any) -> None:
    assert monitor_move(resp(202, b"", headers), monitored_by) == move


def test_only_a_202_moves_the_monitor() -> None:
    assert monitor_move(resp(200, {"status": "running"}, {"Location": "/q/2"}), "location") is None
    assert monitor_move(resp(303, b"", {"Location": "/q/2"}), "location") is None


# --------------------------------------------------------------------------------------------
# Where the final result is: per method, and final_state_via


@pytest.mark.parametrize(
    ("method", "final"),
    [
        ("POST", f"{API}/things/1"),
        ("PUT", f"{API}/items/7:run"),
        ("DELETE", None),
        ("PATCH", f"{API}/items/7:run"),
    ],
)
def test_the_final_url_by_method(method: str, final: str | None) -> None:
    headers = {"Azure-AsyncOperation": MONITOR, "Location": "/things/1"}
    sub = ArmDialect().interpret_submit(submit_with(headers, method=method))
    assert sub.final_url == final


@pytest.mark.parametrize(
    ("via", "status_url", "final_url", "from_monitor"),
    [
        # Operation-Location is the monitor when both operation headers are given.
        ("location", f"{API}/operations/ol", f"{API}/things/1", False),
        ("original-uri", f"{API}/operations/ol", f"{API}/orig", False),
        ("azure-async-operation", MONITOR, None, True),
        ("operation-location", f"{API}/operations/ol", None, True),
    ],
)
def test_with_final_state_via(
    via: Any, status_url: str, final_url: str | None, from_monitor: bool
) -> None:
    headers = {"Azure-AsyncOperation": MONITOR, "Location": "/things/1"}
    response = submit_with({**headers, "Operation-Location": "/operations/ol"})
    sub = ArmDialect().interpret_submit(response)
    moved = with_final_state_via(sub, response, via, f"{API}/orig")
    assert (moved.status_url, moved.final_url, moved.final_from_monitor) == (
        status_url,
        final_url,
        from_monitor,
    )


def test_final_state_via_without_its_header_keeps_the_automatic_rule() -> None:
    response = submit_with({"Operation-Location": MONITOR})
    sub = MicrosoftDialect().interpret_submit(response)
    assert with_final_state_via(sub, response, "location", API) == sub
    assert with_final_state_via(sub, response, "azure-async-operation", API) == sub
    with pytest.raises(ValueError, match="final_state_via must be one of"):
        with_final_state_via(sub, response, "nowhere", API)  # type: ignore[arg-type]


def test_the_monitors_last_answer_is_the_result_when_chosen() -> None:
    response = submit_with({"Operation-Location": MONITOR, "Location": "/things/1"})
    sub = with_final_state_via(
        MicrosoftDialect().interpret_submit(response), response, "operation-location", API
    )
    done = {"status": "Succeeded", "resourceLocation": "/things/1", "id": "7"}
    status = MicrosoftDialect().interpret_status(resp(200, done, url=MONITOR), submission=sub)
    assert status.has_result and status.result == done and status.result_url is None


def test_microsoft_a_succeeded_document_naming_no_result_is_the_result() -> None:
    sub = MicrosoftDialect().interpret_submit(submit_with({"Operation-Location": MONITOR}))
    done = {"id": "7", "status": "Succeeded", "summary": {"pages": 3}}
    status = MicrosoftDialect().interpret_status(resp(200, done, url=MONITOR), submission=sub)
    assert status.has_result and status.result == done
    pointed = {"id": "7", "status": "Succeeded", "resourceLocation": "/things/1"}
    status = MicrosoftDialect().interpret_status(resp(200, pointed, url=MONITOR), submission=sub)
    assert not status.has_result and status.result_url == f"{API}/things/1"


@pytest.mark.parametrize(
    ("code", "label"),
    [(401, "request rejected"), (403, "request rejected"), (400, "request rejected")],
)
def test_the_cli_exits_rejected_for_a_polls_4xx(code: int, label: str) -> None:
    from asyncreply_client.cli._exit import ExitCode, describe_error, exit_code_for

    error = rejection_error(resp(code, {"error": {"code": "nope", "message": "no token"}}))
    assert error is not None
    assert exit_code_for(error) == ExitCode.REJECTED
    assert describe_error(error).startswith(label) and "no token" in describe_error(error)
