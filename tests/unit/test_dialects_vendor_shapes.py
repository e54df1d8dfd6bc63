"""Issue 10's vendor shapes, pure: each row is an answer a real API gives at first contact
(Microsoft REST guidelines, Azure ARM, Google AIP-151, status-code servers, RFC 9457) and what
the dialects must make of it. Scenario tables, no sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncreply_client._errors import ProtocolError
from asyncreply_client._http import HttpResponse
from asyncreply_client.dialects import (
    ArmDialect,
    AutoDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
    ReferenceDialect,
    StatusCodeDialect,
)

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
    h = dict(headers or {})
    if body is None:
        content = b""
    elif isinstance(body, bytes):
        content = body
    else:
        content = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    return HttpResponse(code, httpx.Headers(h), content, url, method)


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
