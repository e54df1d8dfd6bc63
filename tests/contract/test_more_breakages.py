"""The checker's other checks against more broken servers, and variations it must accept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from asyncreply_client.contract import CheckResult, Outcome, check

from .broken_servers import Breakage, MiniServer, running
from .conftest import FAST, only_failure

JOB: dict[str, Any] = {"type": "demo", "input": {"n": 1}}


def _monitor_404(r: CheckResult) -> bool:
    return (
        r.evidence is not None
        and r.evidence.status_code == 404
        and "/monitors/" in (r.evidence.url or "")
    )


def _unreadable(r: CheckResult) -> bool:
    return (
        r.evidence is not None
        and r.evidence.status_code == 200
        and "<html>" in (r.evidence.body or "")
    )


def _no_ids(r: CheckResult) -> bool:
    return (
        "has no id" in r.summary and r.evidence is not None and "event: " in (r.evidence.body or "")
    )


def _unknown_200(r: CheckResult) -> bool:
    return r.evidence is not None and r.evidence.status_code == 200 and "404 or 410" in r.summary


def _cancel_finished(r: CheckResult) -> bool:
    return (
        r.evidence is not None
        and r.evidence.method == "DELETE"
        and r.evidence.status_code == 200
        and "finished job" in r.summary
    )


def _body_ignored(r: CheckResult) -> bool:
    return (
        r.evidence is not None
        and r.evidence.status_code == 202
        and "different body" in r.summary
        and "expected 4xx" in r.summary
    )


def _absurd(r: CheckResult) -> bool:
    return (
        r.evidence is not None
        and r.evidence.header == "Retry-After: 86400000"
        and ("plausible" in r.summary)
    )


@pytest.mark.parametrize(
    ("breakage", "failed", "shows"),
    [
        (Breakage.MONITOR_404, "submit", _monitor_404),
        (Breakage.UNREADABLE_STATUS, "status_documents", _unreadable),
        (Breakage.SSE_WITHOUT_IDS, "sse", _no_ids),
        (Breakage.UNKNOWN_ID_200, "unknown_id", _unknown_200),
        (Breakage.CANCEL_FINISHED_200, "cancellation", _cancel_finished),
        (Breakage.IDEMPOTENCY_BODY_IGNORED, "idempotency", _body_ignored),
        (Breakage.ABSURD_RETRY_AFTER, "retry_after", _absurd),
    ],
)
def test_each_breakage_fails_its_own_check(
    breakage: Breakage, failed: str, shows: Callable[[CheckResult], bool]
) -> None:
    with running(MiniServer(breakage)) as url:
        report = check(url, json=JOB, idempotency=True, timeout=5, **FAST)

    result = only_failure(report, failed)
    assert shows(result), report.render_table()


def test_unreadable_status_answers_leave_the_dependent_checks_unjudged() -> None:
    with running(MiniServer(Breakage.UNREADABLE_STATUS)) as url:
        report = check(url, json=JOB, timeout=5, **FAST)

    assert report["terminal_state"].outcome is Outcome.SKIPPED
    assert report["result"].outcome is Outcome.SKIPPED


def test_an_http_date_retry_after_is_accepted() -> None:
    with running(MiniServer(Breakage.RETRY_AFTER_DATE)) as url:
        report = check(url, json=JOB, idempotency=True, timeout=5, **FAST)

    assert report.passed, report.render_table()
    assert report["retry_after"].outcome is Outcome.PASS
    assert "(1-1 s)" in report["retry_after"].summary


def test_idempotency_is_skipped_unless_asked_for() -> None:
    server = MiniServer()
    with running(server) as url:
        report = check(url, json=JOB, timeout=5, **FAST)

    assert report.passed
    assert report["idempotency"].outcome is Outcome.SKIPPED
    assert server.keys == {}  # no keyed request was sent


def test_a_server_that_is_not_listening_fails_the_submit_check() -> None:
    # Bind a port and close it again: nothing listens there now.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = check(f"http://127.0.0.1:{port}/jobs", json=JOB, timeout=1, **FAST)

    result = only_failure(report, "submit")
    assert result.evidence is not None
    assert result.evidence.status_code is None
    assert result.evidence.note is not None and "ConnectError" in result.evidence.note
