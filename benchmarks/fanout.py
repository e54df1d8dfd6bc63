"""Fan-out: one ``AsyncClient`` submitting and awaiting many operations at once.

Every operation is a task that submits a short ``sleep`` job and awaits its result
(``op.result()``, polling with the default :class:`Adaptive` policy; the SSE fan-out is
``benchmarks.sse_fanout``). All tasks start together on one event loop; the reference server
runs in its own process with a large worker pool. The operations are not throttled, but the
HTTP requests in flight are: the httpx client's transport is a ``BoundedTransport`` (see
``_harness``) that holds at most ``--connections`` requests (default 32, all kept alive) in
the connection pool and queues the others on a semaphore, because httpcore's pool is
quadratic in its queue; the pool timeout is off, so a queued request waits for a
connection instead of failing. (More connections do not help on a 2-core machine: the
server and the client already share the CPUs.)

The run is done twice with the same size: first for wall time, client CPU
(``time.process_time()``) and requests; then under ``tracemalloc`` (which slows Python
down) for memory: the traced peak during the run, above the baseline taken after the client
was created, divided by the number of operations ("peak memory per tracked operation";
target under 20 KB), and what the finished ``AsyncOperation`` objects still hold.

Run: ``python -m benchmarks.fanout [--quick]`` (10,000 operations; quick: 500).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from asyncreply_client import AsyncClient, AsyncOperation

from ._harness import (
    BoundedTransport,
    PathCounter,
    add_common_args,
    fanout_figures,
    max_rss_kib,
    print_table,
    raise_fd_limit,
    server_url,
    write_result,
)

__all__ = ["main", "run", "run_async"]

NAME = "fanout"
TARGET_BYTES_PER_OP = 20 * 1024
JOB_SECONDS = 0.2


async def _one(client: AsyncClient, seconds: float, timeout: float) -> AsyncOperation[Any]:
    op = await client.submit("/jobs", json={"type": "sleep", "input": {"seconds": seconds}})
    result = await op.result(mode="poll", timeout=timeout)
    if result != {"slept": seconds}:
        raise RuntimeError(f"unexpected result {result!r}")
    return op


async def run_async(
    base_url: str,
    *,
    operations: int,
    connections: int,
    traced: bool,
    timeout: float,
    job_seconds: float = JOB_SECONDS,
) -> dict[str, Any]:
    """One fan-out of ``operations`` on the server at ``base_url``; the figures of it."""
    counter = PathCounter()
    transport = BoundedTransport(connections, keepalive=connections)
    http = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(60.0, pool=None),
        event_hooks={"request": [counter.async_hook]},
    )
    async with http, AsyncClient(base_url, http_client=http) as client:
        gc.collect()
        if traced:
            tracemalloc.start()
            tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0] if traced else 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        tasks = [_one(client, job_seconds, timeout) for _ in range(operations)]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        figures: dict[str, Any] = {}
        if traced:
            current, peak = tracemalloc.get_traced_memory()
            del tasks
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            figures = {
                "peak_bytes_per_op": (peak - baseline) / operations,
                "retained_bytes_per_finished_op": (retained - baseline) / operations,
                "traced_end_bytes_per_op": (current - baseline) / operations,
            }
    return {
        "operations": operations,
        "completed": sum(1 for o in outcomes if isinstance(o, AsyncOperation)),
        "wall_s": wall,
        "ops_per_s": operations / wall,
        **fanout_figures(
            outcomes, operations=operations, cpu=cpu, transport=transport, counter=counter
        ),
        **figures,
    }


def run(
    *,
    operations: int,
    connections: int,
    job_seconds: float = JOB_SECONDS,
    results_dir: Path | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark; print the table, write the JSON and return it."""
    raise_fd_limit(connections * 2 + 1024)
    timeout = 600.0
    with server_url(url, "--workers", "1024") as base_url:
        plain, traced = (
            asyncio.run(
                run_async(
                    base_url,
                    operations=operations,
                    connections=connections,
                    traced=traced_run,
                    timeout=timeout,
                    job_seconds=job_seconds,
                )
            )
            for traced_run in (False, True)
        )
    rss = max_rss_kib()
    all_ok = plain["completed"] == operations and traced["completed"] == operations
    rows: list[list[Any]] = [
        ["operations", operations],
        ["completed / errors", f"{plain['completed']} / {sum(plain['errors'].values())}"],
        ["wall time (s)", plain["wall_s"]],
        ["operations per second", plain["ops_per_s"]],
        ["requests per operation", plain["requests_per_op"]],
        ["client CPU per operation (ms)", plain["cpu_ms_per_op"]],
        ["peak traced memory per op (KB)", traced["peak_bytes_per_op"] / 1024],
        ["retained per finished op (KB)", traced["retained_bytes_per_finished_op"] / 1024],
        ["traced run: completed / wall (s)", f"{traced['completed']} / {traced['wall_s']:.2f}"],
        ["client max RSS (MiB)", rss / 1024],
    ]
    title = (
        f"fan-out: one AsyncClient, {operations} concurrent submit+result "
        f"(sleep {job_seconds} s, mode=poll, {connections} connections)"
    )
    table = print_table(title, ["measure", "value"], rows)
    per_op = traced["peak_bytes_per_op"]
    verdict = "met" if per_op < TARGET_BYTES_PER_OP else "MISSED"
    print(f"all completed without error: {all_ok}; memory target < 20 KB per op: {verdict}")
    if not all_ok:
        print(f"errors: {plain['errors']} {traced['errors']}; first: {plain['first_error']}")
    data = {
        "config": {
            "operations": operations,
            "connections": connections,
            "job_seconds": job_seconds,
            "mode": "poll",
        },
        "run": plain,
        "traced_run": traced,
        "client_max_rss_kib": rss,
        "all_completed": all_ok,
        "target_bytes_per_op": TARGET_BYTES_PER_OP,
        "memory_target_met": per_op < TARGET_BYTES_PER_OP,
        "table": table,
    }
    write_result(NAME, data, results_dir)
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--operations", type=int, default=None, help="default 10000; quick 500")
    parser.add_argument(
        "--connections", type=int, default=32, help="requests in flight (connections)"
    )
    parser.add_argument("--job-seconds", type=float, default=JOB_SECONDS, help="job duration")
    args = parser.parse_args(argv)
    operations = args.operations or (500 if args.quick else 10_000)
    return run(
        operations=operations,
        connections=args.connections,
        job_seconds=args.job_seconds,
        results_dir=args.results_dir,
        url=args.server_url,
    )


if __name__ == "__main__":
    main()
