"""Dialects: pure interpretation of submit responses, status responses and SSE events.

INTERFACE HEAD written by the coordinator; the implementer (C1) completes this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ._http import HttpResponse
from ._models import JobStatus

__all__ = ["Dialect", "Submission"]


@dataclass(frozen=True, slots=True)
class Submission:
    """What a submit response says about the operation it started.

    Attributes:
        status: the first snapshot (PENDING from a 202; terminal for an already-finished one).
        status_url: absolute URL of the status monitor (``None`` only when the operation is
            already terminal and the server gave no monitor).
        events_url: absolute URL of an SSE stream for the operation, when offered.
        cancel_url: absolute URL to DELETE to cancel, when known.
        final_url: where an already-known final result lives (ARM ``Location`` / original URI).
        retry_after: seconds the server asked to wait before the first poll (``0.0`` = now).
    """

    status: JobStatus
    status_url: str | None
    events_url: str | None = None
    cancel_url: str | None = None
    final_url: str | None = None
    retry_after: float | None = None


class Dialect(Protocol):
    """How one family of servers expresses operations. Pure functions; no I/O."""

    name: str

    def interpret_submit(self, response: HttpResponse) -> Submission:
        """Interpret the answer to a submission (2xx / 303); raise ``ProtocolError``."""
        ...

    def interpret_status(
        self, response: HttpResponse, *, submission: Submission | None = None
    ) -> JobStatus:
        """Interpret a status-monitor answer.

        Returns a ``JobStatus`` (a 303 is COMPLETED with ``result_url`` set to the resolved
        Location). Raises ``JobNotFoundError`` (404), ``JobExpiredError`` (410) or
        ``ProtocolError`` (anything it cannot interpret). Transient statuses (429/502/503/504)
        never reach a dialect: the retry layer handles them.
        """
        ...

    def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
        """Interpret one SSE event (``url``: the stream's URL); ``None`` if not a status."""
        ...
