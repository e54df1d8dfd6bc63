"""Every example runs (as a user would run it) and prints what it promises, so none rots."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=EXAMPLES.parent,
        env=env,
    )


def test_quickstart() -> None:
    done = run(str(EXAMPLES / "quickstart.py"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"submitted job \S+ -> http://127\.0\.0\.1:\d+/jobs/\S+", done.stdout)
    assert "step 3/3" in done.stdout
    assert "result: {'slept': 0.3}" in done.stdout
    assert "echo: {'hello': 'world'}" in done.stdout


def test_fanout() -> None:
    done = run(str(EXAMPLES / "fanout.py"), "--jobs", "40")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^40/40 jobs completed in [\d.]+s", done.stdout, re.M)


def test_sse_progress() -> None:
    done = run(str(EXAMPLES / "sse_progress.py"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"events: http://127\.0\.0\.1:\d+/jobs/\S+/events", done.stdout)
    for step in range(1, 6):
        assert f"step {step}/5" in done.stdout
    assert re.search(r"^completed\s+100%", done.stdout, re.M)
    assert "result: {'slept': 0.5}" in done.stdout


def test_resume_token_in_another_process() -> None:
    done = run(str(EXAMPLES / "resume_token.py"))
    assert done.returncode == 0, done.stderr
    parent = re.search(r"parent (\d+) submitted job (\S+);", done.stdout)
    child = re.search(r"child (\d+) resumed job (\S+): \{'slept': 0\.3\}", done.stdout)
    assert parent and child, done.stdout
    assert parent.group(1) != child.group(1)  # another process
    assert parent.group(2) == child.group(2)  # the same job


def test_webhook_receiver() -> None:
    done = run(str(EXAMPLES / "webhook_receiver.py"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"verified job\.completed for job \S+ \((standard|hmac-sha256)", done.stdout)
    assert "forged delivery answered 401" in done.stdout


def test_pytest_example_passes() -> None:
    done = run(
        "-m", "pytest", str(EXAMPLES / "test_example_pytest.py"), "-q", "-p", "no:cacheprovider"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^4 passed", done.stdout, re.M), done.stdout


@pytest.mark.parametrize("script", ["quickstart.py", "sse_progress.py"])
def test_examples_take_a_base_url(script: str) -> None:
    # Against a server started separately (here: by quickstart's own helper in a thread).
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(workers=2)) as running:
        done = run(str(EXAMPLES / script), running.base_url)
    assert done.returncode == 0, done.stderr
    assert running.base_url in done.stdout
