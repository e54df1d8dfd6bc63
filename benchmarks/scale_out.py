"""Scale-out: jobs/s and submit-to-result latency of the reference server on each store,
and as one and three instances on one Redis, in one run.

For each configuration (memory, SQLite, Redis with one instance, Redis with
``--instances 3`` on one port) a fresh server runs in its own process(es), and ``C``
concurrent plain-httpx workers push ``N`` ``echo`` jobs through it: ``POST /jobs``, a long
poll (``?wait=10``) until the job is final, then ``GET /jobs/{id}/result``. The latency of a
job is from its POST to its result; jobs/s is ``N`` over the wall time. Each configuration
also reports its ratio to the memory store. The Redis server is started here (a
``redis-server`` on a free port, no persistence) unless ``--redis-url`` names an empty one.

Nothing is asserted: on a machine with few cores, three instances compete for the same
CPUs (the figures say how much the shared store costs, not how far it scales).

Run: ``python -m benchmarks.scale_out [--quick] [--jobs 1000] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from ._harness import add_common_args, percentile, print_table, running_server, write_result

__all__ = ["main", "measure", "run"]

NAME = "scale_out"
_FINAL = ("completed", "failed", "cancelled")
CONFIGS: dict[str, list[str]] = {
    "memory": ["--store", "memory"],
    "sqlite": ["--store", "sqlite"],
    "redis x1": ["--store", "{redis}"],
    "redis x3": ["--store", "{redis}", "--instances", "3"],
}


async def measure(base_url: str, jobs: int, concurrency: int) -> dict[str, Any]:
    """Push ``jobs`` echo jobs through ``base_url`` with ``concurrency`` workers."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            try:
                answer = await client.post("/jobs", json={"type": "echo", "input": {"i": i}})
                job_id = answer.json()["jobId"]
                while True:  # 303 when completed (the reference dialect's redirect)
                    status = await client.get(f"/jobs/{job_id}", params={"wait": "10"})
                    if status.status_code == 303 or status.json()["status"] in _FINAL:
                        break
                result = await client.get(f"/jobs/{job_id}/result")
                if result.status_code != 200 or result.json() != {"i": i}:
                    errors += 1
                    continue
            except (httpx.HTTPError, ValueError, KeyError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "jobs": jobs,
        "completed": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 3),
        "jobs_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    from tests.redis_server import RedisServer  # a real redis-server, stopped by its PID

    server = RedisServer.start()
    try:
        yield server.url
    finally:
        server.stop()


def run(
    *, jobs: int, concurrency: int, redis_url: str | None, results_dir: Path | None
) -> dict[str, Any]:
    """Measure every configuration; print the table and write the JSON."""
    cells: dict[str, dict[str, Any]] = {}
    with _redis(redis_url) as url, tempfile.TemporaryDirectory() as tmp:
        for name, template in CONFIGS.items():
            flags = [f.replace("{redis}", url) for f in template]
            flags += ["--workers", "16", "--retry-after-min", "0.01"]
            if name == "sqlite":
                flags += ["--sqlite-path", str(Path(tmp) / "scale_out.sqlite3")]
            if name.startswith("redis"):
                import redis

                redis.Redis.from_url(url).flushdb()
            with running_server(*flags) as server:
                cells[name] = asyncio.run(measure(server.base_url, jobs, concurrency))
    base = cells["memory"]["jobs_per_s"] or 1.0
    rows = []
    for name, cell in cells.items():
        cell["ratio_to_memory"] = round(cell["jobs_per_s"] / base, 2)
        rows.append(
            [
                name,
                cell["completed"],
                cell["errors"],
                cell["jobs_per_s"],
                cell["ratio_to_memory"],
                cell["p50_ms"],
                cell["p99_ms"],
            ]
        )
    headers = ["store", "jobs", "errors", "jobs/s", "x memory", "p50 ms", "p99 ms"]
    title = f"scale_out: {jobs} echo jobs, {concurrency} concurrent clients, submit to result"
    table = print_table(title, headers, rows)
    data = {"config": {"jobs": jobs, "concurrency": concurrency}, "cells": cells, "table": table}
    write_result(NAME, data, results_dir)
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--jobs", type=int, default=None, help="jobs (default 1000; quick 60)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients (default 32)")
    parser.add_argument("--redis-url", default=None, help="an empty Redis database to use")
    args = parser.parse_args(argv)
    if args.server_url is not None:
        parser.error("scale_out starts its own servers; --server-url is unused")
    jobs = args.jobs or (60 if args.quick else 1000)
    return run(
        jobs=jobs,
        concurrency=args.concurrency,
        redis_url=args.redis_url,
        results_dir=args.results_dir,
    )


if __name__ == "__main__":
    main()
