"""The commands the I/O-free flows yield, and the drivers execute.

A flow is a generator: it yields a command, the driver performs it (sync or async) and sends
back the reply. This is the only contract between the pure core and I/O (STYLE.md §1).

| command       | driver does                                        | reply sent back             |
| ------------- | -------------------------------------------------- | --------------------------- |
| ``Send``      | sends ``request`` (retrying transient faults when  | ``HttpResponse`` (body read |
|               | ``retry``); with ``stream`` the body is left open  | unless ``stream``)          |
| ``ReadChunk`` | reads the next piece of the open stream's text     | ``str``, or ``None`` at EOF |
| ``CloseStream``| closes the open stream (no-op when none is open)  | ``None``                    |
| ``Sleep``     | sleeps ``seconds`` through the client's clock      | ``None``                    |

Transport failures (after retries) are thrown into the flow as ``TransportError`` at the
``yield`` of the command that failed, so the flow can react (fall back, give up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import httpx

__all__ = ["CloseStream", "Command", "ReadChunk", "Send", "Sleep"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request``; retry transient faults only when ``retry`` is true."""

    request: httpx.Request
    retry: bool = True
    stream: bool = False


@dataclass(frozen=True, slots=True)
class ReadChunk:
    """Read the next chunk of text of the open stream (``None`` at its end)."""


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close the open stream."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Sleep for ``seconds`` (never negative)."""

    seconds: float


Command: TypeAlias = Send | ReadChunk | CloseStream | Sleep
Reply: TypeAlias = Any
