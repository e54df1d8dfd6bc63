"""Server-Sent Events: the I/O-free flow that follows an operation's event stream (resuming
with ``Last-Event-ID``, reconnecting, giving up in favour of polling). The WHATWG decoder it
feeds is in ``_sse_decoder``; httpx-sse never reconnects, so we only borrow its event type,
:class:`httpx_sse.ServerSentEvent`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from httpx_sse import ServerSentEvent

from . import _log
from ._commands import CloseStream, Command, Emit, ReadBytes, Sleep, Tracker
from ._errors import ProtocolError, TransportError
from ._http import HttpResponse
from ._models import JobStatus
from ._sse_decoder import SSEDecoder
from .dialects import Dialect

__all__ = [
    "SSEDecoder",
    "SSEEnd",
    "SSEEnding",
    "SSEOptions",
    "ServerSentEvent",
    "StreamOpener",
    "follow_events",
]

# Below this gain (seconds), a stream is not reopened to bring its read timeout closer to the
# deadline.
_MIN_TIGHTENING = 0.25
# How many event ids one wait remembers to recognise replays.
_MAX_REMEMBERED_IDS = 10_000


@dataclass(frozen=True, slots=True)
class SSEOptions:
    """How a wait follows an event stream.

    Attributes:
        silence_timeout: seconds without a byte (keep-alive comments count) after which the
            stream is considered dropped. Longer than the server's keep-alive interval (the
            reference server sends one every 15 s).
        connect_timeout: seconds allowed to connect and to send the request.
        max_reconnects: consecutive drops tolerated before falling back to polling; a drop
            after which a new status arrived starts the count again.
        retry_delay: seconds to wait before reconnecting when the server sent no ``retry``.
        max_retry_delay: upper bound on the server's ``retry`` (a server asking for an hour
            gets this).
        backoff: extra seconds added to the reconnection delay after the first consecutive
            drop, doubled after each further one.
        max_backoff: upper bound on that extra delay.
        max_buffer: most characters one line or one event may hold (a runaway stream is
            abandoned for polling).

    Example:
        >>> SSEOptions(silence_timeout=20.0, max_reconnects=5).max_reconnects
        5
    """

    silence_timeout: float = 45.0
    connect_timeout: float = 10.0
    max_reconnects: int = 3
    retry_delay: float = 1.0
    max_retry_delay: float = 10.0
    backoff: float = 0.25
    max_backoff: float = 5.0
    max_buffer: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("silence_timeout", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SSEOptions.{name} must be positive")
        for name in ("retry_delay", "max_retry_delay", "backoff", "max_backoff"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SSEOptions.{name} must not be negative")
        if self.max_reconnects < 0:
            raise ValueError("SSEOptions.max_reconnects must not be negative")
        if self.max_buffer < 1:
            raise ValueError("SSEOptions.max_buffer must be positive")

    def reconnect_delay(self, server_retry_ms: int | None, drops: int) -> float:
        """Seconds to wait before reconnection number ``drops`` (1 for the first).

        The server's ``retry`` (bounded by ``max_retry_delay``) or ``retry_delay``, plus
        ``backoff * 2 ** (drops - 2)`` from the second consecutive drop on, bounded by
        ``max_backoff``.
        """
        base = self.retry_delay if server_retry_ms is None else server_retry_ms / 1000.0
        base = min(base, self.max_retry_delay)
        extra = 0.0 if drops < 2 else min(self.backoff * 2.0 ** (drops - 2), self.max_backoff)
        return base + extra


class SSEEnd(str, enum.Enum):
    """Why :func:`follow_events` stopped."""

    TERMINAL = "terminal"
    """A terminal status arrived; ``SSEEnding.status`` is it."""
    FALLBACK = "fallback"
    """The stream is unusable (refused, or dropped too often); continue by polling."""
    DEADLINE = "deadline"
    """The wait's deadline passed; the caller raises ``WaitTimeoutError``."""


@dataclass(frozen=True, slots=True)
class SSEEnding:
    """How following an event stream ended.

    Attributes:
        end: terminal, fallback or deadline.
        status: the last status known (from the stream or from before), if any.
        reason: why, in words (for logs and error messages).
        last_event_id: the stream's last event ID (``""`` when none).
        reconnects: how many times the stream was reopened.
    """

    end: SSEEnd
    status: JobStatus | None
    reason: str
    last_event_id: str = ""
    reconnects: int = 0


