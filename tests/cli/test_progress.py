"""``asyncreply_client.progress``: the ready ``on_progress=`` display, each backend, with the
sync and the async client against the reference server."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asyncreply_client import AsyncClient, Client, JobState, JobStatus, Progress, progress
from asyncreply_client.progress import ProgressBar
from asyncreply_client.pytest_plugin import RunningReferenceServer

JOB = {"type": "sleep", "input": {"seconds": 0.1, "steps": 4}}


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def _half(message: str = "half way") -> JobStatus:
    return JobStatus(
        state=JobState.PROCESSING,
        progress=Progress(current=1, total=2, message=message),
        estimated_remaining=42.0,
    )


def test_eta_and_description() -> None:
    soon = datetime.now(timezone.utc) + timedelta(seconds=75.4)
    status = JobStatus(
        state=JobState.PROCESSING,
        progress=Progress(current=1, total=4, message="step 1/4"),
        estimated_completion=soon,
    )
    assert progress.format_eta(progress.remaining_seconds(status)) in ("ETA 1m15s", "ETA 1m14s")
    assert progress.describe(status) == "step 1/4"
    # The skew-free estimate measured at the response wins over the local clock.
    measured = status.model_copy(update={"estimated_remaining": 12.2})
    assert progress.format_eta(progress.remaining_seconds(measured)) == "ETA 12s"
    past = status.model_copy(update={"estimated_completion": soon - timedelta(hours=1)})
    assert progress.format_eta(progress.remaining_seconds(past)) == "ETA now"
    naive = status.model_copy(update={"estimated_completion": soon.replace(tzinfo=None)})
    assert progress.remaining_seconds(naive) is not None
    assert progress.format_eta(progress.remaining_seconds(JobStatus(state=JobState.PENDING))) == ""
    assert progress.describe(JobStatus(state=JobState.PENDING)) == "pending"


def test_rich_backend_shows_the_message_percentage_and_server_eta() -> None:
    stream = TtyStream()
    with ProgressBar(stream=stream, backend="rich") as bar:
        bar(_half())
        bar(JobStatus(state=JobState.COMPLETED))
    text = _plain(stream.getvalue())
    assert "half way" in text and "50%" in text
    assert re.search(r"ETA 4[12]s", text), text
    assert text.rstrip().endswith("100% done"), text


def test_tqdm_backend_shows_the_message_percentage_and_server_eta() -> None:
    pytest.importorskip("tqdm")
    stream = TtyStream()
    with ProgressBar(stream=stream, backend="tqdm") as bar:
        bar(_half())
        bar(JobStatus(state=JobState.COMPLETED))
    text = stream.getvalue()
    assert "half way" in text and " 50%" in text and re.search(r"ETA 4[12]s", text), text
    assert "100%" in text


def test_plain_backend_redraws_one_line_on_a_terminal() -> None:
    stream = TtyStream()
    bar = ProgressBar(stream=stream, backend="plain")
    bar(JobStatus(state=JobState.PROCESSING, progress=Progress(current=1, total=2)))
    bar(JobStatus(state=JobState.PENDING))
    bar.close()
    bar.close()  # idempotent
    text = stream.getvalue()
    assert "[" + "#" * 15 + "-" * 15 + "]" in text and "50%" in text
    assert "?" in text and "\r" in text and text.endswith("\n") and text.count("\n") == 1


def test_auto_on_a_pipe_prints_one_line_per_change() -> None:
    stream = io.StringIO()  # not a terminal: no redrawing, no escape sequences
    bar = ProgressBar(stream=stream)
    assert bar.backend == "lines"
    bar(_half())
    bar(_half())  # the same snapshot again: no new line
    bar(JobStatus(state=JobState.COMPLETED))
    bar.close()
    assert stream.getvalue() == "50% half way ETA 42s\n100% completed\n"


@pytest.mark.parametrize(
    ("rich", "tqdm", "expected"),
    [(True, True, "rich"), (False, True, "tqdm"), (False, False, "plain")],
)
def test_auto_prefers_rich_then_tqdm_then_plain_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, rich: bool, tqdm: bool, expected: str
) -> None:
    monkeypatch.setattr(progress, "_rich_available", lambda: rich)
    monkeypatch.setattr(progress, "_tqdm_available", lambda: tqdm)
    assert ProgressBar(stream=TtyStream()).backend == expected


def test_bad_or_missing_backends_are_typed_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown progress backend"):
        ProgressBar(backend="fancy")  # type: ignore[arg-type]
    monkeypatch.setattr(progress, "_tqdm_available", lambda: False)
    with pytest.raises(ImportError, match="tqdm"):
        ProgressBar(backend="tqdm")
    monkeypatch.setattr(progress, "_rich_available", lambda: False)
    with pytest.raises(ImportError, match=r"asyncreply\[cli\]"):
        ProgressBar(backend="rich")


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBar() as bar:
        bar(JobStatus(state=JobState.COMPLETED))
    captured = capsys.readouterr()
    assert captured.out == "" and "100% completed" in captured.err


@pytest.mark.anyio
@pytest.mark.parametrize("client_kind", ["sync", "async"])
async def test_usable_as_on_progress_with_both_clients(
    reference_server: RunningReferenceServer, client_kind: str
) -> None:
    stream = io.StringIO()
    if client_kind == "sync":
        with Client(reference_server.base_url) as client, ProgressBar(stream=stream) as bar:
            result = client.run("/jobs", json=JOB, timeout=30, mode="poll", on_progress=bar)
    else:
        async with (
            AsyncClient(reference_server.base_url) as aclient,
            ProgressBar(stream=stream) as bar,
        ):
            op = await aclient.submit("/jobs", json=JOB)
            result = await op.result(timeout=30, mode="poll", on_progress=bar)
    assert result == {"slept": 0.1}
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("100% "), lines
    assert any("step" in line for line in lines), lines


DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_make_demo_draws_with_the_progress_module(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("asyncreply_demo_progress", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setattr(demo, "JOB", {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}})
    shown: list[JobStatus] = []
    draw = ProgressBar.__call__

    def spy(self: ProgressBar, status: JobStatus) -> None:
        shown.append(status)
        draw(self, status)

    monkeypatch.setattr(ProgressBar, "__call__", spy)
    terminal = TtyStream()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert demo.main() == 0
    assert shown and shown[-1].state is JobState.COMPLETED
    text = _plain(terminal.getvalue())
    assert "100%" in text and "step 2/2" in text
    assert "result: {'slept': 0.05}" in text


_DRAW_IN_A_PTY = """
from asyncreply_client import JobState, JobStatus, Progress
from asyncreply_client.progress import ProgressBar
with ProgressBar(backend="{backend}") as bar:
    bar(JobStatus(state=JobState.PROCESSING, progress=Progress(current=1, total=2,
        message="half way"), estimated_remaining=42.0))
"""


@pytest.mark.parametrize("backend", ["tqdm", "rich", "plain"])
def test_backends_draw_on_a_pseudo_terminal_that_reports_no_size(backend: str) -> None:
    if backend == "tqdm":
        pytest.importorskip("tqdm")
    leader, follower = os.openpty()  # a new pty reports 0 x 0: tqdm alone would hide its bar
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _DRAW_IN_A_PTY.format(backend=backend)],
            stderr=follower,
            timeout=30,
            check=False,
            env={k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")},
        )
    finally:
        os.close(follower)
    chunks = []
    os.set_blocking(leader, False)
    while True:
        try:
            chunk = os.read(leader, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    drawn = _plain(b"".join(chunks).decode("utf-8", "replace"))
    assert completed.returncode == 0, drawn
    assert "half way" in drawn and "50%" in drawn and "ETA 4" in drawn, drawn
    assert ", ETA" not in drawn
