"""OpenTelemetry for the reference server: one SERVER span per request, when ``opentelemetry-api``
is importable, continuing the caller's trace from its ``traceparent`` (W3C Trace Context), so a
client operation's span is the parent of the server's spans. Without the API the middleware
passes requests through and does nothing else.

Attributes follow the OpenTelemetry HTTP semantic conventions (``http.request.method``,
``http.route``, ``url.path``, ``http.response.status_code``, ``error.type``), plus
``asyncreply.job_id`` when the request concerns a job (or created one). The query string, the
headers and the bodies are never recorded (they may carry credentials).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .access_log import Outcome

try:  # opentelemetry-api is optional
    from opentelemetry import propagate as otel_propagate
    from opentelemetry import trace as otel_trace
except ImportError:  # pragma: no cover - exercised in a subprocess with the import blocked
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = ["AVAILABLE", "TRACER_NAME", "tracer", "tracing"]

TRACER_NAME = "asyncreply.server"


def tracer() -> Any:
    """The tracer of the server's spans, from the global tracer provider (tests replace it)."""
    return otel_trace.get_tracer(TRACER_NAME)


def tracing() -> Middleware:
    """An aiohttp middleware opening one SERVER span per request (a pass-through without
    ``opentelemetry-api``). Register it first, so that its span covers the other middlewares
    and sees the final status.

    Example:
        >>> from aiohttp import web
        >>> app = web.Application(middlewares=[tracing()])
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not AVAILABLE or _inert(request):
            return await handler(request)
        return await _traced(request, handler)

    return middleware


def _inert(request: web.Request) -> bool:
    """Whether a span of ``request`` could neither record nor carry a trace on: no tracer
    provider is set (the API's proxy hands out non-recording spans) and the request continues
    no trace. Then the request skips the span's work (the extraction, the context switch and
    the attributes)."""
    return (
        "traceparent" not in request.headers
        and isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
        and isinstance(tracer(), otel_trace.ProxyTracer)
    )


async def _traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else None
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.path": request.rel_url.raw_path,
    }
    if route is not None:
        attributes["http.route"] = route
    parent = otel_propagate.extract(request.headers)
    with tracer().start_as_current_span(
        f"{request.method} {route}" if route is not None else request.method,
        context=parent,
        kind=otel_trace.SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        outcome = Outcome(request)
        try:
            return await outcome.run(handler)
        finally:
            status, error_type = outcome.status, outcome.error
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    error_type = str(status)
            if outcome.job_id is not None:
                span.set_attribute("asyncreply.job_id", outcome.job_id)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                # Semantic conventions: only 5xx (and failures) are errors on a server span.
                span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR))
