"""Smoke tests of the reference server's own plumbing: serve(), ServerThread, Admin, CLI.

The protocol itself is covered by the other modules of ``tests/server``.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest

from reference_server import (
    FaultConfig,
    JobContext,
    JobFailure,
    JobState,
    ServerConfig,
    ServerThread,
    serve,
)
from reference_server.__main__ import config_from_args
from reference_server.documents import retry_headers, retry_hint
from reference_server.records import JobRecord, Progress


@pytest.mark.anyio
async def test_serve_runs_a_job_to_its_result() -> None:
    async with serve(ServerConfig(workers=2)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            r = await client.post(
                "/jobs", json={"type": "sleep", "input": {"seconds": 0.02, "steps": 2}}
            )
            assert r.status_code == 202
            location = r.headers["Location"]
            assert int(r.headers["Retry-After-Ms"]) >= 0
            r = await client.get(location, params={"wait": 10})
            while r.status_code == 200:
                r = await client.get(location, params={"wait": 10})
            assert r.status_code == 303
            assert r.headers["Location"] == f"{location}/result"
            result = await client.get(r.headers["Location"])
            assert result.json() == {"slept": 0.02}
        job_id = location.rsplit("/", 1)[1]
        snapshot = server.admin.job(job_id)
        assert snapshot is not None and snapshot.state is JobState.COMPLETED
        assert server.admin.status_requests(job_id) >= 1
        assert server.admin.route_counts["POST /jobs"] == 1


def test_server_thread_serves_sync_clients_and_admin_from_another_thread() -> None:
    with ServerThread(ServerConfig(workers=1)) as server:
        r = httpx.post(
            f"{server.base_url}/jobs",
            json={"type": "echo", "input": {"x": 1}},
            headers={"Prefer": "wait=10"},
        )
        assert r.status_code == 303
        assert r.headers["Preference-Applied"] == "wait=10"
        assert [j.state for j in server.admin.jobs()] == [JobState.COMPLETED]
        server.admin.set_faults(p_503=1.0, retry_after=2)
        r = httpx.get(f"{server.base_url}/jobs")
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert httpx.get(f"{server.base_url}/health").status_code == 200
        server.admin.set_faults(FaultConfig())
        assert httpx.get(f"{server.base_url}/jobs").status_code == 200
        server.admin.clear()
        assert server.admin.jobs() == [] and server.admin.request_count == 0


@pytest.mark.anyio
async def test_custom_handler_sees_cancellation_and_attempts() -> None:
    seen: dict[str, Any] = {}
    started = asyncio.Event()

    async def wait_forever(ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
        seen["attempt"] = ctx.attempt
        started.set()
        await ctx.cancelled.wait()
        seen["cancelled"] = True
        ctx.raise_if_cancelled()
        raise AssertionError("unreachable")

    async def flaky(ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
        if ctx.attempt < 2:
            raise JobFailure("flaky", "try again", retryable=True)
        return {"attempt": ctx.attempt}

    config = ServerConfig(retry_backoff=0.001)
    handlers = {"wait_forever": wait_forever, "flaky": flaky}
    async with (
        serve(config, handlers=handlers) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        r = await client.post("/jobs", json={"type": "wait_forever", "input": {}})
        await asyncio.wait_for(started.wait(), 10)
        r = await client.delete(r.headers["Location"])
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        for _ in range(100):
            if seen.get("cancelled"):
                break
            await asyncio.sleep(0.01)
        assert seen == {"attempt": 1, "cancelled": True}
        r = await client.post(
            "/jobs", json={"type": "flaky", "input": {}}, headers={"Prefer": "wait=10"}
        )
        assert r.status_code == 303
        assert (await client.get(r.headers["Location"])).json() == {"attempt": 2}


def test_cli_flags_map_onto_the_config() -> None:
    config = config_from_args(
        [
            "--port",
            "0",
            "--dialect",
            "status-code",
            "--job-ttl",
            "0.5",
            "--require-idempotency-key",
            "--token",
            "t1=alice",
            "--fault-p-503",
            "0.25",
            "--fault-sse-cut-after",
            "3",
        ]
    )
    assert config.port == 0 and config.dialect == "status-code" and config.job_ttl == 0.5
    assert config.require_idempotency_key is True
    assert config.tokens == {"t1": "alice"}
    assert config.faults == FaultConfig(p_503=0.25, sse_cut_after=3)


@pytest.mark.anyio
async def test_cli_prints_its_url_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reference_server",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{url}/health")
        assert json.loads(r.text) == {"status": "ok"}
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_cli_on_a_busy_port_says_so_without_a_traceback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "reference_server", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"asyncreply-server: error: port {port} is in use on 127.0.0.1 "
        "(choose another with --port, or --port 0 for any free port)"
    )
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stdout


@pytest.mark.anyio
async def test_shutdown_ends_open_streams_and_long_polls() -> None:
    lines: list[str] = []
    async with serve(ServerConfig(max_wait=30)) as server:
        client = httpx.AsyncClient(base_url=server.base_url, timeout=30)
        r = await client.post("/jobs", json={"type": "sleep", "input": {"seconds": 60}})
        location = r.headers["Location"]
        stream_open = asyncio.Event()

        async def read_stream() -> None:
            async with client.stream("GET", f"{location}/events") as resp:
                async for line in resp.aiter_lines():
                    lines.append(line)
                    if line.startswith("data:"):
                        stream_open.set()

        reader = asyncio.create_task(read_stream())
        poller = asyncio.create_task(client.get(location, params={"wait": 30}))
        await asyncio.wait_for(stream_open.wait(), 10)
        for _ in range(1000):  # until the long poll has reached the server
            if server.admin.count("GET", location):
                break
            await asyncio.sleep(0.01)
    # Leaving serve() ended the stream and answered the held long poll.
    await asyncio.wait_for(reader, 10)
    answer = await asyncio.wait_for(poller, 10)
    await client.aclose()
    assert answer.status_code == 200 and answer.json()["status"] == "processing"
    assert "event: status" in lines and "event: complete" not in lines


def _record(**fields: Any) -> JobRecord:
    base: dict[str, Any] = {
        "id": "j1",
        "seq": 1,
        "owner": "anonymous",
        "type": "sleep",
        "input": {},
        "callback": None,
        "state": JobState.PROCESSING,
        "created_at": 1000.0,
        "updated_at": 1000.0,
        "started_at": 1000.0,
    }
    base.update(fields)
    return JobRecord(**base)


@pytest.mark.parametrize(
    ("fields", "now", "hint"),
    [
        # 2 of 10 steps took 2 s: 8 s left.
        ({"progress": Progress(2, 10, None), "progress_at": 1002.0}, 1002.0, 8.0),
        # Same rate, later: the hint shrinks towards the end...
        ({"progress": Progress(9, 10, None), "progress_at": 1009.0}, 1009.5, 0.5),
        # ...and an overdue job is polled at the minimum, never a negative hint.
        ({"progress": Progress(9, 10, None), "progress_at": 1009.0}, 1020.0, 0.05),
        # A declared estimate without progress.
        ({"estimate": 3.0}, 1001.0, 2.0),
        # No estimate: back off with the job's age; clamped to [min, max].
        ({}, 1000.0, 0.05),
        ({}, 1004.0, 4.0),
        ({}, 2000.0, 30.0),
        # Pending until notBefore.
        ({"state": JobState.PENDING, "started_at": None, "run_at": 1005.0}, 1001.0, 4.0),
        # Final jobs get no hint.
        ({"state": JobState.COMPLETED}, 1001.0, None),
    ],
)
def test_retry_hint_table(fields: dict[str, Any], now: float, hint: float | None) -> None:
    config = ServerConfig()
    job = _record(**fields)
    assert retry_hint(job, now, config) == (None if hint is None else pytest.approx(hint))
    headers = retry_headers(retry_hint(job, now, config))
    if hint is None:
        assert headers == {}
    else:
        assert int(headers["Retry-After"]) == math.ceil(hint - 1e-9)
        assert int(headers["Retry-After-Ms"]) == pytest.approx(hint * 1000, abs=1)


@pytest.mark.anyio
async def test_odd_inputs_found_while_fuzzing_get_4xx_not_500() -> None:
    async with (
        serve(ServerConfig(tokens={"t1": "alice"})) as server,
        httpx.AsyncClient(
            base_url=server.base_url, headers={"Authorization": "Bearer t1"}
        ) as client,
    ):
        json_headers = {"Content-Type": "application/json"}
        # A lone surrogate escape is not Unicode text.
        surrogate = b'{"type": "echo", "input": {"k": "\\udcff"}}'
        r = await client.post("/jobs", content=surrogate, headers=json_headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
        # Non-ASCII bytes in a bearer token.
        r = await client.get("/jobs", headers={"Authorization": "Bearer t\xff".encode("latin-1")})
        assert r.status_code == 401
        # Unicode digits that str.isdigit() accepts but int() does not.
        r = await client.get("/jobs", params={"limit": "²"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_limit")
        r = await client.post(
            "/jobs", json={"type": "echo", "input": {}}, headers={"Prefer": "wait=10"}
        )
        events = await client.get(
            f"{r.json()['statusUrl']}/events", headers={"Last-Event-ID": "²".encode()}
        )
        assert events.status_code == 200 and "event: complete" in events.text
        # A report column count that is not a count.
        r = await client.post("/jobs", json={"type": "report", "input": {"columns": 0}})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_input")
        assert (await client.get("/health")).status_code == 200
