"""Shared settings of the contract checker's tests: fast polling, small jobs."""

from __future__ import annotations

from typing import Any

from asyncreply_client.contract import CheckResult, ContractReport

#: Polling bounds that keep every run fast (the servers hint 10-50 ms).
FAST: dict[str, Any] = {"min_poll_interval": 0.0, "max_poll_interval": 0.05}

#: A job of the reference server: 0.3 s in 6 progress steps.
SLEEP_JOB: dict[str, Any] = {"type": "sleep", "input": {"seconds": 0.3, "steps": 6}}


def only_failure(report: ContractReport, name: str) -> CheckResult:
    """Assert that ``name`` is the one failed check of ``report``; return it."""
    assert [c.name for c in report.failures] == [name], report.render_table()
    result = report[name]
    assert result.evidence is not None, report.render_table()
    return result
