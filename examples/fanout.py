"""Fan-out: one AsyncClient submits many jobs at once and awaits them all, with a progress bar.

Run::

    python examples/fanout.py [BASE_URL] [--jobs N]

The progress bar (rich) is shown on a terminal only; otherwise a summary line is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from asyncreply_client import AsyncClient


@contextlib.asynccontextmanager
async def server(url: str | None) -> AsyncIterator[str]:
    """The given base URL, or a reference server in this event loop on a free port."""
    if url is not None:
        yield url
        return
    from reference_server import ServerConfig, serve

    async with serve(ServerConfig(workers=32)) as running:
        yield running.base_url


class Bar:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, total: int) -> None:
        self._progress: Any = None
        if sys.stderr.isatty():
            with contextlib.suppress(ImportError):
                from rich.progress import Progress

                self._progress = Progress(transient=True)
                self._task = self._progress.add_task("jobs", total=total)
                self._progress.start()

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="base URL of a running server")
    parser.add_argument("--jobs", type=int, default=50, help="how many jobs (default: 50)")
    args = parser.parse_args(argv[1:])

    rng = random.Random(7)
    durations = [rng.uniform(0.05, 0.3) for _ in range(args.jobs)]
    bar = Bar(args.jobs)
    started = time.perf_counter()
    async with server(args.url) as base_url, AsyncClient(base_url) as client:

        async def one(seconds: float) -> Any:
            op = await client.submit(
                "/jobs", json={"type": "sleep", "input": {"seconds": seconds, "steps": 2}}
            )
            try:
                return await op.result(timeout=60)
            finally:
                bar.advance()

        try:
            results = await asyncio.gather(*(one(seconds) for seconds in durations))
        finally:
            bar.close()
    elapsed = time.perf_counter() - started
    assert [r["slept"] for r in results] == durations
    print(
        f"{len(results)}/{args.jobs} jobs completed in {elapsed:.2f}s "
        f"(longest job {max(durations):.2f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
