"""The reference server's own middlewares: request counts and error documents, faults, CORS.

Bound to one server's :class:`~reference_server.app.ServerState` when the application is
built (``create_app``), so they need no global state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import HTTPError, error

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

    from .server_state import ServerState

__all__ = [
    "CORS_ALLOWED_HEADERS",
    "CORS_EXPOSED_HEADERS",
    "HandlerFn",
    "cors",
    "cors_headers",
    "errors_and_counts",
    "inject_faults",
]

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


# ------------------------------------------------------------------------------------ CORS
#: Request headers a page may send (answered to a preflight's Access-Control-Request-Headers).
CORS_ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Prefer",
    "Last-Event-ID",
    "traceparent",
    "tracestate",
)
#: Answer headers a page may read (beyond the CORS-safelisted ones): what a client of the
#: protocol needs to follow a job.
CORS_EXPOSED_HEADERS = (
    "Location",
    "Content-Location",
    "Retry-After",
    "Link",
    "Preference-Applied",
    "Idempotent-Replayed",
    "Content-Disposition",
    "WWW-Authenticate",
    "traceparent",
)
_CORS_METHODS = "GET, POST, DELETE"
_PREFLIGHT_MAX_AGE = "600"


def _allowed_origin(state: ServerState, request: web.BaseRequest) -> str | None:
    """The request's ``Origin`` when the configuration lets it call the API, else ``None``."""
    origins = state.config.cors_origins
    origin = request.headers.get("Origin")
    if not origins or origin is None:
        return None
    if "*" in origins or origin.lower() in (o.lower() for o in origins):
        return origin
    return None


def cors_headers(state: ServerState) -> Callable[[web.BaseRequest, web.StreamResponse], Any]:
    """An ``on_response_prepare`` hook: CORS headers on every answer to an allowed origin.

    A signal rather than a middleware, so that streams (SSE), which send their head inside
    the handler, carry the headers too.
    """

    async def hook(request: web.BaseRequest, response: web.StreamResponse) -> None:
        if not state.config.cors_origins:
            return
        response.headers.add("Vary", "Origin")  # the answer depends on the Origin header
        origin = _allowed_origin(state, request)
        if origin is None:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ", ".join(CORS_EXPOSED_HEADERS)

    return hook


def cors(state: ServerState) -> Middleware:
    """Answer CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``).

    A preflight carries no credentials (Fetch standard), so it is answered before
    authentication: ``204`` with the allowed methods and headers for an allowed origin, and
    ``403 cors_origin_refused`` for any other.
    """
    return _bound(state, _cors)


async def _cors(state: ServerState, request: web.Request, handler: HandlerFn) -> web.StreamResponse:
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return await handler(request)
    if not state.config.cors_origins:
        return await handler(request)
    if _allowed_origin(state, request) is None:
        return error(403, "cors_origin_refused", "this origin may not call the API")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": _CORS_METHODS,
            "Access-Control-Allow-Headers": ", ".join(CORS_ALLOWED_HEADERS),
            "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
        },
    )
