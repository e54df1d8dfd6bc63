"""The asyncreply reference server for the async request-reply pattern.

A small but complete aiohttp implementation of ``docs/protocol.md``: submit jobs (202 +
``Location``), poll or long-poll their status, follow them over Server-Sent Events or
webhooks, fetch results, cancel and retry. Run it with ``python -m reference_server`` or,
in tests, with :func:`serve` / :class:`ServerThread`.

Example:
    >>> async def main() -> None:
    ...     async with serve(ServerConfig(workers=2)) as server:
    ...         ...  # talk to server.base_url; inspect server.admin
"""

from __future__ import annotations

from .admin import Admin, DeliverySnapshot, JobSnapshot, ResultMeta
from .app import STATE_KEY, create_app
from .config import DEV_WEBHOOK_SECRET, FaultConfig, ServerConfig
from .jobs import FileResult, Handler, JobCancelled, JobContext, JobFailure, JobType
from .records import JobState
from .serving import RunningServer, ServerThread, serve

__all__ = [
    "DEV_WEBHOOK_SECRET",
    "STATE_KEY",
    "Admin",
    "DeliverySnapshot",
    "FaultConfig",
    "FileResult",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobFailure",
    "JobSnapshot",
    "JobState",
    "JobType",
    "ResultMeta",
    "RunningServer",
    "ServerConfig",
    "ServerThread",
    "create_app",
    "serve",
]
