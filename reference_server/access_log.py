"""The reference server's access log: one INFO line per request on ``asyncreply.server``.

Each line says the method, the path (percent-encoded as received, without its query string,
which may carry secrets), the status, the user, the job id when the request concerns one, and
the duration. A bearer token never appears: where the server takes the token itself as the
user name (no ``tokens`` configured), the line shows a short hash of it instead. Off (one
level check per request) unless the application enables INFO on ``asyncreply.server``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["CANCELLED", "LOGGER", "Outcome", "access_log", "created_job"]

LOGGER = logging.getLogger("asyncreply.server")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Middleware = Callable[[web.Request, _Handler], Awaitable[web.StreamResponse]]
#: The job a created (or retried) job's ``Location`` points to.
_JOB_LOCATION = re.compile(r"/jobs/([A-Za-z0-9_-]{1,128})/?$")
#: What an abandoned request is logged with (nginx's "client closed request").
_CLIENT_CLOSED = 499


def access_log(
    user_of: Callable[[web.Request], str | None], *, hash_users: bool = False
) -> _Middleware:
    """An aiohttp middleware logging each request; ``user_of`` names a request's user
    (``None``: unauthenticated). Register it first, so it sees the final status.

    With ``hash_users`` (a server without configured ``tokens``, whose user names are the
    bearer tokens themselves), every user but ``anonymous`` is logged as a short hash.

    Example:
        >>> from aiohttp import web
        >>> app = web.Application(middlewares=[access_log(lambda request: None)])
    """

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not LOGGER.isEnabledFor(logging.INFO):
            return await handler(request)
        started = time.perf_counter()
        outcome = Outcome(request)
        try:
            return await outcome.run(handler)
        finally:
            status = outcome.status
            if status is None:
                status = _CLIENT_CLOSED if outcome.error == CANCELLED else 500
            LOGGER.info(
                "%s %s %d user=%s job=%s %.1fms",
                request.method,
                request.rel_url.raw_path,
                status,
                _user_label(request, user_of, hash_users),
                outcome.job_id or "-",
                (time.perf_counter() - started) * 1000,
            )

    return middleware


#: :attr:`Outcome.error` of a request whose handler was cancelled (the client went away).
CANCELLED = "cancelled"


class Outcome:
    """What became of one request, for the access log and the tracing middleware: its status
    (``None``: no answer), the job it concerns, and why it failed (an exception's class name,
    or :data:`CANCELLED`)."""

    __slots__ = ("error", "job_id", "request", "status")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.status: int | None = None
        self.job_id: str | None = request.match_info.get("job_id")
        self.error: str | None = None

    async def run(self, handler: _Handler) -> web.StreamResponse:
        """Run ``handler`` on the request, recording the outcome (exceptions propagate)."""
        try:
            response = await handler(self.request)
        except web.HTTPException as exc:
            self.status = exc.status
            raise
        except asyncio.CancelledError:
            self.error = CANCELLED
            raise
        except Exception as exc:
            self.error = type(exc).__qualname__
            raise
        self.status = response.status
        if self.job_id is None:
            self.job_id = created_job(response)
        return response


def created_job(response: web.StreamResponse) -> str | None:
    """The id of the job a response's ``Location`` points to (a created job), if any."""
    location = response.headers.get("Location")
    if not location:
        return None
    match = _JOB_LOCATION.search(location.partition("?")[0])
    return None if match is None else match.group(1)


def _user_label(
    request: web.Request, user_of: Callable[[web.Request], str | None], hash_users: bool
) -> str:
    try:
        user = user_of(request)
    except Exception:  # the log line must not fail the request
        return "?"
    if user is None:
        return "-"
    token = request.headers.get("Authorization", "").strip().partition(" ")[2].strip()
    if (hash_users and user != "anonymous") or (token and user == token):
        # The user's name is a credential: log a stable, non-reversible label instead.
        return "token:" + hashlib.sha256(user.encode()).hexdigest()[:12]
    return user
