"""OpenTelemetry, when the ``otel`` extra (``opentelemetry-api``) is installed; nothing otherwise.

:func:`start_span` opens the span of one operation (submit → terminal) in the caller's current
context; :class:`OperationSpan` records its attributes and events, puts its context on each
request (``traceparent``, W3C Trace Context) and makes it current while a request is sent, so
spans of an httpx instrumentation become its children. Without the API installed,
``start_span`` returns ``None`` and the client does no tracing work at all. Which SDK, exporter
and sampler run is the application's choice (``opentelemetry-sdk``); with none configured the
API's spans do not record, and only ``traceparent`` propagation remains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ._log import Attribute

try:  # the optional ``otel`` extra
    from opentelemetry import context as otel_context
    from opentelemetry import propagate as otel_propagate
    from opentelemetry import trace as otel_trace
except ImportError:  # pragma: no cover - exercised in a subprocess with the import blocked
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = ["AVAILABLE", "SPAN_NAME", "OperationSpan", "start_span", "tracer"]

SPAN_NAME = "asyncreply.operation"
_TRACER_NAME = "asyncreply"


class OperationSpan:
    """The span of one operation, with the few verbs the client needs."""

    __slots__ = ("_context", "_ended", "_recording", "span")

    def __init__(self, span: Any) -> None:
        self.span = span
        self._context = otel_trace.set_span_in_context(span)
        self._recording: bool = span.is_recording()
        self._ended = False

    @property
    def recording(self) -> bool:
        """Whether attributes and events are kept (an SDK samples this span)."""
        return self._recording and not self._ended

    def set(self, attributes: Mapping[str, Attribute | None]) -> None:
        """Set attributes (``None`` values are skipped)."""
        if self.recording:
            for key, value in attributes.items():
                if value is not None:
                    self.span.set_attribute(key, value)

    def event(self, name: str, attributes: Mapping[str, Attribute | None]) -> None:
        """Add an event (``None`` values are skipped)."""
        if self.recording:
            kept = {key: value for key, value in attributes.items() if value is not None}
            self.span.add_event(name, kept)

    def inject(self, headers: httpx.Headers) -> None:
        """Write this span's context into ``headers`` (``traceparent``, ``tracestate``)."""
        otel_propagate.inject(headers, context=self._context)

    def attach(self) -> object:
        """Make the span current (until :meth:`detach` with the returned token)."""
        return otel_context.attach(self._context)

    @staticmethod
    def detach(token: object) -> None:
        """Undo :meth:`attach`."""
        otel_context.detach(token)  # type: ignore[arg-type]

    def end(self, *, error_type: str | None = None, description: str | None = None) -> None:
        """End the span (once); ``error_type`` (OTel's ``error.type``) marks it failed."""
        if self._ended:
            return
        if error_type is not None and self._recording:
            self.span.set_attribute("error.type", error_type)
            self.span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, description))
        self._ended = True
        self.span.end()


def tracer() -> Any:
    """The tracer of the client's spans, from the global tracer provider (tests replace it)."""
    return otel_trace.get_tracer(_TRACER_NAME)


_GLOBAL_TRACER = tracer


def start_span(attributes: Mapping[str, Attribute | None]) -> OperationSpan | None:
    """Start an operation's span as a child of the current context (``None`` without the
    ``otel`` extra, or when there is neither an SDK recording it nor a trace to continue)."""
    if not AVAILABLE:
        return None
    if (
        tracer is _GLOBAL_TRACER
        and isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
        and not otel_trace.get_current_span().get_span_context().is_valid
    ):
        # No SDK installed (the global provider is still the API's proxy) and no trace to
        # continue: the span would record nothing and propagate nothing (as below, cheaper).
        return None
    kept = {key: value for key, value in attributes.items() if value is not None}
    span = tracer().start_span(SPAN_NAME, attributes=kept)
    if not span.is_recording() and not span.get_span_context().is_valid:
        return None  # no SDK and no incoming trace: nothing to record or propagate
    return OperationSpan(span)
