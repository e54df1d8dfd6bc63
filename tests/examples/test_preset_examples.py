"""Each preset's example runs (as a user would run it) against its local vendor fake."""

from __future__ import annotations

import pytest

from tests.forked import Zygote

from .test_examples import EXAMPLES, run

EXPECTED = {
    "replicate.py": [
        "run: ['Hello', ', world']",
        "polled: ['Hello', ', world']",
        "streamed: ['Hello', ', world']",
        "cancel: cancelled",
    ],
    "fal.py": [
        "output: {'images': [{'url': 'https://fal.media/files/cat.png'}], 'seed': 42}",
        "failed: the job failed: prompt is too long",
        "cancel: cancelled",
    ],
    "runpod.py": [
        "output: {'answer': 42}",
        "failed: the job failed: handler raised ValueError: bad prompt",
        "/v2/my-endpoint/cancel/",
    ],
    "openai_batch.py": [
        "finalizing   2/2 requests",
        'output: 2 lines, first: {"custom_id": "req-1"',
        "cancel: cancelling",
    ],
    "assemblyai.py": [
        "text: Hello world. (confidence 0.98)",
        "failed: the job failed: Download error",
        "cancel: the assemblyai dialect says this API cannot cancel a job; nothing was sent",
    ],
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_preset_example(zygote: Zygote, script: str) -> None:
    done = run(zygote, str(EXAMPLES / script))
    assert done.returncode == 0, done.stderr
    for line in EXPECTED[script]:
        assert line in done.stdout, done.stdout
