"""Every example runs (as a user would run it) and prints what it promises, so none rots."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.forked import Zygote

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class Ran:
    """How an example's process ended."""

    returncode: int
    stdout: str
    stderr: str


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def run(zygote: Zygote, script: str, *args: str, timeout: float = 50) -> Ran:
    """``python SCRIPT ARGS`` from the repository's root, as a fork of the zygote
    (``tests/forked.py``)."""
    ran = zygote.run_path(script, args, env=_env(), cwd=EXAMPLES.parent, timeout=timeout)
    status, out, err = ran
    return Ran(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def test_quickstart(zygote: Zygote) -> None:
    done = run(zygote, str(EXAMPLES / "quickstart.py"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"submitted job \S+ -> http://127\.0\.0\.1:\d+/jobs/\S+", done.stdout)
    assert "step 3/3" in done.stdout
    assert "result: {'slept': 0.3}" in done.stdout
    assert "echo: {'hello': 'world'}" in done.stdout


def test_fanout(zygote: Zygote) -> None:
    done = run(zygote, str(EXAMPLES / "fanout.py"), "--jobs", "40")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^40/40 jobs completed in [\d.]+s", done.stdout, re.M)


def test_sse_progress(zygote: Zygote) -> None:
    done = run(zygote, str(EXAMPLES / "sse_progress.py"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"events: http://127\.0\.0\.1:\d+/jobs/\S+/events", done.stdout)
    for step in range(1, 6):
        assert f"step {step}/5" in done.stdout
    assert re.search(r"^completed\s+100%", done.stdout, re.M)
    assert "result: {'slept': 0.5}" in done.stdout


def test_resume_token_in_another_process(zygote: Zygote) -> None:
    done = run(zygote, str(EXAMPLES / "resume_token.py"))
    assert done.returncode == 0, done.stderr
    parent = re.search(r"parent (\d+) submitted job (\S+);", done.stdout)
    child = re.search(r"child (\d+) resumed job (\S+): \{'slept': 0\.3\}", done.stdout)
    assert parent and child, done.stdout
    assert parent.group(1) != child.group(1)  # another process
    assert parent.group(2) == child.group(2)  # the same job


def test_webhook_receiver(zygote: Zygote) -> None:
    done = run(zygote, str(EXAMPLES / "webhook_receiver.py"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"verified job\.completed for job \S+ \((standard|hmac-sha256)", done.stdout)
    assert "forged delivery answered 401" in done.stdout


def test_pytest_example_passes() -> None:
    # A fresh interpreter: pytest rewrites the asserts of the plugin modules it loads, which
    # a zygote has imported already.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES / "test_example_pytest.py"), "-q",
         "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=50, check=False, cwd=EXAMPLES.parent, env=_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^4 passed", done.stdout, re.M), done.stdout


@pytest.mark.parametrize("script", ["quickstart.py", "sse_progress.py"])
def test_examples_take_a_base_url(zygote: Zygote, script: str) -> None:
    # Against a server started separately (here: by quickstart's own helper in a thread).
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(workers=2)) as running:
        done = run(zygote, str(EXAMPLES / script), running.base_url)
    assert done.returncode == 0, done.stderr
    assert running.base_url in done.stdout
