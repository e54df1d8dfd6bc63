"""Issue 13's command-line items, through the real entry point (subprocess): ``retry``,
``check`` against a server that is down and with every dialect, ``webhook verify`` secrets from
files and the environment, ``serve``'s name and busy port, and resuming after Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncreply_client.cli import build_parser
from asyncreply_client.dialects import DIALECT_NAMES, dialect_from
from asyncreply_client.pytest_plugin import RunningReferenceServer
from asyncreply_client.webhooks import sign

from .conftest import CLI_TIMEOUT, Cli

ECHO = json.dumps({"type": "echo", "input": {"hello": "world"}})
SLOW = json.dumps({"type": "sleep", "input": {"seconds": 30, "steps": 30}})
FLAKY = json.dumps({"type": "fail", "input": {"code": "flaky", "message": "try again",
                                                "retryable": True}})  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- retry ----------------------------------------------------------------------------------


@pytest.mark.reference_server_config(max_attempts=1)
def test_retry_posts_the_retry_url_and_prints_the_new_job(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    failed = cli("submit", reference_server.url("/jobs"), "--json", FLAKY, "--wait")
    assert failed.code == 3, failed.stderr
    first = _json_lines(failed.stderr)[0]["statusUrl"]
    retried = cli("retry", first)
    assert retried.code == 0, retried.stderr
    summary = retried.json()
    assert summary["statusUrl"] != first and summary["id"] in summary["statusUrl"]
    jobs = {job.id: job for job in reference_server.admin.jobs()}
    assert summary["id"] in jobs and len(jobs) == 2
    # --wait follows the new job like submit does: announced, then its outcome (it fails again).
    again = cli("retry", first, "--wait", "--idempotency-key", "retry-1")
    assert again.code == 3
    announced = _json_lines(again.stderr)[0]
    assert announced["event"] == "retried" and announced["statusUrl"] != first
    assert again.stderr.splitlines()[-1] == "asyncreply: error: job failed: flaky: try again"


def test_retry_of_a_job_that_cannot_be_retried_is_an_error(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    url = cli("submit", reference_server.url("/jobs"), "--json", ECHO).json()["statusUrl"]
    assert cli("wait", url).code == 0
    result = cli("retry", url)
    assert result.code == 1
    assert result.stderr.startswith("asyncreply: error: the job cannot be retried"), result.stderr
    unknown = cli("retry", reference_server.url("/jobs/nope"))
    assert unknown.code == 5


# -- check ----------------------------------------------------------------------------------


def test_check_against_a_server_that_is_down_exits_8(cli: Cli) -> None:
    url = f"http://127.0.0.1:{_free_port()}/jobs"
    result = cli("check", url, "--json", ECHO, "--timeout", "2", "--http-timeout", "2")
    assert result.code == 8, result.stdout + result.stderr
    assert result.stderr.startswith("asyncreply: error: transport error")
    assert "submit" in result.stdout  # the report is still printed


def test_check_offers_every_dialect() -> None:
    assert set(DIALECT_NAMES) == {
        *("auto", "reference", "status-code", "microsoft", "google", "arm"),
        *("replicate", "fal", "runpod", "openai-batch", "assemblyai"),
    }
    parser = build_parser()
    for name in DIALECT_NAMES:
        args = parser.parse_args(["check", "http://x.test/jobs", "--dialect", name])
        assert args.dialect == name
        assert dialect_from(name).name == name


@pytest.mark.parametrize("dialect", ["microsoft", "arm"])
def test_check_runs_with_a_vendor_dialect(
    cli: Cli, reference_server: RunningReferenceServer, dialect: str
) -> None:
    body = json.dumps({"type": "sleep", "input": {"seconds": 0.05, "steps": 2}})
    result = cli(
        "check", reference_server.url("/jobs"), "--json", body, "--dialect", dialect,
        "--format", "json", "--timeout", "5",
    )  # fmt: skip
    assert result.code in (0, 9), result.stderr
    report = result.json()
    assert report["dialect"] == dialect
    assert report["checks"][0]["name"] == "submit"


# -- webhook verify -------------------------------------------------------------------------


def _signed(secret: str) -> tuple[bytes, list[str]]:
    body = json.dumps({"type": "job.completed", "jobId": "j1", "data": {}}).encode()
    headers = sign(body, secret, msg_id="msg_1", timestamp=int(time.time()))
    flags: list[str] = []
    for name, value in headers.items():
        flags += ["-H", f"{name}: {value}"]
    return body, flags


def test_webhook_verify_reads_the_secret_from_a_file(cli: Cli, tmp_path: Path) -> None:
    body, flags = _signed("from-a-file")
    (tmp_path / "secrets").write_text("old-secret\n\n  from-a-file  \n")
    result = cli("webhook", "verify", "--secret-file", "secrets", *flags, input=body)
    assert result.code == 0, result.stderr
    assert result.json()["job_id"] == "j1"
    (tmp_path / "empty").write_text("\n")
    empty = cli("webhook", "verify", "--secret-file", "empty", *flags, input=body)
    assert empty.code == 2 and "holds no secret" in empty.stderr
    missing = cli("webhook", "verify", "--secret-file", "nope", *flags, input=body)
    assert missing.code == 2 and "cannot read --secret-file nope" in missing.stderr


def test_webhook_verify_reads_the_secret_from_the_environment(cli: Cli) -> None:
    body, flags = _signed("from-env")
    default = cli(
        "webhook", "verify", *flags, input=body, env={"ASYNCREPLY_WEBHOOK_SECRET": "from-env"}
    )
    assert default.code == 0, default.stderr
    named = cli(
        "webhook", "verify", "--secret-env", "HOOK_KEY", *flags, input=body,
        env={"HOOK_KEY": "rotated\nfrom-env"},
    )  # fmt: skip
    assert named.code == 0, named.stderr
    wrong = cli("webhook", "verify", *flags, input=body, env={"ASYNCREPLY_WEBHOOK_SECRET": "x"})
    assert wrong.code == 10
    unset = cli("webhook", "verify", "--secret-env", "HOOK_KEY", *flags, input=body)
    assert unset.code == 2 and "HOOK_KEY" in unset.stderr
    none = cli("webhook", "verify", *flags, input=body)
    assert none.code == 2
    assert "no signing secret" in none.stderr and "ASYNCREPLY_WEBHOOK_SECRET" in none.stderr


# -- serve ----------------------------------------------------------------------------------


def test_serve_help_names_asyncreply_serve(cli: Cli) -> None:
    helped = cli("serve", "--help")
    assert helped.code == 0
    assert helped.stdout.startswith("usage: asyncreply serve ")
    assert "asyncreply-server" not in helped.stdout
    bad = cli("serve", "--no-such-flag")
    assert bad.code == 2 and bad.stderr.startswith("usage: asyncreply serve ")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_busy_port_says_so(cli: Cli, busy_port: int) -> None:
    result = cli("serve", "--host", "127.0.0.1", "--port", str(busy_port))
    assert result.code == 1
    assert f"asyncreply: error: port {busy_port} is in use" in result.stderr
    assert "Traceback" not in result.stderr


# -- interruption ---------------------------------------------------------------------------


def test_ctrl_c_during_a_wait_leaves_the_url_to_resume(
    cli: Cli, reference_server: RunningReferenceServer
) -> None:
    process = subprocess.Popen(
        [*cli.command, "submit", reference_server.url("/jobs"), "--json", SLOW, "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env(),
        cwd=cli.cwd,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # the job exists: its URL arrives before the result
        announced = json.loads(first)
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=CLI_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    message = rest.decode()
    assert message.startswith("asyncreply: error: interrupted")
    assert f"asyncreply wait {announced['statusUrl']}" in message
    resumed = cli("status", announced["statusUrl"])
    assert resumed.json()["state"] in ("pending", "processing")
