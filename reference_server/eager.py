"""Tasks that start at once: a job handler's first step runs in the step of the code that starts
it, so an instant handler's outcome is recorded before the caller goes on (no loop turn).

Python 3.12 has this built in (``asyncio.Task(..., eager_start=True)``). On 3.11 the first
step is run the same way by hand: inside the new task's context, with the new task as the
loop's current task (so ``asyncio.current_task()``, ``asyncio.timeout()`` and cancellation
see the task, not the caller), and the task carries on from where that step stopped. On 3.10
the task simply starts in the next loop turn.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import sys
from collections.abc import Awaitable, Coroutine, Generator, Iterable
from typing import Any, TypeVar

__all__ = ["StepSuspended", "cancel_all", "finish_now", "start_task"]

T = TypeVar("T")


class StepSuspended(RuntimeError):
    """An awaitable given to :func:`finish_now` waited for something (it was closed)."""


def finish_now(step: Awaitable[T]) -> T:
    """The value of ``step``, run to its end on the caller's thread without a loop.

    For calls that never suspend (a memory or SQLite store's), from code that cannot await.

    Raises:
        StepSuspended: ``step`` waited for something (a store that waits for a server).

    Example:
        >>> async def two() -> int:
        ...     return 2
        >>> finish_now(two())
        2
    """
    coro = step.__await__()
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise StepSuspended("the call waited for something: await it on a loop instead")


def start_task(coro: Coroutine[Any, Any, T], *, name: str) -> tuple[asyncio.Task[T], bool]:
    """Run ``coro`` as a task whose first step runs now, in the caller's step.

    Returns:
        The task, and whether ``coro`` already ended in that first step (it returned or
        raised without waiting for anything). On 3.11 such a task is marked done in the next
        loop turn; the coroutine's own work is all done by now.
    """
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        eager = asyncio.Task(coro, loop=loop, name=name, eager_start=True)
        return eager, eager.done()
    if sys.version_info < (3, 11):  # pragma: no cover - the suite runs on 3.11 and later
        return loop.create_task(coro, name=name), False
    context = contextvars.copy_context()
    resume = _Resume(coro)
    task: asyncio.Task[T] = loop.create_task(resume, name=name, context=context)
    caller = asyncio.current_task(loop)
    if caller is not None:
        asyncio.tasks._leave_task(loop, caller)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(resume.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if caller is not None:
            asyncio.tasks._enter_task(loop, caller)
    return task, resume.ended


class _Resume(collections.abc.Coroutine):  # type: ignore[type-arg]
    """The coroutine a 3.11 task drives: ``coro`` after its first step, which
    :meth:`first_step` ran (the task's first step hands on what that step yielded, or its
    outcome)."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        # What the first step did: ("yield", value), ("return", value) or ("raise", exc).
        self._first: tuple[str, Any] | None = None
        self.ended = False

    def first_step(self) -> None:
        try:
            self._first = ("yield", self._coro.send(None))
        except StopIteration as stop:
            self._first, self.ended = ("return", stop.value), True
        except BaseException as exc:
            self._first, self.ended = ("raise", exc), True

    def send(self, value: Any) -> Any:
        first, self._first = self._first, None
        if first is None:
            return self._coro.send(value)
        kind, outcome = first
        if kind == "yield":
            return outcome  # the future the coroutine waits on: the task waits on it now
        if kind == "return":
            raise StopIteration(outcome)
        raise outcome

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if isinstance(typ, BaseException):
            exc = typ
        elif isinstance(val, BaseException):
            exc = val
        else:
            exc = typ() if val is None else typ(val)
        first, self._first = self._first, None
        if first is not None:
            kind, outcome = first
            if kind != "yield":
                raise exc  # the coroutine is over: the task ends with what it was thrown
            if isinstance(exc, asyncio.CancelledError) and isinstance(outcome, asyncio.Future):
                outcome.cancel()  # what a task's cancel() does to the future it waits on
        return self._coro.throw(exc)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _Resume:
        return self

    def __next__(self) -> Any:
        return self.send(None)


async def cancel_all(tasks: Iterable[asyncio.Task[Any]], *, every: float = 0.1) -> None:
    """Cancel ``tasks`` and wait for them to end, cancelling again every ``every`` seconds
    while one still runs: a cancel can be absorbed by a library awaited in a task (redis-py's
    asyncio client does, at times), which then goes on as if nothing happened, and a loop
    in it would never end. Their outcomes are not raised.

    Example:
        >>> async def main() -> bool:
        ...     task = asyncio.create_task(asyncio.sleep(60))
        ...     await cancel_all([task])
        ...     return task.cancelled()
        >>> asyncio.run(main())
        True
    """
    every_task = list(tasks)
    pending = {task for task in every_task if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
    for task in every_task:
        if not task.cancelled():
            task.exception()  # retrieved, as gather(return_exceptions=True) would
