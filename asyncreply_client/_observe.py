"""Observation of an operation's flows: logging, tracing and the last answer, without I/O.

An :class:`Observer` belongs to one operation. :meth:`Observer.observe` wraps any of the
operation's flows in a generator that passes every command and reply through unchanged while
it watches them: it logs each request and its answer, logs each state change, counts polls,
remembers the last answer that produced a status (``Operation.metadata``), puts the
operation's trace context on each request and ends the operation's span at its end.

The flows' own decisions (wait mode, delays and why, SSE fallback, retries) are reported from
the pure code by :func:`asyncreply_client._log.decision`, which reaches the observer of the flow
being stepped through a context variable (``_log.RECORDER``), so no flow signature carries it.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from . import _log, _otel
from ._commands import Command, Emit, Send
from ._errors import AsyncReplyError, JobOutcomeError, SubmissionRejectedError
from ._flow import OperationState
from ._http import HttpResponse
from ._models import JobState, JobStatus

__all__ = ["Observer", "OperationMetadata"]

T = TypeVar("T")
Attribute = _log.Attribute


@dataclass(frozen=True, slots=True)
class OperationMetadata:
    """What the last answer about an operation said (``Operation.metadata``).

    Attributes:
        status: the latest status snapshot (``None`` before the first one).
        raw: that snapshot's body as received (parsed JSON, or text), ``status.raw``.
        status_code: the HTTP status of the last answer that gave a status.
        headers: that answer's response headers (empty before the first answer).
        url: the URL that answer came from.
    """

    status: JobStatus | None
    raw: Any
    status_code: int | None
    headers: httpx.Headers
    url: str | None


class Observer:
    """Logging, tracing and the last answer of one operation (see the module docstring)."""

    __slots__ = ("answer", "on_done", "polls", "seen", "span", "state")

    def __init__(self, state: OperationState | None, *, origin: str, dialect: str) -> None:
        self.state = state
        #: The last answer that gave a status: (status code, URL, headers packed by _pack).
        self.answer: tuple[int, str, bytes] | None = None
        self.polls = 0
        self.seen: JobStatus | None = None if state is None else state.last
        #: Called when a flow ends with the operation terminal (the done callbacks).
        self.on_done: Callable[[], None] | None = None
        self.span = _otel.start_span(
            {
                "asyncreply.origin": origin,
                "asyncreply.dialect": dialect,
                **({} if state is None else _state_attributes(state)),
            }
        )

    @property
    def tracing(self) -> bool:
        """Whether the operation's span records."""
        span = self.span
        return span is not None and span.recording

    def metadata(self) -> OperationMetadata:
        """The latest status and the last answer that gave one."""
        state, answer = self.state, self.answer
        last = None if state is None else state.last
        if answer is None:
            return OperationMetadata(
                status=last,
                raw=None if last is None else last.raw,
                status_code=None,
                headers=httpx.Headers(),
                url=None,
            )
        code, url, packed = answer
        return OperationMetadata(
            status=last,
            raw=None if last is None else last.raw,
            status_code=code,
            headers=_unpack(packed),
            url=url,
        )

    def decided(self, event: str, attributes: Mapping[str, Attribute | None]) -> None:
        """Record a flow's decision on the span (the wait mode chosen also becomes its
        ``asyncreply.mode``)."""
        span = self.span
        if span is not None and span.recording:
            span.event(event, attributes)
            if event == "asyncreply.mode":
                span.set({"asyncreply.mode": attributes.get("asyncreply.mode")})

    def waiting(self, mode: str) -> None:
        """A wait starts in ``mode`` (``"auto"`` is replaced by the mode it chooses)."""
        span = self.span
        if span is not None:
            span.set({"asyncreply.mode": mode})

    def end(self, error: BaseException | None = None) -> None:
        """End the operation's span (idempotent)."""
        span = self.span
        if span is None:
            return
        state = self.state
        last = None if state is None else state.last
        span.set({"asyncreply.polls": self.polls})
        if state is not None:
            span.set(_state_attributes(state))
        if error is not None:
            # An error's message may quote a URL: its query secrets never reach the span.
            span.end(error_type=type(error).__name__, description=_log.redact_text(str(error)))
        elif last is not None and last.state is JobState.FAILED:
            job_error = last.error
            span.end(
                error_type=(job_error and job_error.code) or "job_failed",
                description=(job_error and job_error.message) or "the job failed",
            )
        else:
            span.end()

    # ----------------------------------------------------------------------------------------
    # the tap

    def observe(
        self,
        flow: Generator[Command, Any, T],
        *,
        submitting: bool = False,
        operation: object | None = None,
    ) -> Generator[Command, Any, T]:
        """``flow``, unchanged, watched by this observer. ``submitting``: the flow creates
        the operation (it returns its state), so any error ends the operation's span;
        ``operation``: given to the flow's errors that name none (``exc.operation``)."""
        reply: Any = None
        error: Exception | None = None
        token: contextvars.Token[_log.Recorder | None] | None = None
        try:
            while True:
                before = None if self.state is None else self.state.last
                token = _log.RECORDER.set(self)
                try:
                    command = flow.send(reply) if error is None else flow.throw(error)
                except StopIteration as stop:
                    value: T = stop.value
                    if self.state is None and isinstance(value, OperationState):
                        self.state = value
                        before = None
                    self._stepped(before, reply)
                    self._ended(None, fatal=False)
                    return value
                except Exception as exc:
                    self._stepped(before, reply)
                    fatal = submitting or isinstance(exc, JobOutcomeError | SubmissionRejectedError)
                    self._ended(exc, fatal=fatal)
                    if isinstance(exc, AsyncReplyError) and exc.operation is None:
                        exc.operation = operation
                    raise
                finally:
                    _log.RECORDER.reset(token)
                    token = None
                self._stepped(before, reply)
                reply, error = None, None
                if isinstance(command, Emit):
                    self._saw(command.status)
                if not isinstance(command, Send):
                    try:
                        reply = yield command
                    except Exception as exc:
                        error = exc
                    continue
                request = command.request
                span = self.span
                attached: object | None = None
                if span is not None:
                    span.inject(request.headers)
                    # Current while the driver sends: an httpx instrumentation's span for this
                    # request becomes a child of the operation's.
                    attached = span.attach()
                try:
                    reply = yield command
                except Exception as exc:
                    error = exc
                    if _log.enabled(_log.CLIENT):
                        _log.CLIENT.debug(
                            "%s %s failed: %s",
                            request.method,
                            _log.redact_url(request.url),
                            type(exc).__name__,
                        )
                finally:
                    if attached is not None:
                        _otel.OperationSpan.detach(attached)
                if error is None:
                    self._answered(request, reply)
        finally:
            if token is not None:
                _log.RECORDER.reset(token)
            flow.close()

    def _answered(self, request: httpx.Request, reply: Any) -> None:
        if not isinstance(reply, HttpResponse):
            return
        state = self.state
        status_url = None if state is None else state.status_url
        is_poll = (
            request.method == "GET"
            and status_url is not None
            and reply.url.partition("?")[0] == status_url.partition("?")[0]
        )
        if is_poll:
            self.polls += 1
            span = self.span
            if span is not None and span.recording:
                span.event(
                    "asyncreply.poll",
                    {
                        "http.response.status_code": reply.status_code,
                        "asyncreply.polls": self.polls,
                    },
                )
        if _log.enabled(_log.CLIENT):
            _log.CLIENT.debug(
                "%s %s -> %d", request.method, _log.redact_url(reply.url), reply.status_code
            )

    def _stepped(self, before: JobStatus | None, reply: Any) -> None:
        """After the flow processed ``reply``: remember the answer that gave a new status."""
        state = self.state
        if state is None:
            return
        last = state.last
        if last is None or last is before:
            return
        if isinstance(reply, HttpResponse):
            self.answer = (reply.status_code, reply.url, _pack(reply.headers))
        self._saw(last)

    def _saw(self, status: JobStatus) -> None:
        """A status snapshot was learned (polled, streamed or submitted): trace it, and log
        a change of state at INFO."""
        seen = self.seen
        if status is seen:
            return
        self.seen = status
        span = self.span
        if span is not None and span.recording:
            span.event(
                "asyncreply.status",
                {
                    "asyncreply.state": status.state.value,
                    "http.response.status_code": status.http_status,
                    "asyncreply.progress": _fraction(status),
                },
            )
        if (seen is None or seen.state is not status.state) and _log.enabled(
            _log.CLIENT, logging.INFO
        ):
            state = self.state
            name = status.id or ("?" if state is None else state.id or "?")
            _log.CLIENT.info(
                "operation %s: %s -> %s",
                name,
                "new" if seen is None else seen.state.value,
                status.state.value,
            )

    def _ended(self, error: Exception | None, *, fatal: bool) -> None:
        """A flow ended: end the span when the operation is over, then run ``on_done``."""
        state = self.state
        last = None if state is None else state.last
        terminal = last is not None and last.is_terminal
        if fatal or terminal:
            self.end(error if fatal else None)
        if terminal and self.on_done is not None:
            self.on_done()


def _pack(headers: httpx.Headers) -> bytes:
    """Headers as one bytes object: an operation keeps its last answer's headers for
    ``metadata``, and a ``Headers`` object costs several times more (fan-out memory)."""
    return b"\n".join(map(b":".join, headers.raw))


def _unpack(packed: bytes) -> httpx.Headers:
    """The headers :func:`_pack` packed (HTTP field values never hold a line feed)."""
    if not packed:
        return httpx.Headers()
    pairs: list[tuple[bytes, bytes]] = []
    for line in packed.split(b"\n"):
        name, _, value = line.partition(b":")
        pairs.append((name, value))
    return httpx.Headers(pairs)


def _fraction(status: JobStatus) -> float | None:
    progress = status.progress
    return None if progress is None else progress.fraction


def _state_attributes(state: OperationState) -> dict[str, Attribute | None]:
    last = state.last
    return {
        "asyncreply.operation.id": state.id,
        "asyncreply.status_url": None
        if state.status_url is None
        else _log.redact_url(state.status_url),
        "asyncreply.final_state": None
        if last is None or not last.is_terminal
        else last.state.value,
    }
