"""Ready descriptions of the job APIs Python applications poll most (``dialect="replicate"``).

Each preset is data for :class:`DeclarativeDialect`, written from the vendor's public API
documentation; none is a code path. ``PRESETS[name]`` is the description; :func:`preset`
builds the dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._declarative import DeclarativeDialect

__all__ = ["PRESETS", "preset"]

_REPLICATE: dict[str, Any] = dict(  # POST /v1/predictions; urls.get / cancel / stream
    name="replicate",
    states={"starting": "pending", "processing": "processing", "succeeded": "completed",
            "failed": "failed", "canceled": "cancelled", "aborted": "cancelled"},
    status_url="urls.get", output="output", error="error", progress_message="logs",
    cancel_url="urls.cancel", cancel_method="POST", events_url="urls.stream",
    events={"output": "output", "logs": "progress", "error": "error", "done": "end"},
    event_state="reason",
)  # fmt: skip
_FAL: dict[str, Any] = dict(  # POST queue.fal.run/{app}; the answer names the URLs
    name="fal",
    states={"IN_QUEUE": "pending", "IN_PROGRESS": "processing", "COMPLETED": "completed",
            "FAILED": "failed", "CANCELED": "cancelled", "CANCELLED": "cancelled"},
    case_sensitive=True, id="request_id", status_url="status_url",
    result_url="response_url", error="detail", progress_message="logs",
    cancel_url="cancel_url", cancel_method="PUT", events_url="{status_url}/stream",
)  # fmt: skip
_RUNPOD: dict[str, Any] = dict(  # POST /v2/{endpoint}/run
    name="runpod",
    states={"IN_QUEUE": "pending", "IN_PROGRESS": "processing", "COMPLETED": "completed",
            "FAILED": "failed", "CANCELLED": "cancelled", "TIMED_OUT": "failed"},
    case_sensitive=True, status_url="/v2/{endpoint}/status/{id}", output="output",
    error="error", cancel_url="/v2/{endpoint}/cancel/{id}", cancel_method="POST",
)  # fmt: skip
_OPENAI_BATCH: dict[str, Any] = dict(  # POST /v1/batches
    name="openai-batch",
    states={"validating": "processing", "in_progress": "processing",
            "finalizing": "processing", "completed": "completed", "failed": "failed",
            "expired": "failed", "cancelling": "processing", "cancelled": "cancelled"},
    status_url="/v1/batches/{id}", result_url="/v1/files/{output_file_id}/content",
    error="errors.data.0", progress_current="request_counts.completed",
    progress_total="request_counts.total",
    cancel_url="/v1/batches/{id}/cancel", cancel_method="POST",
)  # fmt: skip
_ASSEMBLYAI: dict[str, Any] = dict(  # POST /v2/transcript; DELETE deletes: no cancel
    name="assemblyai",
    states={"queued": "pending", "processing": "processing", "completed": "completed",
            "error": "failed"},
    status_url="/v2/transcript/{id}", error="error",
)  # fmt: skip

#: The presets by name: each a description :class:`DeclarativeDialect` takes.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        spec["name"]: MappingProxyType(spec)
        for spec in (_REPLICATE, _FAL, _RUNPOD, _OPENAI_BATCH, _ASSEMBLYAI)
    }
)


def preset(name: str) -> DeclarativeDialect:
    """The preset dialect ``name`` (one of :data:`PRESETS`).

    Raises:
        KeyError: an unknown name.

    Example:
        >>> preset("fal").cancel_method, preset("assemblyai").cancel_method
        ('PUT', None)
    """
    return DeclarativeDialect.from_mapping(PRESETS[name])
