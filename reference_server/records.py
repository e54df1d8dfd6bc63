"""Plain records the server keeps about jobs, results, events, keys and webhook deliveries.

These are the units the stores persist. They hold times as float seconds since the epoch
(from the injected clock) and are converted to RFC 3339 strings only at the HTTP edge.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DeliveryRecord",
    "EventRecord",
    "IdempotencyRecord",
    "JobError",
    "JobRecord",
    "JobState",
    "Progress",
    "StoredResult",
    "Tombstone",
]


class JobState(str, enum.Enum):
    """The life-cycle states of a job (reference-dialect names)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the state is final."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class Progress:
    """The last progress a handler reported."""

    current: float
    total: float | None
    message: str | None

    def to_json(self) -> dict[str, Any]:
        """Return the wire form ``{"current", "total", "message"}``."""
        return {"current": self.current, "total": self.total, "message": self.message}


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed."""

    code: str
    message: str
    retryable: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the wire form ``{"code", "message", "retryable"}``."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


@dataclass(slots=True)
class JobRecord:
    """Everything the server knows about one job (its result is stored separately)."""

    id: str
    seq: int
    owner: str
    type: str
    input: Any
    callback: dict[str, Any] | None
    state: JobState
    created_at: float
    updated_at: float
    attempt: int = 0
    progress: Progress | None = None
    progress_at: float | None = None
    estimate: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancelled_at: float | None = None
    not_before: float | None = None
    run_at: float | None = None
    error: JobError | None = None
    dead_letter: bool = False
    result_kind: str | None = None
    result_content_type: str | None = None
    result_filename: str | None = None
    result_size: int | None = None
    result_expired: bool = False
    expires_at: float | None = None
    result_expires_at: float | None = None
    original_job_id: str | None = None
    event_seq: int = 0
    #: The webhook delivery of the job's terminal event, written in the same atomic step as
    #: the terminal state (``None``: no callback wanted it, or the job is not final yet).
    webhook_delivery_id: str | None = None

    def copy(self) -> JobRecord:
        """Return a shallow copy (records are mutated in place by the job manager)."""
        return dataclasses.replace(self)


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A job's result: JSON (``kind="json"``, ``data`` is UTF-8 JSON) or a file."""

    kind: str
    data: bytes
    content_type: str
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of a job's event log (the SSE stream replays these)."""

    id: int
    event: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A remembered ``Idempotency-Key``: which job it created for which request body."""

    user: str
    key: str
    body_hash: str
    job_id: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What remains of an expired job: enough to answer 410 to its owner."""

    job_id: str
    owner: str
    expired_at: float


@dataclass(slots=True)
class DeliveryRecord:
    """One webhook event and the fate of its delivery."""

    id: str
    job_id: str
    owner: str
    event: str
    url: str
    created_at: float
    updated_at: float
    attempts: int = 0
    status: str = "pending"
    last_error: str | None = None
    response_status: int | None = None
    payload: bytes = field(default=b"", repr=False)

    def to_json(self, fmt: Any) -> dict[str, Any]:
        """Return the wire form; ``fmt`` formats epoch seconds as RFC 3339."""
        return {
            "id": self.id,
            "jobId": self.job_id,
            "event": self.event,
            "url": self.url,
            "attempts": self.attempts,
            "status": self.status,
            "lastError": self.last_error,
            "responseStatus": self.response_status,
            "createdAt": fmt(self.created_at),
            "updatedAt": fmt(self.updated_at),
        }
