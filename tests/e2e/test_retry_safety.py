"""Retrying safely (issue 19, item 13), against a real reference server on SQLite that is
killed (SIGKILL) and restarted on the same port while jobs are in flight.

- The default ``RetryPolicy`` rides through the restart: a refused connection is retried for
  ``connect_for`` seconds, so no ``run()`` raises.
- When ``run()`` does raise (a policy that gives up at once, faults injected), the guide's
  recipe (wait for ``exc.operation``, else call ``run()`` again with
  ``idempotency_key=exc.idempotency_key``) makes no duplicate job.

The full variant (1,000 jobs, three restarts) is ``python -m benchmarks.fault_run``.
"""

from __future__ import annotations

import pytest

from asyncreply_client import RetryPolicy
from benchmarks.fault_run import fault_run

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


async def test_the_default_policy_rides_through_a_server_restart() -> None:
    # Down 0.5 s (the benchmark's default is 1.5): refused connections for as long as the
    # server is down and restarting is what is ridden through, however long that is.
    run = await fault_run(
        jobs=40, concurrency=20, restarts=1, down=0.5, p_503=0.0, p_500=0.0, p_drop=0.0
    )
    assert run.restarts == 1
    assert run.completed == run.jobs and run.duplicates == 0
    assert run.recalls == 0 and not run.errors  # no run() raised: the client rode through


async def test_re_calling_run_with_the_errors_key_makes_no_duplicate() -> None:
    # connect_for=0: refused connections count as attempts at once, so run() raises during
    # the restart (and the injected faults do the rest): the application's recipe is used.
    retry = RetryPolicy(connect_for=0.0)
    run = await fault_run(jobs=60, concurrency=20, restarts=1, down=0.5, retry=retry)
    assert run.restarts == 1
    assert run.recalls > 0  # the recipe was used (30-40 times a run)
    assert run.completed == run.jobs
    assert run.server_jobs == run.jobs and run.duplicates == 0
