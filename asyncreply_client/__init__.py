"""asyncreply: a typed sync and async client for the async request-reply pattern.

Example:
    >>> from asyncreply_client import Client
    >>> with Client("http://127.0.0.1:8080") as client:  # doctest: +SKIP
    ...     print(client.run("/jobs", json={"type": "echo", "input": {"hi": 1}}, timeout=30))
"""

from __future__ import annotations

from ._client import AsyncClient, Client
from ._clock import Clock, SystemClock
from ._errors import (
    AsyncReplyError,
    AuthenticationError,
    CancelNotSupportedError,
    InvalidTokenError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    NoStatusUrlError,
    PermissionDeniedError,
    ProtocolError,
    RequestRejectedError,
    SubmissionAuthenticationError,
    SubmissionPermissionDeniedError,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
)
from ._http import HttpResponse
from ._models import JobError, JobState, JobStatus, Progress, ResultFile
from ._observe import OperationMetadata
from ._operation import AsyncOperation, Operation
from ._policies import (
    Adaptive,
    ExponentialBackoff,
    FixedInterval,
    LongPolling,
    PollDecision,
    PollingPolicy,
    PollObservation,
    PollSchedule,
)
from ._retry import RetryEvent, RetryPolicy, retry_if_transient
from ._sse import SSEOptions
from ._version import __version__ as __version__
from .dialects import (
    ArmDialect,
    AutoDialect,
    DeclarativeDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
    ReferenceDialect,
    StatusCodeDialect,
    Submission,
)

__all__ = [
    "Adaptive",
    "ArmDialect",
    "AsyncClient",
    "AsyncOperation",
    "AsyncReplyError",
    "AuthenticationError",
    "AutoDialect",
    "CancelNotSupportedError",
    "Client",
    "Clock",
    "DeclarativeDialect",
    "Dialect",
    "ExponentialBackoff",
    "FixedInterval",
    "GoogleDialect",
    "HttpResponse",
    "InvalidTokenError",
    "JobCancelledError",
    "JobError",
    "JobExpiredError",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcomeError",
    "JobState",
    "JobStatus",
    "LongPolling",
    "MicrosoftDialect",
    "NoStatusUrlError",
    "Operation",
    "OperationMetadata",
    "PermissionDeniedError",
    "PollDecision",
    "PollObservation",
    "PollSchedule",
    "PollingPolicy",
    "Progress",
    "ProtocolError",
    "ReferenceDialect",
    "RequestRejectedError",
    "ResultFile",
    "RetryEvent",
    "RetryPolicy",
    "SSEOptions",
    "StatusCodeDialect",
    "Submission",
    "SubmissionAuthenticationError",
    "SubmissionPermissionDeniedError",
    "SubmissionRejectedError",
    "SystemClock",
    "TransportError",
    "WaitTimeoutError",
    "retry_if_transient",
]
