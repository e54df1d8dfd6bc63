"""The future-like idioms azure-core and google-api-core users look for: ``done()``,
``cancelled()``, ``exception()``, ``add_done_callback()``, ``metadata``/``headers``,
``await op``, and ``run(..., result_type=M)`` typed ``M``. Both clients, one test body."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import respx

from asyncreply_client import (
    AsyncClient,
    JobCancelledError,
    JobFailedError,
    JobState,
    OperationMetadata,
    RetryPolicy,
)
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"workers": 4, "retry_backoff": 0.01, "sse_retry_ms": 20}
SERVER = pytest.mark.parametrize("reference_server", [FAST], indirect=True, ids=["reference"])
BASE = "https://api.example.com"


class Echoed(pydantic.BaseModel):
    n: int


@BOTH
@SERVER
async def test_done_and_exception_of_a_completed_job(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {"n": 1}})
        assert not op.done() and not op.cancelled()
        op.headers["x-mine"] = "changed"  # a copy: the next read is unaffected
        assert "x-mine" not in op.headers
        assert await call(op.exception, timeout=20) is None
        assert op.done() and not op.cancelled()
        assert op.status is not None and op.status.state is JobState.COMPLETED


@BOTH
@SERVER
async def test_exception_returns_the_failure_without_raising(
    flavor: str, reference_server: Any
) -> None:
    body = {"type": "fail", "input": {"code": "boom", "message": "it broke"}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        error = await call(op.exception, timeout=20, mode="poll")
        assert isinstance(error, JobFailedError)
        assert error.status is not None and error.status.error is not None
        assert error.status.error.code == "boom"
        assert op.done() and not op.cancelled()
        with pytest.raises(JobFailedError):
            await call(op.result, timeout=20)


@BOTH
@SERVER
async def test_cancelled_and_its_exception(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        await call(op.cancel)
        assert op.done() and op.cancelled()
        assert isinstance(await call(op.exception, timeout=20), JobCancelledError)


@BOTH
@SERVER
async def test_done_callbacks_run_once_when_the_job_is_seen_terminal(
    flavor: str, reference_server: Any
) -> None:
    calls: list[Any] = []
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {"n": 2}})
        op.add_done_callback(calls.append)
        op.add_done_callback(lambda o: calls.append(("second", o.status.state)))
        assert calls == []
        await call(op.wait, timeout=20, mode="poll")
        assert calls == [op, ("second", JobState.COMPLETED)]
        await call(op.refresh)  # already fired: never again
        assert len(calls) == 2
        op.add_done_callback(calls.append)  # already done: called at once
        assert calls[-1] is op and len(calls) == 3


@BOTH
@SERVER
async def test_a_failing_done_callback_is_logged_not_raised(
    flavor: str, reference_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(op: Any) -> None:
        raise RuntimeError("callback bug")

    caplog.set_level(logging.ERROR, logger="asyncreply.client")
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
        op.add_done_callback(broken)
        await call(op.wait, timeout=20)
    [record] = [r for r in caplog.records if r.name == "asyncreply.client"]
    assert record.levelno == logging.ERROR and "done callback" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


@BOTH
async def test_add_done_callback_refuses_a_coroutine_function(flavor: str) -> None:
    async def later(op: Any) -> None:
        pass

    async with open_client(flavor, BASE) as (client, _):
        op = client.operation("/jobs/1")
        with pytest.raises(TypeError, match="plain function"):
            op.add_done_callback(later)


def _answers(router: respx.Router) -> None:
    router.post(f"{BASE}/jobs").respond(
        202,
        json={"id": "j1", "status": "pending"},
        headers={"Location": f"{BASE}/jobs/j1", "X-Request-Id": "submit-1"},
    )
    router.get(f"{BASE}/jobs/j1").mock(
        side_effect=[
            httpx.Response(
                200, json={"id": "j1", "status": "running"}, headers={"X-Request-Id": "poll-1"}
            ),
            httpx.Response(
                200,
                json={"id": "j1", "status": "succeeded", "result": {"n": 7}},
                headers={"X-Request-Id": "poll-2", "ETag": '"v2"'},
            ),
        ]
    )


@BOTH
async def test_metadata_and_headers_are_the_last_answers(flavor: str) -> None:
    with respx.mock(assert_all_called=True) as router:
        _answers(router)
        async with open_client(flavor, BASE, retry=RetryPolicy(attempts=1)) as (client, call):
            op = await call(client.submit, "/jobs", json={})
            first = op.metadata
            assert isinstance(first, OperationMetadata)
            assert first.status_code == 202 and first.url == f"{BASE}/jobs"
            assert op.headers["x-request-id"] == "submit-1"
            assert first.status is op.status and first.raw == {"id": "j1", "status": "pending"}
            assert await call(op.result, timeout=5, mode="poll") == {"n": 7}
    last = op.metadata
    assert last.status_code == 200 and last.url == f"{BASE}/jobs/j1"
    assert op.headers["x-request-id"] == "poll-2" and op.headers["etag"] == '"v2"'
    assert last.raw == {"id": "j1", "status": "succeeded", "result": {"n": 7}}
    assert last.status is not None and last.status.state is JobState.COMPLETED


async def test_metadata_before_any_answer_is_empty() -> None:
    async with AsyncClient(BASE) as client:
        op = client.operation("/jobs/1")
        assert op.metadata == OperationMetadata(
            status=None, raw=None, status_code=None, headers=httpx.Headers(), url=None
        )
        assert not op.done() and not op.cancelled()


@SERVER
async def test_an_async_operation_is_awaitable(reference_server: Any) -> None:
    async with AsyncClient(reference_server.base_url) as client:
        op = await client.submit(
            "/jobs", json={"type": "echo", "input": {"n": 3}}, result_type=Echoed
        )
        assert await op == Echoed(n=3)
        failing = await client.submit("/jobs", json={"type": "fail", "input": {}})
        with pytest.raises(JobFailedError):
            await failing


@BOTH
@SERVER
async def test_run_validates_into_result_type(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        value = await call(
            client.run, "/jobs", json={"type": "echo", "input": {"n": 4}}, result_type=Echoed
        )
    assert value == Echoed(n=4)


TYPED = textwrap.dedent(
    """
    from typing import Any
    import pydantic
    from asyncreply_client import AsyncClient, AsyncOperation, Client, Operation

    class M(pydantic.BaseModel):
        n: int

    def sync(client: Client) -> None:
        reveal_type(client.run("/jobs", result_type=M))
        reveal_type(client.run("/jobs"))
        reveal_type(client.submit("/jobs", result_type=M).result())
        op = client.submit("/jobs", result_type=M)
        reveal_type(op.exception())
        op.add_done_callback(lambda o: reveal_type(o))

    async def both(client: AsyncClient) -> None:
        reveal_type(await client.run("/jobs", result_type=M))
        op = await client.submit("/jobs", result_type=M)
        reveal_type(await op)
        reveal_type(op.done())
    """
)


@pytest.mark.timeout(240)
def test_run_and_await_are_typed_by_result_type(tmp_path: Path) -> None:
    """mypy (strict) reveals the ``result_type`` through ``run``, ``result`` and ``await``."""
    source = tmp_path / "typed.py"
    source.write_text(TYPED)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(root / ".mypy_cache"),
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=240,
        check=False,
    )
    revealed = [
        line.split("Revealed type is ", 1)[1].strip('"')
        for line in done.stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert revealed == [
        "typed.M",
        "Any",
        "typed.M",
        "asyncreply_client._errors.JobFailedError | asyncreply_client._errors.JobCancelledError"
        " | None",
        "asyncreply_client._operation.Operation[typed.M]",
        "typed.M",
        "typed.M",
        "bool",
    ], done.stdout + done.stderr
