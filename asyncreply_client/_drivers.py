"""The two drivers: the only code of the client written twice, once sync and once async.

A driver runs a flow (``_flow``) and executes its commands (``_commands``): it sends one
attempt of a request with the ``auth`` the command carries, reads or closes the open stream,
sleeps on the client's clock, and hands each ``Emit`` to its caller by yielding it. It decides
nothing: no retry, no redirect, no dialect, no credentials. An ``httpx.RequestError`` (a
transport failure, or a body that cannot be decoded) is thrown back into the flow at the
``yield`` of the command that failed, and so is httpx's error about an answer whose
``Location`` it could not parse (``_http.UNREADABLE_ANSWER``). The flow's return value
lands in a ``FlowResult`` (an async generator cannot return one).

Every request passes the client's admission gates (``_admission``) first: it holds a slot of
its lane from ``http.send`` until its response is closed (read, or the stream closed).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import Any, Generic, TypeVar

import httpx

from ._admission import Admission, Slot
from ._clock import Clock
from ._commands import CloseStream, Command, Emit, ReadBytes, ReadChunk, Send, Sleep
from ._decoding import BodyDecoder
from ._http import THROWN, HttpResponse
from ._models import JobStatus
from ._stream_ends import StreamEnds

__all__ = ["FlowResult", "drive", "drive_async"]

T = TypeVar("T")
S = TypeVar("S", bound="_OpenStream")


class FlowResult(Generic[T]):
    """Receives a flow's return value once a driver has run it to its end."""

    __slots__ = ("value",)

    value: T


def drive(
    flow: Generator[Command, Any, T],
    http: httpx.Client,
    clock: Clock,
    out: FlowResult[T],
    admission: Admission | None = None,
    reserved: Slot | None = None,
    ends: StreamEnds | None = None,
) -> Generator[JobStatus, None, None]:
    """Run ``flow`` synchronously; yield each emitted status; store the result in ``out``.
    Requests wait for a slot of ``admission`` (``None``: no bound); the first submission
    takes the ``reserved`` slot (given back at the end if no submission took it). A stream
    closed as answered goes to ``ends`` (closed by the next request; ``None``: closed at
    once)."""
    stream = _Stream()
    reply: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                command = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                out.value = stop.value
                return
            reply, error = None, None
            if isinstance(command, Emit):
                yield command.status
                continue
            try:
                if isinstance(command, Send):
                    stream.close()
                    if ends is not None and ends.streams:
                        ends.close()  # before the slot: theirs may be the one it needs
                    slot, reserved = _reserved(command, reserved)
                    if admission is not None:
                        slot = admission.enter(
                            command.request,
                            stream=command.stream,
                            submission=command.submission,
                            reserved=slot,
                        )
                    reply = _send(http, command, stream, slot)
                elif isinstance(command, ReadChunk | ReadBytes):
                    reply = stream.next(text=isinstance(command, ReadChunk))
                elif isinstance(command, Sleep):
                    clock.sleep(command.seconds)
                elif ends is not None and _answered(command) and stream.response is not None:
                    ends.keep(stream.detach())
                else:
                    stream.close()
            except THROWN as exc:
                error = exc
    finally:
        _release(reserved)
        stream.close()
        flow.close()


