"""``--timing-headers``: a finished job's status answer says when it ended to the microsecond
(what the detection-lag benchmark measures against); off by default."""

from __future__ import annotations

from datetime import datetime

import pytest

from .conftest import ServerFactory

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("timing_headers", [True, False])
async def test_a_finished_job_carries_its_precise_end_only_when_asked(
    make_server: ServerFactory, timing_headers: bool
) -> None:
    srv = await make_server(timing_headers=timing_headers)
    job_id = await srv.submit_ok("echo", {"message": "hi"})
    answer = await srv.wait_terminal(job_id)
    completed_at = datetime.fromisoformat(answer.json()["completedAt"].replace("Z", "+00:00"))
    header = answer.headers.get("job-finished-at")
    if not timing_headers:
        assert header is None
        return
    assert header is not None
    whole, _, fraction = header.partition(".")
    assert whole.isdigit() and len(fraction) == 6 and fraction.isdigit()
    # completedAt is the same instant truncated to the millisecond.
    assert 0 <= float(header) - completed_at.timestamp() < 0.0011


async def test_a_running_job_carries_no_end(make_server: ServerFactory) -> None:
    srv = await make_server(timing_headers=True)
    job_id = await srv.submit_ok("gate", {"key": "held"})
    answer = await srv.get(f"/jobs/{job_id}")
    assert answer.status_code == 200
    assert "job-finished-at" not in answer.headers
    srv.gates.open("held")
