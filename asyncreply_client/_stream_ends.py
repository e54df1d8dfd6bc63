"""Streams a flow already has its answer from, closed off the caller's path.

An SSE wait returns as soon as it reads the job's terminal event. Closing the stream there
would delay that return: httpcore drops the connection of a response not read to its end
(about 0.25 ms on a 2-core machine, as much as the reading of the event). So a driver given
a client's ``StreamEnds`` hands such a stream (``CloseStream(answered=True)``) over instead:

- sync: the client's next request closes it (before it asks for a slot, so the stream's
  slot never holds it up), and so does the client's ``close()``;
- async, on asyncio: a task closes it, in a loop turn after the wait's return; the
  client's ``aclose()`` waits for those tasks. Without an asyncio loop (trio), as sync:
  closed by the next request or by ``aclose()``.

The stream is closed, not read to its end first: the reference server sends the end with
the terminal event, so that read costs nothing, but giving the connection back to an httpx
pool that keeps many alive costs every later request a pass over them (``sse_fanout``, 500
streams over httpx's pool: 2.6 to 2.8 ms of client CPU per operation against 2.2 to 2.3).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol

import httpx

__all__ = ["AsyncEndable", "Endable", "StreamEnds"]


class Endable(Protocol):
    """A sync driver's open stream."""

    def close(self) -> None:
        """Close the response and release its slot."""
        ...


class AsyncEndable(Protocol):
    """An async driver's open stream."""

    async def close(self) -> None:
        """Close the response and release its slot."""
        ...


class StreamEnds:
    """A client's answered streams, closed off the caller's path (see the module).

    Attributes:
        streams: the streams waiting for the next request or ``close()`` (a driver looks
            whether it is empty without the lock: a stream kept meanwhile waits for the
            request after).
    """

    __slots__ = ("_lock", "_tasks", "streams")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streams: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def keep(self, stream: Endable | AsyncEndable) -> None:
        """Keep ``stream`` until the next request or ``close()``."""
        with self._lock:
            self.streams.append(stream)

    def _take(self) -> list[Any]:
        with self._lock:
            taken, self.streams = self.streams, []
        return taken

    def close(self) -> None:
        """Close the streams kept (sync)."""
        _close_all(self._take())

    def close_later(self, stream: AsyncEndable) -> None:
        """Close ``stream`` in a task of its own (async)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): the next request or aclose() closes it
            self.keep(stream)
            return
        task = loop.create_task(_aclose_all([stream]))
        self._tasks.add(task)  # a reference, so the task is not collected before it ran
        task.add_done_callback(self._tasks.discard)

    async def aclose_streams(self) -> None:
        """Close the streams kept (async), not the tasks' (they close their own)."""
        await _aclose_all(self._take())

    async def aclose(self) -> None:
        """Close the streams kept and wait for the closing tasks (async)."""
        await self.aclose_streams()
        tasks = [t for t in self._tasks if _on_running_loop(t)]
        if tasks:
            await asyncio.wait(tasks)


def _on_running_loop(task: asyncio.Task[None]) -> bool:
    try:
        return task.get_loop() is asyncio.get_running_loop()
    except RuntimeError:
        return False


# Closing a stream nobody reads any more can only fail at the transport; that failure is
# nobody's (least of all the unrelated request that closes it on its way): the stream is gone.
_CLOSE_FAULTS = (httpx.HTTPError, OSError)


def _close_all(streams: list[Any]) -> None:
    for i, stream in enumerate(streams):
        try:
            stream.close()
        except _CLOSE_FAULTS:
            pass
        except BaseException:
            _close_all(streams[i + 1 :])
            raise


async def _aclose_all(streams: list[Any]) -> None:
    for i, stream in enumerate(streams):
        try:
            await stream.close()
        except _CLOSE_FAULTS:
            pass
        except BaseException:
            await _aclose_all(streams[i + 1 :])
            raise
