"""docs/guide.md stays true: its exit-code table, its public names and its self-contained
example match the code."""

from __future__ import annotations

import re
from pathlib import Path

import asyncreply_client
from asyncreply_client import cli, webhooks

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "guide.md").read_text()


def test_exit_code_table_matches_the_cli() -> None:
    table = dict(
        (int(code), meaning) for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", GUIDE, re.M)
    )
    assert set(table) == set(cli.EXIT_CODES)


def test_public_names_in_the_guide_exist() -> None:
    names = set(re.findall(r"`([A-Z][A-Za-z]+)\(", GUIDE)) | set(
        re.findall(r"^\s*[├└]── ([A-Z][A-Za-z]+)", GUIDE, re.M)
    )
    exported = set(asyncreply_client.__all__) | set(webhooks.__all__)
    helpers = {"FakeAsyncAPI", "FakeClock", "RunningReferenceServer", "JobType", "ServerConfig"}
    missing = sorted(n for n in names if n not in exported and n not in helpers)
    assert not missing, missing


def test_the_fake_api_example_runs() -> None:
    section = GUIDE[GUIDE.index("### `FakeAsyncAPI`") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    exec(compile(code.group(1), "guide.md", "exec"), {})
