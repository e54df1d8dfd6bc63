"""Scaling: ``asyncio.gather`` over ``client.run(...)`` exactly as a user writes it.

One ``AsyncClient`` with the SDK's defaults (its own httpx client, no ``http_client``, no
semaphore of the user's), ``N`` tasks started together, each ``await client.run("/jobs",
json=<sleep 0.2 s>)`` (wait mode ``"auto"``: event streams up to ``max_streams``, polling
beyond). The SDK's admission control alone bounds the requests in flight.

Each size runs in a fresh child process (so its peak RSS is its own), twice: once for wall
time, client CPU (``time.process_time()``) and errors, then under ``tracemalloc`` for the
peak traced memory per operation. Sizes below 1,000 are traced a third time on a client that
has just run the same gather (its connections open): at those sizes every operation is in
flight at once and a cold client opens a connection for each, so the cold figure holds the
client's connections (a fixed cost, at most ``max_in_flight + max_streams`` of them) as well
as the operations'; both are reported, and the target applies to the cold one. Before the
measurement, a warm-up of 60 runs on a client of its own loads what httpx and the SDK import
on first use (about 1.2 MB, 12 KB per operation at N = 100); the measured client starts with
no connection (but for the warm figure). Sizes below 1,000 last well under
a second, so they run three times and the run with the median CPU per operation is
reported. The reference server runs in its own process.

The floor, beside the SDK's figure (``raw httpx KB/op``, traced the same way in a child of
its own right after the SDK's, same size, same server): plain ``httpx.AsyncClient()`` with
httpx's defaults, ``N`` tasks each sending what ``run()`` sends for such a job: its
``POST`` with an ``Idempotency-Key``, held (``Prefer: wait=10``) for as many at once as the
SDK holds (its ``max_streams``), polls of the status after each ``Retry-After`` for the
others, and the ``GET`` of the 303's ``Location``. It is what this transport costs for the
same requests in flight at once, without the SDK. Sizes below 1,000 only (every operation
in flight at once): without the SDK's admission control every request goes to httpx's pool
at once, whose passes over its queue make larger sizes quadratic.

``--attribute N``: one traced gather of ``N`` (no child process) sampled every few
milliseconds; at the sample with the most memory traced, the allocations made since the
gather started, grouped by the innermost frame of a library (25 frames), largest first.

Targets (issues 11 and 21, printed beside the figures, never asserted): client CPU per
operation flat within 1.5x from the smallest to the largest size, no errors, at most 20 KB
per operation at every size, and 10,000 operations at 250 operations per second or more.

Run: ``python -m benchmarks.scaling [--quick] [--sizes 100,1000,...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import httpx

from asyncreply_client import AsyncClient

from ._harness import (
    KindCounter,
    add_common_args,
    max_rss_kib,
    print_table,
    raise_fd_limit,
    server_url,
    write_result,
)

__all__ = ["attribute", "main", "measure", "run"]

NAME = "scaling"
JOB_SECONDS = 0.2
DEFAULT_SIZES = (100, 1_000, 3_000, 10_000, 30_000)
QUICK_SIZES = (50, 200)
TARGET_CPU_SPREAD = 1.5
TARGET_KB_PER_OP = 20.0
TARGET_OPS_PER_S = 250.0
TARGET_OPS_AT = 10_000
_REPO = Path(__file__).resolve().parent.parent
#: Runs before the measurement, on another client (see ``_warm_up``).
_WARM_UP = 60
#: Sizes below ``_SMALL`` are run ``_SMALL_REPEATS`` times (the median run is reported).
_SMALL = 1_000
_SMALL_REPEATS = 3


#: How many submissions a default ``AsyncClient`` has held at once (``max_streams``).
_HELD = int(inspect.signature(AsyncClient).parameters["max_streams"].default)


async def _raw_run(http: httpx.AsyncClient, job: dict[str, Any], *, held: bool) -> Any:
    """What ``run()`` sends for one job, by plain httpx: the ``POST`` (held with ``Prefer:
    wait=10`` as long as the client has stream slots, ``held``), polls of the status after
    each ``Retry-After`` while the job runs, then the ``GET`` of the 303's ``Location``."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if held:
        headers["Prefer"] = "wait=10"
    response = await http.post("/jobs", json=job, headers=headers)
    status_url = response.headers.get("location")
    while response.status_code == 202:
        delay = response.headers.get("retry-after-ms")
        await asyncio.sleep(int(delay) / 1000 if delay else 0.05)
        response = await http.get(status_url)
    if response.status_code == 303:
        response = await http.get(response.headers["location"])
    response.raise_for_status()
    return response.json()


