"""``start_task``: a task whose first step runs in the caller's step, with the task's own
identity, context and cancellation (native on Python 3.12+, by hand on 3.11)."""

from __future__ import annotations

import asyncio
import contextvars
import sys

import pytest

from reference_server.eager import cancel_all, start_task

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 starts the task a turn later"),
]

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller")


async def test_a_coroutine_that_does_not_wait_ends_in_the_callers_step() -> None:
    seen: list[object] = []

    async def instant() -> int:
        seen.append(asyncio.current_task())
        VAR.set("task")
        return 42

    caller = asyncio.current_task()
    task, ended = start_task(instant(), name="instant")
    assert ended and seen == [task] and seen[0] is not caller
    assert asyncio.current_task() is caller
    assert VAR.get() == "caller"  # the task's context is its own
    assert await task == 42


async def test_a_coroutine_that_waits_carries_on_in_its_task() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[tuple[str, object]] = []

    async def waits() -> str:
        VAR.set("task")
        steps.append(("first", asyncio.current_task()))
        value = await gate
        steps.append(("after", asyncio.current_task()))
        return f"{value} {VAR.get()}"

    task, ended = start_task(waits(), name="waits")
    assert not ended and steps == [("first", task)]
    gate.set_result("opened")
    assert await task == "opened task"
    assert steps == [("first", task), ("after", task)]


@pytest.mark.parametrize("before_first_turn", [True, False])
async def test_cancelling_the_task_cancels_what_its_coroutine_waits_on(
    before_first_turn: bool,
) -> None:
    inner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def waits() -> None:
        try:
            await inner
        finally:
            cleaned.append("finally")

    task, _ = start_task(waits(), name="waits")
    if not before_first_turn:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inner.cancelled() and cleaned == ["finally"]


async def test_a_timeout_in_the_first_step_cancels_the_task_not_the_caller() -> None:
    async def slow() -> str:
        try:
            async with asyncio.timeout(0.001):
                await asyncio.Event().wait()
        except TimeoutError:
            return "timed out"
        return "not reached"

    task, ended = start_task(slow(), name="slow")
    assert not ended
    assert await task == "timed out"


async def test_an_error_in_the_first_step_ends_the_task_with_it() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    task, ended = start_task(fails(), name="fails")
    assert ended
    with pytest.raises(ValueError, match="boom"):
        await task


async def test_cancelled_in_its_first_step_the_task_ends_cancelled() -> None:
    async def cancels_itself() -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        return "returned"

    task, ended = start_task(cancels_itself(), name="self")
    assert ended
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancel_all_ends_a_task_that_absorbed_a_cancel() -> None:
    """A loop whose awaited library swallowed the cancel (as redis-py's asyncio client
    can) goes on; ``cancel_all`` cancels it again until it ends, and retrieves errors."""
    turns = 0

    async def absorbing_loop() -> None:
        nonlocal turns
        while True:
            turns += 1
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                if turns == 1:
                    continue  # the first cancel is swallowed
                raise

    async def failing() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            raise RuntimeError("while cancelled")

    loop_task = asyncio.create_task(absorbing_loop())
    failing_task = asyncio.create_task(failing())
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await asyncio.wait_for(cancel_all([loop_task, failing_task, done], every=0.01), 5)
    assert loop_task.cancelled() and turns == 2
    assert isinstance(failing_task.exception(), RuntimeError)
    assert done.done() and not done.cancelled()
