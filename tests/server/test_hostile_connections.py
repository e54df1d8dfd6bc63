"""The connection guard counts a connection as busy only while a request is in flight.

Issue 19 item 1: a socket that sent only ``\\r\\n\\r\\n`` (which the HTTP parser skips), or one
that finished a request and sat idle on keep-alive, counted as busy forever: it escaped
``header_timeout``, could not be evicted, and 100 of them against ``--max-connections 100``
refused every new client for 71 s. Here both kinds fall under ``header_timeout``, idle
connections are evicted longest-idle first, and ``/health`` answers throughout the attack
(``benchmarks/guard_attack.py`` is the full run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from benchmarks import guard_attack
from reference_server import FileResult

from .conftest import ServerFactory, poll_until
from .test_hostile_clients import connect, raw_connections, read_response, read_until_closed

pytestmark = pytest.mark.anyio

_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_a_crlf_only_connection_falls_under_the_header_timeout(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(header_timeout=0.1)
    async with raw_connections(srv) as conns:
        reader, writer = await connect(srv, conns, b"\r\n\r\n")
        writer.write(b"\r\n" * 50)  # more of the same does not keep it open either
        with anyio.fail_after(10):
            assert await read_until_closed(reader) == b""
    assert (await srv.get("/health")).status_code == 200


async def test_the_header_timer_rearms_after_each_request(make_server: ServerFactory) -> None:
    srv = await make_server(header_timeout=0.2, keepalive_timeout=3600)
    async with raw_connections(srv) as conns:
        reader, writer = await connect(srv, conns, _HEALTH)
        with anyio.fail_after(10):
            head, _ = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200"), head
            # A second request on the same connection is served (kept alive) ...
            writer.write(_HEALTH)
            head, _ = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200"), head
            # ... then, idle, it has header_timeout (not keepalive_timeout) to send the next.
            assert await read_until_closed(reader) == b""


async def test_a_request_in_flight_outlives_the_header_timeout(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(header_timeout=0.2, max_wait=30)
    job_id = await srv.submit_ok("gate", {"key": "held"})
    long_poll = (
        f"GET /jobs/{job_id}?wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice\r\n\r\n"
    ).encode()
    async with raw_connections(srv) as conns:
        polling, _ = await connect(srv, conns, long_poll)
        await poll_until(lambda: srv.admin.count("GET", f"/jobs/{job_id}") >= 1)
        # A connection opened after the long poll started times out first: by then the
        # long poll's connection has been open longer than header_timeout.
        idle, _ = await connect(srv, conns, b"\r\n")
        with anyio.fail_after(10):
            assert await read_until_closed(idle) == b""
        srv.gates.open("held")
        with anyio.fail_after(10):
            head, _ = await read_response(polling)
    assert head.split(b"\r\n")[0] in (b"HTTP/1.1 200 OK", b"HTTP/1.1 303 See Other"), head


async def test_idle_keepalive_connections_are_evicted_longest_idle_first(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(max_connections=3, header_timeout=60)
    async with raw_connections(srv) as conns:
        first, first_writer = await connect(srv, conns, _HEALTH)
        second, second_writer = await connect(srv, conns, _HEALTH)
        with anyio.fail_after(10):
            await read_response(first)
            await read_response(second)
            # The first connection serves another request: now the second is idle longest.
            first_writer.write(_HEALTH)
            await read_response(first)
        third, _ = await connect(srv, conns, b"\r\n\r\n")
        # At the cap: the newcomer evicts the second (idle longest), not the others.
        newcomer, _ = await connect(srv, conns, _HEALTH)
        with anyio.fail_after(10):
            head, _ = await read_response(newcomer)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert await read_until_closed(second) == b""
            first_writer.write(_HEALTH)
            head, _ = await read_response(first)
            assert head.startswith(b"HTTP/1.1 200"), head
        assert not third.at_eof()
        second_writer.close()


@pytest.mark.parametrize("header_timeout", [60.0, 0.3], ids=["evicted", "timed-out"])
async def test_health_answers_throughout_the_idle_socket_attack(
    make_server: ServerFactory, header_timeout: float
) -> None:
    """The issue's attack, quick: CRLF-only and idle keep-alive sockets at the cap,
    reopened whenever the server closes them; every ``/health`` probe gets 200."""
    cap = 30
    srv = await make_server(max_connections=cap, header_timeout=header_timeout)
    parts = urlsplit(srv.base_url)
    assert parts.hostname is not None and parts.port is not None
    with anyio.fail_after(60):
        figures = await guard_attack.attack(
            parts.hostname, parts.port, cap=cap, duration=1.0, probe_every=0.02
        )
    assert figures.probes >= 1
    assert (figures.ok, figures.refused, figures.unanswered) == (figures.probes, 0, 0)
    # The guard made room by closing attacker sockets, which the attacker reopened.
    assert figures.closed_by_server >= figures.probes


def test_the_attack_benchmark_runs_in_its_tiniest_form(tmp_path: Path) -> None:
    results = guard_attack.main(
        ["--cap", "20", "--duration", "0.3", "--results-dir", str(tmp_path)]
    )
    assert (tmp_path / "guard_attack.json").is_file()
    assert results["met"] is True
    assert results["probes"] == results["ok_200"] >= 1


async def _big(ctx: Any, input: dict[str, Any]) -> FileResult:
    return FileResult(b"x" * int(input["size"]), "application/octet-stream", "big.bin")


async def test_a_connection_still_receiving_its_answer_is_not_evicted(
    make_server: ServerFactory,
) -> None:
    # The result is written after the handler returned (in chunks, at the reader's pace):
    # the request is in flight until the last byte is written, so at the cap the idle
    # newcomer is evicted, never the download.
    size = 12 * 1024 * 1024
    srv = await make_server(
        max_connections=2, header_timeout=60, max_result_bytes=2 * size, handlers={"big": _big}
    )
    job_id = await srv.submit_ok("big", {"size": size})
    await srv.wait_terminal(job_id, within=60)
    request = (
        f"GET /jobs/{job_id}/result HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    async with raw_connections(srv) as conns:
        download, _ = await connect(srv, conns, request)
        with anyio.fail_after(30):
            head = await download.readuntil(b"\r\n\r\n")
            first = await download.readexactly(256 * 1024)  # some, not all: it continues
        idle, _ = await connect(srv, conns, b"\r\n")
        newcomer, _ = await connect(srv, conns, _HEALTH)
        with anyio.fail_after(30):
            health, _ = await read_response(newcomer)
            assert health.startswith(b"HTTP/1.1 200"), health
            assert await read_until_closed(idle) == b""  # the idle one made room
            rest = await read_until_closed(download)
    assert head.startswith(b"HTTP/1.1 200")
    assert len(first) + len(rest) == size
