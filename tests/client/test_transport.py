"""The SDK's own connection pool (``_transport``): the I/O-free bookkeeping by hand, then
both transports against the reference server over loopback, where each connection is told
apart by its client port."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest

from asyncreply_client import AsyncClient, Client
from asyncreply_client._transport import AsyncConnectionSlots, ConnectionSlots, Pools
from asyncreply_client.pytest_plugin import RunningReferenceServer

pytestmark = pytest.mark.anyio

A = (b"http", b"a.example", None)
B = (b"https", b"b.example", 8443)


class _Now:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _pools(capacity: int, now: _Now | None = None, expiry: float = 5.0) -> Pools[object]:
    return Pools(capacity, object, expiry=expiry, now=now or _Now())


# --------------------------------------------------------------------------------------------
# Pools, by hand


def test_a_request_takes_the_connection_its_origin_used_last() -> None:
    pools = _pools(3)
    first, second = pools.take(A)[0], pools.take(A)[0]
    pools.give(first, A)
    pools.give(second, A)
    assert pools.take(A) == (second, [])  # the warmest; the other one ages
    assert pools.take(A) == (first, [])
    assert pools.count == 2


def test_new_connections_up_to_the_bound_then_none() -> None:
    pools = _pools(2)
    taken = [pools.take(A)[0], pools.take(A)[0]]
    assert all(p is not None for p in taken) and taken[0] is not taken[1]
    assert pools.take(A) == (None, [])  # every one in use: the caller overflows
    assert pools.count == 2


def test_at_the_bound_another_origins_oldest_idle_connection_is_reused() -> None:
    now = _Now()
    pools = _pools(2, now)
    old, recent = pools.take(B)[0], pools.take(B)[0]
    pools.give(old, B)
    now.t = 1.0
    pools.give(recent, B)
    assert pools.take(A) == (old, [])  # replaced: the least recently used of any origin
    assert pools.take(A) == (recent, [])
    assert pools.take(A) == (None, [])
    assert pools.count == 2


def test_a_new_origin_below_the_bound_gets_a_new_connection() -> None:
    pools = _pools(3)
    on_b = pools.take(B)[0]
    pools.give(on_b, B)
    fresh = pools.take(A)[0]
    assert fresh is not on_b and pools.count == 2
    assert pools.take(B) == (on_b, [])


def test_connections_idle_past_the_expiry_are_handed_back_to_close() -> None:
    now = _Now()
    pools = _pools(4, now, expiry=5.0)
    a1, a2, b1 = pools.take(A)[0], pools.take(A)[0], pools.take(B)[0]
    pools.give(a1, A)
    pools.give(b1, B)
    now.t = 3.0
    pools.give(a2, A)
    now.t = 5.5  # a1 and b1 idle 5.5 s, a2 2.5 s
    pool, stale = pools.take(A)
    assert pool is a2
    assert set(map(id, stale)) == {id(a1), id(b1)}
    assert pools.count == 1  # only a2 is left, in use
    fresh, stale = pools.take(B)
    assert fresh not in (a1, a2, b1) and stale == []


def test_drain_forgets_every_pool_in_use_or_idle() -> None:
    pools = _pools(3)
    busy, idle = pools.take(A)[0], pools.take(A)[0]
    pools.give(idle, A)
    assert {id(p) for p in pools.drain()} == {id(busy), id(idle)}
    assert pools.count == 0
    assert pools.take(A)[0] not in (busy, idle)


# --------------------------------------------------------------------------------------------
# The transports, over loopback


def _port(response: httpx.Response) -> int:
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


def test_sync_connections_are_kept_and_reused(reference_server: RunningReferenceServer) -> None:
    url = reference_server.base_url + "/health"
    with httpx.Client(transport=ConnectionSlots(4)) as http:
        ports = {_port(http.get(url)) for _ in range(20)}
    assert len(ports) == 1  # one after the other: always the same warm connection


def test_sync_threads_share_at_most_the_bound_of_connections(
    reference_server: RunningReferenceServer,
) -> None:
    url = reference_server.base_url + "/health"
    transport = ConnectionSlots(4)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(10):
            with http.stream("GET", url) as response:
                response.read()
                with lock:
                    statuses.append(response.status_code)

    with httpx.Client(transport=transport) as http:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert transport._pools.count <= 4
    # Eight threads on a bound of four: whatever found every connection in use went through
    # the overflow pool; none failed, none waited for ever.
    assert statuses == [200] * 80


async def test_async_concurrent_requests_keep_their_connections(
    reference_server: RunningReferenceServer,
) -> None:
    # Twenty at once, twice: the second round finds the twenty connections of the first,
    # where a pool keeping few alive would have closed and reopened most of them.
    url = reference_server.base_url + "/health"
    transport = AsyncConnectionSlots(20)
    rounds: list[set[int]] = []
    async with httpx.AsyncClient(transport=transport) as http:
        for _ in range(2):
            ports: set[int] = set()

            async def one(ports: set[int] = ports) -> None:
                async with http.stream("GET", url) as response:
                    await anyio.sleep(0.01)  # all twenty open at once
                    await response.aread()
                    ports.add(_port(response))

            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(one)
            rounds.append(ports)
        assert transport._pools.count == 20
    assert len(rounds[0]) == 20
    assert rounds[1] == rounds[0]


async def test_async_requests_past_the_bound_overflow_and_all_succeed(
    reference_server: RunningReferenceServer,
) -> None:
    url = reference_server.base_url + "/health"
    transport = AsyncConnectionSlots(2)
    async with httpx.AsyncClient(transport=transport) as http:
        answers: list[int] = []

        async def one() -> None:
            async with http.stream("GET", url) as response:
                await anyio.sleep(0.01)
                await response.aread()
                answers.append(response.status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
        assert transport._pools.count == 2
        assert transport._overflow is not None
    assert answers == [200] * 10


async def test_a_stream_closed_early_gives_its_connection_slot_back(
    reference_server: RunningReferenceServer,
) -> None:
    # An event stream closed before its end cannot be reused (httpcore closes it); its slot
    # is idle again at once, and the next request opens a fresh connection in it.
    base = reference_server.base_url
    transport = AsyncConnectionSlots(1)
    async with httpx.AsyncClient(transport=transport) as http:
        job = await http.post(base + "/jobs", json={"type": "sleep", "input": {"seconds": 5}})
        events_url = base + f"/jobs/{job.json()['jobId']}/events"
        async with http.stream("GET", events_url) as stream:
            first = _port(stream)
            async for _ in stream.aiter_bytes():
                break
        again = await http.get(base + "/health")
        assert again.status_code == 200
        assert _port(again) != first
        assert transport._pools.count == 1 and transport._overflow is None


def test_sync_idle_connections_past_the_expiry_are_closed(
    reference_server: RunningReferenceServer,
) -> None:
    url = reference_server.base_url + "/health"
    transport = ConnectionSlots(1)
    now = _Now()
    transport._pools._now = now
    transport._pools._swept = now.t
    with httpx.Client(transport=transport) as http:
        first = _port(http.get(url))
        old = transport._pools._all[0]
        now.t += 5.1
        second = _port(http.get(url))  # the first connection has expired: closed, a new one
        assert len(transport._pools._all) == 1 and transport._pools._all[0] is not old
    assert first != second


def test_a_connection_goes_to_another_origin_when_the_bound_is_reached(
    reference_server: RunningReferenceServer,
) -> None:
    # 127.0.0.1 and localhost are two origins of one server: with one connection allowed,
    # the second origin takes the first one's idle connection over (closed, reopened).
    port = httpx.URL(reference_server.base_url).port
    transport = ConnectionSlots(1)
    with httpx.Client(transport=transport) as http:
        first = http.get(f"http://127.0.0.1:{port}/health")
        assert first.status_code == 200
        second = http.get(f"http://localhost:{port}/health")
        assert second.status_code == 200
        assert transport._pools.count == 1 and transport._overflow is None
        assert http.get(f"http://127.0.0.1:{port}/health").status_code == 200


def test_a_failed_connection_leaves_its_slot_usable(
    reference_server: RunningReferenceServer,
) -> None:
    transport = ConnectionSlots(1)
    with httpx.Client(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{_closed_port()}/health")
        assert http.get(reference_server.base_url + "/health").status_code == 200
        assert transport._pools.count == 1 and transport._overflow is None


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more


def test_every_connection_shares_one_tls_context() -> None:
    # Made once, on the first connection: not once per pool (each costs tens of ms).
    transport = ConnectionSlots(3)
    origin = (b"https", b"api.example", None)
    pools = [transport._pools.take(origin)[0] for _ in range(3)]
    contexts = {id(pool._pool._ssl_context) for pool in pools if pool is not None}
    assert len(contexts) == 1
    transport.close()


# --------------------------------------------------------------------------------------------
# The clients' own httpx clients


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_the_sdk_client_has_a_connection_per_admission_slot(cls: Any) -> None:
    client = cls("http://h", max_in_flight=7, max_streams=3)
    transport = client._http._transport
    assert isinstance(transport, ConnectionSlots | AsyncConnectionSlots)
    assert transport._pools.capacity == 10


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_a_proxy_from_the_environment_gets_httpx_own_pool(
    cls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    client = cls("https://api.example", max_in_flight=7, max_streams=3)
    transport = client._http._transport
    assert isinstance(transport, httpx.HTTPTransport | httpx.AsyncHTTPTransport)
    proxied = client._http._transport_for_url(httpx.URL("https://api.example/jobs"))
    assert proxied is not transport  # httpx mounted the proxy, as it does without a transport
    pool = transport._pool
    assert pool._max_connections == 10 and pool._max_keepalive_connections == 10
