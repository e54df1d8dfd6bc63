"""Compatibility path: the dialects now live in the :mod:`asyncreply_client.dialects` package.

Modules that imported ``asyncreply_client._dialects`` keep working; new code imports from
``asyncreply_client.dialects`` (or the public names from ``asyncreply_client``).
"""

from __future__ import annotations

from .dialects import (
    ArmDialect,
    AutoDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
    ReferenceDialect,
    StatusCodeDialect,
    Submission,
    is_job_failure_response,
    parse_state,
)

__all__ = [
    "ArmDialect",
    "AutoDialect",
    "Dialect",
    "GoogleDialect",
    "MicrosoftDialect",
    "ReferenceDialect",
    "StatusCodeDialect",
    "Submission",
    "is_job_failure_response",
    "parse_state",
]
