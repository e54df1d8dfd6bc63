"""An SSE wait returns at the terminal event and closes its stream off its path: the sync
client's next request (or ``close()``) closes it, the async client's task closes it
(``aclose()`` waits for that task). Never a leak, and a server that keeps the stream open
after the terminal event holds no slot (httpx.MockTransport)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from asyncreply_client import AsyncClient, Client, JobState

from .harness import BOTH

pytestmark = [pytest.mark.anyio, BOTH]

BASE = "http://api.test"


def _doc(job: str, status: str) -> str:
    return json.dumps(
        {
            "jobId": job,
            "status": status,
            "statusUrl": f"/jobs/{job}",
            "eventsUrl": f"/jobs/{job}/events",
            "createdAt": "2026-12-07T00:30:49.102Z",
        }
    )


def _events(job: str) -> bytes:
    return (
        f"retry: 20\n\nid: 1\nevent: status\ndata: {_doc(job, 'processing')}\n\n"
        f"id: 2\nevent: complete\ndata: {_doc(job, 'completed')}\n\n"
    ).encode()


class Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An event stream: the job's events, then its end, or (``open_after``) nothing more
    until it is closed. Records whether it was read to its end and closed."""

    def __init__(self, job: str, *, open_after: bool, close_fails: bool = False) -> None:
        self.job, self.open_after, self.close_fails = job, open_after, close_fails
        self.finished = False
        self.closed = threading.Event()  # set from the sync client's thread
        self.aclosed = anyio.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield _events(self.job)
        if self.open_after:
            self.closed.wait(10)
            raise httpx.ReadError("closed")
        self.finished = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield _events(self.job)
        if self.open_after:
            with anyio.fail_after(10):
                await self.aclosed.wait()
            raise httpx.ReadError("closed")
        self.finished = True

    def close(self) -> None:
        self.closed.set()
        if self.close_fails:
            raise httpx.ReadError("the connection broke while closing")

    async def aclose(self) -> None:
        self.closed.set()
        self.aclosed.set()
        if self.close_fails:
            raise httpx.ReadError("the connection broke while closing")


class Server:
    """Answers ``/jobs/{id}/events`` with a :class:`Stream` and ``/jobs/{id}`` with the
    completed document; notes, for each status request, whether every stream was closed."""

    def __init__(self, *, open_after: bool, close_fails: bool = False) -> None:
        self.open_after, self.close_fails = open_after, close_fails
        self.streams: list[Stream] = []
        self.closed_at_status: list[bool] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        job = request.url.path.split("/")[2]
        if request.url.path.endswith("/events"):
            stream = Stream(job, open_after=self.open_after, close_fails=self.close_fails)
            self.streams.append(stream)
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(200, headers=headers, stream=stream)
        self.closed_at_status.append(all(s.closed.is_set() for s in self.streams))
        return httpx.Response(200, json=json.loads(_doc(job, "completed")))


def _client(flavor: str, server: Server, **options: Any) -> Client | AsyncClient:
    transport = httpx.MockTransport(server)
    if flavor == "sync":
        return Client(BASE, http_client=httpx.Client(transport=transport), **options)
    return AsyncClient(BASE, http_client=httpx.AsyncClient(transport=transport), **options)


async def _wait(client: Client | AsyncClient, job: str) -> Any:
    op = client.operation(f"{BASE}/jobs/{job}", events_url=f"{BASE}/jobs/{job}/events")
    if isinstance(client, AsyncClient):
        status = await op.wait(mode="sse", timeout=10)
    else:
        status = await anyio.to_thread.run_sync(lambda: op.wait(mode="sse", timeout=10))
    assert status.state is JobState.COMPLETED
    return op


async def _close(client: Client | AsyncClient) -> None:
    if isinstance(client, AsyncClient):
        await client.aclose()
    else:
        client.close()


async def _closed(stream: Stream) -> None:
    assert await anyio.to_thread.run_sync(stream.closed.wait, 5)


async def test_the_next_request_closes_the_stream_first(flavor: str) -> None:
    server = Server(open_after=True)
    client = _client(flavor, server)
    try:
        op = await _wait(client, "a")
        if flavor == "async":
            await _closed(server.streams[0])  # by its task
            await op.refresh()
        else:
            assert not server.streams[0].closed.is_set()  # left for the next request
            await anyio.to_thread.run_sync(op.refresh)
        assert server.closed_at_status == [True]
    finally:
        await _close(client)


async def test_the_stream_is_closed_after_the_wait_not_read_on(flavor: str) -> None:
    server = Server(open_after=False)
    client = _client(flavor, server)
    try:
        await _wait(client, "a")
        if flavor == "async":  # by its task
            await _closed(server.streams[0])
        else:
            await _close(client)
            assert server.streams[0].closed.is_set()
        assert not server.streams[0].finished  # closed, not read to the end first
    finally:
        await _close(client)


async def test_closing_the_client_closes_the_streams_left(flavor: str) -> None:
    server = Server(open_after=True)
    client = _client(flavor, server)
    await _wait(client, "a")
    await _wait(client, "b")
    await _close(client)
    assert [s.closed.is_set() for s in server.streams] == [True, True]


async def test_a_stream_left_open_does_not_keep_its_slot(flavor: str) -> None:
    # One stream slot: the second wait's stream gets it once the first stream is closed
    # (by the request itself, sync; by its task, async).
    server = Server(open_after=True)
    client = _client(flavor, server, max_streams=1)
    try:
        with anyio.fail_after(10):
            await _wait(client, "a")
            await _wait(client, "b")
        await _closed(server.streams[0])
    finally:
        await _close(client)
    assert all(s.closed.is_set() for s in server.streams)


async def test_a_stream_that_fails_to_close_fails_nothing_else(flavor: str) -> None:
    # Closing a stream nobody reads any more is nobody's failure: not the next request's.
    server = Server(open_after=False, close_fails=True)
    client = _client(flavor, server)
    op = await _wait(client, "a")
    if flavor == "async":
        await _closed(server.streams[0])
        status = await op.refresh()
    else:
        status = await anyio.to_thread.run_sync(op.refresh)
    assert status.state is JobState.COMPLETED and server.closed_at_status == [True]
    await _wait(client, "b")
    await _close(client)
    assert all(s.closed.is_set() for s in server.streams)
