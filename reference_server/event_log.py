"""Per-job event logs and change notification: what SSE streams replay and waiters await.

Every change of a job appends an event (bounded to :data:`EVENT_LOG_LIMIT` per job; the job
manager writes it to the store with the job, ``Store.commit``) and wakes everyone waiting
on that job: long polls, ``Prefer: wait`` and event streams each wait on a future the change
resolves, never in a sleep loop: a waiter runs in the loop turn after the change (an
``asyncio.Event`` under ``wait_for`` took three, through a task of its own per wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from .records import EventRecord
from .store import EVENT_LOG_LIMIT

__all__ = ["EventLogs"]


@dataclass
class _Log:
    events: list[EventRecord] = field(default_factory=list)
    version: int = 0
    waiters: set[asyncio.Future[None]] = field(default_factory=set)

    def wake(self) -> None:
        self.version += 1
        waiters, self.waiters = self.waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _ended(log: _Log) -> bool:
    """Whether the newest logged event is the job's end (``complete``)."""
    return bool(log.events) and log.events[-1].event == "complete"


def _time_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventLogs:
    """The event logs of one server's live jobs."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        #: Set at shutdown: waits return at once.
        self.closing = False

    def load(self, job_id: str, events: Iterable[EventRecord]) -> None:
        """Take over a reloaded job's events."""
        self._log(job_id).events = list(events)

    def append(self, job_id: str, event: EventRecord) -> None:
        """Log ``event`` (already committed to the store) and wake the job's waiters."""
        log = self._log(job_id)
        log.events.append(event)
        if len(log.events) > EVENT_LOG_LIMIT:
            del log.events[: len(log.events) - EVENT_LOG_LIMIT]
        log.wake()

    def close(self) -> None:
        """Shut down: wake every waiter so streams and long polls end."""
        self.closing = True
        for log in self._logs.values():
            log.wake()

    def drop(self, job_id: str) -> None:
        """Forget a job's log, waking its waiters (they find the job gone)."""
        log = self._logs.pop(job_id, None)
        if log is not None:
            log.wake()

    def clear(self) -> None:
        """Forget every log, waking every waiter."""
        for job_id in list(self._logs):
            self.drop(job_id)

    def after(self, job_id: str, after: int) -> list[EventRecord]:
        """The logged events of a job with an id greater than ``after``."""
        log = self._logs.get(job_id)
        return [e for e in log.events if e.id > after] if log is not None else []

    def last(self, job_id: str) -> EventRecord | None:
        """The newest event in the job's log (``None`` if none)."""
        log = self._logs.get(job_id)
        return log.events[-1] if log is not None and log.events else None

    def last_id(self, job_id: str) -> int:
        """The id of the newest event in the job's log (0 if none)."""
        log = self._logs.get(job_id)
        return log.events[-1].id if log is not None and log.events else 0

    def first_id(self, job_id: str) -> int:
        """The id of the oldest event still in the job's log (0 if none)."""
        log = self._logs.get(job_id)
        return log.events[0].id if log is not None and log.events else 0

    def version(self, job_id: str) -> int:
        """A counter that increases with every change of the job; ``-1`` once it is gone.

        Asking about an expired (or cleared) job keeps no state for it: a stream woken by the
        expiry must not bring the job's log back to life (it would never be freed).
        """
        log = self._logs.get(job_id)
        return log.version if log is not None else -1

    async def wait_change(
        self, job_id: str, version: int, timeout: float, *, settle: bool = True
    ) -> None:
        """Wait until the job changes after ``version`` or ``timeout`` seconds pass
        (``settle``: then yield once, see below)."""
        log = self._logs.get(job_id)
        if log is None or log.version != version or self.closing or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        log.waiters.add(waiter)
        timer = loop.call_later(timeout, _time_up, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            log.waiters.discard(waiter)
        if settle and log.version != version and not _ended(log):
            # Woken by a change: let the changes already under way land first (a handler
            # that reports its last step and returns completes one loop turn later), so a
            # long poll answers with the job's end instead of a step the client must poll
            # past. A plain yield, no timer; none after the job's end (nothing can follow
            # it), so the final answer goes out in the turn after the change.
            await asyncio.sleep(0)

    def _log(self, job_id: str) -> _Log:
        log = self._logs.get(job_id)
        if log is None:
            log = self._logs[job_id] = _Log()
        return log
