"""Azure Resource Manager asynchronous operations (``Azure-AsyncOperation``, ``Location``)."""

from __future__ import annotations

from ._base import DialectBase, OkMode

__all__ = ["ArmDialect"]


class ArmDialect(DialectBase):
    """Azure Resource Manager asynchronous operations.

    ``Azure-AsyncOperation`` (a ``{status, error}`` document) is preferred, else ``Location``
    polling (202 while running, 200/201/204 done with the body as the result), else for a
    PUT/PATCH answered with a non-terminal ``properties.provisioningState`` the resource
    itself. The final result of a PUT/PATCH is the original URI, of another method the
    ``Location`` header: :attr:`Submission.final_url`, which completed statuses carry as
    ``result_url``.
    """

    name = "arm"
    _ok_mode: OkMode = "auto"
    _poll_resource = True
    __slots__ = ()
