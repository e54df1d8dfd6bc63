"""The status-code dialect: the HTTP status carries the state (docs/protocol.md)."""

from __future__ import annotations

from ._base import DialectBase, OkMode

__all__ = ["StatusCodeDialect"]


class StatusCodeDialect(DialectBase):
    """The status code carries the state (docs/protocol.md, ``dialect: status-code``).

    202 pending/running (body ``state``: ``pending``/``inFlight``), 200 → completed with the
    body as the result (a non-JSON body becomes a :class:`ResultFile`), 303 → completed with
    the result at ``Location``, 500 + error body → failed (``failed``/``deadLetter``), 409 +
    ``cancelled`` → cancelled, 410 → expired, 404 → not found.
    """

    name = "status-code"
    _ok_mode: OkMode = "result"
    _error_object_fails = True
    __slots__ = ()
