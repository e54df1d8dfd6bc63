"""Slow readers of large results: memory per reader is bounded by a chunk, not the result.

Issue 19 item 4: every ``GET /result`` handed its full copy of an 11.2 MiB result to the
transport, so 60 connections that never read took the server from 443 to 1,286 MiB. Results
are now written in chunks, each after the previous one drained, and a reader that reads
nothing for ``write_timeout`` seconds is disconnected. What is asserted is structural: the
bytes queued in the server's transport never exceed a chunk plus aiohttp's write limit, and
the readers were indeed stalled. The RSS figures are ``benchmarks/slow_readers.py``.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from reference_server import FileResult, JobContext, connections, result_stream

from .conftest import ServerFactory, poll_until
from .test_hostile_clients import _address, read_until_closed

pytestmark = pytest.mark.anyio

RESULT_SIZE = 12 * 1024 * 1024
#: A chunk, plus what aiohttp lets through before it waits for the drain (64 KiB), plus the
#: response head.
BOUND = result_stream.CHUNK_SIZE + 64 * 1024 + 4096


async def _big_file(ctx: JobContext, input: dict[str, Any]) -> FileResult:
    pattern = bytes(range(256))
    return FileResult(pattern * (int(input["size"]) // 256), "application/octet-stream", "r.bin")


async def _big_json(ctx: JobContext, input: dict[str, Any]) -> dict[str, list[str]]:
    return {"items": ["x" * 1000] * (int(input["size"]) // 1003)}


class _Spy:
    """Counts paused transports and the most bytes any of them held after a chunk."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paused = 0
        self.lost = 0
        self.max_buffered = 0
        self.chunks = 0
        spy = self
        pause = connections._Guarded.pause_writing
        lost = connections._Guarded.connection_lost
        bounded = result_stream.ChunkedBody._bounded

        def pause_writing(conn: connections._Guarded) -> None:
            spy.paused += 1
            pause(conn)

        def connection_lost(conn: connections._Guarded, exc: Exception | None) -> None:
            spy.lost += 1
            lost(conn, exc)

        async def measured(body: result_stream.ChunkedBody, writer: Any, step: Any) -> None:
            transport = writer.transport
            if transport is not None:
                spy.max_buffered = max(spy.max_buffered, transport.get_write_buffer_size())
            spy.chunks += 1
            await bounded(body, writer, step)

        monkeypatch.setattr(connections._Guarded, "pause_writing", pause_writing)
        monkeypatch.setattr(connections._Guarded, "connection_lost", connection_lost)
        monkeypatch.setattr(result_stream.ChunkedBody, "_bounded", measured)


async def _stalled_reader(srv: Any, path: str) -> tuple[asyncio.StreamReader, Any]:
    """A connection asking for ``path`` with a tiny receive buffer, reading nothing yet."""
    host, port = _address(srv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize(
    ("job_type", "path"),
    [("file", "/result"), ("json", "/result"), ("json", "")],
    ids=["file-result", "json-result", "status-code-200-with-result"],
)
async def test_slow_readers_hold_a_chunk_each_not_the_result(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch, job_type: str, path: str
) -> None:
    srv = await make_server(
        dialect="status-code" if not path else "reference",
        max_result_bytes=RESULT_SIZE * 2,
        handlers={"file": _big_file, "json": _big_json},
    )
    job_id = await srv.submit_ok(job_type, {"size": RESULT_SIZE})
    await srv.wait_terminal(job_id, within=60)
    expected = (await srv.get(f"/jobs/{job_id}{path}")).content
    assert len(expected) >= RESULT_SIZE - 4096
    spy = _Spy(monkeypatch)
    readers = [await _stalled_reader(srv, f"/jobs/{job_id}{path}") for _ in range(4)]
    try:
        # Every answer stalls on its reader (the transport paused writing) ...
        await poll_until(lambda: spy.paused >= len(readers), within=60)
        # ... having written only part of the result, never more than BOUND queued at once.
        assert spy.max_buffered <= BOUND
        assert spy.chunks < len(readers) * (len(expected) // result_stream.CHUNK_SIZE)
        for reader, _ in readers:
            with anyio.fail_after(60):
                answer = await read_until_closed(reader)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            assert body == expected
        assert spy.max_buffered <= BOUND
    finally:
        for _, writer in readers:
            writer.close()


async def test_a_reader_that_reads_nothing_is_timed_out(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = await make_server(
        write_timeout=0.2, max_result_bytes=RESULT_SIZE * 2, handlers={"file": _big_file}
    )
    job_id = await srv.submit_ok("file", {"size": RESULT_SIZE})
    await srv.wait_terminal(job_id, within=60)
    spy = _Spy(monkeypatch)
    reader, writer = await _stalled_reader(srv, f"/jobs/{job_id}/result")
    try:
        await poll_until(lambda: spy.lost >= 1, within=60)
        with anyio.fail_after(60):
            answer = await read_until_closed(reader)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert len(body) < RESULT_SIZE  # cut off: the server closed the connection
    finally:
        writer.close()
    assert (await srv.get("/health")).status_code == 200


def test_the_rss_benchmark_runs_in_its_tiniest_form(tmp_path: Path) -> None:
    from benchmarks import slow_readers

    results = slow_readers.main(
        ["--readers", "3", "--rows", "2000", "--settle", "0.1", "--results-dir", str(tmp_path)]
    )
    assert (tmp_path / "slow_readers.json").is_file()
    assert results["readers"] == 3
    assert results["rss_before_mib"] > 0
    assert results["result_mib"] > 0


async def _chatty(ctx: JobContext, input: dict[str, Any]) -> dict[str, int]:
    for step in range(int(input["steps"])):
        await ctx.progress(step, None, "m" * 1000)  # 20,000 events of 1 KB fill any buffer
    await ctx.sleep(3600)  # then stay running: the stream would stay open
    return {"steps": int(input["steps"])}


async def test_an_event_stream_that_is_never_read_is_timed_out(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = await make_server(write_timeout=0.2, handlers={"chatty": _chatty})
    spy = _Spy(monkeypatch)
    job_id = await srv.submit_ok("chatty", {"steps": 20_000})
    reader, writer = await _stalled_reader(srv, f"/jobs/{job_id}/events")
    try:
        # The stream stalls on its reader, then is cut off after write_timeout.
        await poll_until(lambda: spy.lost >= 1, within=60)
        with anyio.fail_after(60):
            answer = await read_until_closed(reader)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
    await srv.delete(f"/jobs/{job_id}")
    assert (await srv.get("/health")).status_code == 200


def test_the_write_timeout_is_a_command_line_flag() -> None:
    from reference_server.__main__ import config_from_args

    assert config_from_args(["--write-timeout", "2.5"]).write_timeout == 2.5
