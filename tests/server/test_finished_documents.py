"""A finished job's status document is rendered once, when its last event is logged: every
later answer about it (held submission, polls, long polls, streams) reuses that document."""

from __future__ import annotations

from typing import Any

import pytest

import reference_server.jobs as jobs_module
from reference_server.records import JobRecord

from .conftest import ServerFactory, read_sse

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
async def test_answers_about_a_finished_job_reuse_its_logged_document(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = await make_server(completion_style="inline")
    rendered: list[str] = []
    real = jobs_module.status_document

    def counting(job: JobRecord, now: float, config: Any) -> dict[str, Any]:
        rendered.append(job.state.value)
        return real(job, now, config)

    monkeypatch.setattr(jobs_module, "status_document", counting)
    held = await srv.submit("echo", {"message": "hi"}, headers={"Prefer": "wait=5"})
    assert held.status_code == 200
    job_id = held.headers["content-location"].split("/")[2]  # /jobs/{id}/result
    # Pending, processing and completed: one document per event, none per answer.
    assert rendered == ["pending", "processing", "completed"]
    polled = [await srv.get(f"/jobs/{job_id}") for _ in range(3)]
    capture = await read_sse(srv, job_id)
    assert rendered == ["pending", "processing", "completed"]
    assert all(p.status_code == 200 for p in polled)
    assert len({p.text for p in polled}) == 1
    assert capture.names[-1] == "complete"
    # The copies handed out are the caller's: the inline result never leaks into the log.
    assert "result" not in capture.events[-1].json()
