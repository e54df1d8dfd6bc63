"""Server memory under slow readers of a large result (issue 19 item 4).

A reference server runs in a child process; one ``report`` job makes a CSV result of about
11 MiB. Then ``--readers`` connections (default 60) ask for ``GET /jobs/{id}/result`` and never
read. Reported: the server's resident set size (``VmRSS``) before, while the readers are
stalled (after ``--settle`` seconds), and after they went away, plus the growth per reader.
Before results were streamed, each stalled reader held a full copy of the result
(443 -> 1,286 MiB for 60 readers of 11.2 MiB); streamed, each holds about one chunk.

Run: ``python -m benchmarks.slow_readers [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ._harness import add_common_args, print_table, raise_fd_limit, running_server, write_result

__all__ = ["main", "rss_mib"]


def rss_mib(pid: int) -> float:
    """The resident set size of process ``pid`` in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _result_job(base_url: str, rows: int) -> tuple[str, int]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        job = {"type": "report", "input": {"rows": rows, "columns": 12}}
        job_id = client.post("/jobs", json=job).json()["jobId"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/jobs/{job_id}", params={"wait": "5"})
            if status.status_code == 303 or status.json().get("status") == "completed":
                break
        size = len(client.get(f"/jobs/{job_id}/result").content)
    return job_id, size


async def _stall(host: str, port: int, path: str, readers: int, settle: float, pid: int) -> float:
    writers = []
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    for _ in range(readers):
        _, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        writers.append(writer)
    await asyncio.sleep(settle)
    stalled = rss_mib(pid)
    for writer in writers:
        writer.close()
    return stalled


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the measurement; return the figures (``met``: growth per reader under 1 MiB)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--readers", type=int, default=None, help="stalled readers")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the report result")
    parser.add_argument("--settle", type=float, default=None, help="seconds before measuring")
    args = parser.parse_args(argv)
    readers = args.readers or (20 if args.quick else 60)
    settle = args.settle if args.settle is not None else (2.0 if args.quick else 5.0)
    raise_fd_limit(readers * 2 + 256)
    with running_server("--max-connections", str(readers + 64)) as server:
        pid = server.process.pid
        job_id, size = _result_job(server.base_url, args.rows)
        before = rss_mib(pid)
        host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
        path = f"/jobs/{job_id}/result"
        stalled = asyncio.run(_stall(host, int(port), path, readers, settle, pid))
        time.sleep(1.0)
        after = rss_mib(pid)
    per_reader = (stalled - before) / readers
    results: dict[str, Any] = {
        "result_mib": size / 2**20,
        "readers": readers,
        "rss_before_mib": before,
        "rss_stalled_mib": stalled,
        "rss_after_mib": after,
        "growth_per_reader_mib": per_reader,
    }
    results["table"] = print_table(
        f"server RSS with {readers} readers that never read a {size / 2**20:.1f} MiB result",
        ["result MiB", "readers", "RSS before", "RSS stalled", "RSS after", "MiB per reader"],
        [[results[k] for k in ("result_mib", "readers", "rss_before_mib", "rss_stalled_mib",
                               "rss_after_mib", "growth_per_reader_mib")]],
    )  # fmt: skip
    results["met"] = per_reader < 1.0
    write_result("slow_readers", results, args.results_dir)
    return results


if __name__ == "__main__":
    raise SystemExit(0 if main()["met"] else 1)
