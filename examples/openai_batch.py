"""OpenAI Batch with ``dialect="openai-batch"``: create a batch, watch its request counts,
download the output file.

Run::

    python examples/openai_batch.py     # against a local fake of the Batch API
    OPENAI_API_KEY=sk-... python examples/openai_batch.py https://api.openai.com

The preset reads ``validating`` / ``in_progress`` / ``finalizing`` / ``completed`` (and
``failed``, ``expired``, ``cancelling``, ``cancelled``), progress from ``request_counts``, and
fetches ``/v1/files/{output_file_id}/content`` as the result (a JSONL ``ResultFile``).
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
    from tests.vendors.fakes import OpenAIBatch

    with serving_in_thread(OpenAIBatch()) as url:
        yield url


def show(status: JobStatus) -> None:
    p = status.progress
    counts = f"{p.current:g}/{p.total:g} requests" if p and p.total else ""
    print(f"  {status.raw.get('status', ''):<12} {counts}")


def main(argv: list[str]) -> int:
    key = os.environ.get("OPENAI_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    batch = {"input_file_id": os.environ.get("OPENAI_BATCH_FILE", "file-abc123"),
             "endpoint": "/v1/chat/completions", "completion_window": "24h"}  # fmt: skip
    with api(argv) as base_url, Client(base_url, headers=headers, dialect="openai-batch") as client:
        op = client.submit("/v1/batches", json=batch)
        print(f"batch {op.id} -> {op.status_url}")
        output = op.result(timeout=24 * 3600, mode="poll", on_progress=show)
        lines = output.content.decode().splitlines()
        print(f"output: {len(lines)} lines, first: {lines[0]}")

        op = client.submit("/v1/batches", json=batch)
        print(f"cancel: {op.cancel().raw['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
