"""How long redis-py's *blocking* client holds the reference server's event loop (issue 18.1).

The store protocol is synchronous (as SQLite's is), so the Redis store calls Redis with
redis-py's blocking client from the event loop: while a call waits for Redis, the loop serves
nothing else. This benchmark runs one server in-process (on its own thread and loop), times
every blocking Redis call made on that loop, and pushes ``N`` ``echo`` jobs through it with
``C`` concurrent clients (submit, long poll, result, a status read), then reports:

- per request: the time its handler spent blocked in Redis calls (p50, p99, max);
- outside requests (job runs, commits of workers, sweeps): the total blocked time;
- the loop's lag: how late a 2 ms timer on the server's loop fires (p50, p99, max),
  on Redis and, as the baseline, on the memory store.

Nothing is asserted. Run: ``python -m benchmarks.redis_blocking [--jobs 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from ._harness import add_common_args, percentile, print_table, write_result
from .scale_out import _redis, measure

__all__ = ["main", "run_one"]

NAME = "redis_blocking"

_in_request: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "in_request", default=None
)


class _Timings:
    """Blocking Redis time on the server's thread, per request and outside requests."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self.per_request: list[float] = []
        self.background = 0.0
        self.calls = 0

    def record(self, seconds: float) -> None:
        if threading.get_ident() != self.thread:
            return
        self.calls += 1
        spent = _in_request.get()
        if spent is not None:
            spent.append(seconds)
        else:
            self.background += seconds


def _instrument(timings: _Timings) -> Callable[[], None]:
    """Time every blocking call (commands, scripts, pipelines); return the undo."""
    import redis.client

    originals = (redis.client.Redis.execute_command, redis.client.Pipeline.execute)

    def timed(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(self, redis.client.Pipeline) and original is originals[0]:
                return original(self, *args, **kwargs)  # queued, not sent
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                timings.record(time.perf_counter() - started)

        return call

    redis.client.Redis.execute_command = timed(originals[0])  # type: ignore[method-assign]
    redis.client.Pipeline.execute = timed(originals[1])  # type: ignore[method-assign]

    def undo() -> None:
        redis.client.Redis.execute_command = originals[0]  # type: ignore[method-assign]
        redis.client.Pipeline.execute = originals[1]  # type: ignore[method-assign]

    return undo


_TIMINGS = web.AppKey("timings", _Timings)


@web.middleware
async def _per_request(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    spent: list[float] = []
    token = _in_request.set(spent)
    try:
        return await handler(request)
    finally:
        _in_request.reset(token)
        request.app[_TIMINGS].per_request.append(sum(spent))


def run_one(store: str, redis_url: str, jobs: int, concurrency: int) -> dict[str, Any]:
    """Serve ``store`` (``memory`` or ``redis``) in a thread; push the jobs; measure."""
    from reference_server import ServerConfig, create_app

    timings = _Timings()
    lags: list[float] = []
    ready = threading.Event()
    stop: list[Callable[[], None]] = []
    port: list[int] = []

    async def serve() -> None:
        config = ServerConfig(store=store, redis_url=redis_url, workers=16, retry_after_min=0.01)
        app = create_app(config)
        app[_TIMINGS] = timings
        app.middlewares.append(_per_request)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port.append(runner.addresses[0][1])
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        timings.thread = threading.get_ident()
        ready.set()
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append(time.perf_counter() - started - 0.002)
        await runner.cleanup()

    undo = _instrument(timings)
    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the in-process server did not start")
        lags.clear()
        cell = asyncio.run(measure(f"http://127.0.0.1:{port[0]}", jobs, concurrency))
    finally:
        if stop:
            stop[0]()
        thread.join(30)
        undo()
    ms = [s * 1000 for s in timings.per_request]
    lag_ms = [s * 1000 for s in lags]
    requests = len(ms) or 1
    cell.update(
        requests=len(ms),
        redis_calls=timings.calls,
        block_per_request_ms=round(sum(ms) / requests, 3),
        block_p50_ms=round(percentile(ms, 50), 3),
        block_p99_ms=round(percentile(ms, 99), 3),
        block_max_ms=round(max(ms, default=0.0), 3),
        background_block_ms=round(timings.background * 1000, 1),
        lag_p50_ms=round(percentile(lag_ms, 50), 3),
        lag_p99_ms=round(percentile(lag_ms, 99), 3),
        lag_max_ms=round(max(lag_ms, default=0.0), 3),
    )
    return cell


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.redis_blocking", description=__doc__
    )
    add_common_args(parser)
    parser.add_argument("--jobs", type=int, default=None, help="jobs (default 1000; quick 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--redis-url", default=None, help="an empty redis:// database")
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 1000)
    cells: dict[str, dict[str, Any]] = {}
    with _redis(args.redis_url) as url:
        for store in ("memory", "redis"):
            if store == "redis":
                import redis

                redis.Redis.from_url(url).flushdb()
            cells[store] = run_one(store, url, jobs, args.concurrency)
    headers = [
        "store", "jobs/s", "p99 job ms", "req", "redis calls", "block/req ms", "block p99 ms",
        "block max ms", "bg block ms", "lag p50 ms", "lag p99 ms", "lag max ms",
    ]  # fmt: skip
    keys = ["jobs_per_s", "p99_ms", "requests", "redis_calls", "block_per_request_ms"]
    keys += ["block_p99_ms", "block_max_ms", "background_block_ms", "lag_p50_ms"]
    keys += ["lag_p99_ms", "lag_max_ms"]
    rows = [[name, *(cell[k] for k in keys)] for name, cell in cells.items()]
    title = f"redis_blocking: {jobs} echo jobs, {args.concurrency} clients, one instance"
    table = print_table(title, headers, rows)
    data = {"config": {"jobs": jobs, "concurrency": args.concurrency}, "cells": cells}
    data["table"] = table
    write_result(NAME, data, args.results_dir)
    return data


if __name__ == "__main__":
    main()
