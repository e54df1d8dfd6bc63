"""A response body for mock transports that httpx does not read in advance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx

__all__ = ["Chunks"]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives as the given network chunks: unlike ``content=``, which httpx
    reads (and decodes) when the mock builds its response, it reaches the client raw."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
