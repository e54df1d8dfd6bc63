"""The guide's exit-code table is the truth: every row is walked through the real entry point
(subprocess), with every case the row names, and the CLI's usage errors are short and name
what was wrong (issue 20, item 15)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncreply_client.pytest_plugin import RunningReferenceServer

from .conftest import CLI_TIMEOUT, Cli, Result

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
TABLE = {
    int(code): meaning
    for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", GUIDE.read_text("utf-8"), re.M)
}
ECHO = json.dumps({"type": "echo", "input": {"hello": "world"}})
SLOW = json.dumps({"type": "sleep", "input": {"seconds": 30, "steps": 30}})
FAIL = json.dumps({"type": "fail", "input": {"code": "nope", "message": "no"}})


class World:
    """What a scenario may use: the CLI, the reference server, a broken server, a free port."""

    def __init__(self, cli: Cli, server: RunningReferenceServer, broken: str) -> None:
        self.cli, self.server, self.broken = cli, server, broken

    def job(self, body: str = ECHO, *, finish: bool = True) -> str:
        url: str = self.cli("submit", self.server.url("/jobs"), "--json", body).json()["statusUrl"]
        if finish:
            self.cli("wait", url)
        return url

    def free_port(self) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port


def _interrupted(world: World) -> Result:
    cli = world.cli
    process = subprocess.Popen(
        [*cli.command, "submit", world.server.url("/jobs"), "--json", SLOW, "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env(),
        cwd=cli.cwd,
    )
    try:
        assert process.stderr is not None
        process.stderr.readline()  # the job exists: the wait has begun
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=CLI_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Result(process.returncode, out.decode(), err.decode())


def _bad_signature(world: World) -> Result:
    body = b'{"type": "job.completed", "jobId": "j1"}'
    headers = ["-H", "webhook-id: msg_1", "-H", f"webhook-timestamp: {int(time.time())}"]
    headers += ["-H", "webhook-signature: v1,AAAA"]
    return world.cli("webhook", "verify", "--secret", "s3cret", *headers, input=body)


def _cancelled(world: World) -> str:
    url = world.job(SLOW, finish=False)
    assert world.cli("cancel", url).code == 0
    return url


def _serve_on_a_busy_port(world: World) -> Result:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        return world.cli("serve", "--host", "127.0.0.1", "--port", str(sock.getsockname()[1]))


def _serve_on_a_file_that_is_not_a_database(world: World) -> Result:
    (world.cli.cwd / "notes.db").write_text("not a database, but long enough to be read " * 40)
    return world.cli("serve", "--store", "sqlite", "--sqlite-path", "notes.db", "--port", "0")


Scenario = Callable[[World], Result]

#: Each row of the table: the cases it names, each a (label, scenario, text on stderr).
CASES: dict[int, list[tuple[str, Scenario, str]]] = {
    0: [("a job that completes", lambda w: w.cli("submit", w.server.url("/jobs"), "--json",
                                                  ECHO, "--wait"), "")],
    1: [
        ("an unreadable file", lambda w: w.cli("submit", w.server.url("/jobs"), "--data",
                                              "@missing.json"), "cannot read missing.json"),
        ("cancel of a completed job", lambda w: w.cli("cancel", w.job()),
         "cannot cancel: the job is already completed"),
        ("cancel of a failed job", lambda w: w.cli("cancel", w.job(FAIL)),
         "cannot cancel: the job is already failed"),
        ("cancel of a cancelled job", lambda w: w.cli("cancel", _cancelled(w)),
         "cannot cancel: the job is already cancelled"),
        ("retry of a job that cannot be retried", lambda w: w.cli("retry", w.job(FAIL)),
         "cannot retry: the job failed with an error that is not retryable (nope: no)"),
        ("serve on a busy port", _serve_on_a_busy_port, "is in use"),
    ],
    2: [
        ("an unknown option", lambda w: w.cli("submit", "--jsn", "{}", w.server.url("/jobs")),
         "unknown option --jsn (did you mean --json?)"),
        ("an abbreviated option", lambda w: w.cli("submit", w.server.url("/jobs"), "--js", "{}"),
         "unknown option --js"),
        ("bad --json", lambda w: w.cli("submit", w.server.url("/jobs"), "--json", "{"),
         "--json is not valid JSON"),
        ("a bad -H", lambda w: w.cli("status", w.server.url("/jobs/x"), "-H", "nocolon"),
         "bad header"),
        ("a bad ASYNCREPLY_HEADERS (lines)", lambda w: w.cli(
            "status", w.server.url("/jobs/x"), env={"ASYNCREPLY_HEADERS": "nocolon"}),
         "ASYNCREPLY_HEADERS: bad header"),
        ("a bad ASYNCREPLY_HEADERS (JSON)", lambda w: w.cli(
            "status", w.server.url("/jobs/x"), env={"ASYNCREPLY_HEADERS": "{nope"}),
         "ASYNCREPLY_HEADERS is not valid JSON"),
        ("a bad URL", lambda w: w.cli("status", "relative/x"), "bad URL"),
        ("serve --token alice", lambda w: w.cli("serve", "--token", "alice"),
         "asyncreply serve: error: --token expects TOKEN=USER, got 'alice'"),
        ("serve --workers 0", lambda w: w.cli("serve", "--workers", "0"),
         "asyncreply serve: error: --workers 0: input should be greater than or equal to 1"),
        ("serve --sqlite-path in a missing directory", lambda w: w.cli(
            "serve", "--store", "sqlite", "--sqlite-path", "/nonexistent/x.db", "--port", "0"),
         "--sqlite-path /nonexistent/x.db: the directory /nonexistent does not exist"),
        ("serve --sqlite-path on a file that is not a database",
         _serve_on_a_file_that_is_not_a_database,
         "--sqlite-path notes.db: cannot open the SQLite database (file is not a database)"),
    ],
    3: [("a failed job", lambda w: w.cli("wait", w.job(FAIL, finish=False)), "job failed: nope")],
    4: [("a cancelled job", lambda w: w.cli("wait", _cancelled(w)), "job cancelled")],
    5: [("an unknown job", lambda w: w.cli("status", w.server.url("/jobs/nope")), "job gone")],
    6: [("a wait that times out", lambda w: w.cli("wait", w.job(SLOW, finish=False),
                                                  "--timeout", "0.3"), "wait timed out")],
    7: [("a server that breaks the protocol", lambda w: w.cli(
        "submit", w.broken + "/jobs", "--json", ECHO), "protocol error")],
    8: [("a server that is down", lambda w: w.cli(
        "status", f"http://127.0.0.1:{w.free_port()}/jobs/x", "--connect-retry", "0"),
        "transport error")],
    9: [("a contract check that fails", lambda w: w.cli(
        "check", w.broken + "/jobs", "--json", ECHO, "--timeout", "2"), "")],
    10: [("a forged webhook delivery", _bad_signature, "verification failed")],
    11: [("a rejected submission", lambda w: w.cli("submit", w.server.url("/jobs"), "--json",
                                                   '{"type": "no-such-type"}'),
          "submission rejected (HTTP 400)")],
    130: [("Ctrl-C during a wait", _interrupted, "interrupted")],
}  # fmt: skip


def test_every_row_of_the_table_has_cases() -> None:
    assert set(TABLE) == set(CASES)


@pytest.mark.parametrize(
    ("code", "label", "scenario", "needle"),
    [(code, *case) for code, cases in CASES.items() for case in cases],
    ids=[f"{code}-{case[0]}" for code, cases in CASES.items() for case in cases],
)
def test_the_table_row_holds(
    cli: Cli,
    reference_server: RunningReferenceServer,
    broken_server: str,
    code: int,
    label: str,
    scenario: Scenario,
    needle: str,
) -> None:
    result = scenario(World(cli, reference_server, broken_server))
    assert result.code == code, (label, TABLE[code], result.stderr)
    assert needle in result.stderr, (label, result.stderr)
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr
    if code not in (0, 9):  # 9: the report on stdout says it all
        last = result.stderr.strip().splitlines()[-1]
        assert ": error: " in last, result.stderr
    if code == 2:  # short: one line, not a usage block
        assert result.stderr.count("\n") == 1, result.stderr


def test_the_shared_help_is_in_one_place(cli: Cli) -> None:
    # `asyncreply --help` lists the exit codes and the environment (ASYNCREPLY_DEBUG too);
    # each command's --help has its own options, the shared ones under their heading, and
    # one line pointing to the main help instead of the same 25 lines again.
    main = cli("--help").stdout
    assert "exit codes:" in main and "ASYNCREPLY_DEBUG" in main
    for command in ("submit", "status", "wait", "cancel", "retry", "check", "webhook verify"):
        helped = cli(*command.split(), "--help")
        assert helped.code == 0, helped.stderr
        assert "exit codes:" not in helped.stdout and "ASYNCREPLY_HEADERS  " not in helped.stdout
        assert helped.stdout.rstrip().endswith("exit codes and environment variables: "
                                               "`asyncreply --help`"), helped.stdout  # fmt: skip
        shared = "request options (every command that talks to a server):"
        assert helped.stdout.count(shared) == (command != "webhook verify")
    guide = GUIDE.read_text("utf-8")
    assert "`ASYNCREPLY_DEBUG`" in guide[guide.index("## 7.") : guide.index("## 8.")]


def test_the_servers_own_command_names_itself(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reference_server", "--workers", "0", "--token", "a=b"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "asyncreply-server: error: --workers 0: input should be greater than or equal to 1 "
        "(`asyncreply-server --help` lists the flags)\n"
    )
