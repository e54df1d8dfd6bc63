"""The job state machine as data: one table, every change through it, checked by property.

As h11 checks its connection states: random sequences of operations (submit, handler
outcomes, cancel, expire, restart) drive a real :class:`JobManager`; every state change it
makes must be a pair of :data:`TRANSITIONS`, chain from the previous one, and stop at a
terminal state. A change outside the table raises :class:`IllegalTransition` (a bug).
"""

from __future__ import annotations

import ast
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_server
from reference_server import JobContext, JobFailure, JobState, ServerConfig
from reference_server import job_runs as job_runs_module
from reference_server import jobs as jobs_module
from reference_server.jobs import JobManager
from reference_server.records import JobRecord
from reference_server.store import SqliteStore
from reference_server.transitions import TRANSITIONS, IllegalTransition, advance, allowed

STATES = list(JobState)


def _job(state: JobState) -> JobRecord:
    return JobRecord(
        id="j", seq=1, owner="u", type="t", input={}, callback=None, state=state,
        created_at=0.0, updated_at=0.0,
    )  # fmt: skip


@pytest.mark.parametrize("source", STATES)
@pytest.mark.parametrize("target", STATES)
def test_advance_allows_exactly_the_table(source: JobState, target: JobState) -> None:
    job = _job(source)
    if (source, target) in TRANSITIONS:
        assert advance(job, target) is source
        assert job.state is target
        assert allowed(source, target)
    else:
        with pytest.raises(IllegalTransition) as info:
            advance(job, target)
        assert job.state is source
        assert info.value.source is source and info.value.target is target
        assert isinstance(info.value, AssertionError)  # a bug, not a client error


def test_terminal_states_have_no_way_out() -> None:
    for source, _target in TRANSITIONS:
        assert not source.is_terminal
    assert {s for s in STATES if s.is_terminal} == {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
    }


def test_no_code_assigns_a_job_state_outside_the_table() -> None:
    """Every ``<x>.state = …`` in the server lives in transitions.py (the one gate)."""
    package = Path(reference_server.__file__).parent
    offenders = []
    for path in sorted(package.glob("*.py")):
        if path.name == "transitions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[Any] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state":
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# ------------------------------------------------------------------------ property test
OUTCOMES = ["ok", "fail", "retry", "crash", "self-cancel"]
Op = tuple[str, int, str]
operations = st.lists(
    st.tuples(
        st.sampled_from(["submit", "finish", "cancel", "expire", "restart"]),
        st.integers(min_value=0, max_value=5),
        st.sampled_from(OUTCOMES),
    ),
    min_size=1,
    max_size=30,
)


class Harness:
    """A JobManager over a SQLite file whose ``ctl`` handler waits for the test's verdict."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.config = ServerConfig(
            workers=2, retry_backoff=0.0, cancel_grace=0.0, max_attempts=2, cleanup_interval=3600
        )
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.ids: list[str] = []
        self.manager: JobManager | None = None

    async def ctl(self, ctx: JobContext, input: dict[str, Any]) -> dict[str, Any]:
        verdict: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[ctx.job_id] = verdict
        try:
            outcome = await verdict
        finally:
            self.waiting.pop(ctx.job_id, None)
        if outcome == "fail":
            raise JobFailure("failed", "as asked")
        if outcome == "retry":
            raise JobFailure("flaky", "as asked", retryable=True)
        if outcome == "crash":
            raise RuntimeError("handler bug")
        if outcome == "self-cancel":
            ctx.cancelled.set()
            ctx.raise_if_cancelled()
        return {"ok": True}

    async def start(self) -> JobManager:
        self.manager = JobManager(self.config, {"ctl": self.ctl}, SqliteStore(self.path))
        await self.manager.start()
        return self.manager

    async def settle(self) -> None:
        # No timers are involved (zero backoff and grace): ready callbacks run in order.
        for _ in range(40):
            await asyncio.sleep(0)

    async def apply(self, op: Op) -> None:
        manager = self.manager
        assert manager is not None
        name, index, outcome = op
        job_id = self.ids[index % len(self.ids)] if self.ids else None
        if name == "submit" or job_id is None:
            self.ids.append((await manager.submit(owner="u", type_name="ctl", input={})).id)
        elif name == "finish":
            verdict = self.waiting.get(job_id)
            if verdict is not None and not verdict.done():
                verdict.set_result(outcome)
        elif name == "cancel":
            job = await manager.get(job_id)
            if job is not None:
                was_final = job.state.is_terminal
                assert await manager.cancel(job) is (not was_final)
        elif name == "expire":
            await manager.expire(job_id)
        else:
            await manager.stop()
            self.waiting.clear()
            await self.start()
        await self.settle()


async def _run(ops: list[Op], path: str, seen: list[tuple[str, JobState, JobState]]) -> None:
    harness = Harness(path)
    manager = await harness.start()
    try:
        for op in ops:
            await harness.apply(op)
            manager = harness.manager
            assert manager is not None
            assert manager.scheduler.workers_alive()
    finally:
        assert harness.manager is not None
        await harness.manager.stop()


@settings(max_examples=60, deadline=None)
@given(ops=operations)
def test_random_operations_only_take_allowed_transitions(ops: list[Op]) -> None:
    seen: list[tuple[str, JobState, JobState]] = []
    real_advance = jobs_module.advance

    def recording(job: JobRecord, target: JobState) -> JobState:
        source = job.state
        seen.append((job.id, source, target))
        return real_advance(job, target)

    # Every module of the manager that moves a job (submission and cancel, and the runs).
    jobs_module.advance = job_runs_module.advance = recording  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_run(ops, str(Path(tmp) / "jobs.sqlite3"), seen))
    finally:
        jobs_module.advance = job_runs_module.advance = real_advance  # type: ignore[assignment]

    current: dict[str, JobState] = {}
    for job_id, source, target in seen:
        assert (source, target) in TRANSITIONS, (source, target)
        assert current.get(job_id, JobState.PENDING) is source
        assert not source.is_terminal
        current[job_id] = target
