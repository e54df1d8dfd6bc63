"""The client against the real reference server over loopback: both clients (sync and async,
one test body), both server dialects, fault injection, streaming."""

from __future__ import annotations

import collections
import io
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pydantic
import pytest

from asyncreply_client import (
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    JobStatus,
    ResultFile,
    RetryPolicy,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
)
from reference_server import JobContext, JobFailure
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"workers": 4, "retry_backoff": 0.01, "sse_retry_ms": 20}
DIALECTS = pytest.mark.parametrize(
    "reference_server",
    [{**FAST, "dialect": "reference"}, {**FAST, "dialect": "status-code"}],
    indirect=True,
    ids=["reference", "status-code"],
)
SERVER = pytest.mark.parametrize("reference_server", [FAST], indirect=True, ids=["reference"])
ALL_MODES = pytest.mark.parametrize("mode", ["auto", "poll", "long-poll", "sse"])


class Slept(pydantic.BaseModel):
    slept: float


class FlakyInput(pydantic.BaseModel):
    key: str


_FLAKY_CALLS: collections.Counter[str] = collections.Counter()


async def flaky(ctx: JobContext, input: FlakyInput) -> dict[str, Any]:
    """Fails (retryably) the first time it runs for a key, then succeeds."""
    _FLAKY_CALLS[input.key] += 1
    if _FLAKY_CALLS[input.key] == 1:
        raise JobFailure("flaky", "fails the first time", retryable=True)
    return {"calls": _FLAKY_CALLS[input.key]}


@BOTH
@DIALECTS
@ALL_MODES
async def test_submit_wait_and_result(flavor: str, mode: str, reference_server: Any) -> None:
    seen: list[JobStatus] = []
    async with open_client(flavor, reference_server.base_url, on_progress=seen.append) as (
        client,
        call,
    ):
        op = await call(
            client.submit,
            "/jobs",
            json={"type": "sleep", "input": {"seconds": 0.05, "steps": 3}},
            result_type=Slept,
        )
        assert op.id and op.status_url == f"{reference_server.base_url}/jobs/{op.id}"
        assert op.status is not None and op.status.state is JobState.PENDING
        result = await call(op.result, timeout=20, mode=mode)
    assert result == Slept(slept=0.05)
    assert op.status is not None and op.status.state is JobState.COMPLETED
    assert seen and seen[-1].state is JobState.COMPLETED
    fractions = [
        s.progress.fraction for s in seen if s.progress and s.progress.fraction is not None
    ]
    assert fractions == sorted(fractions)
    # Nothing is reported twice.
    keys = [(s.state, s.progress) for s in seen]
    assert len(keys) == len(set(keys))


@BOTH
@DIALECTS
async def test_run_returns_the_result(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        value = await call(
            client.run, "/jobs", json={"type": "echo", "input": {"a": [1, 2]}}, timeout=20
        )
    assert value == {"a": [1, 2]}


@BOTH
@SERVER
@pytest.mark.parametrize("mode", ["poll", "sse"])
async def test_watch_yields_each_new_snapshot_until_terminal(
    flavor: str, mode: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(
            client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 0.1, "steps": 4}}
        )
        statuses = await call.collect(op.watch, timeout=20, mode=mode)
    assert statuses[-1].state is JobState.COMPLETED
    assert all(not s.is_terminal for s in statuses[:-1])
    keys = [(s.state, s.progress) for s in statuses]
    assert len(keys) == len(set(keys))


@BOTH
@DIALECTS
async def test_file_results_and_downloads(
    flavor: str, reference_server: Any, tmp_path: Path
) -> None:
    body = {"type": "report", "input": {"rows": 3, "columns": ["id", "name"]}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        file = await call(op.result, timeout=20)
        target = tmp_path / "out.csv"
        written = await call(op.download, target)
        buffer = io.BytesIO()
        await call(op.download, buffer)
    assert isinstance(file, ResultFile)
    assert file.content_type.startswith("text/csv") and file.filename == "report.csv"
    assert file.content.startswith(b"id,name\n")
    assert target.read_bytes() == file.content == buffer.getvalue()
    assert written == len(file.content)
    assert not (tmp_path / "out.csv.part").exists()


@BOTH
@pytest.mark.parametrize(
    "reference_server",
    [
        {**FAST, "dialect": d, "max_attempts": 1, "handlers": {"flaky": flaky}}
        for d in ("reference", "status-code")
    ],
    indirect=True,
    ids=["reference", "status-code"],
)
async def test_failed_jobs_raise_and_can_be_retried(flavor: str, reference_server: Any) -> None:
    body = {"type": "flaky", "input": {"key": f"{flavor}-{uuid.uuid4()}"}}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json=body)
        with pytest.raises(JobFailedError) as info:
            await call(op.result, timeout=20)
        assert info.value.status is not None and info.value.status.error is not None
        assert info.value.status.error.code == "flaky"
        again = await call(op.retry)
        assert again.id != op.id
        assert await call(again.result, timeout=20) == {"calls": 2}


