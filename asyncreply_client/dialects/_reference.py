"""The reference server's dialect (docs/protocol.md, ``dialect: reference``)."""

from __future__ import annotations

from ._base import DialectBase, OkMode

__all__ = ["ReferenceDialect"]


class ReferenceDialect(DialectBase):
    """The reference server's JSON (docs/protocol.md, ``dialect: reference``).

    Status answers are 200 status documents (``status``, ``progress``, ``error``, URLs),
    except completed → 303 to the result (or 200 with an inline ``result``).

    Example:
        >>> from asyncreply_client._http import HttpResponse
        >>> import httpx
        >>> r = HttpResponse(200, httpx.Headers({"Content-Type": "application/json"}),
        ...                  b'{"jobId": "j1", "status": "processing"}', "http://h/jobs/j1")
        >>> ReferenceDialect().interpret_status(r).state
        <JobState.PROCESSING: 'processing'>
    """

    name = "reference"
    _ok_mode: OkMode = "document"
    _memo_status = True
    __slots__ = ()
