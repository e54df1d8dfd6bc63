"""One JSON shape for every command (issue 20, item 14), through the real entry point:
camelCase keys as in the protocol (``jq -r .statusUrl`` works on every job document),
numbers as the server sent them (progress ``1``, not ``1.0``), timestamps in RFC 3339."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from asyncreply_client import JobState, JobStatus
from asyncreply_client.cli._json import job_json, rfc3339, webhook_event_json
from asyncreply_client.pytest_plugin import RunningReferenceServer
from asyncreply_client.webhooks import WebhookEvent, sign

from .conftest import Cli

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")
TIMES = ("createdAt", "startedAt", "updatedAt", "estimatedCompletion")
JOB_KEYS = {
    "id", "state", "statusUrl", "eventsUrl", "cancelUrl", "resultUrl", "retryUrl", "progress",
    "result", "error", "retryAfter", "estimatedRemaining", "httpStatus", *TIMES,
}  # fmt: skip
STEPS = json.dumps({"type": "sleep", "input": {"seconds": 0.2, "steps": 2}})
SLOW = json.dumps({"type": "sleep", "input": {"seconds": 30, "steps": 30}})
FLAKY = json.dumps({"type": "fail", "input": {"code": "flaky", "retryable": True}})


def assert_job_document(doc: Any) -> None:
    """The documented job shape: known camelCase keys only, RFC 3339 times, integer steps."""
    assert isinstance(doc, dict), doc
    assert set(doc) <= JOB_KEYS, set(doc) - JOB_KEYS
    assert doc["statusUrl"].startswith("http://127.0.0.1:")
    assert doc["id"] and doc["state"] in {s.value for s in JobState}
    for key in TIMES:
        if key in doc:
            assert RFC3339.match(doc[key]), (key, doc[key])
    progress = doc.get("progress")
    if progress is not None:
        assert set(progress) <= {"current", "total", "message"}
        # JSON whole numbers: the reference server sends integer steps.
        assert all(type(progress[k]) is int for k in ("current", "total") if k in progress)
    if "error" in doc:
        assert set(doc["error"]) <= {"code", "message", "retryable", "details"}


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.reference_server_config(max_attempts=1)
def test_every_job_command_prints_the_same_document(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    jobs = reference_server.url("/jobs")
    submitted = cli("submit", jobs, "--json", STEPS)
    assert submitted.code == 0, submitted.stderr
    assert_job_document(submitted.json())
    url = submitted.json()["statusUrl"]

    waited = cli("wait", url)  # the result, exactly as the server sent it
    assert waited.code == 0 and waited.json() == {"slept": 0.2}

    status = cli("status", url)
    assert status.code == 0, status.stderr
    doc = status.json()
    assert_job_document(doc)
    assert doc["state"] == "completed" and doc["statusUrl"] == url
    assert doc["progress"] == {"current": 2, "total": 2, "message": "step 2/2"}
    assert "created_at" not in status.stdout
    # Whole numbers as the server wrote them (2, not 2.0); no 1.0 as a value (a timestamp's
    # seconds such as 11.080 may hold the characters).
    assert all(type(doc["progress"][k]) is int for k in ("current", "total"))
    assert re.search(r"[:\[,]\s*1\.0\b", status.stdout) is None

    running = cli("submit", jobs, "--json", SLOW).json()["statusUrl"]
    cancelled = cli("cancel", running)
    assert cancelled.code == 0, cancelled.stderr
    assert_job_document(cancelled.json())
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["statusUrl"] == running

    failed = cli("submit", jobs, "--json", FLAKY, "--wait")
    assert failed.code == 3
    announced = _lines(failed.stderr)[0]  # `--wait`'s line on stderr: the same document
    assert announced.pop("event") == "submitted"
    assert_job_document(announced)
    failed_doc = cli("status", announced["statusUrl"]).json()
    assert_job_document(failed_doc)
    assert failed_doc["error"] == {"code": "flaky", "message": "the job failed as asked",
                                   "retryable": True}  # fmt: skip
    assert failed_doc["retryUrl"]

    retried = cli("retry", announced["statusUrl"])
    assert retried.code == 0, retried.stderr
    assert_job_document(retried.json())
    retried_wait = cli("retry", announced["statusUrl"], "--wait", "--idempotency-key", "k2")
    line = _lines(retried_wait.stderr)[0]
    assert line.pop("event") == "retried"
    assert_job_document(line)


def test_check_json_report_is_camel_case(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    result = cli("check", reference_server.url("/jobs"), "--json", STEPS, "--format", "json")
    assert result.code == 0, result.stdout
    report = result.json()
    assert {"url", "method", "dialect", "passed", "duration", "counts", "checks"} <= set(report)
    evidence = [check["evidence"] for check in report["checks"] if "evidence" in check]
    keys = {key for item in [report, *report["checks"], *evidence] for key in item}
    assert not [key for key in keys if "_" in key], keys


def test_webhook_verify_prints_a_camel_case_event(cli: Cli) -> None:
    now = int(time.time())
    body = json.dumps({"type": "job.completed", "jobId": "j1", "data": {"status": "completed",
                       "snake_case_is_payload": 1}}).encode()  # fmt: skip
    headers = sign(body, "s3cret", msg_id="msg_1", timestamp=now, scheme="standard")
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    result = cli("webhook", "verify", "--secret", "s3cret", *flags, input=body)
    assert result.code == 0, result.stderr
    event = result.json()
    assert set(event) == {"type", "deliveryId", "timestamp", "jobId", "status", "scheme",
                          "replayKey", "payload"}  # fmt: skip
    assert event["timestamp"] == rfc3339(datetime.fromtimestamp(now, timezone.utc))
    assert RFC3339.match(event["timestamp"])
    assert event["status"] == "completed" and event["deliveryId"] == "msg_1"
    assert event["payload"] == json.loads(body)  # the payload as signed, keys untouched


def test_the_job_document_by_hand() -> None:
    from asyncreply_client import Client

    moment = datetime(2026, 5, 4, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    status = JobStatus.model_validate(
        {
            "id": "j1",
            "state": "processing",
            "progress": {"current": 1.0, "total": 4.0},
            "retry_after": 2.0,
            "estimated_remaining": 1.5,
            "created_at": moment,
            "updated_at": datetime(2026, 5, 4, 10, 0, 1),  # naive: taken as UTC
            "http_status": 202,
        }
    )
    with Client("http://127.0.0.1:9") as client:  # sends nothing
        op = client.operation("http://127.0.0.1:9/jobs/j1")
        doc = job_json(op, status)
    assert doc == {
        "id": "j1",
        "state": "processing",
        "statusUrl": "http://127.0.0.1:9/jobs/j1",
        "progress": {"current": 1, "total": 4},
        "retryAfter": 2,
        "estimatedRemaining": 1.5,
        "createdAt": "2026-05-04T10:00:00.250Z",
        "updatedAt": "2026-05-04T10:00:01Z",
        "httpStatus": 202,
    }
    # 1 == 1.0 in Python: the types are what a JSON reader sees (`1`, not `1.0`).
    whole = (doc["progress"]["current"], doc["progress"]["total"], doc["retryAfter"])
    assert [type(value) for value in whole] == [int, int, int]


def test_a_webhook_event_by_hand() -> None:
    event = WebhookEvent(
        type="job.failed",
        delivery_id=None,
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
        job_id="j2",
        status="deadLetter?",
        payload={"a_b": None},
        scheme="hmac-sha256",
        replay_key="sha256:00",
    )
    assert webhook_event_json(event) == {
        "type": "job.failed",
        "timestamp": "2026-01-01T00:00:00Z",
        "jobId": "j2",
        "status": "deadLetter?",
        "scheme": "hmac-sha256",
        "replayKey": "sha256:00",
        "payload": {"a_b": None},
    }


def test_the_docstring_examples_hold() -> None:
    import doctest

    from asyncreply_client.cli import _json

    outcome = doctest.testmod(_json)
    assert outcome.attempted >= 4 and outcome.failed == 0