class StreamOpener(Protocol):
    """The sub-flow that opens the stream: the wait flow's request factory (credentials by
    origin) and retry sub-flow, one attempt, no redirect followed."""

    def __call__(
        self, url: str, *, headers: Mapping[str, str], timeout: Mapping[str, float]
    ) -> Generator[Command, Any, HttpResponse]:
        """Send ``GET url`` with ``headers`` and httpx's per-request ``timeout`` extension
        (``connect``, ``read``, ``write``, ``pool``); return the answer, its body open.

        Raises:
            TransportError: the request failed, or got a transient answer.
        """
        ...


# A transport failure reaches the flow as our TransportError (from the opener) or, while
# reading, as httpx's (thrown in by the driver).
_DROPS = (TransportError, httpx.TransportError)


class _Replays:
    """The event ids delivered on earlier connections of one wait.

    An event that carries one of them again (other than the ID the connection resumed from,
    which events without an ``id`` field inherit) is a replay by a server that ignored
    ``Last-Event-ID``: it is skipped, so that an older snapshot is never reported again.
    """

    __slots__ = ("_current", "_earlier", "_resumed_from")

    def __init__(self) -> None:
        # dicts as insertion-ordered sets, so the oldest ids are forgotten first.
        self._earlier: dict[str, None] = {}
        self._current: dict[str, None] = {}
        self._resumed_from = ""

    def new_connection(self, resumed_from: str) -> None:
        self._earlier.update(self._current)
        self._current = {}
        self._resumed_from = resumed_from
        for stale in list(self._earlier)[: max(0, len(self._earlier) - _MAX_REMEMBERED_IDS)]:
            del self._earlier[stale]

    def is_replay(self, event_id: str) -> bool:
        if not event_id or event_id == self._resumed_from:
            return False
        if event_id in self._earlier:
            return True
        self._current[event_id] = None
        return False


def _refusal(response: HttpResponse) -> str | None:
    """Why an answer to the stream request cannot be used as an event stream, if it can't.

    A browser's EventSource fails the connection (without reconnecting) for exactly these.
    """
    if response.status_code == 204:
        return "the events endpoint answered 204 No Content (no stream to follow)"
    if response.status_code != 200:
        return f"the events endpoint answered HTTP {response.status_code}"
    if response.content_type != "text/event-stream":
        shown = response.content_type or "no Content-Type"
        return f"the events endpoint answered {shown}, not text/event-stream"
    return None


def follow_events(
    events_url: str,
    *,
    dialect: Dialect,
    open_stream: StreamOpener,
    tracker: Tracker,
    deadline: float | None,
    now: Callable[[], float],
    options: SSEOptions | None = None,
    watching: bool = True,
) -> Generator[Command, Any, SSEEnding]:
    """Follow an operation's event stream until it reports a terminal status (I/O-free).

    A sub-generator of the wait flow (``outcome = yield from follow_events(...)``): it yields
    :mod:`commands <asyncreply_client._commands>` and returns an :class:`SSEEnding`.

    It opens the stream (``Accept: text/event-stream``, ``Cache-Control: no-cache``,
    ``Last-Event-ID`` once known; read timeout = the silence window or the time left, whichever
    is shorter; no total timeout), decodes it, hands every event to
    ``dialect.interpret_event`` and yields ``Emit`` for each status ``tracker`` has not seen.

    - A terminal status ends it: ``SSEEnd.TERMINAL``.
    - A network error, a read timeout (silence) or a clean end of stream before a terminal
      status is a drop: it waits the server's ``retry`` (bounded) plus backoff and reconnects,
      resuming with ``Last-Event-ID``. After more than ``options.max_reconnects`` consecutive
      drops with nothing new, or when the wait before reconnecting would reach the deadline:
      ``SSEEnd.FALLBACK``.
    - An answer that is not a ``200 text/event-stream`` (204 included), an event the dialect
      calls malformed, or a runaway stream: ``SSEEnd.FALLBACK`` at once.
    - The deadline passed: ``SSEEnd.DEADLINE``.

    The read timeout of an open stream cannot change, so near the deadline the stream is
    reopened with a shorter one (see ``_needs_tighter_timeout``): a stream that falls silent
    ends the wait at most half the time left after the deadline, never a whole silence window.

    An event whose ``id`` an earlier connection already delivered (a server that ignored
    ``Last-Event-ID`` and replays from the start) is skipped. Unless ``watching``, the
    statuses a piece of the stream carries before a terminal one are not read: nobody
    takes them (a job's last progress step and its completion often arrive together).

    It yields ``CloseStream`` before returning and before letting an error of its own escape.
    An exception thrown in by the driver other than a transport failure (and ``close()``)
    propagates at once: the driver closes the stream it holds in its own ``finally``.

    Args:
        events_url: absolute URL of the stream.
        dialect: interprets each event (``interpret_event``).
        open_stream: sends the stream request (the wait flow's ``open_stream``).
        tracker: the wait's record of snapshots already reported (shared with polling, so
            nothing is reported twice).
        deadline: the wait's deadline on ``now``'s clock, or ``None``.
        now: the clock (seconds, monotonic).
        options: reconnection and timeout settings (``SSEOptions()`` when ``None``).
        watching: someone takes the statuses on the way (progress callbacks, ``watch()``).

    Returns:
        How it ended, with the last known status.

    Example:
        In the wait flow::

            ending = yield from follow_events(
                url, dialect=dialect, open_stream=functools.partial(open_stream, cfg),
                tracker=tracker, deadline=deadline, now=clock, options=SSEOptions(),
            )
            if ending.end is SSEEnd.TERMINAL: ...      # done
            elif ending.end is SSEEnd.DEADLINE: ...    # raise WaitTimeoutError
            else: ...                                   # poll from ending.status
    """
    run = _Following(
        events_url, dialect, tracker, deadline, now, options or SSEOptions(), _Replays(), watching
    )
    if tracker.last is not None and tracker.last.is_terminal:
        return run.finish(SSEEnd.TERMINAL, "the operation was already terminal")
    while True:
        left = run.remaining()
        if left is not None and left <= 0:
            return run.finish(SSEEnd.DEADLINE, "the deadline passed")
        ended = yield from run.connection(open_stream, left)
        if isinstance(ended, SSEEnding):
            return ended
        if ended is None:
            # Not a drop: reopen at once, resuming, with a read timeout that ends at the
            # deadline.
            run.reconnects += 1
            continue
        delay = run.drop(ended)
        if isinstance(delay, SSEEnding):
            return delay
        if delay > 0:
            yield Sleep(delay)
        run.reconnects += 1


