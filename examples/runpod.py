"""RunPod serverless with ``dialect="runpod"``: ``/run``, ``/status/{id}``, ``/cancel/{id}``.

Run::

    python examples/runpod.py     # against a local fake of RunPod's serverless API
    RUNPOD_API_KEY=... python examples/runpod.py https://api.runpod.ai

The preset builds the status and cancel URLs from the job's ``id`` and the endpoint in the
submission's path (``/v2/{endpoint}/status/{id}``), and returns ``output``.
"""

from __future__ import annotations

import os
import sys

from _vendor_fake import api

from asyncreply_client import Client, JobFailedError


def main(argv: list[str]) -> int:
    key = os.environ.get("RUNPOD_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    endpoint = os.environ.get("RUNPOD_ENDPOINT", "my-endpoint")
    target = api(argv, "RunPod")
    with target as base_url, Client(base_url, headers=headers, dialect="runpod") as client:
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
