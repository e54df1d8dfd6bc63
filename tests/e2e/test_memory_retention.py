"""What an operation keeps once it has read an answer: its statuses, not the httpx objects
they came from (a waiting fan-out holds one operation per job; ``benchmarks/scaling``).

The garbage collector is off while these run: what the client drops must go at once, by
reference counting. (httpx's client makes each response and its stream point at each other;
the drivers cut that cycle once the response is closed, or the response, its request and
headers would wait for a collector pass: for an answer held open long, a full one.)"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import anyio.lowlevel
import httpx
import pytest

from asyncreply_client import JobState
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio

SERVER = pytest.mark.parametrize(
    "reference_server", [{"workers": 4, "sse_retry_ms": 20}], indirect=True, ids=["reference"]
)


def _track(client: Any, seen: list[weakref.ref[Any]]) -> None:
    """Keep a weak reference to every request and response of the client's httpx client."""
    http = client._http

    def keep(item: httpx.Request | httpx.Response) -> None:
        seen.append(weakref.ref(item))

    async def akeep(item: httpx.Request | httpx.Response) -> None:
        keep(item)

    hook = akeep if isinstance(http, httpx.AsyncClient) else keep
    http.event_hooks["request"].append(hook)
    http.event_hooks["response"].append(hook)


@contextlib.contextmanager
def _no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _alive(seen: list[weakref.ref[Any]]) -> list[Any]:
    """The tracked objects still alive, once the event loop has run what a closed async
    stream left to it (httpx's body iterators are async generators: the loop finalises
    one dropped unfinished, a turn or two later)."""
    for _ in range(10):
        alive = [item for ref in seen if (item := ref()) is not None]
        if not alive:
            break
        del alive
        await anyio.lowlevel.checkpoint()
    return [item for ref in seen if (item := ref()) is not None]


@BOTH
@SERVER
@pytest.mark.parametrize("mode", ["poll", "long-poll", "sse"])
async def test_an_operation_keeps_no_request_nor_response_once_answered(
    flavor: str, mode: str, reference_server: Any
) -> None:
    seen: list[weakref.ref[Any]] = []
    async with open_client(flavor, reference_server.base_url) as (client, call):
        _track(client, seen)
        job = {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}}
        with _no_collector():
            op = await call(client.submit, "/jobs", json=job)
            await call(op.refresh)
            status = await call(op.wait, timeout=20, mode=mode)
            # The operation, its client and the status are alive; what they were read from
            # (each request and response) is not.
            assert status.state is JobState.COMPLETED and op.status is status
            if mode == "sse":
                # The stream the completion came on is closed off the wait's path
                # (``_stream_ends``): by a task (async) or by the client's next request (sync).
                await call(op.refresh)
            assert len(seen) >= 6  # submission, refresh, the wait's requests and answers
            assert await _alive(seen) == []
        # What ``metadata`` shows of the last answer is kept (packed), not the answer.
        assert (
            str(op.metadata.url).startswith(op.status_url) and op.metadata.headers["content-type"]
        )


@BOTH
@SERVER
async def test_run_keeps_nothing_of_its_requests(flavor: str, reference_server: Any) -> None:
    seen: list[weakref.ref[Any]] = []
    async with open_client(flavor, reference_server.base_url) as (client, call):
        _track(client, seen)
        job = {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}}
        with _no_collector():
            assert await call(client.run, "/jobs", json=job, timeout=20) == {"slept": 0.05}
            assert seen and await _alive(seen) == []
