"""The worker pool: when pending jobs run, and the handler tasks while they do.

A pending job is queued at once or, with a ``run_at`` time (``notBefore``, retry backoff),
by a loop timer; ``workers`` tasks take jobs off the queue one at a time. At most
``workers`` jobs run at once: each run holds one of that many slots, whether a worker runs
it or a held submission has it run at once (:meth:`Scheduler.run_now`, when a slot is free
and nothing is queued before it). Stopping a running handler first sets its
cancellation signal and cancels its task only after a grace period. Nothing here decides a
job's state: the job manager does (see ``transitions.py``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .eager import start_task

__all__ = ["Scheduler"]


@dataclass
class _Run:
    """Per-job in-process run state (never persisted)."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None = None
    kill_timer: asyncio.TimerHandle | None = None


class Scheduler:
    """Queue, timers and worker tasks of one server."""

    def __init__(self, clock: Callable[[], float], run: Callable[[str], Awaitable[None]]) -> None:
        self._clock = clock
        self._run = run
        self._runs: dict[str, _Run] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Runs holding a slot now (at most ``_slots``), and the workers waiting for one.
        self._slots = 0
        self._busy = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        #: Runs started by :meth:`run_now` that are still going.
        self._direct: set[asyncio.Task[None]] = set()
        self.closing = False

    def start(self, workers: int) -> None:
        """Create the queue (jobs may be scheduled from now on) and start the workers."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self.closing = False
        self._slots, self._busy = workers, 0
        self._slot_waiters.clear()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"asyncreply-worker-{i}")
            for i in range(workers)
        ]

    async def stop(self) -> None:
        """Cancel timers, running handlers and workers, and wait for them to end."""
        self.closing = True
        tasks: list[asyncio.Task[Any]] = [*self._workers, *self._direct]
        for run in self._runs.values():
            for timer in (run.timer, run.kill_timer):
                if timer is not None:
                    timer.cancel()
            if run.task is not None:
                tasks.append(run.task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []

    def workers_alive(self) -> bool:
        """Whether every worker task is still running (a worker dies only on a bug)."""
        return bool(self._workers) and all(not w.done() for w in self._workers)

    def running(self) -> list[str]:
        """The jobs whose handler runs here now."""
        return [
            job_id
            for job_id, run in self._runs.items()
            if run.task is not None and not run.task.done()
        ]

    def schedule(self, job_id: str, run_at: float | None) -> None:
        """Queue a job now, or when ``run_at`` comes."""
        assert self._loop is not None and self._queue is not None
        run = self._get(job_id)
        if run.timer is not None:
            run.timer.cancel()
            run.timer = None
        delay = (run_at - self._clock()) if run_at is not None else 0.0
        if delay > 0:
            run.timer = self._loop.call_later(delay, self._enqueue, job_id)
        else:
            self._queue.put_nowait(job_id)

    def run_now(self, job_id: str) -> bool:
        """Run ``job_id`` at once, if a slot is free and no queued job waits for one; else
        return ``False`` (queue it with :meth:`schedule`).

        The run is a worker's (the same call, holding a slot until it ends), started in the
        caller's step: a handler that does not wait for anything has ended, and its outcome
        is recorded, when this returns. What follows its first wait runs in a task of its
        own. A held submission runs its job so (``Prefer: wait``): no queue, no worker's
        turn, and its answer can go out in the same step.
        """
        if (
            self.closing
            or self._queue is None
            or self._busy >= self._slots
            or self._slot_waiters
            or not self._queue.empty()
        ):
            return False
        self._busy += 1
        task, ended = start_task(self._run_in_slot(job_id), name=f"asyncreply-run-{job_id}")
        if not ended:
            self._direct.add(task)
            task.add_done_callback(self._direct.discard)
        return True

    async def _run_in_slot(self, job_id: str) -> None:
        try:
            await self._run(job_id)
        finally:
            self.release()

    def release(self) -> None:
        """A run ended: its slot goes to the first worker waiting for one, or is free."""
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: still busy
                return
        self._busy -= 1

    async def _acquire(self) -> None:
        if self._busy < self._slots and not self._slot_waiters:
            self._busy += 1
            return
        assert self._loop is not None
        waiter = self._loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as it was cancelled: pass it on
            raise

    def begin(self, job_id: str) -> asyncio.Event:
        """A fresh cancellation signal for a new attempt of ``job_id``."""
        run = self._get(job_id)
        run.cancel = asyncio.Event()
        return run.cancel

    def attach(self, job_id: str, task: asyncio.Task[Any]) -> None:
        """Remember the task running ``job_id``'s handler."""
        self._get(job_id).task = task

    def detach(self, job_id: str, task: asyncio.Task[Any] | None = None) -> None:
        """The handler task of ``job_id`` ended (``task``: only if that is the one attached,
        never a later attempt's)."""
        run = self._runs.get(job_id)
        if run is None or (task is not None and run.task is not task):
            return
        run.task = None
        if run.kill_timer is not None:
            run.kill_timer.cancel()
            run.kill_timer = None

    def stop_running(self, job_id: str, *, grace: float) -> None:
        """Signal a running handler to stop; cancel its task after ``grace`` seconds."""
        run = self._runs.get(job_id)
        if run is None:
            return
        if run.timer is not None:
            run.timer.cancel()
            run.timer = None
        run.cancel.set()
        task = run.task
        if task is not None and not task.done():
            if grace <= 0:
                task.cancel()
            elif self._loop is not None and run.kill_timer is None:
                run.kill_timer = self._loop.call_later(grace, task.cancel)

    def forget(self, job_id: str) -> None:
        """Stop ``job_id`` at once and drop its run state."""
        self.stop_running(job_id, grace=0)
        self._runs.pop(job_id, None)

    def clear(self) -> None:
        """Stop every handler at once and drop all run state."""
        for job_id in list(self._runs):
            self.forget(job_id)

    def _get(self, job_id: str) -> _Run:
        run = self._runs.get(job_id)
        if run is None:
            run = self._runs[job_id] = _Run()
        return run

    def _enqueue(self, job_id: str) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            run.timer = None
        if self._queue is not None and not self.closing:
            self._queue.put_nowait(job_id)

    async def _worker(self) -> None:
        assert self._queue is not None
        # Not only cancellation ends a worker: a cancel can be absorbed by a store's client
        # awaited in the turn (seen with redis-py's asyncio client at shutdown: the turn
        # returned normally and the worker went back to the queue for good).
        while not self.closing:
            job_id = await self._queue.get()
            await self._acquire()
            try:
                await self._run(job_id)
            finally:
                self.release()
