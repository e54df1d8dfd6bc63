"""RunPod serverless with ``dialect="runpod"``: ``/run``, ``/status/{id}``, ``/cancel/{id}``.

Run::

    python examples/runpod.py     # against a local fake of RunPod's serverless API
    RUNPOD_API_KEY=... python examples/runpod.py https://api.runpod.ai

The preset builds the status and cancel URLs from the job's ``id`` and the endpoint in the
submission's path (``/v2/{endpoint}/status/{id}``), and returns ``output``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from asyncreply_client import Client, JobFailedError


@contextlib.contextmanager
def api(argv: list[str]) -> Iterator[str]:
    """The base URL given on the command line, or the repository's fake on a free port."""
    if len(argv) > 1:
        yield argv[1]
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.vendors._base import serving_in_thread
    from tests.vendors.fakes import RunPod

    with serving_in_thread(RunPod()) as url:
        yield url


def main(argv: list[str]) -> int:
    key = os.environ.get("RUNPOD_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    endpoint = os.environ.get("RUNPOD_ENDPOINT", "my-endpoint")
    with api(argv) as base_url, Client(base_url, headers=headers, dialect="runpod") as client:
        op = client.submit(f"/v2/{endpoint}/run", json={"input": {"prompt": "hello"}})
        print(f"job {op.id} -> {op.status_url}")
        print(f"output: {op.result(timeout=60, mode='poll')}")

        try:
            client.run(f"/v2/{endpoint}/run", json={"input": {"fail": True}}, timeout=60)
        except JobFailedError as exc:
            print(f"failed: {exc}")

        op = client.submit(f"/v2/{endpoint}/run", json={"input": {"prompt": "stop me"}})
        print(f"cancel via {op.cancel_url}: {op.cancel().state.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
