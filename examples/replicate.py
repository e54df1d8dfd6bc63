"""Replicate predictions with ``dialect="replicate"``: run, watch the logs, stream, cancel.

Run::

    python examples/replicate.py     # against a local fake of Replicate's predictions API
    REPLICATE_API_TOKEN=r8_... python examples/replicate.py https://api.replicate.com

The preset reads ``status`` (``starting`` … ``succeeded``), follows ``urls.get``, returns
``output``, cancels with ``POST urls.cancel`` and follows ``urls.stream`` (SSE).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from asyncreply_client import Client, JobStatus


@contextlib.contextmanager
def api(argv: list[str]) -> Iterator[str]:
    """The base URL given on the command line, or the repository's fake on a free port."""
    if len(argv) > 1:
        yield argv[1]
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.vendors._base import serving_in_thread
    from tests.vendors.fakes import Replicate

    with serving_in_thread(Replicate()) as url:
        yield url


def show(status: JobStatus) -> None:
    message = status.progress.message if status.progress else ""
    print(f"  {status.state.value:<10} {message}")


def main(argv: list[str]) -> int:
    token = os.environ.get("REPLICATE_API_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    prediction = {"version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
                  "input": {"prompt": "Say hello"}}  # fmt: skip
    with api(argv) as base_url, Client(base_url, headers=headers, dialect="replicate") as client:
        # One call: Prefer: wait holds the request until the prediction ends: its output.
        print(f"run: {client.run('/v1/predictions', json=prediction, timeout=60)}")

        op = client.submit("/v1/predictions", json=prediction)
        print(f"prediction {op.id} -> {op.status_url}")
        print(f"polled: {op.result(timeout=60, mode='poll', on_progress=show)}")

        op = client.submit("/v1/predictions", json={**prediction, "stream": True})
        print(f"streamed: {op.result(timeout=60, mode='sse', on_progress=show)}")

        op = client.submit("/v1/predictions", json=prediction)
        print(f"cancel: {op.cancel().state.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
