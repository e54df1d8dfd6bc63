"""Expiry end to end: a job expired while a client waits on it with ``mode="auto"`` (its
event stream open) makes the wait raise ``JobExpiredError`` at once, not at its deadline.
The same test body runs with the sync client (in a worker thread) and the async client."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import anyio
import pytest

from asyncreply_client import AsyncClient, Client, JobExpiredError, JobStatus
from reference_server import JobContext, ServerConfig, serve

pytestmark = pytest.mark.anyio

FAST = {"workers": 2, "sse_retry_ms": 5, "retry_after_min": 0.01, "retry_after_max": 0.05}
#: Far beyond how long an expiry takes to reach the client: only a hang reaches it.
DEADLINE = 20.0


async def parked(ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
    """Report progress, then run until cancelled (expiry cancels it)."""
    await ctx.progress(1, 2, "parked")
    await asyncio.Event().wait()
    return {}  # pragma: no cover - never reached


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("keepalive", [15.0, 600.0])
async def test_a_wait_on_a_job_expired_mid_stream_raises_job_expired(
    kind: str, keepalive: float
) -> None:
    config = ServerConfig(**FAST, sse_keepalive=keepalive)
    async with serve(config, handlers={"parked": parked}) as server:
        expired: list[str] = []
        streams_before = 0

        def expire_on_progress(status: JobStatus) -> None:
            # Progress arrives on the open event stream: expire the job while it is open.
            if not expired and status.id is not None:
                expired.append(status.id)
                assert server.admin.expire(status.id) is True

        body = {"type": "parked", "input": {}}
        if kind == "async":
            async with AsyncClient(server.base_url) as aclient:
                aop = await aclient.submit("/jobs", json=body)
                streams_before = server.admin.count("GET", f"/jobs/{aop.id}/events")
                with pytest.raises(JobExpiredError):
                    await aop.wait(timeout=DEADLINE, mode="auto", on_progress=expire_on_progress)
                job_id = aop.id
        else:
            with Client(server.base_url) as client:
                submit = functools.partial(client.submit, "/jobs", json=body)
                op = await anyio.to_thread.run_sync(submit)
                streams_before = server.admin.count("GET", f"/jobs/{op.id}/events")
                wait = functools.partial(
                    op.wait, timeout=DEADLINE, mode="auto", on_progress=expire_on_progress
                )
                with pytest.raises(JobExpiredError):
                    await anyio.to_thread.run_sync(wait)
                job_id = op.id
        assert expired == [job_id]
        assert server.admin.count("GET", f"/jobs/{job_id}/events") > streams_before
