"""Testing code that uses an async request-reply API with asyncreply's pytest fixtures.

The plugin is installed with the package; no conftest is needed. Run::

    pytest examples/test_example_pytest.py
"""

from __future__ import annotations

import pytest

from asyncreply_client import Client, JobFailedError
from asyncreply_client.pytest_plugin import RunningReferenceServer
from asyncreply_client.testing import FakeAsyncAPI


def summarise(client: Client, rows: int) -> dict[str, object]:
    """The code under test: runs a 'report' job and summarises its CSV result."""
    result = client.run("/jobs", json={"type": "report", "input": {"rows": rows}}, timeout=30)
    lines = result.content.decode().splitlines()
    return {"columns": lines[0].split(","), "rows": len(lines) - 1}


def test_against_the_real_reference_server(reference_server: RunningReferenceServer) -> None:
    with Client(reference_server.base_url) as client:
        assert summarise(client, 3) == {"columns": ["id", "name", "value"], "rows": 3}
    assert len(reference_server.admin.jobs()) == 1


@pytest.mark.reference_server_config(dialect="status-code")
def test_the_status_code_dialect(reference_server: RunningReferenceServer) -> None:
    with Client(reference_server.base_url) as client:
        assert client.run("/jobs", json={"type": "echo", "input": {"a": 1}}, timeout=30) == {"a": 1}


def test_with_a_scripted_fake(fake_async_api: FakeAsyncAPI) -> None:
    # A 30-second job with long Retry-After hints: the fake clock makes it instant.
    fake_async_api.job("/jobs").pending(retry_after=10).progress(0.5, retry_after=20).completed(
        {"ok": True}
    )
    with Client(fake_async_api.base_url, clock=fake_async_api.clock) as client:
        assert client.run("/jobs", json={"type": "anything"}, mode="poll") == {"ok": True}
    assert fake_async_api.clock.slept >= 30


def test_a_failing_job(fake_async_api: FakeAsyncAPI) -> None:
    fake_async_api.job("/jobs").pending().failed(code="quota_exceeded", message="try later")
    client = Client(fake_async_api.base_url, clock=fake_async_api.clock)
    with client, pytest.raises(JobFailedError) as caught:
        client.run("/jobs", json={})
    assert caught.value.status is not None and caught.value.status.error is not None
    assert caught.value.status.error.code == "quota_exceeded"
