"""Fixtures of the client tests: ``traces`` (the client's spans, in memory)."""

from __future__ import annotations

from tests.client.otelkit import traces

__all__ = ["traces"]
