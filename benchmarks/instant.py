"""Instant jobs: ``run()`` of a job that is done at once, against one raw httpx POST.

For each server style (``inline``: a finished job's status carries its result;
``redirect``: it answers 303 to the result) and each client (sync, async), rounds alternate
one raw ``POST /jobs`` (an ``echo`` job, answer read; what a bare HTTP call costs), one SDK
``run()`` of the same job and, with raw httpx, exactly the requests ``run()`` sends (the
held ``POST`` with ``Prefer: wait`` and an ``Idempotency-Key``, then the ``GET`` of a 303's
``Location``: the floor a client costing nothing would reach), on warm keep-alive
connections, the order rotated every round. A raw POST's job runs on the server after its
202 is answered: the benchmark waits for that job's end (untimed) before the next timed
call, so no call pays for the job of the raw POST before it. Reported per cell: median and
p90 wall time of each, the SDK/raw and floor/raw ratios of medians (measured side by side in
the same rounds) and the requests one ``run()`` made.

Targets (printed beside each figure, never asserted): ``run()`` at most 1.5x a raw POST on
the inline server (issue 11) and 2.1x on the redirect server (issue 21: two round trips, as a
raw POST then GET of the same requests).

Run: ``python -m benchmarks.instant [--quick] [--rounds N] [--modes auto,poll]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from asyncreply_client import AsyncClient, Client
from asyncreply_client._flow_state import WaitMode

from ._harness import (
    PathCounter,
    add_common_args,
    percentile,
    print_table,
    running_server,
    write_result,
)

__all__ = ["main", "run"]

NAME = "instant"
TARGETS = {"inline": 1.5, "redirect": 2.1}
JOB = {"type": "echo", "input": {"message": "hi"}}
_WARMUP = 5
_TERMINAL = {"completed", "failed", "cancelled"}
T = TypeVar("T")


#: What ``run()`` sends first: the submission, held.
HELD = {"Prefer": "wait=10"}


def _held_headers() -> dict[str, str]:
    return {**HELD, "Idempotency-Key": uuid.uuid4().hex}


def _cell(times: dict[str, list[float]], requests: int, runs: int) -> dict[str, Any]:
    raw, sdk, floor = times["raw"], times["sdk"], times["floor"]
    raw_p50, sdk_p50, floor_p50 = (statistics.median(t) for t in (raw, sdk, floor))
    return {
        "raw_ms_p50": raw_p50 * 1000,
        "raw_ms_p90": percentile(raw, 90) * 1000,
        "sdk_ms_p50": sdk_p50 * 1000,
        "sdk_ms_p90": percentile(sdk, 90) * 1000,
        "floor_ms_p50": floor_p50 * 1000,
        "ratio_p50": sdk_p50 / raw_p50,
        "floor_ratio_p50": floor_p50 / raw_p50,
        "requests_per_run": requests / runs,
    }


def _rotated(calls: list[T], r: int) -> list[T]:
    """The round's order: each call goes first in turn, and the order runs both ways."""
    turned = calls[r % len(calls) :] + calls[: r % len(calls)]
    return turned if (r // len(calls)) % 2 == 0 else turned[::-1]


def _sync_rounds(base_url: str, rounds: int, mode: WaitMode) -> dict[str, Any]:
    counter = PathCounter()
    with (
        httpx.Client(base_url=base_url) as raw,
        httpx.Client(event_hooks={"request": [counter.hook]}) as http,
        Client(base_url, http_client=http) as client,
    ):

        def post() -> object:
            response = raw.post("/jobs", json=JOB)
            response.raise_for_status()
            return response.json()

        def settle(answer: Any) -> None:
            status = answer
            while status.get("status") not in _TERMINAL:
                polled = raw.get(f"/jobs/{answer['jobId']}", params={"wait": "10"})
                status = {"status": "completed"} if polled.status_code == 303 else polled.json()

        def sdk() -> object:
            return client.run("/jobs", json=JOB, mode=mode, timeout=30)

        def floor() -> object:
            response = raw.post("/jobs", json=JOB, headers=_held_headers())
            if response.status_code == 303:
                response = raw.get(response.headers["location"])
            response.raise_for_status()
            return response.json()

        for _ in range(_WARMUP):
            post(), sdk(), floor()
        counter.counts.clear()
        times: dict[str, list[float]] = {"raw": [], "sdk": [], "floor": []}
        calls: list[tuple[str, Callable[[], object]]] = [
            ("raw", post),
            ("sdk", sdk),
            ("floor", floor),
        ]
        for r in range(rounds):
            for name, call in _rotated(calls, r):
                t0 = time.perf_counter()
                answer = call()
                times[name].append(time.perf_counter() - t0)
                if name == "raw":
                    settle(answer)
        return _cell(times, counter.total(), rounds)


async def _async_rounds(base_url: str, rounds: int, mode: WaitMode) -> dict[str, Any]:
    counter = PathCounter()
    async with (
        httpx.AsyncClient(base_url=base_url) as raw,
        httpx.AsyncClient(event_hooks={"request": [counter.async_hook]}) as http,
        AsyncClient(base_url, http_client=http) as client,
    ):

        async def post() -> object:
            response = await raw.post("/jobs", json=JOB)
            response.raise_for_status()
            return response.json()

        async def settle(answer: Any) -> None:
            status = answer
            while status.get("status") not in _TERMINAL:
                polled = await raw.get(f"/jobs/{answer['jobId']}", params={"wait": "10"})
                status = {"status": "completed"} if polled.status_code == 303 else polled.json()

        async def sdk() -> object:
            return await client.run("/jobs", json=JOB, mode=mode, timeout=30)

        async def floor() -> object:
            response = await raw.post("/jobs", json=JOB, headers=_held_headers())
            if response.status_code == 303:
                response = await raw.get(response.headers["location"])
            response.raise_for_status()
            return response.json()

        for _ in range(_WARMUP):
            await post()
            await sdk()
            await floor()
        counter.counts.clear()
        times: dict[str, list[float]] = {"raw": [], "sdk": [], "floor": []}
        calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("raw", post),
            ("sdk", sdk),
            ("floor", floor),
        ]
        for r in range(rounds):
            for name, call in _rotated(calls, r):
                t0 = time.perf_counter()
                answer = await call()
                times[name].append(time.perf_counter() - t0)
                if name == "raw":
                    await settle(answer)
        return _cell(times, counter.total(), rounds)


