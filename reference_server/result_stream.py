"""Large answers written in chunks, at the reader's pace, with a write timeout.

``web.Response(body=data)`` hands the whole body to the transport at once: each connection
that does not read holds its own full copy in the transport's buffer (60 connections that never
read an 11.2 MiB result took the server from 443 to 1,286 MiB). :class:`ChunkedBody` writes
the stored bytes in slices of :data:`CHUNK_SIZE`, waiting for the transport to drain
(backpressure) before the next one, so a slow reader costs about one chunk plus the
transport's high-water mark, whatever the size of the result. A reader that accepts nothing
for ``write_timeout`` seconds has its connection closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from typing import Any

from aiohttp import payload, web
from aiohttp.abc import AbstractStreamWriter

__all__ = [
    "CHUNK_SIZE",
    "ChunkedBody",
    "WriteTimeout",
    "bounded",
    "json_with_raw_result",
    "stream",
]

#: Bytes handed to the transport at a time.
CHUNK_SIZE = 64 * 1024


class WriteTimeout(ConnectionResetError):
    """The peer read nothing for ``write_timeout`` seconds; its connection was closed.

    A :class:`ConnectionResetError`, which aiohttp treats as a client that went away.
    """


class ChunkedBody(payload.Payload):
    """A body made of byte strings, written ``CHUNK_SIZE`` bytes at a time with backpressure.

    The parts are not copied: each chunk is a ``memoryview`` slice of a part.

    Args:
        parts: the body, in order (joined, they are the bytes sent).
        content_type: the ``Content-Type``.
        write_timeout: seconds one chunk may wait for the peer to read.

    Example:
        >>> body = ChunkedBody([b'{"a":', b"1}"], content_type="application/json",
        ...                    write_timeout=30)
        >>> body.size
        7
    """

    def __init__(self, parts: Sequence[bytes], *, content_type: str, write_timeout: float) -> None:
        super().__init__(tuple(parts), content_type=content_type)
        self._parts: tuple[bytes, ...] = tuple(parts)
        self._size = sum(len(p) for p in self._parts)
        self._write_timeout = write_timeout

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The body as text (for aiohttp's ``Response.text``)."""
        return b"".join(self._parts).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        """The body as one byte string."""
        return b"".join(self._parts)

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Write every chunk, each after the previous one drained (or time out)."""
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Write at most ``content_length`` bytes (all when ``None``)."""
        left = self._size if content_length is None else min(content_length, self._size)
        if self._size <= CHUNK_SIZE and len(self._parts) > 1:
            # A small body in parts (an inline result spliced into its document): one write,
            # so it leaves in one segment with the head, not one send per part.
            await self._bounded(writer, writer.write(b"".join(self._parts)[:left]))
            await self._bounded(writer, writer.drain())
            return
        for part in self._parts:
            view = memoryview(part)
            for offset in range(0, len(view), CHUNK_SIZE):
                if left <= 0:
                    break
                chunk = view[offset : offset + min(CHUNK_SIZE, left)]
                left -= len(chunk)
                await self._bounded(writer, writer.write(chunk))
        # Everything must reach the kernel before the answer counts as sent: a reader that
        # stops before the last chunk is timed out like one that stops at the first.
        await self._bounded(writer, writer.drain())

    async def _bounded(self, writer: AbstractStreamWriter, step: Awaitable[None]) -> None:
        await bounded(step, getattr(writer, "transport", None), self._write_timeout)


async def bounded(step: Awaitable[None], transport: Any, timeout: float) -> None:
    """Await a write ``step``; if it takes over ``timeout`` seconds, abort ``transport``.

    A timer, not a task: a write that does not wait for the reader (the common case) does not
    even yield to the event loop.

    Raises:
        WriteTimeout: the step did not finish in time (the connection is closed).
    """
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        if transport is not None:
            transport.abort()  # wakes the pending drain with a ConnectionResetError

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        await step
    except ConnectionError:
        if not expired:
            raise
    finally:
        timer.cancel()
    if expired:
        raise WriteTimeout(f"the peer read nothing for {timeout:g} s; connection closed")


def stream(
    parts: Sequence[bytes],
    *,
    content_type: str,
    write_timeout: float,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A response whose body is written by :class:`ChunkedBody`."""
    body = ChunkedBody(parts, content_type=content_type, write_timeout=write_timeout)
    return web.Response(body=body, status=status, headers=headers)


def json_with_raw_result(document: dict[str, Any], result: bytes) -> list[bytes]:
    """The parts of ``document`` with ``"result"`` set to the stored JSON ``result``.

    The stored bytes are spliced in as they are (they are already compact JSON), so a large
    inline result is neither parsed nor copied for each request.

    Example:
        >>> b"".join(json_with_raw_result({"status": "completed"}, b"[1,2]"))
        b'{"status": "completed", "result": [1,2]}'
    """
    head = json.dumps({k: v for k, v in document.items() if k != "result"})
    separator = ", " if head != "{}" else ""
    return [head[:-1].encode() + f'{separator}"result": '.encode(), result, b"}"]
