"""Value types shared by every part of the client: job states, status snapshots, results."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["JobError", "JobState", "JobStatus", "Progress", "ResultFile"]


class JobState(str, enum.Enum):
    """The state of a long-running operation, normalised across dialects.

    ``str()`` is the state's name on the wire (``print(status.state)`` prints ``completed``).

    Example:
        >>> JobState.COMPLETED.is_terminal
        True
        >>> str(JobState.COMPLETED)
        'completed'
    """

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the operation can no longer change state."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)

    def __str__(self) -> str:
        return self.value


class Progress(BaseModel):
    """Progress reported by the server: ``current`` out of ``total``, with a message.

    Whole numbers are ``int`` (JSON does not tell ``1`` from ``1.0``, and dialects read numbers
    as floats), so they print and serialise as the server sent them (``1``, not ``1.0``);
    ``str()`` reads as a person would write it.

    Example:
        >>> str(Progress(current=1, total=4, message="step 1/4"))
        '1/4 (25%) step 1/4'
        >>> str(Progress(current=0.5, total=1.0))
        '0.5/1 (50%)'
        >>> Progress(current=2.0, total=4.0).model_dump()
        {'current': 2, 'total': 4, 'message': None}
    """

    model_config = ConfigDict(frozen=True)

    current: int | float | None = None
    total: int | float | None = None
    message: str | None = None

    @field_validator("current", "total")
    @classmethod
    def _whole(cls, value: int | float | None) -> int | float | None:
        # 2**53: beyond it a float no longer holds every integer, so it stays as it came.
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value

    def __str__(self) -> str:
        parts: list[str] = []
        if self.current is not None:
            parts.append(
                f"{self.current}/{self.total}" if self.total is not None else f"{self.current}"
            )
        fraction = self.fraction
        if fraction is not None:
            parts.append(f"({fraction:.0%})")
        if self.message:
            parts.append(self.message)
        return " ".join(parts)

    @property
    def fraction(self) -> float | None:
        """``current / total`` clamped to [0, 1], or ``None`` when it cannot be computed."""
        if self.current is None or not self.total or self.total <= 0:
            return None
        return max(0.0, min(1.0, self.current / self.total))


class JobError(BaseModel):
    """Why an operation failed, as the server described it.

    Attributes:
        code: the server's machine-readable code (``None`` when it gave none: a code is
            never made up from the state or the HTTP status).
        message: the server's human-readable reason (``message``, ``lastError``, RFC 9457
            ``detail``/``title``...).
        retryable: whether the server said a retry may succeed.
        details: the server's structured details (``details``, ``errors[]``...) as received.

    Example:
        >>> JobError(code="quota", message="out of credit").summary
        'quota: out of credit'
        >>> JobError().summary
        ''
    """

    model_config = ConfigDict(frozen=True)

    code: str | None = None
    message: str | None = None
    retryable: bool = False
    details: Any = None

    @property
    def summary(self) -> str:
        """``"code: message"``, or whichever of the two the server gave (``""``: neither)."""
        return ": ".join(part for part in (self.code, self.message) if part)


class JobStatus(BaseModel):
    """One snapshot of an operation's status, as interpreted by a dialect.

    ``raw`` holds the body as received (parsed JSON, or text when it was not JSON) and
    ``http_status`` the status code of the response it came from. ``estimated_remaining`` is
    the server's estimate of the seconds left, measured at the response (from
    ``estimatedCompletion`` and the response's ``Date``, or a body duration such as
    ``estimatedWaitTime``); ``held`` says the server held the request for long polling
    (it answered with ``Preference-Applied: wait=N``).

    Example:
        >>> s = JobStatus(id="j1", state=JobState.PROCESSING)
        >>> s.is_terminal
        False
    """

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    state: JobState
    progress: Progress | None = None
    result: Any = None
    has_result: bool = False
    result_url: str | None = None
    error: JobError | None = None
    retry_url: str | None = None
    cancel_url: str | None = None
    events_url: str | None = None
    status_url: str | None = None
    retry_after: float | None = None
    estimated_completion: datetime | None = None
    estimated_remaining: float | None = None
    held: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    http_status: int | None = None
    raw: Any = Field(default=None, repr=False)

    @property
    def is_terminal(self) -> bool:
        """Whether this snapshot is final (completed, failed or cancelled)."""
        return self.state.is_terminal


class ResultFile(BaseModel):
    """A non-JSON result (a CSV, a PDF): its content type, file name and bytes."""

    model_config = ConfigDict(frozen=True)

    content_type: str
    filename: str | None = None
    content: bytes = Field(repr=False)

    @property
    def size(self) -> int:
        """Length of the content in bytes."""
        return len(self.content)
