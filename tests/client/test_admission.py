"""Admission control: the FIFO gates (by hand) and the bound they put on a client's requests
in flight (against the reference server over loopback, both clients, the SDK's own httpx
client and a user-supplied one)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from asyncreply_client import AsyncClient, Client
from asyncreply_client._admission import (
    Admission,
    AsyncGate,
    SyncGate,
    is_held,
    pool_limits,
)
from asyncreply_client._security import RequestFactory
from asyncreply_client.pytest_plugin import RunningReferenceServer
from reference_server import JobContext
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------------------------
# The async gate


async def test_async_gate_admits_up_to_its_limit_then_in_arrival_order() -> None:
    gate = AsyncGate(1)
    await gate.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await gate.acquire()
        order.append(name)

    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(take, name)
            await anyio.wait_all_tasks_blocked()
        assert gate.waiting == 3 and order == []
        for expected in ("a", "ab", "abc"):
            gate.release()
            await anyio.wait_all_tasks_blocked()
            assert "".join(order) == expected
    assert gate.in_use == 1
    gate.release()
    assert gate.in_use == 0


async def test_a_newcomer_never_overtakes_a_waiter() -> None:
    gate = AsyncGate(1)
    await gate.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await gate.acquire()
        order.append(name)
        gate.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "first")
        await anyio.wait_all_tasks_blocked()
        gate.release()  # the slot goes to "first" although it has not run yet
        tg.start_soon(take, "newcomer")
    assert order == ["first", "newcomer"]
    assert gate.in_use == 0


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    gate = AsyncGate(1)
    await gate.acquire()
    got: list[str] = []

    async def take(name: str) -> None:
        await gate.acquire()
        got.append(name)

    async with anyio.create_task_group() as tg:
        doomed = anyio.CancelScope()
        tg.start_soon(lambda: _scoped(doomed, take("cancelled")))
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(take, "next")
        await anyio.wait_all_tasks_blocked()
        doomed.cancel()
        await anyio.wait_all_tasks_blocked()
        gate.release()
    assert got == ["next"]
    assert gate.in_use == 1 and gate.waiting == 0


async def _scoped(scope: anyio.CancelScope, coro: Any) -> None:
    with scope:
        await coro


async def test_a_waiter_cancelled_as_its_slot_arrives_passes_it_on() -> None:
    # asyncio's Task.cancel() lands even when the awaited event was set just before.
    gate = AsyncGate(1)
    await gate.acquire()
    got: list[str] = []

    async def take(name: str) -> None:
        await gate.acquire()
        got.append(name)

    doomed = asyncio.create_task(take("cancelled"))
    await anyio.wait_all_tasks_blocked()
    follower = asyncio.create_task(take("next"))
    await anyio.wait_all_tasks_blocked()
    gate.release()  # granted to "cancelled", which has not resumed yet ...
    doomed.cancel()  # ... and is cancelled before it does
    await asyncio.wait([doomed, follower])
    assert doomed.cancelled()
    assert got == ["next"]
    assert gate.in_use == 1 and gate.waiting == 0


async def test_requests_of_operations_under_way_go_before_submissions() -> None:
    # Submissions wait behind every status check or result of an operation already
    # submitted, even one that came later; within each, first come first served.
    gate = AsyncGate(1)
    await gate.acquire()
    order: list[str] = []

    async def take(name: str, submission: bool) -> None:
        await gate.acquire(submission=submission)
        order.append(name)
        gate.release()

    async with anyio.create_task_group() as tg:
        for name, submission in [("s1", True), ("s2", True), ("f1", False), ("f2", False)]:
            tg.start_soon(take, name, submission)
            await anyio.wait_all_tasks_blocked()
        assert gate.waiting == 4
        gate.release()
    assert order == ["f1", "f2", "s1", "s2"]
    assert gate.in_use == 0


async def test_a_free_slot_goes_to_a_submission_at_once() -> None:
    gate = AsyncGate(2)
    await gate.acquire()
    await gate.acquire(submission=True)  # a slot is free: no reason to wait
    assert gate.in_use == 2 and gate.waiting == 0


async def test_a_cancelled_follow_up_passes_its_slot_to_the_submission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = AsyncGate(1)
    await gate.acquire()
    got: list[str] = []

    async def take(name: str, submission: bool) -> None:
        await gate.acquire(submission=submission)
        got.append(name)

    submitter = asyncio.create_task(take("submission", True))
    await anyio.wait_all_tasks_blocked()
    doomed = asyncio.create_task(take("follow-up", False))
    await anyio.wait_all_tasks_blocked()
    gate.release()  # granted to the follow-up, cancelled before it resumes
    doomed.cancel()
    await asyncio.wait([doomed, submitter])
    assert got == ["submission"]
    assert gate.in_use == 1 and gate.waiting == 0


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_gates_work_under_trio(anyio_backend: str) -> None:
    # No asyncio loop to make a future on: the waiters wait on anyio Events.
    gate = AsyncGate(1)
    await gate.acquire()
    order: list[str] = []

    async def take(name: str, submission: bool) -> None:
        await gate.acquire(submission=submission)
        order.append(name)
        gate.release()

    async with anyio.create_task_group() as tg:
        doomed = anyio.CancelScope()
        tg.start_soon(lambda: _scoped(doomed, take("cancelled", False)))
        for name, submission in [("s1", True), ("f1", False)]:
            tg.start_soon(take, name, submission)
            await anyio.wait_all_tasks_blocked()
        doomed.cancel()
        await anyio.wait_all_tasks_blocked()
        gate.release()
    assert order == ["f1", "s1"]
    assert gate.in_use == 0


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_an_async_client_fans_out_under_trio(
    anyio_backend: str, reference_server: RunningReferenceServer
) -> None:
    job = {"type": "sleep", "input": {"seconds": 0.01}}
    results: list[Any] = []
    async with AsyncClient(reference_server.base_url, max_in_flight=2, max_streams=1) as client:

        async def one() -> None:
            # Polling: an event stream closed before its end leaves httpcore's body
            # generator to the garbage collector, which trio reports as a ResourceWarning
            # (an error in this suite); that is httpcore's, with or without the SDK.
            results.append(await client.run("/jobs", json=job, timeout=30, mode="poll"))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
    assert results == [{"slept": 0.01}] * 6


def test_gates_refuse_bad_limits() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="limit"):
            AsyncGate(bad)
        with pytest.raises(ValueError, match="limit"):
            SyncGate(bad)
    with pytest.raises(TypeError, match="int"):
        AsyncGate(True)
    with pytest.raises(TypeError, match="max_in_flight"):
        Admission(max_in_flight=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_streams"):
        Admission(max_streams=-1)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_the_client_checks_max_in_flight(cls: type[Any]) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        cls("http://h", max_in_flight=0)
    with pytest.raises(TypeError, match="max_in_flight"):
        cls("http://h", max_in_flight="10")


# --------------------------------------------------------------------------------------------
# The sync gate


def test_sync_gate_admits_threads_in_arrival_order() -> None:
    gate = SyncGate(1)
    gate.acquire()
    order: list[int] = []
    threads = []
    for i in range(4):
        thread = threading.Thread(target=lambda i=i: (gate.acquire(), order.append(i)))
        thread.start()
        _until(lambda i=i: gate.waiting == i + 1)
        threads.append(thread)
    for i in range(4):
        gate.release()
        _until(lambda i=i: len(order) == i + 1)
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3]
    assert gate.in_use == 1


def test_sync_gate_serves_operations_under_way_before_submissions() -> None:
    gate = SyncGate(1)
    gate.acquire()
    order: list[str] = []
    threads = []
    for i, (name, submission) in enumerate([("s1", True), ("f1", False), ("s2", True)]):

        def take(name: str = name, submission: bool = submission) -> None:
            gate.acquire(submission=submission)
            order.append(name)
            gate.release()

        thread = threading.Thread(target=take)
        thread.start()
        _until(lambda i=i: gate.waiting == i + 1)
        threads.append(thread)
    gate.release()
    for thread in threads:
        thread.join()
    assert order == ["f1", "s1", "s2"]
    assert gate.in_use == 0


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_an_interrupted_sync_waiter_gives_up_its_place() -> None:
    gate = SyncGate(1)
    gate.acquire()
    got: list[str] = []
    later = threading.Thread(target=lambda: (gate.acquire(), got.append("later")))
    main = threading.get_ident()

    def interrupt() -> None:
        _until(lambda: gate.waiting == 1)
        later.start()
        _until(lambda: gate.waiting == 2)
        signal.pthread_kill(main, signal.SIGINT)

    helper = threading.Thread(target=interrupt)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        gate.acquire()
    helper.join()
    gate.release()
    later.join(timeout=10)
    assert got == ["later"]
    assert gate.in_use == 1


def _until(check: Callable[[], bool], within: float = 10.0) -> None:
    event = threading.Event()
    for _ in range(int(within / 0.001)):
        if check():
            return
        event.wait(0.001)
    raise AssertionError("condition not reached")


# --------------------------------------------------------------------------------------------
# Lanes and pool sizing


def test_long_polls_and_streams_take_the_stream_lane() -> None:
    factory = RequestFactory.create("http://h", timeout=httpx.Timeout(5.0))
    held = factory.build("GET", "/jobs/1", params={"wait": "20"}, read_timeout=25.0)
    plain = factory.build("GET", "/jobs/1")
    assert is_held(held) and not is_held(plain)
    admission = Admission(max_in_flight=1, max_streams=1)
    short = admission.enter(plain)
    long = admission.enter(held)  # does not wait for the short one
    assert admission.requests.in_use == 1 and admission.streams.in_use == 1
    long.release()
    download = admission.enter(plain, stream=True)  # a streamed body: the stream lane
    assert admission.streams.in_use == 1
    short.release()
    download.release()
    download.release()  # idempotent
    assert admission.requests.in_use == 0 and admission.streams.in_use == 0


def test_a_reserved_slot_is_taken_by_its_lane_and_given_back_by_the_other() -> None:
    factory = RequestFactory.create("http://h", timeout=httpx.Timeout(5.0))
    plain = factory.build("POST", "/jobs")
    held = factory.build("POST", "/jobs", read_timeout=15.0)
    admission = Admission(max_in_flight=1, max_streams=1)
    reserved = admission.reserve()
    assert admission.requests.in_use == 1
    # The lane is full, yet the submission does not wait: it takes its reservation.
    assert admission.enter(plain, submission=True, reserved=reserved) is reserved
    reserved.release()
    # A held submission goes to the stream lane: the reservation goes back first.
    reserved = admission.reserve()
    slot = admission.enter(held, submission=True, reserved=reserved)
    assert slot is not reserved
    assert admission.requests.in_use == 0 and admission.streams.in_use == 1
    slot.release()


@BOTH
async def test_submissions_waiting_their_turn_have_built_nothing(
    flavor: str, reference_server: RunningReferenceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fan-out's queued submissions hold no flow, request or driver until their turn.
    from asyncreply_client import _flow

    started: list[str] = []
    submit = _flow.submit

    def counting(*args: Any, **kwargs: Any) -> Any:
        started.append(args[1])
        return submit(*args, **kwargs)

    monkeypatch.setattr(_flow, "submit", counting)
    job = {"type": "echo", "input": {"n": 1}}
    async with open_client(flavor, reference_server.base_url, max_in_flight=1) as (client, call):
        lane = client._admission.async_requests if flavor == "async" else client._admission.requests
        if flavor == "async":
            await lane.acquire()
        else:
            lane.acquire()
        results: list[Any] = []

        async def one() -> None:
            results.append(await call(client.run, "/jobs", json=job, timeout=30))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)
            for _ in range(10_000):  # until all three wait (threads, for the sync client)
                if lane.waiting == 3:
                    break
                await anyio.sleep(0.001)
            assert lane.waiting == 3
            assert started == []
            lane.release()
    assert started == ["/jobs"] * 3
    assert results == [{"n": 1}] * 3


@BOTH
async def test_a_submission_that_fails_before_sending_gives_its_turn_back(
    flavor: str, reference_server: RunningReferenceServer
) -> None:
    async with open_client(flavor, reference_server.base_url, max_in_flight=1) as (client, call):
        for method in (client.submit, client.run):
            with pytest.raises(ValueError, match="not both"):
                await call(method, "/jobs", json={}, content=b"x")
        with anyio.fail_after(20):  # the only slot must be free again
            result = await call(client.run, "/jobs", json={"type": "echo", "input": {}})
    assert result == {}
    lanes = client._admission
    assert lanes.requests.in_use == lanes.async_requests.in_use == 0


def test_httpx_pool_limits_have_a_connection_per_slot_and_few_kept_alive() -> None:
    # Used where the SDK's client falls back to httpx's pool (a proxy in the environment).
    limits = pool_limits(100, 50)
    assert limits.max_connections == 150
    assert limits.max_keepalive_connections == 16


# --------------------------------------------------------------------------------------------
# The bound, end to end


class _InFlight:
    """Counts requests from the moment they are sent until their response is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.total = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


