"""Hostile input: deep nesting, non-finite numbers, out-of-range dates, damaged stored rows.

Each case is refused with the documented error *before* any job exists, the server keeps
serving, and (with the SQLite store) it still restarts and serves everyone's jobs.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_server import ServerConfig
from reference_server.job_types import BUILTIN_HANDLERS
from reference_server.jobs import JobManager, JobRejected
from reference_server.store import MemoryStore
from reference_server.wire import exceeds_depth, parse_json

from .conftest import Server, ServerFactory, assert_healthy, error_code

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}
BOTH_STORES = pytest.mark.parametrize("store", ["memory", "sqlite"])


def nested(depth: int) -> str:
    """A JSON text of ``depth`` nested arrays around a number (``[[1]]`` has depth 2)."""
    return "[" * depth + "1" + "]" * depth


def echo_body(input_text: str) -> bytes:
    return ('{"type": "echo", "input": {"x": ' + input_text + "}}").encode()


async def post_raw(srv: Server, body: bytes) -> Any:
    return await srv.post("/jobs", content=body, headers=JSON)


async def assert_no_jobs(srv: Server) -> None:
    listing = await srv.get("/jobs")
    assert listing.status_code == 200, listing.text
    assert listing.json()["jobs"] == []


# ------------------------------------------------------------------------ nesting depth
@BOTH_STORES
@pytest.mark.parametrize("depth", [969, 5000, 200_000])
async def test_deep_nesting_is_refused_at_parse(make_server: ServerFactory, depth: int) -> None:
    srv = await make_server(max_body_bytes=1 << 20)
    response = await post_raw(srv, echo_body(nested(depth)))
    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_json"
    await assert_no_jobs(srv)
    await assert_healthy(srv)


@BOTH_STORES
async def test_depth_limit_is_exact(make_server: ServerFactory) -> None:
    srv = await make_server(max_json_depth=10)
    # The body adds two levels around the array: {"input": {"x": [...]}}.
    ok = await post_raw(srv, echo_body(nested(8)))
    assert ok.status_code == 202, ok.text
    too_deep = await post_raw(srv, echo_body(nested(9)))
    assert too_deep.status_code == 400
    assert error_code(too_deep) == "invalid_json"


async def test_deepest_accepted_input_survives_a_restart(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    path = str(tmp_path / "deep.sqlite3")
    first = await make_server(store="sqlite", sqlite_path=path)
    # The deepest input the default limit (64) lets through: 62 arrays inside {"x": …}.
    job_id = (await post_raw(first, echo_body(nested(62)))).json()["jobId"]
    assert (await first.wait_terminal(job_id)).status_code == 303
    assert first.stop is not None
    await first.stop()

    second = await make_server(store="sqlite", sqlite_path=path)
    assert (await second.get(f"/jobs/{job_id}")).status_code == 303
    result = (await second.get(f"/jobs/{job_id}/result")).json()
    assert json.dumps(result["x"], separators=(",", ":")) == nested(62)


def _reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=30,
)


@given(value=_json_values, limit=st.integers(min_value=1, max_value=12))
def test_exceeds_depth_matches_the_recursive_definition(value: Any, limit: int) -> None:
    assert exceeds_depth(value, limit) == (_reference_depth(value) > limit)


# ------------------------------------------------------------------------ non-finite numbers
@BOTH_STORES
@pytest.mark.parametrize(
    "number", ["1e99999", "-1e99999", "1E400", "NaN", "Infinity", "-Infinity", "-NaN"]
)
async def test_non_finite_numbers_are_refused(make_server: ServerFactory, number: str) -> None:
    srv = await make_server()
    for body in (echo_body(number), f'{{"type": "sleep", "input": {{"seconds": {number}}}}}'):
        response = await post_raw(srv, body.encode() if isinstance(body, str) else body)
        assert response.status_code == 400, (body, response.text)
        assert error_code(response) == "invalid_json"
    await assert_no_jobs(srv)


@settings(max_examples=50, deadline=None)
@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_finite_numbers_parse_exactly(number: float) -> None:
    text = json.dumps({"type": "echo", "input": {"x": number}})
    assert parse_json(text.encode(), max_depth=64)["input"]["x"] == number
    assert math.isfinite(number)


# ------------------------------------------------------------------------ dates
@BOTH_STORES
@pytest.mark.parametrize(
    "not_before",
    [
        "0001-01-01T00:00:00+00:01",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",
        "2999-01-01T00:00:00Z",
    ],
)
async def test_out_of_range_not_before_is_refused_before_any_job_exists(
    make_server: ServerFactory, not_before: str
) -> None:
    srv = await make_server()
    response = await srv.post("/jobs", json={"type": "echo", "notBefore": not_before})
    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_input"
    # No ghost job: the user's listing answers, empty.
    await assert_no_jobs(srv)
    assert srv.admin.jobs() == []
    await assert_healthy(srv)


@BOTH_STORES
async def test_a_past_not_before_in_range_runs_now(make_server: ServerFactory) -> None:
    srv = await make_server()
    response = await srv.post(
        "/jobs", json={"type": "echo", "input": {"a": 1}, "notBefore": "1970-01-01T00:00:00Z"}
    )
    assert response.status_code == 202, response.text
    final = await srv.wait_terminal(response.json()["jobId"])
    assert final.status_code == 303
    assert final.json()["notBefore"] == "1970-01-01T00:00:00.000Z"


async def test_listing_survives_a_job_that_does_not_render(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await make_server(mode_="async")
    good = await srv.submit_ok("gate", {"key": "good"})
    bad = await srv.submit_ok("gate", {"key": "bad"})
    await srv.gates.wait_started("bad")
    # Forge what validation now prevents: a job whose times cannot be rendered.
    srv.admin._state.manager._jobs[bad].not_before = -1e15
    with caplog.at_level(logging.ERROR, logger="reference_server"):
        listing = await srv.get("/jobs")
    assert listing.status_code == 200, listing.text
    docs = {doc["jobId"]: doc for doc in listing.json()["jobs"]}
    assert docs[bad] == {"jobId": bad, "type": "gate", "status": "processing"}
    assert docs[good]["statusUrl"] == f"/jobs/{good}"
    assert any(bad in rec.getMessage() for rec in caplog.records)


async def test_a_job_that_does_not_render_is_never_stored() -> None:
    """Render before commit: the manager refuses a job it could not render, leaving nothing."""
    manager = JobManager(ServerConfig(), BUILTIN_HANDLERS, MemoryStore())
    await manager.start()
    try:
        with pytest.raises(JobRejected):
            await manager.submit(owner="alice", type_name="echo", input={}, not_before=-1e15)
        assert manager.all_jobs() == []
        page, _ = await manager.list_jobs("alice", state=None, limit=10, before_seq=None)
        assert page == []
        job = await manager.submit(owner="alice", type_name="echo", input={})
        assert job.seq == 1  # the refused job used no sequence number either
    finally:
        await manager.stop()


# ------------------------------------------------------------------------ damaged rows
def _damage(path: str, rows: dict[str, str], event_rows: dict[str, str]) -> None:
    db = sqlite3.connect(path)
    with db:
        for job_id, data in rows.items():
            db.execute("INSERT INTO jobs (id, seq, data) VALUES (?, ?, ?)", (job_id, 999, data))
        for job_id, data in event_rows.items():
            db.execute(
                "INSERT INTO events (job_id, id, event, data) VALUES (?, ?, ?, ?)",
                (job_id, 999_999, "status", data),
            )
    db.close()


async def test_sqlite_open_quarantines_rows_that_do_not_load(
    make_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "damaged.sqlite3")
    first = await make_server(store="sqlite", sqlite_path=path)
    done = await first.submit_ok("echo", {"kept": True})
    assert (await first.wait_terminal(done)).status_code == 303
    assert first.stop is not None
    await first.stop()

    good_row = sqlite3.connect(path).execute("SELECT data FROM jobs WHERE id = ?", (done,))
    template = json.loads(good_row.fetchone()[0])
    unrenderable = dict(template, id="unrenderable", not_before=-1e15, seq=1000)
    _damage(
        path,
        {
            "deep": '{"id": "deep", "input": ' + nested(5000) + "}",
            "garbage": "not json at all",
            "badstate": json.dumps(dict(template, id="badstate", state="exploded")),
            "unrenderable": json.dumps(unrenderable),
        },
        {done: "{broken"},
    )
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO tombstones VALUES ('gone', 'alice', 'not a time')")
        db.execute("INSERT INTO idempotency VALUES ('alice', 'k1', 'h', 'x', 'soon', 'later')")
    db.close()

    with caplog.at_level(logging.ERROR):
        second = await make_server(store="sqlite", sqlite_path=path)
        listing = await second.get("/jobs")
    assert listing.status_code == 200, listing.text
    assert [doc["jobId"] for doc in listing.json()["jobs"]] == [done]
    assert (await second.get(f"/jobs/{done}/result")).json() == {"kept": True}
    await assert_healthy(second)
    quarantined = {
        row[0] for row in sqlite3.connect(path).execute("SELECT row_key FROM quarantine").fetchall()
    }
    assert quarantined == {
        "deep",
        "garbage",
        "badstate",
        "unrenderable",
        f"{done}/999999",
        "gone",
        "alice/k1",
    }
    # The sweep (which reads every tombstone and key) still runs cleanly.
    second.admin.sweep()
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    for key in ("deep", "garbage", "badstate", "unrenderable"):
        assert key in logged
