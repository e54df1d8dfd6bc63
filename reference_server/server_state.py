"""The live state behind one application, reached from any request handler.

:class:`ServerState` is kept on the aiohttp application under :data:`STATE_KEY` (and shared
with :class:`~reference_server.Admin`); handlers, middlewares and the auth middleware read it
through :func:`state_of`.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass, field

from aiohttp import web

from .config import FaultConfig, ServerConfig
from .jobs import JobManager
from .stream_tokens import StreamTokens
from .timing import AnswerTimes
from .webhooks import WebhookSender

__all__ = ["STATE_KEY", "ServerState", "state_of"]


@dataclass
class ServerState:
    """The live state behind one application (shared with :class:`~reference_server.Admin`)."""

    config: ServerConfig
    manager: JobManager
    webhooks: WebhookSender
    faults: FaultConfig
    rng: random.Random
    total_requests: int = 0
    path_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    route_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    loop: asyncio.AbstractEventLoop | None = None
    stream_tokens: StreamTokens | None = None  # browser event-stream URLs (bearer users only)
    #: ``--timing-headers``: when each job's first final answer was written.
    answer_times: AnswerTimes = field(default_factory=lambda: AnswerTimes(time.time))

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault configuration (re-seeding the generator when a seed is given)."""
        self.faults = faults
        self.rng = random.Random(faults.seed)


STATE_KEY = web.AppKey("asyncreply_state", ServerState)


def state_of(request: web.Request) -> ServerState:
    """The :class:`ServerState` of the application serving ``request``."""
    return request.app[STATE_KEY]
