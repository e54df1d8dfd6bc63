"""Whether the Redis store holds the reference server's event loop (issue 18.1).

The store protocol is asynchronous and the Redis store uses redis-py's asyncio client, so
while a call waits for Redis the loop serves other requests. This benchmark measures what a
blocked loop would show, on Redis and (the baseline) on the memory store, for the code of
this checkout and, with ``--before PATH``, of another checkout (the code before the change,
whose Redis store called redis-py's blocking client), in one run:

- the loop's lag: how late a 2 ms timer on the server's loop fires (p50, p99, max);
- request latency: ``POST /jobs`` and a plain read of a finished job (``GET /jobs/{id}``
  and its result), p50 and p99, beside the jobs' own submit-to-result latency.

Each server is a subprocess (``benchmarks/_loop_probe.py``) serving its checkout's
``reference_server``; ``N`` ``echo`` jobs go through it with ``C`` concurrent clients.
Nothing is asserted. Run: ``python -m benchmarks.redis_blocking [--before /path/to/main]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ._harness import add_common_args, percentile, print_table, write_result
from .scale_out import _FINAL, _redis

__all__ = ["main", "run_one"]

NAME = "redis_blocking"
PROBE = Path(__file__).with_name("_loop_probe.py")
HERE = Path(__file__).resolve().parent.parent


async def _push(base_url: str, jobs: int, concurrency: int) -> dict[str, list[float]]:
    """Submit, wait for and read ``jobs`` echo jobs; the latencies (s) by kind of request."""
    seen: dict[str, list[float]] = {"job": [], "submit": [], "read": [], "errors": []}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def timed(kind: str, request: Any) -> httpx.Response:
        started = time.perf_counter()
        answer: httpx.Response = await request
        seen[kind].append(time.perf_counter() - started)
        return answer

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            try:
                posted = client.post("/jobs", json={"type": "echo", "input": {"i": i}})
                job_id = (await timed("submit", posted)).json()["jobId"]
                while True:  # 303 when completed (the reference dialect's redirect)
                    status = await client.get(f"/jobs/{job_id}", params={"wait": "10"})
                    if status.status_code == 303 or status.json()["status"] in _FINAL:
                        break
                await timed("read", client.get(f"/jobs/{job_id}"))
                result = await timed("read", client.get(f"/jobs/{job_id}/result"))
                if result.status_code != 200 or result.json() != {"i": i}:
                    seen["errors"].append(1.0)
                    continue
            except (httpx.HTTPError, ValueError, KeyError):
                seen["errors"].append(1.0)
                continue
            seen["job"].append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seen["wall"] = [time.perf_counter() - started]
    return seen


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 3)


def run_one(tree: Path, store: str, redis_url: str, jobs: int, concurrency: int) -> dict[str, Any]:
    """Serve ``tree``'s server on ``store`` (``memory`` or ``redis``); push the jobs; measure."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    with subprocess.Popen(
        [sys.executable, str(PROBE), store, redis_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as probe:
        assert probe.stdin is not None and probe.stdout is not None
        try:
            port = json.loads(probe.stdout.readline())["port"]
            probe.stdin.write("start\n")
            probe.stdin.flush()
            seen = asyncio.run(_push(f"http://127.0.0.1:{port}", jobs, concurrency))
            probe.stdin.write("stop\n")
            probe.stdin.flush()
            lags = [float(lag) for lag in json.loads(probe.stdout.readline())["lags_ms"]]
            probe.wait(timeout=30)
        finally:
            if probe.poll() is None:
                probe.kill()
    wall = seen["wall"][0]
    return {
        "tree": str(tree),
        "store": store,
        "jobs": jobs,
        "completed": len(seen["job"]),
        "errors": len(seen["errors"]),
        "jobs_per_s": round(len(seen["job"]) / wall, 1),
        "job_p50_ms": _ms(seen["job"], 50),
        "job_p99_ms": _ms(seen["job"], 99),
        "submit_p50_ms": _ms(seen["submit"], 50),
        "submit_p99_ms": _ms(seen["submit"], 99),
        "read_p50_ms": _ms(seen["read"], 50),
        "read_p99_ms": _ms(seen["read"], 99),
        "lag_samples": len(lags),
        "lag_p50_ms": round(percentile(lags, 50), 3),
        "lag_p99_ms": round(percentile(lags, 99), 3),
        "lag_max_ms": round(max(lags, default=0.0), 3),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.redis_blocking", description=__doc__
    )
    add_common_args(parser)
    parser.add_argument("--jobs", type=int, default=None, help="jobs (default 1000; quick 200)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[8, 32], help="concurrent clients (runs)"
    )
    parser.add_argument("--redis-url", default=None, help="an empty redis:// database")
    parser.add_argument(
        "--before", type=Path, default=None, help="a checkout of the code before the change"
    )
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 1000)
    trees = {"after": HERE}
    if args.before is not None:
        trees = {"before": args.before.resolve(), **trees}
    cells: dict[str, dict[str, Any]] = {}
    with _redis(args.redis_url) as url:
        import redis

        flusher = redis.Redis.from_url(url)  # the benchmark's own, not the server's
        try:
            for clients in args.concurrency:
                for label, tree in trees.items():
                    for store in ("memory", "redis"):
                        flusher.flushdb()
                        cell = run_one(tree, store, url, jobs, clients)
                        cells[f"{label}/{store}/c{clients}"] = dict(cell, concurrency=clients)
        finally:
            flusher.close()
    headers = [
        "code/store/clients", "jobs/s", "job p50", "job p99", "submit p50", "submit p99",
        "read p50", "read p99", "lag p50", "lag p99", "lag max",
    ]  # fmt: skip
    keys = ["jobs_per_s", "job_p50_ms", "job_p99_ms", "submit_p50_ms", "submit_p99_ms"]
    keys += ["read_p50_ms", "read_p99_ms", "lag_p50_ms", "lag_p99_ms", "lag_max_ms"]
    rows = [[name, *(cell[k] for k in keys)] for name, cell in cells.items()]
    load = [round(x, 2) for x in os.getloadavg()]
    title = f"redis_blocking: {jobs} echo jobs, one instance (ms; load {load[0]} at the end)"
    table = print_table(title, headers, rows)
    config = {
        "jobs": jobs,
        "concurrency": args.concurrency,
        "load_average_at_end": load,
        "trees": {k: str(v) for k, v in trees.items()},
    }
    data: dict[str, Any] = {"config": config, "cells": cells, "table": table}
    write_result(NAME, data, args.results_dir)
    return data


if __name__ == "__main__":
    main()
