"""Spans for the tests: a tracer provider of the test's own (the global one is never set)
whose finished spans an in-memory exporter keeps, patched in as the client's tracer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asyncreply_client import _otel


class Traces:
    """A tracer provider of its own (the global one is left alone) and its finished spans."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def operations(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == _otel.SPAN_NAME]

    def operation(self) -> ReadableSpan:
        [span] = self.operations()
        return span


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traces]:
    recorded = Traces()
    monkeypatch.setattr(_otel, "tracer", lambda: recorded.provider.get_tracer("asyncreply"))
    yield recorded
    recorded.provider.shutdown()


def events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    """The attributes of ``span``'s events called ``name``, in order."""
    return [dict(e.attributes or {}) for e in span.events if e.name == name]