@dataclass(slots=True)
class _Following:
    """The state of one :func:`follow_events` across its connections."""

    events_url: str
    dialect: Dialect
    tracker: Tracker
    deadline: float | None
    now: Callable[[], float]
    opts: SSEOptions
    replays: _Replays
    watching: bool
    last_id: str = ""
    server_retry: int | None = None
    drops: int = 0
    reconnects: int = 0

    def finish(self, end: SSEEnd, reason: str) -> SSEEnding:
        return SSEEnding(end, self.tracker.last, reason, self.last_id, self.reconnects)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.now()

    def connection(
        self, open_stream: StreamOpener, left: float | None
    ) -> Generator[Command, Any, SSEEnding | str | None]:
        """Open the stream and read it: how following ends, why the stream dropped, or
        ``None`` to reopen it at once with a read timeout closer to the deadline."""
        headers, timeout = _stream_request(self.last_id, self.opts, left)
        try:
            response = yield from open_stream(self.events_url, headers=headers, timeout=timeout)
        except _DROPS as exc:
            return f"could not open the event stream: {exc}"
        refusal = _refusal(response)
        if refusal is not None:
            yield CloseStream()
            return self.finish(SSEEnd.FALLBACK, refusal)
        decoder = SSEDecoder(last_event_id=self.last_id, max_buffer=self.opts.max_buffer)
        self.replays.new_connection(self.last_id)
        stream_url = response.url or self.events_url
        if _log.active(_log.SSE):
            _log.decision(
                _log.SSE,
                "asyncreply.sse.open",
                {"asyncreply.sse.last_event_id": self.last_id or None},
                "event stream %s open (Last-Event-ID %r)",
                _log.redact_url(stream_url),
                self.last_id or None,
            )
        ended = yield from self._read(decoder, stream_url, timeout["read"])
        if not isinstance(ended, SSEEnding):
            decoder.close()
        # With the terminal status read, the stream may be closed after the wait returns.
        yield CloseStream(answered=isinstance(ended, SSEEnding) and ended.end is SSEEnd.TERMINAL)
        return ended

    def _read(
        self, decoder: SSEDecoder, stream_url: str, read_timeout: float
    ) -> Generator[Command, Any, SSEEnding | str | None]:
        """Read the open stream (see :meth:`connection` for what it returns)."""
        while True:
            try:
                # Bytes, not text: an event stream is UTF-8 whatever its Content-Type's
                # charset says (§9.2.5), and the decoder decodes it so.
                chunk: bytes | str | None = yield ReadBytes()
            except _DROPS as exc:
                return f"the event stream broke: {exc}"
            except httpx.DecodingError as exc:  # not of its Content-Encoding: no retry
                return self.finish(SSEEnd.FALLBACK, f"unusable event stream: {exc}")
            if chunk is None:
                return "the event stream ended before the operation finished"
            try:
                events = decoder.feed(chunk)
                statuses = self._statuses(events, stream_url)
            except ProtocolError as exc:
                return self.finish(SSEEnd.FALLBACK, f"unusable event stream: {exc}")
            self.last_id = decoder.last_event_id
            if events and _log.active(_log.SSE):
                _messages(events)
            if decoder.retry is not None:
                self.server_retry = decoder.retry
            for status in statuses:
                if self.tracker.observe(status):
                    self.drops = 0
                    yield Emit(status)
                if status.is_terminal:
                    reported = f"the event stream reported {status.state.value}"
                    return self.finish(SSEEnd.TERMINAL, reported)
            left = self.remaining()
            if left is not None and left <= 0:
                return self.finish(SSEEnd.DEADLINE, "the deadline passed")
            if left is not None and _needs_tighter_timeout(read_timeout, left):
                return None

    def _statuses(self, events: list[ServerSentEvent], url: str) -> list[JobStatus]:
        """The statuses ``events`` carry, in order, replays skipped; unless watching, only
        the terminal one when the last status is terminal (those before it are not read).

        Raises:
            ProtocolError: an event the dialect calls malformed.
        """
        fresh = [e for e in events if not self.replays.is_replay(e.id)]
        interpret = self.dialect.interpret_event
        if self.watching or len(fresh) < 2:
            return [s for e in fresh if (s := interpret(e.event, e.data, url=url)) is not None]
        for i in range(len(fresh) - 1, -1, -1):
            last = interpret(fresh[i].event, fresh[i].data, url=url)
            if last is None:
                continue
            if last.is_terminal:
                return [last]
            earlier = fresh[:i]
            return [
                *(s for e in earlier if (s := interpret(e.event, e.data, url=url)) is not None),
                last,
            ]
        return []

    def drop(self, why: str) -> float | SSEEnding:
        """Count a drop: the delay before reconnecting, or how following ends."""
        left = self.remaining()
        if left is not None and left <= 0:
            return self.finish(SSEEnd.DEADLINE, "the deadline passed")
        self.drops += 1
        if self.drops > self.opts.max_reconnects:
            return self.finish(
                SSEEnd.FALLBACK, f"{why}; gave up after {self.drops} consecutive drops"
            )
        delay = self.opts.reconnect_delay(self.server_retry, self.drops)
        if left is not None and delay >= left:
            return self.finish(SSEEnd.FALLBACK, f"{why}; no time left to reconnect")
        if _log.active(_log.SSE):
            _reconnecting(why, delay, self.last_id, self.drops, self.opts.max_reconnects)
        return delay


