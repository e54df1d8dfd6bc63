"""The commands the I/O-free flows yield, and the drivers execute.

A flow is a generator: it yields a command, the driver performs it (sync or async) and sends
back the reply. This is the only contract between the pure core and I/O (STYLE.md §1).

| command         | driver does                                      | reply sent back             |
| --------------- | ------------------------------------------------ | --------------------------- |
| ``Send``        | sends ``request`` once with ``auth`` (no retry,  | ``HttpResponse`` (body read |
|                 | no redirect); with ``stream`` the body stays open| unless ``stream``)          |
| ``ReadChunk``   | reads the next piece of the open stream's text   | ``str``, or ``None`` at EOF |
| ``ReadBytes``   | reads the next piece of the open stream's bytes  | ``bytes``, or ``None``      |
| ``CloseStream`` | closes the open stream (no-op when none is open);| ``None``                    |
|                 | ``answered``: may close it off the caller's path |                             |
| ``Sleep``       | sleeps ``seconds`` through the client's clock    | ``None``                    |
| ``Emit``        | hands ``status`` to the caller (``watch`` yields | ``None``                    |
|                 | it; ``wait`` only calls the progress callbacks)  |                             |

A failed request (``httpx.RequestError``: a transport failure, an undecodable body) is thrown
into the flow, unchanged, at the ``yield`` of the command that failed: the flow decides
whether to retry (``_retry``), fall back or give up. Every decision (retries, redirects,
credentials) is the flow's; a command carries all the driver needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import httpx

from ._models import JobStatus

__all__ = ["CloseStream", "Command", "Emit", "ReadBytes", "ReadChunk", "Send", "Sleep", "Tracker"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` once, with ``auth`` as ``httpx.Client.send``'s ``auth`` argument
    (``None``: no credentials at all, the flow's decision for an untrusted origin); with
    ``stream`` the body is left open for ``ReadChunk`` / ``ReadBytes``. Otherwise the body
    is read, at most ``max_body`` bytes of a 1xx-3xx answer and ``max_error_body`` of a
    4xx/5xx one (``None``: all of it); a longer one arrives cut, ``truncated`` set.
    ``submission``: the request starts an operation, and waits for its turn behind the
    requests of operations under way (``_admission``)."""

    request: httpx.Request
    auth: Any = None
    stream: bool = False
    max_body: int | None = None
    max_error_body: int | None = None
    submission: bool = False


@dataclass(frozen=True, slots=True)
class ReadChunk:
    """Read the next chunk of text of the open stream (``None`` at its end)."""


@dataclass(frozen=True, slots=True)
class ReadBytes:
    """Read the next chunk of raw bytes of the open stream (``None`` at its end): downloads."""


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close the open stream. ``answered``: the flow has what it read the stream for (an
    SSE wait's terminal event), so a driver that can hands the stream to its client's
    ``StreamEnds`` (``_stream_ends``), closed off the caller's path, instead of closing it
    before the flow returns."""

    answered: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    """Sleep for ``seconds`` (never negative)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Emit:
    """Report a new status snapshot to the caller."""

    status: JobStatus


class Tracker:
    """Remembers what a wait has seen, so a snapshot seen on two channels (SSE and polling)
    is reported once. Flows yield ``Emit(status)`` only when ``observe`` returns true."""

    __slots__ = ("_last_key", "last")

    def __init__(self, last: JobStatus | None = None) -> None:
        self.last: JobStatus | None = last
        self._last_key: tuple[object, ...] | None = None if last is None else self._key(last)

    @staticmethod
    def _key(status: JobStatus) -> tuple[object, ...]:
        p = status.progress
        return (status.state, None if p is None else (p.current, p.total, p.message))

    def observe(self, status: JobStatus) -> bool:
        """Record ``status`` as the latest; return whether it is new (state or progress)."""
        self.last = status
        key = self._key(status)
        if key == self._last_key:
            return False
        self._last_key = key
        return True


Command: TypeAlias = Send | ReadChunk | ReadBytes | CloseStream | Sleep | Emit
Reply: TypeAlias = Any