@BOTH
@DIALECTS
async def test_cancel(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        cancelled = await call(op.cancel)
        assert cancelled.state is JobState.CANCELLED
        with pytest.raises(JobCancelledError):
            await call(op.result, timeout=20)
        # Cancelling a finished job is not an error: its terminal status comes back.
        done = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
        await call(done.wait, timeout=20)
        assert (await call(done.cancel)).state is JobState.COMPLETED


@BOTH
@SERVER
@pytest.mark.parametrize("mode", ["poll", "long-poll", "sse"])
async def test_wait_timeout_carries_the_operation(
    flavor: str, mode: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        with pytest.raises(WaitTimeoutError) as info:
            await call(op.wait, timeout=0.2, mode=mode)
        assert info.value.operation is op
        assert (await call(op.cancel)).state is JobState.CANCELLED


@BOTH
@DIALECTS
async def test_unknown_and_expired_jobs(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        with pytest.raises(JobNotFoundError):
            await call(client.operation("/jobs/does-not-exist").refresh)
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        assert reference_server.admin.expire(op.id)
        with pytest.raises(JobExpiredError):
            await call(op.refresh)  # seen at submission: a 410 (or 404) means it is gone


@BOTH
@SERVER
async def test_rejected_submission_carries_the_server_error(
    flavor: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        with pytest.raises(SubmissionRejectedError) as info:
            await call(client.submit, "/jobs", json={"type": "no-such-type", "input": {}})
    assert info.value.status_code == 400
    assert info.value.error["code"] == "unknown_type"


@BOTH
@DIALECTS
async def test_resume_from_a_token_in_another_client(flavor: str, reference_server: Any) -> None:
    async with open_client(
        flavor, reference_server.base_url, headers={"Authorization": "Bearer bob"}
    ) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 0.05}})
        token = op.to_token()
    assert "bob" not in token
    async with open_client(
        flavor, reference_server.base_url, headers={"Authorization": "Bearer bob"}
    ) as (client, call):
        again = client.resume(token)
        assert again.id == op.id
        assert await call(again.result, timeout=20) == {"slept": 0.05}


@BOTH
@SERVER
async def test_jobs_belong_to_the_configured_credentials(
    flavor: str, reference_server: Any
) -> None:
    async with open_client(
        flavor, reference_server.base_url, headers={"Authorization": "Bearer alice"}
    ) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
        await call(op.wait, timeout=20)
    [job] = reference_server.admin.jobs()
    assert job.owner == "alice"
    async with open_client(
        flavor, reference_server.base_url, headers={"Authorization": "Bearer mallory"}
    ) as (client, call):
        with pytest.raises(JobNotFoundError):
            await call(client.operation(op.status_url).refresh)


@BOTH
@DIALECTS
async def test_transient_faults_are_retried(flavor: str, reference_server: Any) -> None:
    reference_server.admin.set_faults(p_503=0.3, p_500=0.2, retry_after=0, seed=7)
    retry = RetryPolicy(attempts=12, initial=0.001, cap=0.005)
    async with open_client(flavor, reference_server.base_url, retry=retry) as (client, call):
        for n in range(4):
            value = await call(
                client.run,
                "/jobs",
                json={"type": "echo", "input": {"n": n}},
                timeout=20,
                mode="poll",
            )
            assert value == {"n": n}
    assert len(reference_server.admin.jobs()) == 4  # one job per submission, however retried


@BOTH
@SERVER
async def test_dropped_connections_never_duplicate_a_submission(
    flavor: str, reference_server: Any
) -> None:
    reference_server.admin.set_faults(p_drop=0.4, seed=3)
    retry = RetryPolicy(attempts=12, initial=0.001, cap=0.005)
    async with open_client(flavor, reference_server.base_url, retry=retry) as (client, call):
        for n in range(4):
            op = await call(client.submit, "/jobs", json={"type": "echo", "input": {"n": n}})
            assert await call(op.result, timeout=20, mode="poll") == {"n": n}
    assert len(reference_server.admin.jobs()) == 4


class _CutSync(httpx.HTTPTransport):
    """The server gets (and answers) the first POST; the answer is lost on the way back."""

    cut = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and not self.cut:
            self.cut = True
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


class _CutAsync(httpx.AsyncHTTPTransport):
    """``_CutSync`` for the async client."""

    cut = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.method == "POST" and not self.cut:
            self.cut = True
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


@BOTH
@SERVER
async def test_a_connection_killed_under_a_submit_creates_exactly_one_job(
    flavor: str, reference_server: Any
) -> None:
    transport = _CutAsync() if flavor == "async" else _CutSync()
    retry = RetryPolicy(initial=0.001, cap=0.005)
    async with open_client(flavor, reference_server.base_url, transport=transport, retry=retry) as (
        client,
        call,
    ):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {"once": True}})
        assert await call(op.result, timeout=20) == {"once": True}
    assert transport.cut
    [job] = reference_server.admin.jobs()
    assert job.id == op.id


