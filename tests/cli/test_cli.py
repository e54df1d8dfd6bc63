"""``asyncreply`` through its real entry point (subprocess) against the reference server:
every command, every exit code, and the non-terminal output (pipes: no progress, no colour)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncreply_client.pytest_plugin import RunningReferenceServer
from asyncreply_client.webhooks import sign

from .conftest import Cli

ECHO = json.dumps({"type": "echo", "input": {"hello": "world"}})
SLOW = json.dumps({"type": "sleep", "input": {"seconds": 30, "steps": 30}})


def _no_escapes(text: str) -> bool:
    return "\x1b[" not in text and "\r" not in text


def _announced(stderr: str) -> dict[str, Any]:
    """The JSON line that says the job exists (the first line on stderr, when not a terminal)."""
    first = json.loads(stderr.splitlines()[0])
    assert isinstance(first, dict)
    return first


def _error_line(stderr: str) -> str:
    """The last line on stderr: the one-line error message."""
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("asyncreply: error: "), stderr
    return lines[-1]


def test_submit_wait_prints_only_the_result(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    result = cli("submit", reference_server.url("/jobs"), "--json", ECHO, "--wait")
    assert result.code == 0, result.stderr
    assert result.json() == {"hello": "world"}
    assert result.stdout.count("\n") == 1  # compact JSON on a pipe
    # Not a terminal: no progress; one JSON line says where the job is, as soon as it exists.
    assert result.stderr.count("\n") == 1
    announced = _announced(result.stderr)
    assert announced["event"] == "submitted"
    assert announced["statusUrl"].startswith(reference_server.url("/jobs/"))
    assert announced["id"] and announced["statusUrl"].endswith(announced["id"])
    quiet = cli("submit", reference_server.url("/jobs"), "--json", ECHO, "--wait", "-q")
    assert quiet.code == 0 and quiet.stderr == ""


@pytest.mark.parametrize("mode", ["auto", "sse", "long-poll", "poll"])
def test_submit_wait_in_every_mode(
    cli: Cli, reference_server: RunningReferenceServer, mode: str
) -> None:
    body = json.dumps({"type": "sleep", "input": {"seconds": 0.05, "steps": 3}})
    result = cli("submit", reference_server.url("/jobs"), "--json", body, "--wait", "--mode", mode)
    assert result.code == 0, result.stderr
    assert result.json() == {"slept": 0.05}
    assert _no_escapes(result.stderr)


def test_submit_then_status_then_wait(cli: Cli, reference_server: RunningReferenceServer) -> None:
    submitted = cli("submit", reference_server.url("/jobs"), "--json", ECHO)
    assert submitted.code == 0, submitted.stderr
    summary = submitted.json()
    assert summary["statusUrl"].startswith(reference_server.base_url)
    assert summary["eventsUrl"] == summary["statusUrl"] + "/events"
    assert summary["id"]
    waited = cli("wait", summary["statusUrl"])
    assert waited.code == 0, waited.stderr
    assert waited.json() == {"hello": "world"}
    status = cli("status", summary["statusUrl"])
    assert status.code == 0, status.stderr
    assert status.json()["state"] == "completed"
    assert status.json()["id"] == summary["id"]


def test_data_from_file_and_from_stdin(
    cli: Cli, reference_server: RunningReferenceServer, tmp_path: Path
) -> None:
    (tmp_path / "job.json").write_text(ECHO)
    from_file = cli("submit", reference_server.url("/jobs"), "--data", "@job.json", "--wait")
    assert from_file.code == 0, from_file.stderr
    assert from_file.json() == {"hello": "world"}
    from_stdin = cli("submit", reference_server.url("/jobs"), "--data", "-", "--wait", input=ECHO)
    assert from_stdin.code == 0, from_stdin.stderr
    assert from_stdin.json() == {"hello": "world"}


def test_file_result_to_stdout_and_to_output_file(
    cli: Cli, reference_server: RunningReferenceServer, tmp_path: Path
) -> None:
    body = json.dumps({"type": "report", "input": {"rows": 2, "columns": ["id", "name"]}})
    raw = cli("submit", reference_server.url("/jobs"), "--json", body, "--wait")
    assert raw.code == 0, raw.stderr
    assert raw.stdout == "id,name\n1,name-1\n2,name-2\n"
    saved = cli("submit", reference_server.url("/jobs"), "--json", body, "--wait", "-o", "r.csv")
    assert saved.code == 0, saved.stderr
    assert saved.stdout == ""
    assert (tmp_path / "r.csv").read_text() == "id,name\n1,name-1\n2,name-2\n"
    json_out = cli(
        "submit", reference_server.url("/jobs"), "--json", ECHO, "--wait", "-o", "r.json"
    )
    assert json_out.code == 0, json_out.stderr
    assert json.loads((tmp_path / "r.json").read_text()) == {"hello": "world"}


def test_failed_job_exits_3(cli: Cli, reference_server: RunningReferenceServer) -> None:
    body = json.dumps({"type": "fail", "input": {"code": "out_of_cheese", "message": "no"}})
    result = cli("submit", reference_server.url("/jobs"), "--json", body, "--wait")
    assert result.code == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 2  # the announcement, then the error
    # The server's code and message, once each, without "job failed: the job failed".
    assert _error_line(result.stderr) == "asyncreply: error: job failed: out_of_cheese: no"


def test_cancel_then_wait_exits_4(cli: Cli, reference_server: RunningReferenceServer) -> None:
    url = cli("submit", reference_server.url("/jobs"), "--json", SLOW).json()["statusUrl"]
    cancelled = cli("cancel", url)
    assert cancelled.code == 0, cancelled.stderr
    assert cancelled.json()["state"] == "cancelled"
    waited = cli("wait", url)
    assert waited.code == 4
    assert waited.stderr.startswith("asyncreply: error: job cancelled")
    assert waited.stderr.count("cancelled") == 1, waited.stderr
    again = cli("cancel", url)  # a finished job, whichever way it finished: exit 1
    assert again.code == 1
    assert again.json()["state"] == "cancelled"
    assert (
        _error_line(again.stderr)
        == "asyncreply: error: cannot cancel: the job is already cancelled"
    )


def test_cancel_a_completed_job_is_an_error(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    url = cli("submit", reference_server.url("/jobs"), "--json", ECHO).json()["statusUrl"]
    assert cli("wait", url).code == 0
    result = cli("cancel", url)
    assert result.code == 1
    assert "already completed" in result.stderr


def test_unknown_and_expired_jobs_exit_5(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    unknown = cli("status", reference_server.url("/jobs/does-not-exist"))
    assert unknown.code == 5
    assert unknown.stderr.startswith("asyncreply: error: job gone")
    summary = cli("submit", reference_server.url("/jobs"), "--json", SLOW).json()
    assert reference_server.admin.expire(summary["id"])
    expired = cli("wait", summary["statusUrl"])
    assert expired.code == 5


def test_wait_timeout_exits_6_and_the_job_goes_on(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    result = cli(
        "submit", reference_server.url("/jobs"), "--json", SLOW, "--wait", "--timeout", "0.3"
    )
    assert result.code == 6
    status_url = _announced(result.stderr)["statusUrl"]
    # The message names the very command that resumes the wait.
    line = _error_line(result.stderr)
    assert line.startswith("asyncreply: error: wait timed out (the job goes on; last state: ")
    assert line.endswith(f"; `asyncreply wait {status_url}` resumes waiting)")
    assert line.count("the job goes on") == 1
    (job,) = reference_server.admin.jobs()
    assert job.state.value in ("pending", "processing")
    assert cli("status", status_url).json()["id"] == job.id


def test_protocol_error_exits_7(cli: Cli, broken_server: str) -> None:
    result = cli("submit", broken_server + "/jobs", "--json", ECHO)
    assert result.code == 7
    assert result.stderr.startswith("asyncreply: error: protocol error")
    assert result.stderr.count("\n") == 1


def test_transport_error_exits_8(cli: Cli) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("status", f"http://127.0.0.1:{port}/jobs/x", "--connect-retry", "0")
    assert result.code == 8
    assert result.stderr.startswith("asyncreply: error: transport error")


def test_a_refused_connection_is_tried_again_for_connect_retry_seconds(cli: Cli) -> None:
    # Nothing listens at first; a server starts on the port while the CLI is still trying.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = threading.Event()

    def late_server() -> None:
        time.sleep(0.5)  # the CLI (a fork of the zygote) starts in ~0.05 s: refused at first
        with socket.create_server(("127.0.0.1", port)) as server:
            started.set()
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                body = b'{"id": "x", "state": "completed", "result": 1}'
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                             % (len(body), body))  # fmt: skip

    thread = threading.Thread(target=late_server, daemon=True)
    thread.start()
    result = cli("status", f"http://127.0.0.1:{port}/jobs/x", "--connect-retry", "30")
    thread.join(timeout=30)
    assert started.is_set()
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "completed"


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_connect_retry_must_be_a_finite_number_not_below_zero(cli: Cli, value: str) -> None:
    result = cli("status", "http://127.0.0.1:9/jobs/x", "--connect-retry", value)
    assert result.code == 2
    assert "--connect-retry" in result.stderr


def test_rejected_submission_exits_11(cli: Cli, reference_server: RunningReferenceServer) -> None:
    body = json.dumps({"type": "no-such-type", "input": {}})
    result = cli("submit", reference_server.url("/jobs"), "--json", body)
    assert result.code == 11
    assert "unknown_type" in result.stderr
    assert result.stderr.count("rejected") == 1, result.stderr


def test_rejection_prints_the_servers_details(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    body = json.dumps({"type": "sleep", "input": {"seconds": "soon"}})
    result = cli("submit", reference_server.url("/jobs"), "--json", body)
    assert result.code == 11
    line = _error_line(result.stderr)
    assert line.startswith("asyncreply: error: submission rejected (HTTP 400): invalid_input: ")
    details = line.partition("; details: ")[2]
    assert "seconds" in details, line  # the offending field, from the server's details


@pytest.mark.reference_server_config(tokens={"t-alice": "alice"})
def test_token_and_headers_from_options_and_environment(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    url = reference_server.url("/jobs")
    assert cli("submit", url, "--json", ECHO).code == 11  # 401 without a token
    by_option = cli("submit", url, "--json", ECHO, "--wait", "--token", "t-alice")
    assert by_option.code == 0, by_option.stderr
    by_env = cli("submit", url, "--json", ECHO, "--wait", env={"ASYNCREPLY_TOKEN": "t-alice"})
    assert by_env.code == 0, by_env.stderr
    by_header = cli("submit", url, "--json", ECHO, "--wait", "-H", "Authorization: Bearer t-alice")
    assert by_header.code == 0, by_header.stderr
    by_env_headers = cli(
        "submit",
        url,
        "--json",
        ECHO,
        "--wait",
        env={"ASYNCREPLY_HEADERS": json.dumps({"Authorization": "Bearer t-alice"})},
    )
    assert by_env_headers.code == 0, by_env_headers.stderr
    lines = cli(
        "submit",
        url,
        "--json",
        ECHO,
        "--wait",
        env={"ASYNCREPLY_HEADERS": "X-Trace: 1\nAuthorization: Bearer t-alice"},
    )
    assert lines.code == 0, lines.stderr
    # Jobs are per user: alice's job is invisible without her token (404 -> exit 5).
    status_url = cli("submit", url, "--json", ECHO, "--token", "t-alice").json()["statusUrl"]
    assert cli("status", status_url, "--token", "t-alice").code == 0


@pytest.mark.parametrize(
    "reference_server", [{"dialect": "reference"}, {"dialect": "status-code"}], indirect=True
)
def test_check_passes_against_the_reference_server(
    cli: Cli, reference_server: RunningReferenceServer, tmp_path: Path
) -> None:
    body = json.dumps({"type": "sleep", "input": {"seconds": 0.1, "steps": 3}})
    table = cli("check", reference_server.url("/jobs"), "--json", body, "--idempotency")
    assert table.code == 0, table.stdout + table.stderr
    assert "pass" in table.stdout.lower()
    as_json = cli(
        "check",
        reference_server.url("/jobs"),
        "--json",
        body,
        "--format",
        "json",
        "--junit-xml",
        "report.xml",
    )
    assert as_json.code == 0, as_json.stdout + as_json.stderr
    report = as_json.json()
    assert report["passed"] is True
    assert (tmp_path / "report.xml").read_text().startswith("<?xml")


def test_check_fails_against_a_broken_server(cli: Cli, broken_server: str, tmp_path: Path) -> None:
    result = cli(
        "check",
        broken_server + "/jobs",
        "--json",
        ECHO,
        "--timeout",
        "2",
        "--junit-xml",
        "report.xml",
    )
    assert result.code == 9
    assert "fail" in result.stdout.lower()
    assert "<failure" in (tmp_path / "report.xml").read_text()


def _delivery(secret: str, body: bytes) -> list[str]:
    headers = sign(
        body, secret, msg_id="msg_1", timestamp=int(time.time()), event_type="job.completed"
    )
    args: list[str] = []
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    return args


def test_webhook_verify_accepts_a_signed_delivery(cli: Cli) -> None:
    body = json.dumps(
        {
            "type": "job.completed",
            "jobId": "j1",
            "timestamp": "2026-01-01T00:00:00Z",
            "data": {"jobId": "j1", "status": "completed"},
        }
    ).encode()
    result = cli(
        "webhook",
        "verify",
        "--secret",
        "old",
        "--secret",
        "s3cret",
        *_delivery("s3cret", body),
        input=body,
    )
    assert result.code == 0, result.stderr
    event = result.json()
    assert event["type"] == "job.completed" and event["jobId"] == "j1"


def test_webhook_verify_explains_a_bad_signature(cli: Cli) -> None:
    body = b'{"type": "job.completed", "jobId": "j1"}'
    tampered = cli(
        "webhook",
        "verify",
        "--secret",
        "s3cret",
        *_delivery("s3cret", body),
        input=body.replace(b"j1", b"j2"),
    )
    assert tampered.code == 10
    assert tampered.stdout == ""
    assert tampered.stderr.startswith("asyncreply: error: verification failed")
    assert "s3cret" not in tampered.stderr
    missing = cli("webhook", "verify", "--secret", "s3cret", input=body)
    assert missing.code == 10
    assert missing.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((), "required"),
        (("submit",), "URL"),
        (("submit", "http://x/jobs", "--json", "{"), "--json is not valid JSON"),
        (("submit", "http://x/jobs", "-H", "no colon"), "bad header"),
        (("submit", "relative/jobs", "--json", "{}"), "bad URL"),
        (("wait", "http://x/j", "--timeout", "-1"), "positive"),
        (("submit", "http://x/jobs", "--json", "{}", "--data", "x"), "not allowed"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    result = cli(*args)
    assert result.code == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_help_documents_the_exit_codes(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for line in ("3    the job failed", "6    the wait timed out", "10   webhook verification"):
        assert line in result.stdout


def test_serve_delegates_to_the_reference_server(cli: Cli, tmp_path: Path) -> None:
    helped = cli("serve", "--help")
    assert helped.code == 0
    assert "--dialect" in helped.stdout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*cli.command, "serve", "--port", str(port), "--workers", "2"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cli.env(),
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        result = cli("submit", base + "/jobs", "--json", ECHO, "--wait")
        assert result.code == 0, result.stderr
        assert result.json() == {"hello": "world"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_installed_console_script(reference_server: RunningReferenceServer, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "asyncreply"
    assert script.exists(), script
    completed = subprocess.run(
        [str(script), "submit", reference_server.url("/jobs"), "--json", ECHO, "--wait"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"hello": "world"}


@pytest.mark.reference_server_config(dialect="status-code")
def test_outcomes_in_the_status_code_dialect(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    url = reference_server.url("/jobs")
    done = cli("submit", url, "--json", ECHO, "--wait")
    assert done.code == 0, done.stderr
    assert done.json() == {"hello": "world"}
    failing = json.dumps({"type": "fail", "input": {"code": "nope"}})
    assert cli("submit", url, "--json", failing, "--wait").code == 3
    status_url = cli("submit", url, "--json", SLOW).json()["statusUrl"]
    assert cli("status", status_url).json()["state"] in ("pending", "processing")
    assert cli("cancel", status_url).code == 0
    assert cli("wait", status_url).code == 4


def test_webhook_verify_rejects_a_bad_secret(cli: Cli) -> None:
    result = cli("webhook", "verify", "--secret", "whsec_***not base64***", input=b"{}")
    assert result.code == 2
    assert result.stderr.startswith("asyncreply: error: bad secret")
