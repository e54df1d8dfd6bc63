"""A virtual clock for the client: sleeping advances time at once, nothing really waits."""

from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta, timezone

import anyio.lowlevel

__all__ = ["EPOCH", "FakeClock"]

#: The wall-clock time a :class:`FakeClock` starts at by default.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeClock:
    """A virtual clock: sleeping advances time instantly, nothing really waits.

    It implements the client's ``Clock`` protocol (``now()``, ``sleep(seconds)`` and
    ``await asleep(seconds)``), so ``Client(..., clock=FakeClock())`` waits through any
    ``Retry-After`` in no time. ``sleeps`` lists every sleep requested, in order.

    Example:
        >>> clock = FakeClock()
        >>> clock.sleep(30)
        >>> clock.now(), clock.sleeps
        (30.0, [30.0])
    """

    def __init__(self, start: float = 0.0, *, wall_start: datetime = EPOCH) -> None:
        """Start the clock at ``start`` (monotonic seconds); ``wall_start`` is its wall time."""
        self._now = float(start)
        self._start = float(start)
        self._wall_start = wall_start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Return the virtual monotonic time in seconds."""
        return self._now

    def wall(self) -> datetime:
        """Return the virtual wall-clock time (UTC), for timestamps in fake documents."""
        return self._wall_start + timedelta(seconds=self._now - self._start)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` without recording a sleep."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError(f"cannot move a clock backwards or by NaN: {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by ``seconds`` (negative counts as zero)."""
        seconds = max(0.0, float(seconds))
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then yield to the event loop once (so other tasks run)."""
        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()

    @property
    def slept(self) -> float:
        """Total virtual seconds slept."""
        return sum(self.sleeps)