@BOTH
@DIALECTS
async def test_a_resubmission_with_the_same_key_learns_the_jobs_end_at_once(
    flavor: str, reference_server: Any
) -> None:
    # A replay answers what the job is now (protocol §5): a submit repeated with the same
    # Idempotency-Key after the job finished knows it finished, and takes the result
    # without polling its status.
    submission = {"json": {"type": "echo", "input": {"k": 7}}, "idempotency_key": "same-key"}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        first = await call(client.submit, "/jobs", **submission)
        assert await call(first.result, timeout=20) == {"k": 7}
        polls = reference_server.admin.status_requests(first.id)
        again = await call(client.submit, "/jobs", **submission)
        assert again.id == first.id
        assert again.status is not None and again.status.state is JobState.COMPLETED
        assert await call(again.result, timeout=20) == {"k": 7}
    assert reference_server.admin.status_requests(first.id) == polls
    assert len(reference_server.admin.jobs()) == 1


@BOTH
@SERVER
async def test_without_a_key_a_lost_answer_is_an_error_not_a_second_job(
    flavor: str, reference_server: Any
) -> None:
    transport = _CutAsync() if flavor == "async" else _CutSync()
    async with open_client(flavor, reference_server.base_url, transport=transport) as (
        client,
        call,
    ):
        with pytest.raises(TransportError):
            await call(
                client.submit, "/jobs", json={"type": "echo", "input": {}}, idempotency_key=None
            )
    assert len(reference_server.admin.jobs()) == 1


@BOTH
@SERVER
async def test_long_polling_is_held_by_the_server(flavor: str, reference_server: Any) -> None:
    seen: list[JobStatus] = []
    body = {"type": "sleep", "input": {"seconds": 0.3, "steps": 2}}
    async with open_client(flavor, reference_server.base_url, on_progress=seen.append) as (
        client,
        call,
    ):
        op = await call(client.submit, "/jobs", json=body)
        assert await call(op.result, timeout=20, mode="long-poll") == {"slept": 0.3}
    assert any(status.held for status in seen)  # Preference-Applied: wait came back
    # Held requests answer on each change: a handful of requests, not a polling storm.
    assert reference_server.admin.status_requests(op.id) <= 8


@SERVER
@pytest.mark.parametrize("mode", ["long-poll", "sse", "poll"])
async def test_an_async_wait_is_cancelled_promptly_and_the_client_stays_usable(
    mode: str, reference_server: Any
) -> None:
    async with open_client("async", reference_server.base_url) as (client, _):
        op = await client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 30}})
        with anyio.move_on_after(0.3) as scope:
            await op.wait(mode=mode)
        assert scope.cancelled_caught
        assert (await op.cancel()).state is JobState.CANCELLED
