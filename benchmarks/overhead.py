"""Client overhead: CPU per status check, SDK ``op.refresh()`` against raw httpx.

One ``sleep`` job runs on the reference server (in its own process) for the whole benchmark;
both sides ask for its status over keep-alive connections to the same URL:

- ``raw httpx``: ``httpx.Client.get(status_url)`` then ``.json()``;
- ``SDK refresh``: ``Operation.refresh()`` on a sync :class:`asyncreply_client.Client`
  (builds the request, sends it, interprets the answer into a ``JobStatus``). The job's
  answer is the same from one check to the next (but for its ``Date``), so the dialect's
  status memo gives its snapshot without reading the document again, as it does for any
  poller of a job whose document has not changed;
- ``SDK refresh, read afresh``: the same on a client whose dialect is a subclass of the
  default one (a subclass does not use the memo): every answer read in full, as an answer
  whose document changed (progress) is. No target; printed beside, so the memo's share is
  visible.

The three run interleaved in blocks (rotating which goes first), and the client's CPU time
(``time.process_time()``) of each block is divided by its calls. Reported: CPU and wall time
per call (median over blocks) and the SDK/raw CPU ratio (median of per-block ratios, and the
ratio of the totals). Target (issue 21; printed beside the figure, never asserted): ratio at
most 1.10.

Run: ``python -m benchmarks.overhead [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from asyncreply_client import AutoDialect, Client, JobState

from ._harness import add_common_args, print_table, server_url, write_result

__all__ = ["main", "run"]

NAME = "overhead"
TARGET_RATIO = 1.10


class _Afresh(AutoDialect):
    """The default dialect without its status memo (not inherited by a subclass)."""


def _block(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """CPU and wall seconds per call over ``calls`` calls."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return (cpu1 - cpu0) / calls, (wall1 - wall0) / calls


def run(
    *, blocks: int, calls: int, results_dir: Path | None = None, url: str | None = None
) -> dict[str, Any]:
    """Run the benchmark; print the table, write the JSON and return it."""
    load = os.getloadavg()
    with (
        server_url(url) as base_url,
        Client(base_url) as client,
        Client(base_url, dialect=_Afresh()) as afresh_client,
        httpx.Client() as raw,
    ):
        op = client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 3600}})
        status_url = op.status_url
        assert status_url is not None

        afresh_op = afresh_client.operation(status_url)

        def sdk() -> object:
            return op.refresh()

        def afresh() -> object:
            return afresh_op.refresh()

        def plain() -> object:
            return raw.get(status_url).json()

        state = op.refresh().state
        if state not in (JobState.PENDING, JobState.PROCESSING):
            raise RuntimeError(f"the job should be running, it is {state}")
        # Warm both up: connections, caches, lazily imported code.
        _block(sdk, 50)
        _block(afresh, 50)
        _block(plain, 50)
        calls_by_name: list[tuple[str, Callable[[], object]]] = [
            ("sdk", sdk),
            ("raw", plain),
            ("afresh", afresh),
        ]
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in calls_by_name}
        for b in range(blocks):
            shift = b % len(calls_by_name)
            for name, call in calls_by_name[shift:] + calls_by_name[:shift]:
                samples[name].append(_block(call, calls))
        final = op.refresh().state
        op.cancel()
        if final is not JobState.PROCESSING:
            raise RuntimeError(f"the job stopped running during the benchmark: {final}")

    def per_block(name: str) -> list[float]:
        return [s[0] / r[0] for s, r in zip(samples[name], samples["raw"], strict=True) if r[0] > 0]

    ratios = per_block("sdk")
    total_ratio = sum(s[0] for s in samples["sdk"]) / sum(r[0] for r in samples["raw"])
    afresh_ratio = statistics.median(per_block("afresh"))

    def summary(name: str) -> dict[str, float]:
        cpu = [c for c, _ in samples[name]]
        wall = [w for _, w in samples[name]]
        return {
            "cpu_us_median": statistics.median(cpu) * 1e6,
            "cpu_us_min": min(cpu) * 1e6,
            "wall_us_median": statistics.median(wall) * 1e6,
        }

    sdk_s, raw_s, afresh_s = summary("sdk"), summary("raw"), summary("afresh")
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    rows: list[list[Any]] = [
        [
            "raw httpx get + json",
            raw_s["cpu_us_median"],
            raw_s["cpu_us_min"],
            raw_s["wall_us_median"],
            1.0,
            "floor",
        ],
        [
            "SDK op.refresh()",
            sdk_s["cpu_us_median"],
            sdk_s["cpu_us_min"],
            sdk_s["wall_us_median"],
            ratio,
            f"<= {TARGET_RATIO:.2f} ({verdict})",
        ],
        [
            "SDK refresh, read afresh",
            afresh_s["cpu_us_median"],
            afresh_s["cpu_us_min"],
            afresh_s["wall_us_median"],
            afresh_ratio,
            "(no memo)",
        ],
    ]
    title = (
        f"overhead: {blocks} interleaved blocks x {calls} status checks each (sync, keep-alive; "
        f"load average at start {load[0]:.1f})"
    )
    headers = ["client", "CPU us/call", "CPU us min", "wall us/call", "CPU ratio", "target"]
    table = print_table(title, headers, rows)
    print(
        f"CPU ratio SDK/raw: median of blocks {ratio:.2f}, of totals {total_ratio:.2f} "
        f"(target <= {TARGET_RATIO:.2f}: {verdict}); every answer read afresh "
        f"{afresh_ratio:.2f}"
    )
    data = {
        "config": {"blocks": blocks, "calls_per_block": calls},
        "load_average_at_start": list(load),
        "raw": raw_s,
        "sdk": sdk_s,
        "sdk_read_afresh": afresh_s,
        "cpu_ratio_read_afresh_median": afresh_ratio,
        "cpu_ratio_median": ratio,
        "cpu_ratio_totals": total_ratio,
        "cpu_ratio_per_block": ratios,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
        "table": table,
    }
    write_result(NAME, data, results_dir)
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--blocks", type=int, default=None, help="blocks (default 30; quick 8)")
    parser.add_argument("--calls", type=int, default=None, help="calls per block (default 200)")
    args = parser.parse_args(argv)
    blocks = args.blocks or (8 if args.quick else 30)
    calls = args.calls or (100 if args.quick else 200)
    return run(blocks=blocks, calls=calls, results_dir=args.results_dir, url=args.server_url)


if __name__ == "__main__":
    main()
