"""The client's error hierarchy.

::

    AsyncReplyError
    ├── SubmissionRejectedError      the server refused the submission (4xx)
    ├── JobError-like outcomes
    │   ├── JobFailedError           the job ran and failed
    │   ├── JobCancelledError        the job was cancelled
    │   ├── JobExpiredError          410 Gone, or a job that vanished
    │   └── JobNotFoundError         404: unknown id (or not yours)
    ├── WaitTimeoutError             only the *wait* ended; the job goes on
    ├── TransportError               network faults / transient statuses, retries exhausted
    ├── ProtocolError                the server broke the protocol
    ├── InvalidTokenError            a resume token that cannot be loaded
    └── WebhookVerificationError     (asyncreply_client.webhooks) a delivery failed verification
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import JobStatus

__all__ = [
    "AsyncReplyError",
    "InvalidTokenError",
    "JobCancelledError",
    "JobExpiredError",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcomeError",
    "ProtocolError",
    "SubmissionRejectedError",
    "TransportError",
    "WaitTimeoutError",
]

_EXCERPT = 200


def excerpt(body: bytes | str | None, limit: int = _EXCERPT) -> str:
    """Return a short printable excerpt of a response body for error messages."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text if len(text) <= limit else text[:limit] + "…"


class AsyncReplyError(Exception):
    """Base class of every error raised by asyncreply_client."""


class SubmissionRejectedError(AsyncReplyError):
    """The server rejected the submission with a 4xx answer.

    Attributes:
        status_code: the HTTP status.
        error: the server's ``error`` object (or the whole body when it had none).
        url: the submission URL.
    """

    def __init__(self, message: str, *, status_code: int, url: str, error: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url
        self.error = error


class JobOutcomeError(AsyncReplyError):
    """Base of the errors that describe what happened to the job itself.

    Attributes:
        status: the last status snapshot seen, when there is one.
    """

    def __init__(self, message: str, *, status: JobStatus | None = None) -> None:
        super().__init__(message)
        self.status = status


class JobFailedError(JobOutcomeError):
    """The job ran and failed; ``status.error`` says why and whether a retry may help."""


class JobCancelledError(JobOutcomeError):
    """The job was cancelled before it finished."""


class JobExpiredError(JobOutcomeError):
    """The job (or its result) is gone: 410, or it vanished after having been seen."""


class JobNotFoundError(JobOutcomeError):
    """The server does not know the job (404), or it belongs to somebody else."""


class WaitTimeoutError(AsyncReplyError, TimeoutError):
    """The *wait* ran out of time; the job itself goes on.

    Attributes:
        operation: the operation that was being waited for (resume it, or wait again).
        status: the last status snapshot seen, if any.
    """

    def __init__(self, message: str, *, operation: Any = None, status: JobStatus | None = None):
        super().__init__(message)
        self.operation = operation
        self.status = status


class TransportError(AsyncReplyError):
    """A network fault or transient status persisted after every retry.

    Attributes:
        url: the URL of the last attempt.
        attempts: how many attempts were made.
    """

    def __init__(self, message: str, *, url: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class ProtocolError(AsyncReplyError):
    """The server broke the protocol (missing Location, unparseable body, redirect loop, …).

    Attributes:
        status_code: the offending response's status (``None`` when there was no response).
        url: the URL it came from.
        body_excerpt: the first characters of its body.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        url: str | None = None,
        body: bytes | str | None = None,
    ) -> None:
        self.status_code = status_code
        self.url = url
        self.body_excerpt = excerpt(body)
        detail = message
        if status_code is not None or url is not None:
            detail += f" (HTTP {status_code} from {url})"
        if self.body_excerpt:
            detail += f": {self.body_excerpt!r}"
        super().__init__(detail)


class InvalidTokenError(AsyncReplyError, ValueError):
    """A resume token is malformed, of an unknown version, or fails validation."""
