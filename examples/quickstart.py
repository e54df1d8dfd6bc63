"""Quick start: submit a job, watch its progress, print its result (synchronous client).

Run::

    python examples/quickstart.py              # starts a reference server in-process
    python examples/quickstart.py http://127.0.0.1:8080   # or talks to a running one
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from asyncreply_client import Client, JobStatus


@contextlib.contextmanager
def server(argv: list[str]) -> Iterator[str]:
    """The base URL given on the command line, or a reference server on a free port."""
    if len(argv) > 1:
        yield argv[1]
        return
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(workers=2)) as running:
        yield running.base_url


def show(status: JobStatus) -> None:
    """Print each new status snapshot (the client calls this during waits)."""
    message = status.progress.message if status.progress else ""
    print(f"  {status.state.value:<10} {message}")


def main(argv: list[str]) -> int:
    with server(argv) as base_url, Client(base_url, on_progress=show) as client:
        # Submit, then wait for the result (polling honours the server's Retry-After).
        op = client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 0.3, "steps": 3}})
        print(f"submitted job {op.id} -> {op.status_url}")
        print(f"result: {op.result(timeout=30)}")

        # Or in one call: submit and wait.
        echoed = client.run("/jobs", json={"type": "echo", "input": {"hello": "world"}}, timeout=30)
        print(f"echo: {echoed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