class _Closing(httpx.AsyncByteStream, httpx.SyncByteStream):
    def __init__(self, inner: Any, done: Callable[[], None]) -> None:
        self._inner, self._done = inner, done

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    async def __aiter__(self) -> Any:
        async for chunk in self._inner:
            yield chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._done()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._done()


def _counting_sync(counter: _InFlight, send: Any) -> Any:
    def handle(self: Any, request: httpx.Request) -> httpx.Response:
        counter.enter()
        try:
            response = send(self, request)
        except BaseException:
            counter.leave()
            raise
        response.stream = _Closing(response.stream, counter.leave)
        return response

    return handle


def _counting_async(counter: _InFlight, send: Any) -> Any:
    async def handle(self: Any, request: httpx.Request) -> httpx.Response:
        counter.enter()
        try:
            response = await send(self, request)
        except BaseException:
            counter.leave()
            raise
        response.stream = _Closing(response.stream, counter.leave)
        return response

    return handle


@pytest.fixture
def in_flight(monkeypatch: pytest.MonkeyPatch) -> _InFlight:
    """Every httpx transport of the test (the SDK's own and a user's) counts its requests."""
    counter = _InFlight()
    monkeypatch.setattr(
        httpx.HTTPTransport,
        "handle_request",
        _counting_sync(counter, httpx.HTTPTransport.handle_request),
    )
    monkeypatch.setattr(
        httpx.AsyncHTTPTransport,
        "handle_async_request",
        _counting_async(counter, httpx.AsyncHTTPTransport.handle_async_request),
    )
    return counter


