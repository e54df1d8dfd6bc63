"""The two drivers execute the same commands the same way (httpx.MockTransport, FakeClock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

import httpx
import pytest
import tenacity

from asyncreply_client import ReferenceDialect, RetryPolicy, TransportError
from asyncreply_client._commands import (
    CloseStream,
    Command,
    Emit,
    ReadBytes,
    ReadChunk,
    Send,
    Sleep,
)
from asyncreply_client._drivers import DriverConfig, Outcome, drive, drive_async
from asyncreply_client._models import JobState, JobStatus
from asyncreply_client._security import RequestFactory
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


async def run(
    flavor: str,
    flow: Generator[Command, Any, Any],
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = None,
    stop_after: int | None = None,
    auth: Any = None,
) -> tuple[Any, list[JobStatus]]:
    """Drive ``flow`` with the flavour's driver; collect the emitted statuses (stop early
    after ``stop_after`` of them, as an abandoned ``watch`` does)."""
    cfg = DriverConfig(
        requests=RequestFactory.create(BASE, auth=auth, timeout=httpx.Timeout(5.0)),
        dialect=ReferenceDialect(),
        retry=retry or RetryPolicy(initial=0.0, cap=0.0),
        clock=clock or FakeClock(),
    )
    out: Outcome[Any] = Outcome()
    emitted: list[JobStatus] = []
    transport = httpx.MockTransport(handler)
    if flavor == "async":
        async with (
            httpx.AsyncClient(transport=transport) as http,
            contextlib.aclosing(drive_async(flow, http, cfg, out)) as statuses,
        ):
            async for status in statuses:
                emitted.append(status)
                if stop_after is not None and len(emitted) >= stop_after:
                    return None, emitted
    else:
        with (
            httpx.Client(transport=transport) as sync_http,
            contextlib.closing(drive(flow, sync_http, cfg, out)) as sync_statuses,
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


async def test_transport_failures_are_thrown_into_the_flow_after_retries(flavor: str) -> None:
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    def flow() -> Generator[Command, Any, str]:
        try:
            yield Send(get("/a"))
        except TransportError as exc:
            first = exc.attempts
        try:
            yield Send(get("/b"), retry=False)
        except TransportError as exc:
            return f"{first}/{exc.attempts}"
        return "no error"

    value, _ = await run(flavor, flow(), handler, retry=RetryPolicy(attempts=3, initial=0.0))
    assert value == "3/1"
    assert attempts == ["/a", "/a", "/a", "/b"]


async def test_transient_answers_are_retried_after_their_retry_after(flavor: str) -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "4"}),
            httpx.Response(429, headers={"Retry-After-Ms": "1500"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    clock = FakeClock()

    def flow() -> Generator[Command, Any, Any]:
        response = yield Send(get())
        yield Sleep(2.0)
        return response.json()

    value, _ = await run(flavor, flow(), lambda r: next(answers), clock=clock)
    assert value == {"ok": True}
    assert clock.sleeps == [4.0, 1.5, 2.0]


async def test_an_untrusted_origin_gets_no_auth(flavor: str) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200)

    def flow() -> Generator[Command, Any, None]:
        yield Send(get())
        yield Send(httpx.Request("GET", "https://elsewhere.test/x"))

    await run(flavor, flow(), handler, auth=("u", "p"))
    assert seen[0] is not None and seen[0].startswith("Basic ")
    assert seen[1] is None


@pytest.fixture
def retrying_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each tenacity ``Retrying``/``AsyncRetrying`` the drivers build."""
    built: list[str] = []
    for name in ("Retrying", "AsyncRetrying"):
        real = getattr(tenacity, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            built.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(tenacity, name, spy)
    return built


async def test_a_first_try_that_succeeds_builds_no_tenacity_machinery(
    flavor: str, retrying_built: list[str]
) -> None:
    def flow() -> Generator[Command, Any, int]:
        first = yield Send(get("/a"))
        second = yield Send(get("/b"), stream=True)
        return int(first.status_code + second.status_code)

    value, _ = await run(flavor, flow(), lambda r: httpx.Response(200, json={}))
    assert value == 400
    assert retrying_built == []


@pytest.mark.parametrize(
    ("answers", "expected_sleeps", "expected_tries"),
    [
        ([503, 200], [4.0], 2),
        ([503, 503, 200], [4.0, 4.0], 3),
        ([503, 503, 503], [4.0, 4.0], 3),  # attempts=3 in all: the last fault is final
        ([501, 200], [], 1),  # not transient: no retry
    ],
)
async def test_after_a_failed_first_try_tenacity_retries_with_the_same_rules(
    flavor: str,
    retrying_built: list[str],
    answers: list[int],
    expected_sleeps: list[float],
    expected_tries: int,
) -> None:
    queue = iter(answers)
    tries: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        code = next(queue)
        tries.append(code)
        return httpx.Response(code, headers={"Retry-After": "4"}, json={})

    def flow() -> Generator[Command, Any, Any]:
        try:
            response = yield Send(get())
        except TransportError as exc:
            return f"gave up after {exc.attempts}"
        return response.status_code

    clock = FakeClock()
    value, _ = await run(flavor, flow(), handler, clock=clock, retry=RetryPolicy(attempts=3))
    assert len(tries) == expected_tries
    assert clock.sleeps == expected_sleeps
    assert value == (f"gave up after {expected_tries}" if tries[-1] == 503 else tries[-1])
    assert len(retrying_built) == (1 if tries[0] == 503 else 0)
