"""The checker passes every check against the reference server, in both its dialects, with
the synchronous and the asynchronous driver."""

from __future__ import annotations

import pytest

from asyncreply_client.contract import ContractReport, Outcome, acheck, check
from reference_server import ServerConfig, ServerThread, serve

from .conftest import FAST, SLEEP_JOB

DIALECTS = pytest.mark.parametrize("dialect", ["reference", "status-code"])


def config(dialect: str) -> ServerConfig:
    return ServerConfig(port=0, dialect=dialect, retry_after_min=0.01, sse_retry_ms=20)


def assert_all_pass(report: ContractReport) -> None:
    table = report.render_table()
    assert report.passed, table
    # Every feature exists on the reference server: nothing may be skipped either.
    assert [c.name for c in report.checks if c.outcome is not Outcome.PASS] == [], table


@DIALECTS
def test_sync_checker_passes_every_check(dialect: str) -> None:
    with ServerThread(config(dialect)) as server:
        report = check(
            server.base_url + "/jobs", json=SLEEP_JOB, idempotency=True, timeout=10, **FAST
        )
    assert_all_pass(report)


@DIALECTS
@pytest.mark.anyio
async def test_async_checker_passes_every_check(dialect: str) -> None:
    async with serve(config(dialect)) as server:
        report = await acheck(
            server.base_url + "/jobs",
            json=SLEEP_JOB,
            idempotency=True,
            timeout=10,
            dialect=dialect,
            **FAST,
        )
    assert_all_pass(report)
    assert report.dialect == dialect


@DIALECTS
def test_the_idempotency_check_passes_when_the_job_is_done_before_its_replay(
    dialect: str,
) -> None:
    # An instant job is final when the checker replays its submission: the replay is still
    # the 202 naming the same job (its document now says completed; protocol §5).
    with ServerThread(config(dialect)) as server:
        report = check(
            server.base_url + "/jobs",
            json={"type": "echo", "input": {"n": 1}},
            idempotency=True,
            timeout=10,
            **FAST,
        )
    (idempotency,) = [c for c in report.checks if c.name == "idempotency"]
    assert idempotency.outcome is Outcome.PASS, report.render_table()
