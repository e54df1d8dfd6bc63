"""The two drivers execute the same commands the same way, and decide nothing: one attempt,
no redirect, the command's credentials (httpx.MockTransport, FakeClock)."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

import httpx
import pytest

from asyncreply_client._commands import (
    CloseStream,
    Command,
    Emit,
    ReadBytes,
    ReadChunk,
    Send,
    Sleep,
)
from asyncreply_client._drivers import FlowResult, drive, drive_async
from asyncreply_client._models import JobState, JobStatus
from asyncreply_client.testing import FakeClock

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("flavor", ["sync", "async"])]

BASE = "http://api.test"


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body in pieces that records whether it was closed."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class Broken(Body):
    """A body whose connection breaks after its pieces."""

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces
        raise httpx.ReadError("cut")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        raise httpx.ReadError("cut")


async def run(
    flavor: str,
    flow: Generator[Command, Any, Any],
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    clock: FakeClock | None = None,
    stop_after: int | None = None,
    client_auth: Any = None,
) -> tuple[Any, list[JobStatus]]:
    """Drive ``flow`` with the flavour's driver; collect the emitted statuses (stop early
    after ``stop_after`` of them, as an abandoned ``watch`` does)."""
    clock = clock or FakeClock()
    out: FlowResult[Any] = FlowResult()
    emitted: list[JobStatus] = []
    transport = httpx.MockTransport(handler)
    if flavor == "async":
        async with (
            httpx.AsyncClient(transport=transport, auth=client_auth) as http,
            contextlib.aclosing(drive_async(flow, http, clock, out)) as statuses,
        ):
            async for status in statuses:
                emitted.append(status)
                if stop_after is not None and len(emitted) >= stop_after:
                    return None, emitted
    else:
        with (
            httpx.Client(transport=transport, auth=client_auth) as sync_http,
            contextlib.closing(drive(flow, sync_http, clock, out)) as sync_statuses,
        ):
            for status in sync_statuses:
                emitted.append(status)
                if stop_after is not None and len(emitted) >= stop_after:
                    return None, emitted
    return out.value, emitted


def get(path: str = "/x") -> httpx.Request:
    return httpx.Request("GET", BASE + path)


async def test_streams_are_read_as_bytes_or_text_and_closed(flavor: str) -> None:
    body = Body(b"caf", "é!".encode())

    def flow() -> Generator[Command, Any, tuple[bytes, int]]:
        response = yield Send(get(), stream=True)
        assert response.content == b""  # left open
        data = b""
        while (chunk := (yield ReadBytes())) is not None:
            data += chunk
        yield CloseStream()
        return data, response.status_code

    value, _ = await run(flavor, flow(), lambda r: httpx.Response(200, stream=body))
    assert value == ("café!".encode(), 200)
    assert body.closed

    text_body = Body("café".encode())

    def text_flow() -> Generator[Command, Any, str]:
        yield Send(get(), stream=True)
        text = ""
        while (chunk := (yield ReadChunk())) is not None:
            text += chunk
        return text

    value, _ = await run(flavor, text_flow(), lambda r: httpx.Response(200, stream=text_body))
    assert value == "café"
    assert text_body.closed  # closed by the driver at the end, even without CloseStream


async def test_an_abandoned_run_closes_its_stream_and_its_flow(flavor: str) -> None:
    body = Body(b"data")
    closed: list[bool] = []

    def flow() -> Generator[Command, Any, None]:
        try:
            yield Send(get(), stream=True)
            yield Emit(JobStatus(state=JobState.PROCESSING))
            yield Emit(JobStatus(state=JobState.COMPLETED))
        finally:
            closed.append(True)

    _, emitted = await run(flavor, flow(), lambda r: httpx.Response(200, stream=body), stop_after=1)
    assert [s.state for s in emitted] == [JobState.PROCESSING]
    assert body.closed and closed == [True]


async def test_a_transport_failure_is_thrown_into_the_flow_unchanged_and_not_retried(
    flavor: str,
) -> None:
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        if request.url.path == "/a":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, stream=Broken(b"par"))

    def flow() -> Generator[Command, Any, list[str]]:
        seen: list[str] = []
        try:
            yield Send(get("/a"))
        except httpx.ConnectError as exc:
            seen.append(f"send: {exc}")
        yield Send(get("/b"), stream=True)
        try:
            while (yield ReadBytes()) is not None:
                pass
        except httpx.TransportError as exc:
            seen.append(f"read: {exc}")
        return seen

    value, _ = await run(flavor, flow(), handler)
    assert value == ["send: refused", "read: cut"]
    assert attempts == ["/a", "/b"]


async def test_answers_come_back_as_they_are_one_attempt_no_redirect(flavor: str) -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "4"}),
            httpx.Response(302, headers={"Location": "/elsewhere"}),
            httpx.Response(500, json={"status": "failed"}),
        ]
    )
    clock = FakeClock()

    def flow() -> Generator[Command, Any, list[int]]:
        codes = []
        for _ in range(3):
            response = yield Send(get())
            codes.append(response.status_code)
        yield Sleep(2.0)
        return codes

    value, _ = await run(flavor, flow(), lambda r: next(answers), clock=clock)
    assert value == [503, 302, 500]
    assert clock.sleeps == [2.0]  # only the flow's own Sleep


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (("u", "p"), "Basic dTpw"),  # the command's credentials
        (httpx.USE_CLIENT_DEFAULT, "Basic Yzpk"),  # the httpx client's own
        (None, None),  # none at all, even though the httpx client has some
    ],
)
async def test_the_driver_sends_the_credentials_the_command_carries(
    flavor: str, auth: Any, expected: str | None
) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200)

    def flow() -> Generator[Command, Any, None]:
        yield Send(get(), auth=auth)

    await run(flavor, flow(), handler, client_auth=("c", "d"))
    assert seen == [expected]


@pytest.mark.parametrize(
    ("headers", "body", "content", "truncated"),
    [
        # Content-Length within the bound: read in one go, whole.
        ({}, b"x" * 10, b"x" * 10, False),
        # Longer than the bound: cut at it.
        ({}, b"x" * 11, b"x" * 10, True),
        # A gzip body whose Content-Length fits but whose decoded body does not: the bound
        # holds for the decoded bytes.
        ({"Content-Encoding": "gzip"}, gzip.compress(b"y" * 1000), b"y" * 10, True),
        # A bad Content-Length is no promise: read up to the bound.
        ({"Content-Length": "x"}, b"z" * 20, b"z" * 10, True),
    ],
    ids=["fits", "too-long", "gzip-bomb", "bad-length"],
)
async def test_a_bounded_read_never_keeps_more_than_the_bound(
    flavor: str, headers: dict[str, str], body: bytes, content: bytes, truncated: bool
) -> None:
    def flow() -> Generator[Command, Any, tuple[bytes, bool]]:
        response = yield Send(get(), max_body=10)
        return response.content, response.truncated

    def handler(request: httpx.Request) -> httpx.Response:
        extra = {} if "Content-Length" in headers else {"Content-Length": str(len(body))}
        return httpx.Response(200, headers={**extra, **headers}, stream=Body(body))

    value, _ = await run(flavor, flow(), handler)
    assert value == (content, truncated)
