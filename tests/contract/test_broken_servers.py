"""Each deliberately broken server is caught by exactly the check it breaks, with evidence.

One test per breakage (not parametrised): each states what the evidence must show.
"""

from __future__ import annotations

from typing import Any

from asyncreply_client.contract import ContractReport, Outcome, check

from .broken_servers import Breakage, MiniServer, running
from .conftest import FAST, only_failure

JOB: dict[str, Any] = {"type": "demo", "input": {"n": 1}}


def run(server: MiniServer, *, timeout: float = 5.0) -> ContractReport:
    with running(server) as url:
        return check(url, json=JOB, idempotency=True, timeout=timeout, **FAST)


def test_the_conforming_mini_server_passes_every_check() -> None:
    report = run(MiniServer())

    assert report.passed, report.render_table()
    assert [c.outcome for c in report.checks] == [Outcome.PASS] * len(report.checks)


def test_missing_location_fails_the_submit_check() -> None:
    report = run(MiniServer(Breakage.MISSING_LOCATION))

    result = only_failure(report, "submit")
    assert result.evidence is not None
    assert result.evidence.status_code == 202
    assert result.evidence.method == "POST"
    assert result.evidence.note == "no Location header"
    assert result.evidence.body is not None and "jobId" in result.evidence.body
    # Everything else depends on a status monitor, so it is skipped, not failed.
    assert all(c.outcome is Outcome.SKIPPED for c in report.checks if c.name != "submit")


def test_garbage_retry_after_fails_the_retry_after_check() -> None:
    report = run(MiniServer(Breakage.GARBAGE_RETRY_AFTER))

    result = only_failure(report, "retry_after")
    assert result.evidence is not None
    assert result.evidence.header == "Retry-After: soon"
    assert result.evidence.status_code == 202
    assert "'soon'" in result.summary


def test_progress_going_backwards_fails_the_progress_check() -> None:
    report = run(MiniServer(Breakage.PROGRESS_BACKWARDS))

    result = only_failure(report, "progress_monotonic")
    assert result.summary == "progress went backwards from 3/3 to 2/3"
    assert result.evidence is not None
    assert result.evidence.status_code == 200
    assert result.evidence.url is not None and "/jobs/" in result.evidence.url
    assert result.evidence.body is not None and '"current": 2' in result.evidence.body


def test_a_job_that_never_finishes_fails_the_terminal_state_check() -> None:
    report = run(MiniServer(Breakage.NEVER_FINISHES), timeout=0.5)

    result = only_failure(report, "terminal_state")
    assert result.summary.startswith("no terminal state within 0.5 s")
    assert "last state processing" in result.summary
    assert result.evidence is not None
    assert result.evidence.status_code == 200
    assert result.evidence.body is not None and '"processing"' in result.evidence.body
    assert report["result"].outcome is Outcome.SKIPPED


def test_a_303_to_a_404_fails_the_result_check() -> None:
    report = run(MiniServer(Breakage.RESULT_404))

    result = only_failure(report, "result")
    assert result.evidence is not None
    assert result.evidence.status_code == 404
    assert result.evidence.url is not None and result.evidence.url.endswith("/output")
    assert "expected 2xx" in result.summary


def test_sse_with_a_wrong_content_type_fails_the_sse_check() -> None:
    report = run(MiniServer(Breakage.SSE_WRONG_CONTENT_TYPE))

    result = only_failure(report, "sse")
    assert result.evidence is not None
    assert result.evidence.header is not None
    assert result.evidence.header.startswith("Content-Type: application/json")
    assert result.evidence.url is not None and result.evidence.url.endswith("/events")
    assert "text/event-stream" in result.summary


def test_a_replayed_idempotency_key_creating_a_second_job_fails_the_idempotency_check() -> None:
    server = MiniServer(Breakage.IDEMPOTENCY_IGNORED)
    report = run(server)

    result = only_failure(report, "idempotency")
    assert "created a second job" in result.summary
    assert result.evidence is not None
    assert result.evidence.status_code == 202
    assert result.evidence.header is not None
    assert result.evidence.header.startswith("Idempotency-Key: contract-check-")
    # Job A, the cancelled job B, and the keyed submission with its replay: four jobs.
    assert server.submissions == 4
