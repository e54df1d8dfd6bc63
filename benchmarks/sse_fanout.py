"""SSE fan-out: one ``AsyncClient`` waiting on many operations over Server-Sent Events.

All jobs are submitted first (``sleep`` jobs long enough to outlast the submissions), then
one task per operation calls ``op.wait(mode="sse")`` and all of them are awaited together,
so every event stream is open at once: one connection per operation. The httpx client's
transport is ``BoundedTransport`` (see ``_harness``) with room for every stream.

Reported: wall time of the submissions and of the wait, client CPU, requests per operation
(one submission and one event stream each, ideally), and memory under ``tracemalloc``: the
traced peak of the wait phase per operation, in a second, traced run of the same size.

Run: ``python -m benchmarks.sse_fanout [--quick]`` (1,000 operations; quick: 200).
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

from asyncreply_client import AsyncClient, AsyncOperation, JobState, JobStatus

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

NAME = "sse_fanout"


async def _submit(client: AsyncClient, seconds: float) -> AsyncOperation[Any]:
    return await client.submit("/jobs", json={"type": "sleep", "input": {"seconds": seconds}})


async def run_async(
    base_url: str, *, operations: int, job_seconds: float, traced: bool
) -> dict[str, Any]:
    """One SSE fan-out of ``operations`` on the server at ``base_url``; its figures."""
    counter = PathCounter()
    transport = BoundedTransport(operations + 16)
    http = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(60.0, pool=None),
        event_hooks={"request": [counter.async_hook]},
    )
    async with http, AsyncClient(base_url, http_client=http) as client:
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        ops = await asyncio.gather(*(_submit(client, job_seconds) for _ in range(operations)))
        submitted = time.perf_counter()
        if traced:
            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0] if traced else 0
        waits = [op.wait(mode="sse", timeout=job_seconds + 120.0) for op in ops]
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        end = time.perf_counter()
        cpu = time.process_time() - cpu0
        figures: dict[str, Any] = {}
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            figures = {"peak_bytes_per_op": (peak - baseline) / operations}
    completed = sum(
        1 for o in outcomes if isinstance(o, JobStatus) and o.state is JobState.COMPLETED
    )
    return {
        "operations": operations,
        "completed": completed,
        "submit_wall_s": submitted - wall0,
        "wait_wall_s": end - submitted,
        "wall_s": end - wall0,
        **fanout_figures(
            outcomes, operations=operations, cpu=cpu, transport=transport, counter=counter
        ),
        **figures,
    }


def run(
    *,
    operations: int,
    job_seconds: float,
    results_dir: Path | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark; print the table, write the JSON and return it."""
    raise_fd_limit(operations * 2 + 1024)
    workers = str(min(max(operations, 1), 1024))
    with server_url(url, "--workers", workers) as base_url:
        plain, traced_run = (
            asyncio.run(
                run_async(
                    base_url,
                    operations=operations,
                    job_seconds=job_seconds,
                    traced=traced,
                )
            )
            for traced in (False, True)
        )
    rss = max_rss_kib()
    all_ok = plain["completed"] == operations and traced_run["completed"] == operations
    events = plain["requests_by_kind_per_op"].get("events", 0.0)
    rows: list[list[Any]] = [
        ["operations", operations],
        ["completed / errors", f"{plain['completed']} / {sum(plain['errors'].values())}"],
        ["submit phase wall (s)", plain["submit_wall_s"]],
        ["SSE wait phase wall (s)", plain["wait_wall_s"]],
        ["requests per operation", plain["requests_per_op"]],
        ["event streams per operation", events],
        ["most requests/streams open at once", plain["max_requests_in_flight"]],
        ["client CPU per operation (ms)", plain["cpu_ms_per_op"]],
        ["peak traced memory per op, wait (KB)", traced_run["peak_bytes_per_op"] / 1024],
        ["traced run: completed", traced_run["completed"]],
        ["client max RSS (MiB)", rss / 1024],
    ]
    title = (
        f"SSE fan-out: one AsyncClient, {operations} operations waited on at once "
        f"(sleep {job_seconds} s, mode=sse)"
    )
    table = print_table(title, ["measure", "value"], rows)
    print(f"all completed without error: {all_ok}")
    if not all_ok:
        print(f"errors: {plain['errors']} {traced_run['errors']}; first: {plain['first_error']}")
    data = {
        "config": {"operations": operations, "job_seconds": job_seconds, "mode": "sse"},
        "run": plain,
        "traced_run": traced_run,
        "client_max_rss_kib": rss,
        "all_completed": all_ok,
        "table": table,
    }
    write_result(NAME, data, results_dir)
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sse_fanout", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--operations", type=int, default=None, help="default 1000; quick 200")
    parser.add_argument(
        "--job-seconds", type=float, default=None, help="job duration (default 5; quick 3)"
    )
    args = parser.parse_args(argv)
    operations = args.operations or (200 if args.quick else 1000)
    job_seconds = args.job_seconds or (3.0 if args.quick else 5.0)
    return run(
        operations=operations,
        job_seconds=job_seconds,
        results_dir=args.results_dir,
        url=args.server_url,
    )


if __name__ == "__main__":
    main()
