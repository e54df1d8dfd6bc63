"""``examples/demo.py`` (``make demo``) runs to completion: server up, job done, result shown."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_runs_and_prints_the_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("asyncreply_demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    # The same flow with a shorter job, so the suite stays fast.
    monkeypatch.setattr(demo, "JOB", {"type": "sleep", "input": {"seconds": 0.05, "steps": 2}})
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "reference server on http://127.0.0.1:" in out
    assert "step 2/2" in out
    assert "result: {'slept': 0.05}" in out
    assert out.rstrip().endswith("server stopped")
