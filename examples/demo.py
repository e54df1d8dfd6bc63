"""``make demo``: start the reference server in-process, submit a job, show its progress,
print its result, stop the server.

The progress display is :class:`asyncreply_client.progress.ProgressBar`: rich when installed
(``asyncreply[cli]``), tqdm when installed, plain text otherwise; one line per change when the
output is not a terminal.

Run::

    python examples/demo.py
"""

from __future__ import annotations

import sys

from asyncreply_client import Client
from asyncreply_client.progress import ProgressBar

JOB = {"type": "sleep", "input": {"seconds": 2.5, "steps": 5}}


def main() -> int:
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(workers=2, store="memory")) as server:
        print(f"reference server on {server.base_url}")
        with Client(server.base_url) as client:
            op = client.submit("/jobs", json=JOB)
            print(f"submitted job {op.id}: {JOB}", flush=True)
            with ProgressBar(stream=sys.stdout) as bar:
                result = op.result(timeout=30, on_progress=bar)
        print(f"result: {result}")
    print("server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