@BOTH
@pytest.mark.parametrize("own", [True, False], ids=["sdk-http-client", "user-http-client"])
async def test_requests_in_flight_never_exceed_the_bound(
    flavor: str,
    own: bool,
    in_flight: _InFlight,
    reference_server: RunningReferenceServer,
) -> None:
    operations, bound = 24, 3
    # A user's client with httpx's default limits (its pool would queue, and time out,
    # without the bound in front of it).
    transport = None if own else (httpx.AsyncHTTPTransport() if flavor == "async" else None)
    if not own and flavor == "sync":
        transport = httpx.HTTPTransport()
    job = {"type": "sleep", "input": {"seconds": 0.01}}
    async with open_client(
        flavor, reference_server.base_url, transport=transport, max_in_flight=bound
    ) as (client, call):
        results: list[Any] = []

        async def one() -> None:
            op = await call(client.submit, "/jobs", json=job)
            results.append(await call(op.result, mode="poll", timeout=30))

        async with anyio.create_task_group() as tg:
            for _ in range(operations):
                tg.start_soon(one)
    assert results == [{"slept": 0.01}] * operations
    assert in_flight.total >= 3 * operations  # submit, at least one poll, the result
    assert 1 <= in_flight.peak <= bound
    assert in_flight.now == 0