async def _warm_up(base_url: str, job_seconds: float, runs: int = _WARM_UP) -> None:
    """A few runs on a client of their own (and as many by plain httpx), so that the modules
    httpx and the SDK import on first use are loaded before the measurement (the measured
    client starts cold, with no connection)."""
    job = {"type": "sleep", "input": {"seconds": job_seconds}}
    async with AsyncClient(base_url) as client:
        await asyncio.gather(*(client.run("/jobs", json=job, timeout=60) for _ in range(runs)))
    async with httpx.AsyncClient(base_url=base_url) as http:
        await asyncio.gather(*(_raw_run(http, job, held=i < _HELD) for i in range(runs)))


async def _gather(
    base_url: str,
    operations: int,
    job_seconds: float,
    traced: bool,
    warm: bool = False,
    *,
    raw: bool = False,
    warm_up: int = _WARM_UP,
) -> dict[str, Any]:
    await _warm_up(base_url, job_seconds, warm_up)
    # By kind only: a counter keyed by path would hold two or three keys per job, the
    # benchmark's own memory, inside the measured peak.
    counter = KindCounter()
    job = {"type": "sleep", "input": {"seconds": job_seconds}}
    client: AsyncClient | httpx.AsyncClient
    if raw:  # the floor: plain httpx, its defaults, the same requests
        client = http = httpx.AsyncClient(base_url=base_url)
        started = iter(range(1 << 62))

        def one() -> Awaitable[Any]:
            # Held as the SDK holds them: the first ``max_streams`` at once (all end together).
            return _raw_run(http, job, held=next(started) % operations < _HELD)
    else:
        client = sdk = AsyncClient(base_url)
        http = sdk._http

        def one() -> Awaitable[Any]:
            return sdk.run("/jobs", json=job, timeout=600)

    async with client:
        if warm:
            # The same gather once before, untraced: the client's connections are open (and
            # its caches filled) when the measurement starts, as in a long-lived client.
            await asyncio.gather(*(one() for _ in range(operations)))
        # Counting only: the httpx client, observed through its event hooks.
        http.event_hooks["request"].append(counter.async_hook)
        gc.collect()
        if traced:
            tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0] if traced else 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes = await asyncio.gather(*(one() for _ in range(operations)), return_exceptions=True)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        peak = 0.0
        if traced:
            peak = (tracemalloc.get_traced_memory()[1] - baseline) / operations
            tracemalloc.stop()
    expected = {"slept": job_seconds}
    errors = Counter(
        type(o).__name__ if isinstance(o, BaseException) else "WrongResult"
        for o in outcomes
        if o != expected
    )
    first = next((repr(o) for o in outcomes if o != expected), None)
    return {
        "wall_s": wall,
        "ops_per_s": operations / wall,
        "cpu_ms_per_op": cpu / operations * 1000.0,
        "errors": dict(errors),
        "first_error": first,
        "peak_traced_kb_per_op": peak / 1024,
        "requests_per_op": counter.total() / operations,
        "requests_by_kind_per_op": {k: n / operations for k, n in counter.by_kind().items()},
    }


def measure(
    base_url: str,
    operations: int,
    job_seconds: float,
    *,
    traced: bool,
    warm: bool = False,
    raw: bool = False,
    warm_up: int = _WARM_UP,
) -> dict[str, Any]:
    """One gather of ``operations`` runs in this process; its figures (and peak RSS).
    ``warm``: on a client that ran the same gather just before (its connections open);
    ``raw``: plain httpx sending the same requests (the floor); ``warm_up``: runs before."""
    raise_fd_limit(4096)
    figures = asyncio.run(
        _gather(base_url, operations, job_seconds, traced, warm, raw=raw, warm_up=warm_up)
    )
    figures["peak_rss_mib"] = max_rss_kib() / 1024
    return figures


