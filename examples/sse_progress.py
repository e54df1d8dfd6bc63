"""Follow a job's progress over Server-Sent Events (falls back to polling if the stream breaks).

Run::

    python examples/sse_progress.py [BASE_URL]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from asyncreply_client import Client


@contextlib.contextmanager
def server(argv: list[str]) -> Iterator[str]:
    """The base URL given on the command line, or a reference server on a free port."""
    if len(argv) > 1:
        yield argv[1]
        return
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(workers=2)) as running:
        yield running.base_url


def main(argv: list[str]) -> int:
    with server(argv) as base_url, Client(base_url) as client:
        op = client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 0.5, "steps": 5}})
        print(f"events: {op.events_url}")
        # watch() yields each new snapshot once, the terminal one last.
        for status in op.watch(mode="sse", timeout=30):
            fraction = status.progress.fraction if status.progress else None
            percent = "" if fraction is None else f"{fraction:4.0%}"
            message = status.progress.message if status.progress else ""
            print(f"{status.state.value:<10} {percent:>5} {message}")
        print(f"result: {op.result(timeout=30)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
