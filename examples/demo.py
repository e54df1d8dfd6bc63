"""``make demo``: start the reference server in-process, submit a job, show its progress,
print its result, stop the server.

Run::

    python examples/demo.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from asyncreply_client import Client, JobStatus

JOB = {"type": "sleep", "input": {"seconds": 2.5, "steps": 5}}


def text_progress() -> tuple[Callable[[JobStatus], None], Callable[[], None]]:
    """A one-line text progress display: (on_progress callback, finish)."""

    def show(status: JobStatus) -> None:
        fraction = status.progress.fraction if status.progress else None
        bar = "#" * round(20 * (fraction or 0.0))
        message = status.progress.message if status.progress and status.progress.message else ""
        percent = "" if fraction is None else f"{fraction:4.0%}"
        line = f"\r  [{bar:<20}] {percent} {status.state.value:<10} {message}"
        sys.stdout.write(line.ljust(70))
        sys.stdout.flush()

    def finish() -> None:
        sys.stdout.write("\n")

    return show, finish


def rich_progress() -> tuple[Callable[[JobStatus], None], Callable[[], None]] | None:
    """The same with a rich progress bar, when rich is installed and stdout is a terminal."""
    try:
        from rich.progress import Progress
    except ImportError:
        return None
    if not sys.stdout.isatty():
        return None
    bar = Progress()
    task = bar.add_task("waiting", total=1.0)
    bar.start()

    def show(status: JobStatus) -> None:
        fraction = status.progress.fraction if status.progress else None
        message = status.progress.message if status.progress and status.progress.message else ""
        bar.update(task, completed=fraction or 0.0, description=f"{status.state.value} {message}")

    return show, bar.stop


def main() -> int:
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(workers=2, store="memory")) as server:
        print(f"reference server on {server.base_url}")
        show, finish = rich_progress() or text_progress()
        with Client(server.base_url) as client:
            op = client.submit("/jobs", json=JOB)
            print(f"submitted job {op.id}: {JOB}")
            try:
                result = op.result(timeout=30, on_progress=show)
            finally:
                finish()
        print(f"result: {result}")
    print("server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