async def drive_async(
    flow: Generator[Command, Any, T],
    http: httpx.AsyncClient,
    clock: Clock,
    out: FlowResult[T],
    admission: Admission | None = None,
    reserved: Slot | None = None,
    ends: StreamEnds | None = None,
) -> AsyncGenerator[JobStatus, None]:
    """Run ``flow`` asynchronously; yield each emitted status; store the result in ``out``
    (``admission`` and ``reserved`` as for :func:`drive`). A stream closed as answered goes
    to ``ends``, which closes it in a task of its own."""
    stream = _AsyncStream()
    reply: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                command = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                out.value = stop.value
                return
            reply, error = None, None
            if isinstance(command, Emit):
                yield command.status
                continue
            try:
                if isinstance(command, Send):
                    await stream.close()
                    if ends is not None and ends.streams:
                        await ends.aclose_streams()  # before the slot (see drive)
                    slot, reserved = _reserved(command, reserved)
                    if admission is not None:
                        slot = await admission.aenter(
                            command.request,
                            stream=command.stream,
                            submission=command.submission,
                            reserved=slot,
                        )
                    reply = await _asend(http, command, stream, slot)
                elif isinstance(command, ReadChunk | ReadBytes):
                    reply = await stream.next(text=isinstance(command, ReadChunk))
                elif isinstance(command, Sleep):
                    await clock.asleep(command.seconds)
                elif ends is not None and _answered(command) and stream.response is not None:
                    ends.close_later(stream.detach())
                else:
                    await stream.close()
            except THROWN as exc:
                error = exc
    finally:
        _release(reserved)
        await stream.close()
        flow.close()


#: What a closed response's stream is replaced with (see :func:`_unbind`).
_SPENT = httpx.ByteStream(b"")


def _unbind(response: httpx.Response) -> None:
    """Cut the reference cycle httpx's client makes between a response and its stream
    (``BoundSyncStream`` / ``BoundAsyncStream`` point back at the response), once the
    response is closed: the response, its request and headers then go as soon as the driver
    drops them, instead of waiting for a pass of the garbage collector (for an answer held
    open long, a full pass: the young generations' passes have moved it to the oldest).
    Measured in ``benchmarks/scaling`` at N = 100: 1 to 3 KB per operation less at the peak.
    """
    response.stream = _SPENT


def _answered(command: Command) -> bool:
    """Whether ``command`` closes a stream the flow has its answer from."""
    return isinstance(command, CloseStream) and command.answered


def _limit(response: httpx.Response, command: Send) -> int | None:
    """How many bytes of this answer's body ``command`` lets the driver read."""
    return command.max_body if response.status_code < 400 else command.max_error_body


def _reserved(command: Send, reserved: Slot | None) -> tuple[Slot | None, Slot | None]:
    """The reserved slot for ``command`` if it is a submission (it takes it), and what is
    left reserved."""
    return (reserved, None) if command.submission else (None, reserved)


def _release(slot: Slot | None) -> None:
    if slot is not None:
        slot.release()


def _send(http: httpx.Client, command: Send, stream: _Stream, slot: Slot | None) -> HttpResponse:
    """The one ``http.send`` of the sync driver: the body is read and the response closed
    (and ``slot`` released), unless the command streams it (then ``stream`` keeps both)."""
    try:
        response = http.send(
            command.request, stream=True, auth=command.auth, follow_redirects=False
        )
    except BaseException:
        _release(slot)
        raise
    if command.stream:
        return stream.keep(response, slot)
    limit = _limit(response, command)
    body = bytearray()
    try:
        for piece in _pieces(response):
            body += piece
            if limit is not None and len(body) > limit:
                break
    finally:
        try:
            response.close()
        finally:
            _unbind(response)
            _release(slot)
    return HttpResponse.from_httpx(response, content=bytes(body), limit=limit)


async def _asend(
    http: httpx.AsyncClient, command: Send, stream: _AsyncStream, slot: Slot | None
) -> HttpResponse:
    """The one ``http.send`` of the async driver (see :func:`_send`)."""
    try:
        response = await http.send(
            command.request, stream=True, auth=command.auth, follow_redirects=False
        )
    except BaseException:
        _release(slot)
        raise
    if command.stream:
        return stream.keep(response, slot)
    limit = _limit(response, command)
    body = bytearray()
    pieces = _apieces(response)
    try:
        async for piece in pieces:
            body += piece
            if limit is not None and len(body) > limit:
                break
    finally:
        try:
            await pieces.aclose()
            await response.aclose()
        finally:
            _unbind(response)
            _release(slot)
    return HttpResponse.from_httpx(response, content=bytes(body), limit=limit)


