"""Microsoft REST API guidelines long-running operations (``Operation-Location``)."""

from __future__ import annotations

from ._base import DialectBase, OkMode

__all__ = ["MicrosoftDialect"]


class MicrosoftDialect(DialectBase):
    """Microsoft REST API guidelines operations.

    The monitor is ``Operation-Location``; its document has ``status`` (``NotStarted``,
    ``Running``, ``Succeeded``, ``Failed``, ``Canceled``), ``error {code, message}``,
    ``percentComplete``, and the outcome in ``result`` or at ``resourceLocation`` (else, for
    PUT/PATCH, at the original URL). A server that answers a submission with ``Location``
    only (no ``Operation-Location``) is polled there as ARM's ``Location`` is: 202 while
    running, and a 200/201/204 without a ``status`` is the result itself. A ``Succeeded``
    operation document that names no result (no ``result``, no ``resourceLocation``, no
    final URL) is itself the result, as azure-core returns the last polled answer.
    """

    name = "microsoft"
    _ok_mode: OkMode = "document"
    _location_gives_result = True
    _completed_document_is_result = True
    __slots__ = ()
