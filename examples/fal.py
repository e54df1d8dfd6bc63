"""fal.ai's queue with ``dialect="fal"``: submit, watch the logs, fetch ``response_url``.

Run::

    python examples/fal.py     # against a local fake of fal's queue API
    FAL_KEY=... python examples/fal.py https://queue.fal.run

The preset reads ``IN_QUEUE`` / ``IN_PROGRESS`` / ``COMPLETED``, follows ``status_url``, GETs
the output at ``response_url`` (a failed request's error there raises ``JobFailedError``) and
cancels with ``PUT cancel_url``.
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
    from tests.vendors.fakes import Fal

    with serving_in_thread(Fal()) as url:
        yield url


def main(argv: list[str]) -> int:
    key = os.environ.get("FAL_KEY", "")
    headers = {"Authorization": f"Key {key}"} if key else {}
    with api(argv) as base_url, Client(base_url, headers=headers, dialect="fal") as client:
        op = client.submit("/fal-ai/fast-sdxl", json={"prompt": "a cat"})
        print(f"request {op.id} -> {op.status_url}")
        for status in op.watch(mode="poll"):
            message = status.progress.message if status.progress else ""
            print(f"  {status.state.value:<10} {message}")
        print(f"output: {op.result(timeout=60)}")

        try:
            client.run("/fal-ai/fast-sdxl", json={"prompt": "a cat", "fail": True})
        except JobFailedError as exc:
            print(f"failed: {exc}")

        op = client.submit("/fal-ai/fast-sdxl", json={"prompt": "a dog"})
        print(f"cancel: {op.cancel().state.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