def _messages(events: list[ServerSentEvent]) -> None:
    """Report each message received (its type and id; never its data)."""
    for event in events:
        _log.decision(
            _log.SSE,
            "asyncreply.sse.message",
            {"asyncreply.sse.event": event.event, "asyncreply.sse.id": event.id or None},
            "SSE message %r (id %r)",
            event.event,
            event.id or None,
        )


def _reconnecting(why: str, delay: float, last_id: str, drops: int, limit: int) -> None:
    reason = _log.redact_text(why)
    _log.decision(
        _log.SSE,
        "asyncreply.sse.reconnect",
        {
            "asyncreply.reason": reason,
            "asyncreply.delay": delay,
            "asyncreply.sse.last_event_id": last_id or None,
            "asyncreply.sse.drops": drops,
        },
        "event stream dropped (%s, %d of %d): reconnecting in %.3f s with Last-Event-ID %r",
        reason,
        drops,
        limit,
        delay,
        last_id or None,
    )


def _needs_tighter_timeout(read_timeout: float, left: float) -> bool:
    """Whether a stream whose read timeout is ``read_timeout`` should be reopened now that only
    ``left`` seconds remain before the deadline.

    A read timeout is fixed when the stream opens and restarts with every read, so a stream
    that delivers something shortly before the deadline and then falls silent would keep the
    wait going up to ``read_timeout`` past it. Reopening (resuming with ``Last-Event-ID``)
    once the time left is under half the read timeout bounds that overshoot by half the time
    that was left, at the cost of a few reconnections (halving each time) near the deadline.
    """
    return read_timeout > 2 * left and read_timeout - left > _MIN_TIGHTENING


def _stream_request(
    last_id: str, options: SSEOptions, left: float | None
) -> tuple[dict[str, str], dict[str, float]]:
    """The headers and the timeouts of a stream request."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_id:
        # The standard allows any UTF-8 id (the decoder guarantees no CR, LF or NUL in it).
        headers["Last-Event-ID"] = last_id
    read = options.silence_timeout if left is None else min(options.silence_timeout, left)
    connect = options.connect_timeout if left is None else min(options.connect_timeout, left)
    # httpx's per-request timeout extension: the read timeout bounds each read, not the
    # stream, so a long-lived stream has no total timeout.
    return headers, {"connect": connect, "read": read, "write": connect, "pool": connect}