def _pieces(response: httpx.Response) -> Iterator[bytes]:
    """The decoded body of a response opened with ``stream=True``, in bounded pieces
    (``_decoding``: httpx's own decoding of a whole network chunk is what a gzip bomb
    exploits)."""
    decoder = BodyDecoder.of(response)
    raw = (response.content,) if response.is_stream_consumed else response.iter_raw()
    if decoder.identity:  # nearly every answer: its chunks as they come
        yield from raw
        return
    for chunk in raw:
        yield from decoder.feed(chunk)
    yield from decoder.end()


async def _apieces(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """:func:`_pieces` of an async response."""
    decoder = BodyDecoder.of(response)
    if response.is_stream_consumed:
        yield response.content  # read (and decoded) by httpx already
        return
    async for chunk in response.aiter_raw():
        if decoder.identity:
            yield chunk
            continue
        for piece in decoder.feed(chunk):
            yield piece
    for piece in decoder.end():
        yield piece


def _text(response: httpx.Response) -> codecs.IncrementalDecoder:
    """The text decoder of an event stream (its charset, else UTF-8, as httpx's
    ``iter_text``)."""
    return codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace")


class _OpenStream:
    """The open stream of a driver (one at most), its iterator of chunks and its slot."""

    __slots__ = ("chunks", "response", "slot", "text")

    def __init__(self) -> None:
        self.response: httpx.Response | None = None
        self.chunks: Any = None
        self.text: codecs.IncrementalDecoder | None = None
        self.slot: Slot | None = None

    def keep(self, response: httpx.Response, slot: Slot | None) -> HttpResponse:
        self.response, self.chunks, self.slot = response, None, slot
        return HttpResponse.from_httpx(response, read=False)

    def detach(self: S) -> S:
        """A stream of the same kind holding this one's response, chunks and slot; this one
        is left with none."""
        other = type(self)()
        other.response, other.chunks, other.text, other.slot = (
            self.response,
            self.chunks,
            self.text,
            self.slot,
        )
        self.response, self.chunks, self.text, self.slot = None, None, None, None
        return other


class _Stream(_OpenStream):
    """The sync driver's: read as text or as bytes, closed."""

    __slots__ = ()

    def next(self, *, text: bool) -> Any:
        if self.response is None:
            return None
        if self.chunks is None:
            self.chunks = _pieces(self.response)
            self.text = _text(self.response) if text else None
        while (piece := next(self.chunks, None)) is not None:
            if self.text is None:
                return piece
            if chunk := self.text.decode(piece):
                return chunk
        if self.text is not None:
            tail, self.text = self.text.decode(b"", final=True), None
            return tail or None
        return None

    def close(self) -> None:
        response, self.response, self.chunks = self.response, None, None
        self.text = None
        slot, self.slot = self.slot, None
        try:
            if response is not None:
                response.close()
        finally:
            if response is not None:
                _unbind(response)
            _release(slot)


class _AsyncStream(_OpenStream):
    """The async driver's: read as text or as bytes, closed."""

    __slots__ = ()

    async def next(self, *, text: bool) -> Any:
        if self.response is None:
            return None
        if self.chunks is None:
            self.chunks = _apieces(self.response)
            self.text = _text(self.response) if text else None
        while (piece := await anext(self.chunks, None)) is not None:
            if self.text is None:
                return piece
            if chunk := self.text.decode(piece):
                return chunk
        if self.text is not None:
            tail, self.text = self.text.decode(b"", final=True), None
            return tail or None
        return None

    async def close(self) -> None:
        response, self.response = self.response, None
        chunks, self.chunks, self.text = self.chunks, None, None
        slot, self.slot = self.slot, None
        try:
            if chunks is not None:
                await chunks.aclose()
            if response is not None:
                await response.aclose()
        finally:
            if response is not None:
                _unbind(response)
            _release(slot)
