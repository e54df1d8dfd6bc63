"""The reference server's own middlewares: request counts and error documents, faults.

Bound to one server's :class:`~reference_server.app.ServerState` when the application is
built (``create_app``), so they need no global state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .wire import HTTPError, error

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

    from .app import ServerState

__all__ = ["HandlerFn", "errors_and_counts", "inject_faults"]

log = logging.getLogger("reference_server")

HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


_StateMiddleware = Callable[["ServerState", web.Request, HandlerFn], Awaitable[web.StreamResponse]]


def _bound(state: ServerState, run: _StateMiddleware) -> Middleware:
    """Return ``run`` as an aiohttp middleware bound to one server's ``state``."""

    @web.middleware
    async def middleware(request: web.Request, handler: HandlerFn) -> web.StreamResponse:
        return await run(state, request, handler)

    return middleware


def errors_and_counts(state: ServerState) -> Middleware:
    """Count requests; turn every error into the JSON error document; never leak a 500 trace."""
    return _bound(state, _errors_and_counts)


async def _errors_and_counts(
    state: ServerState, request: web.Request, handler: HandlerFn
) -> web.StreamResponse:
    state.total_requests += 1
    state.path_counts[f"{request.method} {request.path}"] += 1
    route = request.match_info.route.resource
    template = route.canonical if route is not None else request.path
    state.route_counts[f"{request.method} {template}"] += 1
    try:
        return await handler(request)
    except HTTPError as exc:
        return exc.response
    except web.HTTPException as exc:
        if exc.status == 404:
            return error(404, "not_found", "no such resource")
        if exc.status == 405:
            return error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                headers={"Allow": exc.headers.get("Allow", "")},
            )
        if exc.status == 413:
            return error(413, "payload_too_large", "the body is too large")
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, "internal_error", "the server hit an unexpected error")


def inject_faults(state: ServerState) -> Middleware:
    """Inject the configured faults into the job endpoints (``/jobs`` and below)."""
    return _bound(state, _faults)


async def _faults(
    state: ServerState, request: web.Request, handler: HandlerFn
) -> web.StreamResponse:
    faults = state.faults
    if not faults.active or not (request.path == "/jobs" or request.path.startswith("/jobs/")):
        return await handler(request)
    if faults.latency:
        await asyncio.sleep(faults.latency)
    draw = state.rng.random()
    if draw < faults.p_drop:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError
    draw -= faults.p_drop
    if draw < faults.p_503:
        return error(
            503,
            "unavailable",
            "injected fault: service unavailable",
            headers={"Retry-After": str(faults.retry_after)},
        )
    draw -= faults.p_503
    if draw < faults.p_500:
        return error(500, "internal_error", "injected fault: internal error")
    return await handler(request)
