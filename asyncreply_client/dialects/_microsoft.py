"""Microsoft REST API guidelines long-running operations (``Operation-Location``)."""

from __future__ import annotations

from ._base import DialectBase, OkMode

__all__ = ["MicrosoftDialect"]


class MicrosoftDialect(DialectBase):
    """Microsoft REST API guidelines operations.

    The monitor is ``Operation-Location``; its document has ``status`` (``NotStarted``,
    ``Running``, ``Succeeded``, ``Failed``, ``Canceled``), ``error {code, message}``,
    ``percentComplete``, and the outcome in ``result`` or at ``resourceLocation`` (else, for
    PUT/PATCH, at the original URL).
    """

    name = "microsoft"
    _ok_mode: OkMode = "document"
    __slots__ = ()