def _child(
    base_url: str,
    operations: int,
    job_seconds: float,
    traced: bool,
    warm: bool = False,
    *,
    raw: bool = False,
    warm_up: int = _WARM_UP,
) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter and return its figures."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.scaling",
        "--child",
        str(operations),
        "--server-url",
        base_url,
        "--job-seconds",
        str(job_seconds),
        "--warm-up",
        str(warm_up),
    ]
    if raw:
        cmd.append("--raw")
    if traced:
        cmd.append("--traced")
    if warm:
        cmd.append("--warm")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=_REPO, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child for N={operations} failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run(
    *,
    sizes: Sequence[int],
    job_seconds: float = JOB_SECONDS,
    traced_up_to: int = TARGET_OPS_AT,
    results_dir: Path | None = None,
    url: str | None = None,
    small_repeats: int = _SMALL_REPEATS,
    warm_up: int = _WARM_UP,
) -> dict[str, Any]:
    """Run every size (one under 1,000 ``small_repeats`` times, the median run kept); print
    the table, write the JSON and return it."""
    load = os.getloadavg()
    results: list[dict[str, Any]] = []
    with server_url(url, "--workers", "1024") as base_url:
        for n in sizes:

            def child(
                traced: bool, warm: bool = False, raw: bool = False, n: int = n
            ) -> dict[str, Any]:
                return _child(base_url, n, job_seconds, traced, warm, raw=raw, warm_up=warm_up)

            # A small size takes well under a second: its CPU per operation is the median
            # of a few runs, not one sample of a noisy machine.
            repeats = [child(False) for _ in range(small_repeats if n < _SMALL else 1)]
            plain = sorted(repeats, key=lambda r: r["cpu_ms_per_op"])[len(repeats) // 2]
            plain["cpu_ms_per_op_runs"] = [r["cpu_ms_per_op"] for r in repeats]
            traced = child(True) if n <= traced_up_to else None
            # The floor, right after: plain httpx sending the same requests, traced alike
            # (below 1,000: beyond, httpx's pool, which would queue every request at once,
            # is quadratic, the reason for the SDK's admission control).
            floor = child(True, raw=True) if n < _SMALL and n <= traced_up_to else None
            # Below 1,000 every operation is in flight at once and the cold client opens a
            # connection for each: the same gather on a client whose connections are open
            # shows the operations' own share (both figures are reported).
            warm = child(True, warm=True) if n < _SMALL and n <= traced_up_to else None
            results.append(
                {
                    "operations": n,
                    "run": plain,
                    "traced_run": traced,
                    "raw_httpx_traced_run": floor,
                    "warm_traced_run": warm,
                }
            )
            print(
                f"N={n}: {plain['wall_s']:.2f} s, {plain['ops_per_s']:.0f} ops/s, "
                f"{plain['cpu_ms_per_op']:.2f} ms CPU/op, errors {plain['errors']}",
                flush=True,
            )
    rows: list[list[Any]] = []
    for item in results:
        plain, traced, warm = item["run"], item["traced_run"], item["warm_traced_run"]
        floor = item["raw_httpx_traced_run"]
        rows.append(
            [
                item["operations"],
                plain["wall_s"],
                plain["ops_per_s"],
                plain["cpu_ms_per_op"],
                plain["peak_rss_mib"],
                _kb(traced),
                _kb(floor),
                _kb(warm),
                # The floor's errors are its own (plain httpx), not the SDK's.
                sum(plain["errors"].values())
                + sum(sum(r["errors"].values()) for r in (traced, warm) if r is not None),
            ]
        )
    title = (
        f"scaling: one AsyncClient (SDK defaults), gather over run() of {job_seconds} s jobs, "
        f"no user semaphore (load average at start {load[0]:.1f})"
    )
    headers = [
        "N",
        "wall s",
        f"ops/s (>={TARGET_OPS_PER_S:g} at {TARGET_OPS_AT:,})",
        f"CPU ms/op (flat {TARGET_CPU_SPREAD:g}x)",
        "peak RSS MiB",
        f"peak KB/op (<={TARGET_KB_PER_OP:g})",
        "raw httpx KB/op (floor)",
        "warm client KB/op",
        "errors (0)",
    ]
    table = print_table(title, headers, rows)
    cpu = [item["run"]["cpu_ms_per_op"] for item in results]
    spread = max(cpu) / min(cpu) if cpu and min(cpu) > 0 else float("nan")
    errors = sum(row[-1] for row in rows)
    kb = [r[5] for r in rows if r[5] == r[5]]
    at_target = next((i["run"] for i in results if i["operations"] == TARGET_OPS_AT), None)
    verdicts = {
        "cpu_per_op_spread": spread,
        "cpu_flat": spread <= TARGET_CPU_SPREAD,
        "no_errors": errors == 0,
        "memory_met": bool(kb) and max(kb) <= TARGET_KB_PER_OP,
        # Below 1,000 every operation is in flight at once, on a connection being opened.
        "max_kb_per_op_from_1000": max(
            (r[5] for r in rows if r[0] >= _SMALL and r[5] == r[5]), default=None
        ),
        # Plain httpx sending the same requests, traced alike (the transport's floor).
        "max_raw_httpx_kb_per_op": max((r[6] for r in rows if r[6] == r[6]), default=None),
        # The same sizes on a client whose connections were open already (below 1,000).
        "max_warm_kb_per_op": max((r[7] for r in rows if r[7] == r[7]), default=None),
        "ops_per_s_at_10000": None if at_target is None else at_target["ops_per_s"],
        "throughput_met": None if at_target is None else at_target["ops_per_s"] >= TARGET_OPS_PER_S,
    }
    print(
        f"CPU/op spread {spread:.2f}x (target <= {TARGET_CPU_SPREAD}), errors {errors}, "
        f"max {max(kb, default=float('nan')):.1f} KB/op (target <= {TARGET_KB_PER_OP}), "
        f"ops/s at {TARGET_OPS_AT}: {verdicts['ops_per_s_at_10000']} (target >= {TARGET_OPS_PER_S})"
    )
    data = {
        "config": {"sizes": list(sizes), "job_seconds": job_seconds, "mode": "auto"},
        "load_average_at_start": list(load),
        "sizes": results,
        "verdicts": verdicts,
        "table": table,
    }
    write_result(NAME, data, results_dir)
    return data


def _library(filename: str) -> str | None:
    """The package a frame's file belongs to (``None``: the standard library)."""
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    try:
        return path.relative_to(_REPO).parts[0].removesuffix(".py")
    except ValueError:
        return None


async def _attribute(
    base_url: str, operations: int, job_seconds: float, warm_up: int
) -> dict[str, Any]:
    await _warm_up(base_url, job_seconds, warm_up)
    job = {"type": "sleep", "input": {"seconds": job_seconds}}
    best: list[Any] = [0, None]

    async def sample() -> None:
        while True:
            current = tracemalloc.get_traced_memory()[0]
            if current > best[0]:
                best[:] = [current, tracemalloc.take_snapshot()]
            await asyncio.sleep(0.002)

    async with AsyncClient(base_url) as client:
        gc.collect()
        tracemalloc.start(25)
        before, baseline = tracemalloc.take_snapshot(), tracemalloc.get_traced_memory()[0]
        sampler = asyncio.ensure_future(sample())
        await asyncio.gather(
            *(client.run("/jobs", json=job, timeout=600) for _ in range(operations))
        )
        sampler.cancel()
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
    # This module's frames count only in this coroutine (the gather, the sampler): those of
    # ``main`` and ``attribute`` are below every allocation, among them the event loop's
    # callbacks (transports' reads, futures' callbacks), which have no library frame.
    own = {line for _, _, line in _attribute.__code__.co_lines() if line is not None}
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = best[1].filter_traces(ignore).compare_to(before.filter_traces(ignore), "traceback")
    groups: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for stat in diff:
        frames = list(stat.traceback)  # oldest first
        found = next(
            (
                (f, lib)
                for f in reversed(frames)
                if (lib := _library(f.filename)) and (f.filename != __file__ or f.lineno in own)
            ),
            None,
        )
        inner = frames[-1]
        site = f"{Path(inner.filename).name}:{inner.lineno}"
        if found is None:
            groups["stdlib"] += stat.size_diff
            lines[f"stdlib {site}"] += stat.size_diff
            continue
        frame, owner = found
        groups[owner] += stat.size_diff
        where = f"{owner} {Path(frame.filename).name}:{frame.lineno}"
        lines[where if frame is inner else f"{where} -> {site}"] += stat.size_diff
    per_op = 1024 * operations
    return {
        "operations": operations,
        "peak_traced_kb_per_op": peak / per_op,
        "sampled_kb_per_op": (best[0] - baseline) / per_op,
        "by_library_kb_per_op": {k: v / per_op for k, v in groups.most_common() if v > 0},
        "top_lines_kb_per_op": {k: v / per_op for k, v in lines.most_common(40) if v > 0},
    }


def attribute(
    *,
    operations: int,
    job_seconds: float = JOB_SECONDS,
    url: str | None = None,
    warm_up: int = _WARM_UP,
    results_dir: Path | None = None,
) -> dict[str, Any]:
    """What the peak of one gather of ``operations`` holds (see the module docstring):
    printed, written to ``scaling_attribution.json`` and returned."""
    raise_fd_limit(4096)
    with server_url(url, "--workers", "1024") as base_url:
        data = asyncio.run(_attribute(base_url, operations, job_seconds, warm_up))
    print(
        f"N={operations}: peak {data['peak_traced_kb_per_op']:.1f} KB/op, the sample kept "
        f"{data['sampled_kb_per_op']:.1f} KB/op; by the innermost library frame:"
    )
    for name, kb in data["by_library_kb_per_op"].items():
        print(f"  {kb:6.2f} KB/op  {name}")
    print("largest allocation sites (innermost library frame -> innermost frame):")
    for name, kb in data["top_lines_kb_per_op"].items():
        print(f"  {kb:6.2f} KB/op  {name}")
    write_result("scaling_attribution", data, results_dir)
    return data


def _kb(figures: dict[str, Any] | None) -> float:
    return float("nan") if figures is None else float(figures["peak_traced_kb_per_op"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written (a child prints its figures)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    add_common_args(parser)
    parser.add_argument(
        "--sizes",
        default=None,
        help=f"comma-separated N (default {','.join(map(str, DEFAULT_SIZES))}; quick "
        f"{','.join(map(str, QUICK_SIZES))})",
    )
    parser.add_argument("--job-seconds", type=float, default=JOB_SECONDS, help="job duration")
    parser.add_argument(
        "--traced-up-to", type=int, default=TARGET_OPS_AT, help="largest N also run traced"
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=_WARM_UP,
        help=f"runs on another client before each measurement (default {_WARM_UP})",
    )
    parser.add_argument(
        "--attribute",
        type=int,
        default=None,
        metavar="N",
        help="print what the peak of a gather of N holds, grouped by library frame",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        figures = measure(
            args.server_url,
            args.child,
            args.job_seconds,
            traced=args.traced,
            warm=args.warm,
            raw=args.raw,
            warm_up=args.warm_up,
        )
        print(json.dumps(figures), flush=True)
        return figures
    if args.attribute is not None:
        return attribute(
            operations=args.attribute,
            job_seconds=args.job_seconds,
            url=args.server_url,
            warm_up=args.warm_up,
            results_dir=args.results_dir,
        )
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    else:
        sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    return run(
        sizes=sizes,
        job_seconds=args.job_seconds,
        traced_up_to=args.traced_up_to,
        results_dir=args.results_dir,
        url=args.server_url,
        small_repeats=1 if args.quick else _SMALL_REPEATS,
        warm_up=args.warm_up,
    )


if __name__ == "__main__":
    main()
