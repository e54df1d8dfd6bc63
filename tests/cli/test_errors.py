"""The one-line error messages: no doubled prefixes, the server's error object in any common
shape (reference, Microsoft REST guidelines, Google AIP-193, RFC 9457 problem details), its
``details``, and the failed job's error — in-process through ``main`` with respx for the shapes
the reference server does not produce."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import (
    AsyncReplyError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobOutcomeError,
    JobState,
    JobStatus,
    ProtocolError,
    SubmissionRejectedError,
    TransportError,
)
from asyncreply_client.cli import describe_error, main

URL = "https://api.example.test/jobs"

SHAPES: list[tuple[str, int, dict[str, str], Any, str]] = [
    (
        "reference",
        400,
        {"Content-Type": "application/json"},
        {"error": {"code": "invalid_input", "message": "bad", "details": [{"loc": ["x"]}]}},
        'submission rejected (HTTP 400): invalid_input: bad; details: [{"loc":["x"]}]',
    ),
    (
        "microsoft",
        400,
        {"Content-Type": "application/json"},
        {
            "error": {
                "code": "InvalidRequest",
                "message": "The name is missing.",
                "details": [{"code": "MissingField", "target": "name", "message": "required"}],
            }
        },
        "submission rejected (HTTP 400): InvalidRequest: The name is missing.; details: "
        '[{"code":"MissingField","target":"name","message":"required"}]',
    ),
    (
        "google",
        400,
        {"Content-Type": "application/json"},
        {
            "error": {
                "code": 400,
                "message": "name is required",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest"}],
            }
        },
        "submission rejected (HTTP 400): INVALID_ARGUMENT: name is required; details: "
        '[{"@type":"type.googleapis.com/google.rpc.BadRequest"}]',
    ),
    (
        "rfc9457",
        422,
        {"Content-Type": "application/problem+json"},
        {
            "type": "https://example.test/probs/invalid",
            "title": "Invalid input",
            "detail": "age must be positive",
            "errors": [{"pointer": "#/age"}],
        },
        "submission rejected (HTTP 422): Invalid input: age must be positive; details: "
        '[{"pointer":"#/age"}]',
    ),
]


@pytest.mark.parametrize(
    ("shape", "code", "headers", "body", "expected"), SHAPES, ids=[s[0] for s in SHAPES]
)
def test_rejections_print_the_servers_error_and_details(
    shape: str, code: int, headers: dict[str, str], body: Any, expected: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    with respx.mock(assert_all_called=True) as router:
        router.post(URL).mock(
            return_value=httpx.Response(code, content=json.dumps(body).encode(), headers=headers)
        )
        status = main(["submit", URL, "--json", "{}"], stdout=out, stderr=err, environ={})
    assert status == 11
    assert out.getvalue() == ""
    assert err.getvalue() == f"asyncreply: error: {expected}\n"


def _failed(error: JobError | None) -> JobFailedError:
    return JobFailedError(
        "the job failed: ignored", status=JobStatus(state=JobState.FAILED, error=error)
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_failed(JobError(code="boom", message="it broke")), "job failed: boom: it broke"),
        (
            _failed(JobError(code="boom", message="bad rows", details={"rows": [3, 7]})),
            'job failed: boom: bad rows; details: {"rows":[3,7]}',
        ),
        (_failed(None), "job failed: ignored"),
        (JobFailedError("the job failed"), "job failed"),
        (JobCancelledError("the job was cancelled"), "job cancelled"),
        (
            JobCancelledError("cancelled by the operator"),
            "job cancelled: cancelled by the operator",
        ),
        (
            SubmissionRejectedError(
                "submission rejected with HTTP 409: conflict", status_code=409, url=URL
            ),
            "submission rejected (HTTP 409): conflict",
        ),
        (TransportError("ConnectError: refused"), "transport error: ConnectError: refused"),
        (
            ProtocolError("202 without a status monitor"),
            "protocol error: 202 without a status monitor",
        ),
        (JobOutcomeError("the job cannot be retried"), "the job cannot be retried"),
        (AsyncReplyError(""), "AsyncReplyError"),
    ],
)
def test_messages_say_each_thing_once(error: AsyncReplyError, expected: str) -> None:
    assert describe_error(error) == expected
