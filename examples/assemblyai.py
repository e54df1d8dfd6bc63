"""AssemblyAI transcripts with ``dialect="assemblyai"``: the transcript is the result.

Run::

    python examples/assemblyai.py     # against a local fake of AssemblyAI's transcript API
    ASSEMBLYAI_API_KEY=... python examples/assemblyai.py https://api.assemblyai.com

The preset reads ``queued`` / ``processing`` / ``completed`` / ``error`` and follows
``/v2/transcript/{id}``. AssemblyAI has no cancel (its ``DELETE`` deletes the transcript):
``cancel()`` raises ``CancelNotSupportedError`` and sends nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from asyncreply_client import CancelNotSupportedError, Client, JobFailedError


@contextlib.contextmanager
def api(argv: list[str]) -> Iterator[str]:
    """The base URL given on the command line, or the repository's fake on a free port."""
    if len(argv) > 1:
        yield argv[1]
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.vendors._base import serving_in_thread
    from tests.vendors.fakes import AssemblyAI

    with serving_in_thread(AssemblyAI()) as url:
        yield url


def main(argv: list[str]) -> int:
    key = os.environ.get("ASSEMBLYAI_API_KEY", "")
    headers = {"Authorization": key} if key else {}
    audio = {"audio_url": "https://assembly.ai/wildfires.mp3"}
    with api(argv) as base_url, Client(base_url, headers=headers, dialect="assemblyai") as client:
        transcript = client.run("/v2/transcript", json=audio, timeout=600)
        print(f"text: {transcript['text']} (confidence {transcript['confidence']})")

        try:
            client.run("/v2/transcript", json={**audio, "fail": True}, timeout=600)
        except JobFailedError as exc:
            print(f"failed: {exc}")

        op = client.submit("/v2/transcript", json=audio)
        try:
            op.cancel()
        except CancelNotSupportedError as exc:
            print(f"cancel: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