_HOLD = threading.Event()


async def held_job(ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
    """Runs until the test sets ``_HOLD``."""
    while not _HOLD.is_set():
        await ctx.sleep(0.005)
    return {"released": True}


@BOTH
@pytest.mark.reference_server_config(handlers={"held": held_job})
async def test_long_polls_do_not_take_the_slots_of_status_checks(
    flavor: str, reference_server: RunningReferenceServer
) -> None:
    # One short-request slot and one stream slot: an operation long-polled until the test
    # lets its job end must not keep a second operation's submission and polls waiting
    # (sharing one lane, they would wait for each other forever).
    _HOLD.clear()
    quick_job = {"type": "sleep", "input": {"seconds": 0.01}}
    async with open_client(flavor, reference_server.base_url, max_in_flight=1, max_streams=1) as (
        client,
        call,
    ):
        slow = await call(client.submit, "/jobs", json={"type": "held", "input": {}})
        ended: list[Any] = []

        async def long_poll() -> None:
            ended.append(await call(slow.wait, mode="long-poll", timeout=30))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(long_poll)
                with anyio.fail_after(20):  # a deadlock guard, not a timing assertion
                    quick = await call(client.run, "/jobs", json=quick_job, mode="poll", timeout=20)
                _HOLD.set()
        finally:
            _HOLD.set()
    assert quick == {"slept": 0.01}
    assert [status.state.value for status in ended] == ["completed"]
