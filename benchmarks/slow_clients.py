"""Soak: ``/health`` latency while hostile clients crowd the reference server.

The server runs in a child process whose open-file limit is 1024 (the issue's setting).
Two phases, ``/health`` asked every 20 ms on a *new* connection throughout (each probe needs
an accept, the very thing a crowd of half-open connections starves):

1. **half-open**: 2,000 connections (quick: 1,100) opened over 20 s (quick: 5 s) and held
   open: one in three silent, the rest with a request head that never ends.
2. **reports**: five ``report`` jobs of 100,000 x 100 rows at once (112 MiB each if they
   were allowed; the default ``max_result_bytes`` fails them with ``result_too_large``),
   then five of 100,000 x 10 rows (about 9 MiB each, generated in full).

Reported: probes, answered probes, median / p99 / max ``/health`` latency per phase, and
the outcome of the reports. The benchmark fails (exit 1) unless every probe was
answered within 100 ms.

Run: ``python -m benchmarks.slow_clients [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time
from collections.abc import Sequence
from typing import Any

import httpx

from ._harness import (
    add_common_args,
    percentile,
    print_table,
    raise_fd_limit,
    running_server,
    write_result,
)

SERVER_FD_LIMIT = 1024
LATENCY_GOAL = 0.100
PROBE_EVERY = 0.020


async def _probe(host: str, port: int) -> float | None:
    """One ``GET /health`` on a fresh connection; seconds, or ``None`` if unanswered in 5 s."""

    async def ask() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return await reader.read(1024)
        finally:
            writer.close()

    start = time.perf_counter()
    try:
        answer = await asyncio.wait_for(ask(), 5.0)
    except (OSError, asyncio.TimeoutError):
        return None
    if not answer.startswith(b"HTTP/1.1 200"):
        return None
    return time.perf_counter() - start


async def _probing(host: str, port: int, stop: asyncio.Event, out: list[float | None]) -> None:
    while not stop.is_set():
        out.append(await _probe(host, port))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY)


async def _half_open(host: str, port: int, count: int, over: float, hold: float) -> list[Any]:
    """Open ``count`` half-open connections spread over ``over`` seconds; hold ``hold`` s."""
    writers: list[asyncio.StreamWriter] = []
    refused = 0
    pause = over / count
    for i in range(count):
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            refused += 1
            continue
        if i % 3:
            writer.write(b"GET /jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        writers.append(writer)
        await asyncio.sleep(pause)
    await asyncio.sleep(hold)
    for writer in writers:
        writer.close()
    return [len(writers), refused]


async def _reports(base_url: str, rows: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        ids = []
        for columns in (100, 10):
            for _ in range(5):
                job = {"type": "report", "input": {"rows": rows, "columns": columns}}
                ids.append((await client.post("/jobs", json=job)).json()["jobId"])
        codes = []
        for job_id in ids:
            while True:
                status = (await client.get(f"/jobs/{job_id}", params={"wait": "5"})).json()
                if status["status"] in ("completed", "failed", "cancelled"):
                    codes.append((status.get("error") or {}).get("code", status["status"]))
                    break
        return codes


def _figures(name: str, probes: Sequence[float | None]) -> dict[str, Any]:
    answered = [p for p in probes if p is not None]
    return {
        "phase": name,
        "probes": len(probes),
        "answered": len(answered),
        "median_ms": percentile(answered, 50) * 1000,
        "p99_ms": percentile(answered, 99) * 1000,
        "max_ms": max(answered, default=float("nan")) * 1000,
    }


async def _run(base_url: str, count: int, over: float, hold: float, rows: int) -> dict[str, Any]:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    results: dict[str, Any] = {}
    for phase in ("half-open", "reports"):
        stop = asyncio.Event()
        probes: list[float | None] = []
        prober = asyncio.create_task(_probing(host, int(port), stop, probes))
        if phase == "half-open":
            results["connections"] = await _half_open(host, int(port), count, over, hold)
        else:
            results["report_outcomes"] = await _reports(base_url, rows)
        stop.set()
        await prober
        results[phase] = _figures(phase, probes)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the soak and return its figures (``met``: every probe answered within 100 ms)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--connections", type=int, default=None, help="half-open connections")
    parser.add_argument("--over", type=float, default=None, help="seconds to open them over")
    parser.add_argument("--hold", type=float, default=None, help="seconds to hold them open")
    parser.add_argument("--report-rows", type=int, default=100_000, help="rows per report")
    args = parser.parse_args(argv)
    count, over, hold = (1100, 5.0, 3.0) if args.quick else (2000, 20.0, 10.0)
    count = args.connections or count
    over = args.over if args.over is not None else over
    hold = args.hold if args.hold is not None else hold
    raise_fd_limit(count * 2 + 512)
    # The child inherits the soft limit in force when it starts: lower it just for that.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(SERVER_FD_LIMIT, soft), hard))
    try:
        server_cm = running_server()
        server = server_cm.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        results = asyncio.run(_run(server.base_url, count, over, hold, args.report_rows))
    finally:
        server_cm.__exit__(None, None, None)
    phases = (results["half-open"], results["reports"])
    results["table"] = print_table(
        f"/health under {count} half-open connections (server fd limit {SERVER_FD_LIMIT}) "
        "and 10 big reports",
        ["phase", "probes", "answered", "median ms", "p99 ms", "max ms"],
        [[f[k] for k in ("phase", "probes", "answered", "median_ms", "p99_ms", "max_ms")]
         for f in phases],
    )  # fmt: skip
    print(f"half-open connections opened/refused: {results['connections']}")
    print(f"report outcomes: {results['report_outcomes']}")
    results["goal_ms"] = LATENCY_GOAL * 1000
    results["met"] = all(
        f["answered"] == f["probes"] and f["max_ms"] <= LATENCY_GOAL * 1000 for f in phases
    )
    write_result("slow_clients", results, args.results_dir)
    if not results["met"]:
        print(f"FAILED: a /health probe was unanswered or slower than {LATENCY_GOAL * 1000} ms")
    return results


if __name__ == "__main__":
    raise SystemExit(0 if main()["met"] else 1)
