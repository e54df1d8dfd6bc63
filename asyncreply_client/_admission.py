"""Admission control: how many requests one client has in flight, in front of httpx.

Without a bound, ``asyncio.gather`` over thousands of ``run()`` calls hands every request to
httpcore's connection pool at once, and the pool rescans all its connections for every
queued request each time a request enters or leaves it (httpcore 1.0): the client's CPU
grows with the square of the fan-out. Each client therefore admits requests through two
FIFO gates of its own, and only admitted requests reach httpx:

- the *request* lane (``max_in_flight``): submissions, status checks, results, cancels;
- the *stream* lane (``max_streams``): requests that hold a connection for long, namely
  event streams, long polls and result downloads, so they can never take every slot and
  starve the short status checks.

A slot is held from the moment the request is sent until its response is closed (read to
the end, or the stream closed). Operations under way come first: a freed slot goes to the
longest-waiting request of an operation already submitted (a status check, a result), and
only when none waits to the longest-waiting *submission*. Within each of the two, waiting is
first come, first served. So a fan-out of ten thousand finishes its first operations while
later ones are still being submitted, instead of submitting all of them before the first
result is fetched: the client holds (and the server runs) the operations the lane can
serve, not all of them at once, and no result waits behind thousands of submissions (where
a server's result retention could run out). A submission never waits for ever: each
operation's requests end with it, and an operation polls one request at a time.

A task cancelled (or a thread interrupted) while it waits gives up its place, and a slot
granted to it at that very moment passes on to the next in line.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import httpx

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "HELD_EXTENSION",
    "Admission",
    "AsyncGate",
    "Slot",
    "SyncGate",
    "is_held",
    "pool_limits",
]

#: Default bound on the short requests a client has in flight.
DEFAULT_MAX_IN_FLIGHT = 100
#: Request extension set on requests a server may hold open (long polls): they take a slot
#: of the stream lane. (Event streams and downloads are marked by ``Send.stream``.)
HELD_EXTENSION = "asyncreply.held"
#: Idle connections the SDK's own pool keeps alive. httpcore 1.0's pool, on every request
#: it admits or releases, walks every connection once per idle one and probes each idle
#: socket: a handful of warm connections keep that cheap (measured in benchmarks/scaling).
_KEEPALIVE = 16


def is_held(request: httpx.Request) -> bool:
    """Whether ``request`` is a long poll (built with a read timeout stretched for a hold)."""
    return bool(request.extensions.get(HELD_EXTENSION))


def pool_limits(max_in_flight: int, max_streams: int) -> httpx.Limits:
    """The ``httpx.Limits`` of the SDK's own client: a connection for every admitted request
    (so no request ever waits inside httpcore's pool) and a few kept alive."""
    total = max_in_flight + max(max_streams, 1)
    return httpx.Limits(max_connections=total, max_keepalive_connections=min(total, _KEEPALIVE))


def _check_limit(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


class _Waiter:
    """One caller waiting for a slot: granted one, or gone (cancelled, interrupted)."""

    __slots__ = ("cancelled", "granted")

    def __init__(self) -> None:
        self.granted = False
        self.cancelled = False


W = TypeVar("W", bound=_Waiter)


class _Queue(Generic[W]):
    """The gates' shared, I/O-free bookkeeping: the slots in use and two FIFOs of waiters,
    the requests of operations under way (served first) and submissions.

    Invariant: a waiter in either FIFO means every slot is taken (a released slot goes
    straight to the next waiter), so a free slot is never taken past a waiter.
    """

    __slots__ = ("in_use", "limit", "submissions", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = _check_limit("limit", limit)
        self.in_use = 0
        self.waiters: deque[W] = deque()
        self.submissions: deque[W] = deque()

    def __len__(self) -> int:
        return len(self.waiters) + len(self.submissions)

    def take(self, waiter: Callable[[], W], *, submission: bool = False) -> W | None:
        """Take a free slot (``None``), or queue a new waiter and return it to wait on;
        ``submission``: it waits behind every request of an operation under way."""
        if self.in_use < self.limit:
            self.in_use += 1
            return None
        queued = waiter()
        (self.submissions if submission else self.waiters).append(queued)
        return queued

    def give_back(self) -> W | None:
        """Hand a slot to the first waiter still waiting (returned, to wake), else free it."""
        for line in (self.waiters, self.submissions):
            while line:
                waiter = line.popleft()
                if not waiter.cancelled:
                    waiter.granted = True
                    return waiter
        self.in_use -= 1
        return None

    @staticmethod
    def abandon(waiter: W) -> bool:
        """A waiter gives up; whether it had been granted the slot (then pass it on)."""
        waiter.cancelled = not waiter.granted
        return waiter.granted


class _AsyncWaiter(_Waiter):
    """Woken through a bare future on asyncio (a tenth of an ``anyio.Event``'s memory, and
    a fan-out keeps one per waiting request), through an ``anyio.Event`` elsewhere (trio)."""

    __slots__ = ("event", "future")

    def __init__(self) -> None:
        super().__init__()
        self.future: asyncio.Future[None] | None = None
        self.event: anyio.Event | None = None
        try:
            self.future = asyncio.get_running_loop().create_future()
        except RuntimeError:  # not asyncio
            self.event = anyio.Event()

    async def wait(self) -> None:
        if self.future is not None:
            await self.future
        else:
            assert self.event is not None
            await self.event.wait()

    def wake(self) -> None:
        if self.future is not None:
            if not self.future.done():
                self.future.set_result(None)
        else:
            assert self.event is not None
            self.event.set()


class _Gate(Generic[W]):
    """What both gates show of their queue."""

    __slots__ = ("_queue",)

    _queue: _Queue[W]

    @property
    def limit(self) -> int:
        """How many holders at once."""
        return self._queue.limit

    @property
    def in_use(self) -> int:
        """Slots held (or granted to a waiter about to run)."""
        return self._queue.in_use


class AsyncGate(_Gate[_AsyncWaiter]):
    """A FIFO bound on concurrent holders for the tasks of one event loop (asyncio or trio).

    Unlike a plain semaphore, a newcomer never overtakes a task already waiting, and a
    waiter that is cancelled leaves the queue without losing anyone's slot.

    Example:
        >>> gate = AsyncGate(2)
        >>> gate.limit, gate.in_use
        (2, 0)
    """

    __slots__ = ()

    def __init__(self, limit: int) -> None:
        self._queue = _Queue(limit)

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot (cancelled ones not yet skipped included)."""
        return len(self._queue)

    async def acquire(self, *, submission: bool = False) -> None:
        """Take a slot, waiting behind every earlier caller when none is free (a
        ``submission`` also behind every later request that is not one)."""
        waiter = self._queue.take(_AsyncWaiter, submission=submission)
        if waiter is None:
            return
        try:
            await waiter.wait()
        except BaseException:
            if self._queue.abandon(waiter):  # granted as we were cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the pool."""
        waiter = self._queue.give_back()
        if waiter is not None:
            waiter.wake()


class _SyncWaiter(_Waiter):
    __slots__ = ("lock",)

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.lock.acquire()


class SyncGate(_Gate[_SyncWaiter]):
    """:class:`AsyncGate` for threads: FIFO, and an interrupted waiter gives up its place.

    Example:
        >>> gate = SyncGate(1)
        >>> gate.acquire(); gate.in_use
        1
        >>> gate.release(); gate.in_use
        0
    """

    __slots__ = ("_lock",)

    def __init__(self, limit: int) -> None:
        self._queue = _Queue(limit)
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Threads waiting for a slot (interrupted ones not yet skipped included)."""
        with self._lock:
            return len(self._queue)

    def acquire(self, *, submission: bool = False) -> None:
        """Take a slot, blocking behind every earlier caller when none is free (a
        ``submission`` also behind every later request that is not one)."""
        with self._lock:
            waiter = self._queue.take(_SyncWaiter, submission=submission)
        if waiter is None:
            return
        try:
            waiter.lock.acquire()  # released by release() when the slot is ours
        except BaseException:  # KeyboardInterrupt or another signal handler's exception
            with self._lock:
                granted = self._queue.abandon(waiter)
            if granted:
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the pool."""
        with self._lock:
            waiter = self._queue.give_back()
        if waiter is not None:
            waiter.lock.release()


class Slot:
    """A slot held by one request; :meth:`release` gives it back (once, however often it is
    called)."""

    __slots__ = ("_gate",)

    def __init__(self, gate: AsyncGate | SyncGate) -> None:
        self._gate: AsyncGate | SyncGate | None = gate

    def release(self) -> None:
        """Give the slot back (no-op after the first call)."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()

    def of(self, gate: AsyncGate | SyncGate) -> bool:
        """Whether this is a slot of ``gate``, still held."""
        return self._gate is gate


def _reuse(reserved: Slot | None, gate: AsyncGate | SyncGate) -> Slot | None:
    """``reserved`` if it is a slot of ``gate`` (the request takes it), else ``None`` (a slot
    of the other gate is given back first)."""
    if reserved is None or reserved.of(gate):
        return reserved
    reserved.release()
    return None


class Admission:
    """The two lanes of one client, for its sync driver and its async driver.

    Args:
        max_in_flight: short requests in flight at once.
        max_streams: event streams, long polls and downloads open at once.

    Raises:
        TypeError, ValueError: a bound is not a positive int.
    """

    __slots__ = (
        "async_requests",
        "async_streams",
        "max_in_flight",
        "max_streams",
        "requests",
        "streams",
    )

    def __init__(self, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, max_streams: int = 50) -> None:
        self.max_in_flight = _check_limit("max_in_flight", max_in_flight)
        if isinstance(max_streams, bool) or not isinstance(max_streams, int):
            raise TypeError(f"max_streams must be an int, got {type(max_streams).__name__}")
        if max_streams < 0:
            raise ValueError(f"max_streams must not be negative, got {max_streams}")
        self.max_streams = max_streams
        # max_streams=0 means "auto waits never stream"; an explicit mode="sse" stream or a
        # long poll still needs a lane to go through, one at a time.
        lane = max(max_streams, 1)
        self.requests = SyncGate(max_in_flight)
        self.streams = SyncGate(lane)
        self.async_requests = AsyncGate(max_in_flight)
        self.async_streams = AsyncGate(lane)

    def reserve(self) -> Slot:
        """Wait (blocking) for a request-lane slot for a submission not built yet, and hold
        it for the driver (see ``enter``'s ``reserved``).

        ``submit()`` and ``run()`` wait for their turn here, before they build anything: a
        fan-out's queued submissions then hold no request, flow or driver while they wait
        (the garbage collector's full passes walk every one of them; at N = 10,000 those
        passes were a quarter of the client's CPU).
        """
        self.requests.acquire(submission=True)
        return Slot(self.requests)

    async def areserve(self) -> Slot:
        """:meth:`reserve` for the async client."""
        await self.async_requests.acquire(submission=True)
        return Slot(self.async_requests)

    def enter(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        submission: bool = False,
        reserved: Slot | None = None,
    ) -> Slot:
        """Wait (blocking) for a slot of the lane of ``request``; ``stream``: its body stays
        open after the headers (an event stream or a download); ``submission``: it starts
        an operation (and waits behind the requests of those under way). A ``reserved``
        slot of that lane is taken instead of waiting; of the other lane (a held
        submission), it is given back first."""
        gate = self.streams if stream or is_held(request) else self.requests
        kept = _reuse(reserved, gate)
        if kept is not None:
            return kept
        gate.acquire(submission=submission)
        return Slot(gate)

    async def aenter(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        submission: bool = False,
        reserved: Slot | None = None,
    ) -> Slot:
        """:meth:`enter` for the async driver."""
        gate = self.async_streams if stream or is_held(request) else self.async_requests
        kept = _reuse(reserved, gate)
        if kept is not None:
            return kept
        await gate.acquire(submission=submission)
        return Slot(gate)
