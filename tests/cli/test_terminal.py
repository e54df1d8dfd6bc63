"""The terminal side of the CLI: progress bar and pretty output when attached to a TTY
(in-process with TTY-like streams, and once for real through a pseudo-terminal)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest

from asyncreply_client import cli
from asyncreply_client._errors import (
    AsyncReplyError,
    InvalidTokenError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    ProtocolError,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
)
from asyncreply_client.cli import _commands, _options
from asyncreply_client.pytest_plugin import RunningReferenceServer

JOB = json.dumps({"type": "sleep", "input": {"seconds": 0.15, "steps": 3}})


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run_tty(*args: str, rich: bool) -> tuple[int, str, str]:
    out, err = TtyStream(), TtyStream()
    environ = {"ASYNCREPLY_PROGRESS": "rich" if rich else "plain"}
    code = cli.main(list(args), stdout=out, stderr=err, environ=environ)
    return code, _plain(out.getvalue()), _plain(err.getvalue())


@pytest.mark.parametrize("rich", [True, False], ids=["rich", "plain"])
def test_progress_bar_and_pretty_result_on_a_terminal(
    reference_server: RunningReferenceServer, rich: bool
) -> None:
    code, out, err = _run_tty(
        "submit",
        reference_server.url("/jobs"),
        "--json",
        JOB,
        "--wait",
        "--mode",
        "poll",
        rich=rich,
    )
    assert code == 0, err
    assert json.loads(out) == {"slept": 0.15}
    assert "\n  " in out  # indented on a terminal
    assert "submitted: http://127.0.0.1:" in err
    assert "step" in err  # the server's progress message is shown
    if not rich:
        assert "[" in err and "%" in err and "\r" in err


def test_quiet_flag_silences_the_terminal(reference_server: RunningReferenceServer) -> None:
    code, out, err = _run_tty(
        "submit",
        reference_server.url("/jobs"),
        "--json",
        JOB,
        "--wait",
        "-q",
        rich=True,
    )
    assert code == 0
    assert json.loads(out) == {"slept": 0.15}
    assert err == ""


def test_real_pseudo_terminal(reference_server: RunningReferenceServer) -> None:
    leader, follower = os.openpty()
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "asyncreply_client.cli",
                "submit",
                reference_server.url("/jobs"),
                "--json",
                JOB,
                "--wait",
                "--mode",
                "poll",
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=45,
            check=False,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
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
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert completed.returncode == 0, terminal
    assert json.loads(completed.stdout) == {"slept": 0.15}  # stdout is a pipe: compact JSON
    assert "step" in terminal and "submitted:" in terminal


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (JobFailedError("x"), 3),
        (JobCancelledError("x"), 4),
        (JobExpiredError("x"), 5),
        (JobNotFoundError("x"), 5),
        (WaitTimeoutError("x"), 6),
        (ProtocolError("x"), 7),
        (TransportError("x"), 8),
        (SubmissionRejectedError("x", status_code=400, url="u"), 11),
        (InvalidTokenError("x"), 1),
        (AsyncReplyError("x"), 1),
    ],
)
def test_exit_code_mapping(error: AsyncReplyError, code: int) -> None:
    assert cli.exit_code_for(error) == code
    assert code in cli.EXIT_CODES


def test_exit_codes_are_distinct() -> None:
    values = [v for k, v in vars(cli.ExitCode).items() if k.isupper()]
    assert len(values) == len(set(values)) == len(cli.EXIT_CODES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ('{"X-A": "1", "X-B": "two words"}', [("X-A", "1"), ("X-B", "two words")]),
        (
            "X-A: 1\n\nAuthorization: Bearer t: with colon",
            [("X-A", "1"), ("Authorization", "Bearer t: with colon")],
        ),
    ],
)
def test_env_headers(raw: str | None, expected: list[tuple[str, str]]) -> None:
    assert _options.env_headers(raw) == expected


@pytest.mark.parametrize("raw", ['{"X": 1}', "{not json", "no colon here", '["a"]'])
def test_env_headers_rejects_garbage(raw: str) -> None:
    with pytest.raises(cli.CliError):
        _options.env_headers(raw)


def test_unexpected_errors_are_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(ctx: object, url: str) -> object:
        raise RuntimeError("kaput")

    monkeypatch.setattr(_commands, "_client", boom)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["status", "http://x.test/jobs/1"], stdout=out, stderr=err, environ={}) == 1
    assert err.getvalue() == (
        "asyncreply: error: unexpected RuntimeError: kaput (set ASYNCREPLY_DEBUG=1 for details)\n"
    )
    with pytest.raises(RuntimeError, match="kaput"):
        cli.main(
            ["status", "http://x.test/jobs/1"],
            stdout=out,
            stderr=err,
            environ={"ASYNCREPLY_DEBUG": "1"},
        )
