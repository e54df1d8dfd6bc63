"""Smoke tests of ``benchmarks/``: each benchmark's ``main`` runs in its tiniest
configuration against one shared reference server (a child process) and writes its JSON.
No timing is asserted: figures belong in the reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks import detection_lag, fanout, instant, overhead, scale_out, scaling, sse_fanout
from benchmarks._harness import running_server

Main = Callable[[Sequence[str] | None], dict[str, Any]]

CASES: list[tuple[str, Main, list[str]]] = [
    ("detection_lag", detection_lag.main, ["--rounds", "1", "--durations", "0.05"]),
    ("overhead", overhead.main, ["--blocks", "2", "--calls", "5"]),
    ("fanout", fanout.main, ["--operations", "20", "--connections", "4", "--job-seconds", "0.02"]),
    ("sse_fanout", sse_fanout.main, ["--operations", "10", "--job-seconds", "0.2"]),
    (
        "scaling",
        scaling.main,
        [
            *("--quick", "--sizes", "3,6", "--traced-up-to", "3"),
            *("--job-seconds", "0.02", "--warm-up", "2"),
        ],
    ),
]
#: Benchmarks that start servers of their own (they need several configurations).
OWN_SERVERS: list[tuple[str, Main, list[str]]] = [
    ("instant", instant.main, ["--rounds", "2", "--modes", "auto"]),
]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with running_server("--workers", "64") as server:
        yield server.base_url


@pytest.mark.parametrize(("name", "main", "args"), CASES, ids=[c[0] for c in CASES])
def test_benchmark_runs_and_writes_json(
    name: str,
    main: Main,
    args: list[str],
    server_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    returned = main([*args, "--server-url", server_url, "--results-dir", str(tmp_path)])
    written = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    assert written["benchmark"] == name
    assert written["table"] == returned["table"]
    assert written["table"] in capsys.readouterr().out
    if "all_completed" in written:  # the fan-outs: every operation completed, no error
        assert written["all_completed"]
        assert written["run"]["errors"] == {}
        assert written["traced_run"]["errors"] == {}
    if name == "scaling":
        assert [size["operations"] for size in written["sizes"]] == [3, 6]
        assert written["verdicts"]["no_errors"]
        assert written["sizes"][0]["traced_run"]["peak_traced_kb_per_op"] > 0
        assert written["sizes"][0]["warm_traced_run"]["peak_traced_kb_per_op"] > 0
        assert written["sizes"][0]["warm_traced_run"]["errors"] == {}
        floor = written["sizes"][0]["raw_httpx_traced_run"]  # plain httpx, the same requests
        assert floor["errors"] == {} and floor["peak_traced_kb_per_op"] > 0
        assert floor["requests_by_kind_per_op"]["submit"] == 1
        assert written["sizes"][1]["traced_run"] is None
        assert written["sizes"][1]["warm_traced_run"] is None
        assert written["sizes"][1]["raw_httpx_traced_run"] is None


@pytest.mark.parametrize(("name", "main", "args"), OWN_SERVERS, ids=[c[0] for c in OWN_SERVERS])
def test_a_benchmark_with_its_own_servers_runs_and_writes_json(
    name: str, main: Main, args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    returned = main([*args, "--results-dir", str(tmp_path)])
    written = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    assert written["table"] == returned["table"]
    assert written["table"] in capsys.readouterr().out
    cells = {(c["server"], c["client"]) for c in written["cells"]}
    assert cells == {(s, c) for s in ("inline", "redirect") for c in ("sync", "async")}
    assert all(c["requests_per_run"] >= 1 for c in written["cells"])


def test_a_child_server_is_started_and_stopped_when_no_url_is_given(tmp_path: Path) -> None:
    result = overhead.main(["--blocks", "1", "--calls", "2", "--results-dir", str(tmp_path)])
    assert (tmp_path / "overhead.json").is_file()
    assert result["config"] == {"blocks": 1, "calls_per_block": 2}


def test_scale_out_measures_every_store_and_three_instances(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--jobs", "6", "--concurrency", "2", "--redis-url", redis_url]
    returned = scale_out.main([*args, "--results-dir", str(tmp_path)])
    written = json.loads((tmp_path / "scale_out.json").read_text(encoding="utf-8"))
    assert written["table"] == returned["table"]
    assert written["table"] in capsys.readouterr().out
    assert set(written["cells"]) == {"memory", "sqlite", "redis x1", "redis x3"}
    assert all(c["completed"] == 6 and c["errors"] == 0 for c in written["cells"].values())


def test_redis_blocking_measures_loop_lag_and_request_latency(
    redis_url: str, tmp_path: Path
) -> None:
    from benchmarks import redis_blocking

    args = ["--jobs", "6", "--concurrency", "2", "--redis-url", redis_url]
    written = redis_blocking.main([*args, "--results-dir", str(tmp_path)])
    assert set(written["cells"]) == {"after/memory/c2", "after/redis/c2"}
    for cell in written["cells"].values():
        assert (cell["completed"], cell["errors"]) == (6, 0)
        assert cell["lag_samples"] > 0 and cell["read_p99_ms"] > 0
    assert (tmp_path / "redis_blocking.json").is_file()
