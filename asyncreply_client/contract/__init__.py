"""Contract checker: submit a job to *any* server and report, check by check, whether it
follows the asynchronous request-reply pattern (202 + status monitor, Retry-After, progress,
a terminal state, the result, cancellation, idempotency, SSE, 404 for unknown ids).

The checking logic is one I/O-free generator (STYLE.md §1) that yields the client's flow
commands (``Send``, ``ReadChunk``, ``CloseStream``, ``Sleep``), built through the client's own
request factory and ``send`` flow with retries and redirects off: it observes raw answers,
and nothing is retried or followed behind its back. :func:`check` runs it on the client's
synchronous driver with an ``httpx.Client``, :func:`acheck` on the asynchronous one.

| module       | holds                                                              |
| ------------ | ------------------------------------------------------------------ |
| ``_report``  | the report model: ``CHECKS``, ``Outcome``, ``Evidence``, results   |
| ``_audits``  | options, evidence, the Retry-After and progress audits, helpers    |
| ``_checker`` | the checker's requests, its polling, the first job's checks        |
| ``_checks``  | the run: submit, SSE, cancellation, idempotency, unknown id        |
| ``_runner``  | ``check`` / ``acheck``: options, and the run on the SDK's drivers  |

Example:
    >>> report = check(  # doctest: +SKIP
    ...     "http://127.0.0.1:8080/jobs",
    ...     json={"type": "sleep", "input": {"seconds": 0.2, "steps": 4}},
    ...     idempotency=True,
    ... )
    >>> print(report.render_table())  # doctest: +SKIP
    >>> report.passed  # doctest: +SKIP
    True
"""

from __future__ import annotations

from ._report import CHECKS, CheckResult, ContractReport, Evidence, Outcome
from ._runner import acheck, check

__all__ = [
    "CHECKS",
    "CheckResult",
    "ContractReport",
    "Evidence",
    "Outcome",
    "acheck",
    "check",
]
