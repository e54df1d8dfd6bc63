"""Runtime dependencies the client needs for speed as well as for function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sniffio

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_sniffio_is_a_declared_core_dependency() -> None:
    # Without sniffio, httpcore retries a failing import for each lock it creates.
    # (No tomllib: it is not in Python 3.10's standard library.)
    text = PYPROJECT.read_text("utf-8")
    core = re.search(r"^dependencies = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    assert core is not None
    assert re.search(r'^\s*"sniffio>=', core.group(1), re.MULTILINE)


def test_tenacity_is_a_declared_core_dependency() -> None:
    # The engine behind RetryPolicy (asyncreply_client._retry_policy): a core dependency.
    text = PYPROJECT.read_text("utf-8")
    core = re.search(r"^dependencies = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    assert core is not None
    assert re.search(r'^\s*"tenacity>=8\.2', core.group(1), re.MULTILINE)


@pytest.mark.anyio
async def test_sniffio_detects_the_running_event_loop() -> None:
    assert sniffio.current_async_library() == "asyncio"
