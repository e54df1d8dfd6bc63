"""Content-Encoding decoded in bounded steps, for every body the client reads.

httpx decodes each network chunk whole: a 65 KB gzip chunk of zeros becomes 64 MiB in one
call, before any size check can stop it (a "gzip bomb"). The drivers read the raw bytes
instead and decode them here, at most :data:`PIECE` decoded bytes per step, so a reader that
stops after ``max_body_size`` bytes never holds more than that and one piece. The client asks
only for the codings decoded here (:data:`ACCEPT_ENCODING`), or for those a user's own
``Accept-Encoding`` names when :func:`check_accept_encoding` finds that they are decoded here;
a coding it does not know is left as it is, as httpx does, and the body is then not what the
dialect can read.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import Protocol

import httpx

__all__ = ["ACCEPT_ENCODING", "PIECE", "BodyDecoder", "check_accept_encoding"]

#: The most decoded bytes one step produces (httpx reads 64 KiB from the network at a time).
PIECE = 64 * 1024
#: The ``Accept-Encoding`` of every request: the codings :class:`BodyDecoder` decodes.
ACCEPT_ENCODING = "gzip, deflate"
#: The codings a user's ``Accept-Encoding`` may ask for: those decoded here, and none.
_ACCEPTABLE = ("gzip", "deflate", "identity")
_ZERO_Q = re.compile(r"\s*q\s*=\s*0(\.0{0,3})?\s*", re.IGNORECASE)


def check_accept_encoding(value: str, argument: str = "headers") -> None:
    """Check that a user's ``Accept-Encoding`` asks only for codings the client decodes
    (``gzip``, ``deflate``, ``identity``; a coding refused with ``q=0`` is fine), so that
    every answer is still decoded in bounded steps.

    Raises:
        ValueError: the value accepts a coding the client cannot decode (``br``, ``zstd``,
            ``*``), naming the header and what is supported.

    Example:
        >>> check_accept_encoding("identity")
        >>> check_accept_encoding("br")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: headers: Accept-Encoding 'br' asks for a coding the client cannot ...
    """
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding or coding in _ACCEPTABLE or _ZERO_Q.fullmatch(params):
            continue
        raise ValueError(
            f"{argument}: Accept-Encoding {value!r} asks for a coding the client cannot "
            f"decode ({coding!r}); supported: {', '.join(_ACCEPTABLE)} (or leave the header "
            f"out: the client sends {ACCEPT_ENCODING!r})"
        )


class _Stage(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def end(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip (RFC 1952) or deflate (RFC 9110 §8.4.1.2: zlib-wrapped, or raw as some servers
    send it, the fallback httpx makes too), decoded in pieces of at most ``PIECE`` bytes."""

    __slots__ = ("_decoder", "_raw_fallback")

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._decoder = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            piece = self._step(data)
            if piece:
                yield piece
            data = self._decoder.unconsumed_tail
            # A full piece may leave output pending even when the input is consumed.
            if not data and len(piece) < PIECE:
                return

    def _step(self, data: bytes) -> bytes:
        try:
            return self._decoder.decompress(data, PIECE)
        except zlib.error:
            if not self._raw_fallback:
                raise
            self._raw_fallback = False
            self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._decoder.decompress(data, PIECE)
        finally:
            self._raw_fallback = False

    def end(self) -> Iterator[bytes]:
        # Every input byte was consumed and the output drained by ``feed``: what a flush
        # returns is what a truncated stream left, at most a window.
        rest = self._decoder.flush()
        if rest:
            yield rest


def _stage(coding: str) -> _Stage | None:
    if coding == "gzip":
        return _Zlib(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    return None  # identity, or a coding not asked for: left as it is


class BodyDecoder:
    """Decodes one body's ``Content-Encoding`` (``gzip``, ``deflate``, chains of them) in
    pieces of at most :data:`PIECE` bytes; I/O-free.

    Example:
        >>> import gzip
        >>> decoder = BodyDecoder("gzip")
        >>> pieces = list(decoder.feed(gzip.compress(bytes(200_000)))) + list(decoder.end())
        >>> max(len(piece) for piece in pieces) <= PIECE, sum(len(p) for p in pieces)
        (True, 200000)
    """

    __slots__ = ("_request", "_stages")

    def __init__(
        self, content_encoding: str | None, *, request: httpx.Request | None = None
    ) -> None:
        # RFC 9110 §8.4: codings listed in the order applied, so decoded in reverse.
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        stages = [_stage(coding) for coding in reversed(codings)]
        self._stages = [stage for stage in stages if stage is not None]
        self._request = request

    @classmethod
    def of(cls, response: httpx.Response) -> BodyDecoder:
        """The decoder of ``response``'s raw body; none when httpx has already read (and
        decoded) it, as a mock transport's answer built with ``content=`` is."""
        if response.is_stream_consumed:
            return _IDENTITY
        coding = response.headers.get("content-encoding")
        if coding is None:  # nearly every answer: nothing to decode (and nothing to keep)
            return _IDENTITY
        return cls(coding, request=response.request)

    @property
    def identity(self) -> bool:
        """Whether the body is used as it comes (no coding to decode)."""
        return not self._stages

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw bytes ``data``.

        Raises:
            httpx.DecodingError: the bytes are not of the coding the answer names (as httpx
                raises it: the drivers throw it into the flow, which makes it the client's
                ``ProtocolError``, ``_http.undecodable``).
        """
        return self._through(0, data, last=False)

    def end(self) -> Iterator[bytes]:
        """The decoded pieces left once the raw body has ended."""
        return self._through(0, b"", last=True)

    def _through(self, index: int, data: bytes, *, last: bool) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                yield data
            return
        stage = self._stages[index]
        try:
            for piece in stage.feed(data):
                yield from self._through(index + 1, piece, last=False)
            if last:
                for piece in stage.end():
                    yield from self._through(index + 1, piece, last=False)
        except zlib.error as exc:
            raise httpx.DecodingError(
                f"the answer's body is not of the Content-Encoding it names ({exc})",
                request=self._request,
            ) from exc
        if last:
            yield from self._through(index + 1, b"", last=True)


#: The decoder of a body without a coding: stateless, shared.
_IDENTITY = BodyDecoder(None)
