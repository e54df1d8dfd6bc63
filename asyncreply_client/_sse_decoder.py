"""A conforming ``text/event-stream`` decoder, free of I/O.

It implements the WHATWG HTML standard, "Server-sent events", §9.2.6 "Interpreting an event
stream" (https://html.spec.whatwg.org/multipage/server-sent-events.html). httpx-sse 0.4.3's own
decoder departs from it (it keeps a leading BOM, dispatches empty events after an ``id`` line —
its issue #35 — and accepts ``retry: -5``), so we only borrow its event type,
:class:`httpx_sse.ServerSentEvent`. The flow that follows a stream is in ``_sse``.
"""

from __future__ import annotations

import codecs
import re

from httpx_sse import ServerSentEvent

from ._errors import ProtocolError

__all__ = ["SSEDecoder"]

# A line ends with CRLF, LF or CR (§9.2.5 "end-of-line"); CRLF is matched first so that it
# counts once.
_LINE_END = re.compile(r"\r\n|\r|\n")
_DIGITS = re.compile(r"[0-9]+")
_BOM = "\ufeff"
# ``int()`` refuses strings over ``sys.int_max_str_digits`` (4300) digits; a reconnection time
# that long is "forever" anyway, and callers bound it.
_MAX_RETRY_DIGITS = 18
_RETRY_FOREVER = 10**_MAX_RETRY_DIGITS


class SSEDecoder:
    """An incremental ``text/event-stream`` decoder (WHATWG HTML §9.2.6), free of I/O.

    Feed it the stream's pieces as they arrive (``bytes``, decoded as UTF-8 with replacement
    characters as the standard requires, or already-decoded ``str``); it returns the events
    each piece completes. The split of the stream into pieces never changes the result, a CR
    that ends one piece and the LF that starts the next included.

    Args:
        last_event_id: the initial value of the last event ID (``""`` by default, as the
            standard says for a new stream). A client resuming a stream passes the ID it already
            holds, as browsers do (Chromium seeds its parser the same way), so that a stream
            that dispatches before sending an ``id`` does not forget it.
        max_buffer: the most characters one line or one event's data may hold before the
            stream is refused with :class:`ProtocolError` (``None``: unbounded).

    Attributes:
        last_event_id: the stream's last event ID string, as of the last dispatch (this is what
            a reconnection sends as ``Last-Event-ID``).
        retry: the reconnection time in milliseconds set by the stream's last valid ``retry``
            field, or ``None`` when it sent none.

    Example:
        >>> decoder = SSEDecoder()
        >>> [e] = decoder.feed("id: 1\\nevent: status\\ndata: {}\\n\\n")
        >>> (e.event, e.data, e.id)
        ('status', '{}', '1')
    """

    __slots__ = (
        "_block_retry",
        "_bytes",
        "_data",
        "_data_size",
        "_event_type",
        "_id_buffer",
        "_max_buffer",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "_started",
        "last_event_id",
        "retry",
    )

    def __init__(self, *, last_event_id: str = "", max_buffer: int | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._id_buffer = last_event_id
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._block_retry: int | None = None
        self._pending: list[str] = []
        self._pending_size = 0
        self._skip_lf = False
        self._started = False
        self._max_buffer = max_buffer
        self._bytes = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: str | bytes) -> list[ServerSentEvent]:
        """Decode the next piece of the stream; return the events it completes, in order.

        Raises:
            ProtocolError: a line or an event grew beyond ``max_buffer`` characters.
        """
        if isinstance(chunk, bytes):
            text = self._bytes.decode(chunk)
        else:
            # Bytes still pending from an earlier ``bytes`` piece are an incomplete sequence.
            text = self._bytes.decode(b"", final=True) + chunk
            self._bytes.reset()
        if not text:
            return []
        if not self._started:
            self._started = True
            # The UTF-8 decode algorithm strips one leading BOM (§9.2.5, Encoding §4.1).
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf and text.startswith("\n"):
            # The CR that ended the previous piece and this LF are one CRLF line end.
            text = text[1:]
        self._skip_lf = False
        if "\r" not in text:
            # Lines ended by LF alone, as nearly every server writes them: a plain split.
            lines = text.split("\n")
            rest = lines.pop()
        else:
            lines = []
            start = 0
            for match in _LINE_END.finditer(text):
                if match.group() == "\r" and match.end() == len(text):
                    # A CR at the very end may be the first half of a CRLF split across
                    # pieces.
                    self._skip_lf = True
                lines.append(text[start : match.start()])
                start = match.end()
            rest = text[start:]
        if lines and self._pending:
            lines[0] = "".join(self._pending) + lines[0]
            self._pending = []
            self._pending_size = 0
        events: list[ServerSentEvent] = []
        for line in lines:
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        if rest:
            self._pending.append(rest)
            self._pending_size += len(rest)
            self._check_size(self._pending_size, "line")
        return events

    def close(self) -> None:
        """End the stream: pending data is discarded (§9.2.6: an event not followed by a
        blank line, and an unterminated last line, are never dispatched)."""
        self._pending = []
        self._pending_size = 0
        self._data = []
        self._data_size = 0
        self._event_type = ""
        self._block_retry = None
        self._bytes.reset()

    def _check_size(self, size: int, what: str) -> None:
        if self._max_buffer is not None and size > self._max_buffer:
            raise ProtocolError(
                f"event stream {what} longer than {self._max_buffer} characters; refused"
            )

    def _process_line(self, line: str) -> ServerSentEvent | None:
        # §9.2.6: a blank line dispatches; a leading colon is a comment; otherwise the field
        # name runs to the first colon (or the whole line), and one leading space of the value
        # is dropped.
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            self._check_size(self._data_size, "event")
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and _DIGITS.fullmatch(value):
            # "If the field value consists of only ASCII digits" (so no sign, no space, no
            # underscore, no other Unicode digits, and not empty); otherwise ignored.
            digits = value.lstrip("0") or "0"
            retry = int(digits) if len(digits) <= _MAX_RETRY_DIGITS else _RETRY_FOREVER
            self.retry = retry
            self._block_retry = retry
        # Any other field name is ignored.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        # Step 1: the last event ID string takes the buffer's value, event or not.
        self.last_event_id = self._id_buffer
        data, event_type, retry = self._data, self._event_type, self._block_retry
        self._data, self._event_type, self._block_retry = [], "", None
        self._data_size = 0
        # Step 2: an empty data buffer dispatches nothing. (The data buffer is each value
        # followed by LF, so it is empty exactly when no ``data`` field was seen; step 3's
        # removal of the final LF is the join below.)
        if not data:
            return None
        # Steps 4-5: the type defaults to "message" (ServerSentEvent does that for "").
        return ServerSentEvent(
            event=event_type, data="\n".join(data), id=self.last_event_id, retry=retry
        )
