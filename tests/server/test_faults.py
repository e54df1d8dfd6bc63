"""Fault injection: 503 with Retry-After, 500, dropped connections, latency; off by default."""

from __future__ import annotations

import time

import httpx
import pytest

from reference_server import FaultConfig, ServerConfig

from .conftest import Server, ServerFactory, assert_healthy, error_code

pytestmark = pytest.mark.anyio


def test_faults_are_off_by_default() -> None:
    faults = ServerConfig().faults
    assert faults.p_503 == faults.p_500 == faults.p_drop == 0
    assert faults.latency == 0
    assert faults.sse_cut_after is None


async def test_no_faults_without_configuration(srv: Server) -> None:
    for n in range(30):
        response = await srv.submit("echo", {"n": n})
        assert response.status_code == 202


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_503_with_retry_after(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"p_503": 1.0, "retry_after": 2})
    response = await srv.submit("echo", {})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert error_code(response) == "unavailable"
    status = await srv.get("/jobs/whatever")
    assert status.status_code == 503
    # Nothing was accepted while faulting.
    srv.admin.set_faults(FaultConfig())
    assert (await srv.get("/jobs")).json()["jobs"] == []
    await assert_healthy(srv)


async def test_500(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"p_500": 1.0})
    response = await srv.get("/jobs")
    assert response.status_code == 500
    assert error_code(response) == "internal_error"
    assert (await srv.submit("echo", {})).status_code == 500
    srv.admin.set_faults(FaultConfig())
    assert (await srv.get("/jobs")).json()["jobs"] == []  # nothing was created
    await assert_healthy(srv)


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_dropped_connections(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"p_drop": 1.0})
    with pytest.raises(httpx.TransportError):
        await srv.get("/jobs")
    with pytest.raises(httpx.TransportError):
        await srv.submit("echo", {})
    srv.admin.set_faults(FaultConfig())
    assert srv.admin.jobs() == []  # dropped before anything was processed
    await assert_healthy(srv)


async def test_latency_is_added(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"latency": 0.15})
    started = time.monotonic()
    response = await srv.get("/jobs")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    # A lower bound only: the answer cannot come before the injected delay.
    assert elapsed >= 0.15


async def test_faults_can_be_switched_at_runtime(srv: Server) -> None:
    assert (await srv.get("/jobs")).status_code == 200
    srv.admin.set_faults(FaultConfig(p_503=1.0))
    assert (await srv.get("/jobs")).status_code == 503
    srv.admin.set_faults(FaultConfig())
    assert (await srv.get("/jobs")).status_code == 200


async def test_seeded_probabilities_give_a_mix(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"p_503": 0.5, "seed": 1234})
    codes = [(await srv.get("/jobs")).status_code for _ in range(60)]
    assert set(codes) == {200, 503}


async def test_health_and_admin_endpoints_are_not_faulted(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"p_503": 1.0})
    assert (await srv.get("/health")).status_code == 200
    assert (await srv.get("/webhooks/deliveries")).status_code == 200


async def test_set_faults_with_keywords_keeps_the_other_fields(srv: Server) -> None:
    srv.admin.set_faults(p_503=1.0, retry_after=7)
    srv.admin.set_faults(latency=0.0)
    assert srv.admin.faults.p_503 == 1.0
    response = await srv.get("/jobs")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
