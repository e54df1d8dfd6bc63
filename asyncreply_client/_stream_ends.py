"""Streams a flow already has its answer from, closed off the caller's path.

An SSE wait returns as soon as it reads the job's terminal event. Closing the stream there
would delay that return: httpcore drops the connection of a response not read to its end
(about 0.25 ms on a 2-core machine, as much as the reading of the event), and even a
response read to its end costs its return to the pool. So a driver given a client's
``StreamEnds`` hands such a stream (``CloseStream(answered=True)``) over instead:

- sync: the client's next request closes it (before it asks for a slot, so the stream's
  slot never holds it up), and so does the client's ``close()``;
- async, on asyncio: a task lets the response finish, for at most ``FINISH_WITHIN``
  seconds, then closes it. The reference server writes a stream's end with its terminal
  event, so the end is already read and the connection goes back to the pool; a server that
  keeps the stream open has it closed (dropped) when the time is up. The client's
  ``aclose()`` cancels those tasks, which close their streams. Without an asyncio loop
  (trio), as sync: closed by the next request or by ``aclose()``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol

import anyio
import httpx

__all__ = ["FINISH_WITHIN", "AsyncEndable", "Endable", "StreamEnds"]

#: Seconds an async client's task waits for an answered stream's end before dropping it.
FINISH_WITHIN = 1.0


class Endable(Protocol):
    """A sync driver's open stream."""

    def close(self) -> None:
        """Close the response and release its slot."""
        ...


class AsyncEndable(Protocol):
    """An async driver's open stream."""

    async def next(self, *, text: bool) -> Any:
        """The next piece of the body, ``None`` at its end."""
        ...

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
        # The tasks finishing streams, and their streams (a task cancelled before it
        # started never closes its own).
        self._tasks: dict[asyncio.Task[None], AsyncEndable] = {}

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

    def finish_later(self, stream: AsyncEndable) -> None:
        """Let ``stream`` finish in a task of its own, then close it (async)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): the next request or aclose() closes it
            self.keep(stream)
            return
        task = loop.create_task(_finish(stream))
        self._tasks[task] = stream
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def aclose_streams(self) -> None:
        """Close the streams kept (async), not the tasks' (they close their own)."""
        await _aclose_all(self._take())

    async def aclose(self) -> None:
        """Close the streams kept and end the tasks finishing streams (async)."""
        await self.aclose_streams()
        tasks = {t: s for t, s in list(self._tasks.items()) if _on_running_loop(t)}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
            await _aclose_all(list(tasks.values()))  # closing twice does nothing


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


async def _finish(stream: AsyncEndable) -> None:
    """Read ``stream`` to its end (at most ``FINISH_WITHIN`` seconds), then close it."""
    try:
        with anyio.move_on_after(FINISH_WITHIN):
            while await stream.next(text=False) is not None:
                pass
    except _CLOSE_FAULTS:
        pass  # the wait has its answer: a stream that breaks now is only closed
    finally:
        await _aclose_all([stream])
