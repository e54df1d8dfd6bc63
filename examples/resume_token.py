"""Resume waiting in another process: hand over ``op.to_token()`` (it holds no credentials).

Run::

    python examples/resume_token.py [BASE_URL]

The parent submits a job and starts a child process (this script with ``--resume``), which
reads the token on stdin and waits for the result with ``client.resume(token)``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
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


def child(base_url: str) -> int:
    """Resume the operation whose token arrives on stdin and print its result."""
    token = sys.stdin.read().strip()
    with Client(base_url) as client:
        op = client.resume(token)
        print(f"child {os.getpid()} resumed job {op.id}: {op.result(timeout=30)}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--resume":
        return child(argv[2])
    with server(argv) as base_url:
        with Client(base_url) as client:
            op = client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 0.3}})
            token = op.to_token()
        print(f"parent {os.getpid()} submitted job {op.id}; token of {len(token)} characters")
        done = subprocess.run(
            [sys.executable, __file__, "--resume", base_url],
            input=token,
            text=True,
            check=False,
            timeout=60,
        )
        return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
