"""``--dialect NAME|FILE`` on every HTTP command and on ``check``: the presets and a
declarative dialect from a JSON or TOML file, against the vendor fakes (tests/vendors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncreply_client.cli import build_parser
from asyncreply_client.dialects import PRESETS, DeclarativeDialect
from tests.vendors._base import VendorFake, serving_in_thread
from tests.vendors.fakes import AssemblyAI, Replicate, RunPod

from .conftest import Cli


@pytest.fixture
def runpod() -> Iterator[tuple[VendorFake, str]]:
    fake = RunPod()
    with serving_in_thread(fake) as url:
        yield fake, url


def test_submit_wait_with_a_preset(cli: Cli, runpod: tuple[VendorFake, str]) -> None:
    _, url = runpod
    done = cli(
        "submit", f"{url}/v2/ep-1/run", "--json", '{"input": {}}', "--wait",
        "--dialect", "runpod", "--mode", "poll", "--timeout", "20",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert done.json() == {"answer": 42}


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_dialect_file(cli: Cli, runpod: tuple[VendorFake, str], suffix: str) -> None:
    fake, url = runpod
    spec = dict(PRESETS["runpod"])
    if suffix == ".json":
        text = json.dumps(spec)
    else:
        states = "".join(f'{word} = "{state}"\n' for word, state in spec.pop("states").items())
        text = "".join(f"{key} = {json.dumps(value)}\n" for key, value in spec.items())
        text += "[states]\n" + states
    file = cli.cwd / f"runpod{suffix}"
    file.write_text(text)
    assert (
        DeclarativeDialect.from_file(file).describe()
        == DeclarativeDialect.from_mapping(PRESETS["runpod"]).describe()
    )
    submitted = cli(
        "submit", f"{url}/v2/ep-1/run", "--json", '{"input": {}}', "--dialect", str(file)
    )
    assert submitted.code == 0, submitted.stderr
    status_url = submitted.json()["statusUrl"]
    assert status_url.startswith(f"{url}/v2/ep-1/status/")
    status = cli("status", status_url, "--dialect", str(file))
    assert status.code == 0, status.stderr
    assert status.json()["state"] == "processing"
    cancelled = cli("cancel", status_url, "--dialect", str(file))
    assert cancelled.code == 0, cancelled.stderr
    assert ("POST", status_url.replace(url, "").replace("/status/", "/cancel/")) in fake.requests


def test_a_bad_dialect_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text('{"state": "status", "status_url": "/jobs/all"}')
    done = cli("status", "http://127.0.0.1:9/jobs/1", "--dialect", str(file))
    assert done.code == 2
    assert "status_url: the URL template '/jobs/all' names no field" in done.stderr
    unknown = cli("status", "http://127.0.0.1:9/jobs/1", "--dialect", "nope")
    assert unknown.code == 2 and "replicate" in unknown.stderr


def test_every_http_command_takes_dialect() -> None:
    parser = build_parser()
    for argv in (["submit", "http://x/jobs"], ["status", "http://x/1"], ["wait", "http://x/1"]):
        assert parser.parse_args([*argv, "--dialect", "fal"]).dialect == "fal"


def test_check_with_a_preset(cli: Cli) -> None:
    fake = Replicate()
    with serving_in_thread(fake) as url:
        done = cli(
            "check", f"{url}/v1/predictions", "--json", '{"version": "v1", "input": {}}',
            "--dialect", "replicate", "--format", "json", "--timeout", "10",
        )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["dialect"] == "replicate"
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["submit"]["outcome"] == "pass", checks["submit"]
    assert checks["submit"]["summary"].startswith("HTTP 201 (a running job")
    assert checks["terminal_state"]["outcome"] == "pass"
    assert checks["result"]["outcome"] == "pass"
    assert ("POST", "/v1/predictions") in fake.requests
    assert any(m == "POST" and p.endswith("/cancel") for m, p in fake.requests)
    assert all(m != "DELETE" for m, _ in fake.requests)


def test_check_skips_cancellation_without_a_cancel(cli: Cli) -> None:
    fake = AssemblyAI()
    with serving_in_thread(fake) as url:
        done = cli(
            "check", f"{url}/v2/transcript", "--json", '{"audio_url": "https://a.test/x.mp3"}',
            "--dialect", "assemblyai", "--format", "json", "--timeout", "10",
        )  # fmt: skip
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert checks["cancellation"]["outcome"] == "skipped"
    assert "has no cancel" in checks["cancellation"]["summary"]
    assert all(m != "DELETE" for m, _ in fake.requests)