def run(
    *,
    rounds: int,
    modes: Sequence[WaitMode] = ("auto",),
    results_dir: Path | None = None,
) -> dict[str, Any]:
    """Run every cell; print the table, write the JSON and return it."""
    load = os.getloadavg()
    cells: list[dict[str, Any]] = []
    for style in ("inline", "redirect"):
        with running_server("--completion-style", style) as server:
            for mode in modes:
                for flavor in ("sync", "async"):
                    if flavor == "sync":
                        figures = _sync_rounds(server.base_url, rounds, mode)
                    else:
                        figures = asyncio.run(_async_rounds(server.base_url, rounds, mode))
                    cells.append({"server": style, "mode": mode, "client": flavor, **figures})
    rows = [
        [
            c["server"],
            c["mode"],
            c["client"],
            c["raw_ms_p50"],
            c["sdk_ms_p50"],
            c["sdk_ms_p90"],
            c["ratio_p50"],
            TARGETS[c["server"]],
            c["floor_ms_p50"],
            c["floor_ratio_p50"],
            c["requests_per_run"],
        ]
        for c in cells
    ]
    title = (
        f"instant: run() of an echo job vs one raw POST, {rounds} interleaved rounds "
        f"(load average at start {load[0]:.1f})"
    )
    headers = [
        "server",
        "mode",
        "client",
        "raw ms p50",
        "run() ms p50",
        "run() ms p90",
        "ratio",
        "target",
        "floor ms p50",
        "floor ratio",
        "requests/run",
    ]
    table = print_table(title, headers, rows)
    met = {
        f"{c['server']}/{c['mode']}/{c['client']}": c["ratio_p50"] <= TARGETS[c["server"]]
        for c in cells
    }
    print(f"targets met: {met}")
    data = {
        "config": {"rounds": rounds, "modes": list(modes), "job": JOB},
        "load_average_at_start": list(load),
        "cells": cells,
        "targets": TARGETS,
        "targets_met": met,
        "table": table,
    }
    write_result(NAME, data, results_dir)
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instant", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 300; quick 20)")
    parser.add_argument(
        "--modes", default="auto,poll", help="wait modes of run() (default auto,poll)"
    )
    args = parser.parse_args(argv)
    if args.server_url is not None:
        parser.error("instant starts its own inline and redirect servers; --server-url is unused")
    rounds = args.rounds or (20 if args.quick else 300)
    modes = tuple(m for m in args.modes.split(",") if m)
    return run(rounds=rounds, modes=modes, results_dir=args.results_dir)


if __name__ == "__main__":
    main()
