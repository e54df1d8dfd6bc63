"""Who a request is: bearer tokens (a token map, or dev mode where a token is its own user),
the event-stream URL tokens of browsers, and the middleware that answers 401 without them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from .openapi import OPENAPI_PATH
from .server_state import state_of
from .wire import HTTPError, error

__all__ = ["ANONYMOUS", "PUBLIC_PATHS", "auth", "bearer", "resolve_user", "user_of"]

#: The user of requests without a token in dev mode; reserved as a token there.
ANONYMOUS = "anonymous"
#: Paths served without authentication.
PUBLIC_PATHS = frozenset({"/health", OPENAPI_PATH})
# A bearer token is visible ASCII (RFC 6750 §2.1 allows less; we only insist on this much).
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")

_HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


def resolve_user(request: web.Request) -> str | None:
    """Resolve ``Authorization: Bearer <token>`` to a user name (``None``: unauthorized)."""
    tokens = state_of(request).config.tokens
    header = request.headers.get("Authorization")
    if header is None:
        stream_tokens = state_of(request).stream_tokens
        if stream_tokens is not None and (user := stream_tokens.user_from_request(request)):
            return user  # a browser's EventSource on its job's events URL
        return ANONYMOUS if tokens is None else None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        return None
    if tokens is None:
        # Dev mode: a token is its own user, except the name of the user without a token
        # (otherwise "Bearer anonymous" would read every job submitted without one).
        return None if token == ANONYMOUS else token
    user: str | None = None
    for known, name in tokens.items():
        # Constant-time comparison: do not leak how much of a token matched.
        if hmac.compare_digest(known.encode(), token.encode()):
            user = name
    return user


def bearer(request: web.Request) -> str | None:
    """The bearer token of ``Authorization``, if it has that form."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def user_of(request: web.Request) -> str:
    """The authenticated user of a request (the auth middleware has vouched for it)."""
    user = resolve_user(request)
    if user is None:
        raise HTTPError(401, "unauthorized", "a valid bearer token is required")
    return user


@web.middleware
async def auth(request: web.Request, handler: _HandlerFn) -> web.StreamResponse:
    """Answer 401 unless the request carries acceptable credentials."""
    if request.path not in PUBLIC_PATHS and resolve_user(request) is None:
        reserved = state_of(request).config.tokens is None and bearer(request) == ANONYMOUS
        return error(
            401,
            "unauthorized",
            f"the bearer token {ANONYMOUS!r} is reserved (it names requests without a token)"
            if reserved
            else "a valid bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="asyncreply"'},
        )
    return await handler(request)
