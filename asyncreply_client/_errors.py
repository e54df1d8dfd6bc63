"""The client's error hierarchy.

::

    AsyncReplyError
    ├── RequestRejectedError         a 4xx that is no job state (status, URL, the server's error)
    │   ├── SubmissionRejectedError  the server refused the submission (4xx)
    │   ├── AuthenticationError      401: credentials missing or refused (WWW-Authenticate)
    │   │   └── SubmissionAuthenticationError      401 to a submission (also Submission-
    │   │                                          RejectedError)
    │   └── PermissionDeniedError    403: the credentials may not do this
    │       └── SubmissionPermissionDeniedError    403 to a submission (also Submission-
    │                                              RejectedError)
    ├── JobOutcomeError              what happened to the job itself
    │   ├── JobFailedError           the job ran and failed
    │   ├── JobCancelledError        the job was cancelled
    │   ├── JobExpiredError          410 Gone, or a job that vanished
    │   └── JobNotFoundError         404: unknown id (or not yours)
    ├── WaitTimeoutError             only the *wait* ended; the job goes on
    ├── TransportError               network faults / transient statuses, retries exhausted
    ├── ProtocolError                the server broke the protocol
    │   └── NoStatusUrlError         a running job with nothing to follow it by
    ├── CancelNotSupportedError      the dialect says this API has no cancel (nothing sent)
    ├── InvalidTokenError            a resume token that cannot be loaded
    └── WebhookVerificationError     (asyncreply_client.webhooks) a delivery failed verification

A 401 or 403 answer to a *submission* is both: a ``SubmissionAuthenticationError`` (or
``SubmissionPermissionDeniedError``) is an ``AuthenticationError`` (``PermissionDeniedError``)
and a ``SubmissionRejectedError``, so either ``except`` catches it.
Messages quote at most an excerpt of a body: never the whole of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ._models import JobStatus

__all__ = [
    "AsyncReplyError",
    "AuthenticationError",
    "CancelNotSupportedError",
    "InvalidTokenError",
    "JobCancelledError",
    "JobExpiredError",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcomeError",
    "NoStatusUrlError",
    "PermissionDeniedError",
    "ProtocolError",
    "RequestRejectedError",
    "SubmissionAuthenticationError",
    "SubmissionPermissionDeniedError",
    "SubmissionRejectedError",
    "TransportError",
    "WaitTimeoutError",
]

_EXCERPT = 200
#: The longest message an error of this module carries: bodies and server texts are quoted,
#: and a server may send megabytes of them.
MAX_MESSAGE = 1000


def excerpt(body: bytes | str | None, limit: int = _EXCERPT) -> str:
    """Return a short printable excerpt of a response body for error messages.

    Only the first ``limit`` characters are decoded, so a huge body costs no more than a
    small one.
    """
    if body is None:
        return ""
    if isinstance(body, bytes):
        # Four bytes per character at most in UTF-8: decode no more than can be shown.
        text = body[: limit * 4 + 4].decode("utf-8", "replace")
        more = len(body) > limit * 4 + 4
    else:
        text, more = body, False
    if len(text) <= limit and not more:
        return text
    return text[:limit] + "…"


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut to ``limit`` characters (with an ellipsis when cut)."""
    return message if len(message) <= limit else message[:limit] + "…"


class AsyncReplyError(Exception):
    """Base class of every error raised by asyncreply_client.

    Attributes:
        operation: the operation the error happened to, when the job already existed
            (raised by ``wait()``, ``result()``, ``run()`` after the submission...): wait
            for it again or resume it (``exc.operation.to_token()``) rather than submitting
            a second job. ``None`` when no job is known to exist (a rejected submission).
    """

    operation: Any = None


class RequestRejectedError(AsyncReplyError):
    """The server refused a request with a 4xx answer that is not a job's state.

    404 and 410 on a status URL are :class:`JobNotFoundError` / :class:`JobExpiredError`
    instead, and a 409 stating a cancelled job is that job's state.

    Attributes:
        status_code: the HTTP status.
        url: the URL the request went to.
        error: the server's ``error`` object (or the whole parsed body when it had none, or
            an excerpt of a body that is not JSON).
        www_authenticate: the ``WWW-Authenticate`` challenge, when the answer had one
            (RFC 9110 §11.6.1: how to authenticate).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        url: str,
        error: Any = None,
        www_authenticate: str | None = None,
    ) -> None:
        super().__init__(bounded(message))
        self.status_code = status_code
        self.url = url
        self.error = error
        self.www_authenticate = www_authenticate


class SubmissionRejectedError(RequestRejectedError):
    """The server rejected the submission with a 4xx answer.

    Attributes:
        status_code: the HTTP status.
        error: the server's ``error`` object (or the whole body when it had none).
        url: the submission URL.
    """


class AuthenticationError(RequestRejectedError):
    """401: the request carried no credentials, or the server refused them.

    ``www_authenticate`` says what the server accepts (``Bearer realm="api"``...).
    """


class PermissionDeniedError(RequestRejectedError):
    """403: the server knows the credentials but does not let them do this."""


class SubmissionAuthenticationError(AuthenticationError, SubmissionRejectedError):
    """A 401 to a submission: both errors, so ``except AuthenticationError`` and
    ``except SubmissionRejectedError`` catch it."""


class SubmissionPermissionDeniedError(PermissionDeniedError, SubmissionRejectedError):
    """A 403 to a submission: both errors, so ``except PermissionDeniedError`` and
    ``except SubmissionRejectedError`` catch it."""


def rejection_class(status_code: int, *, submission: bool) -> type[RequestRejectedError]:
    """The error class of a 4xx answer (``submission``: the answer to a submission).

    Example:
        >>> rejection_class(401, submission=False).__name__
        'AuthenticationError'
        >>> issubclass(rejection_class(403, submission=True), SubmissionRejectedError)
        True
    """
    if status_code == 401:
        return SubmissionAuthenticationError if submission else AuthenticationError
    if status_code == 403:
        return SubmissionPermissionDeniedError if submission else PermissionDeniedError
    return SubmissionRejectedError if submission else RequestRejectedError


class JobOutcomeError(AsyncReplyError):
    """Base of the errors that describe what happened to the job itself.

    Attributes:
        status: the last status snapshot seen, when there is one.
    """

    def __init__(self, message: str, *, status: JobStatus | None = None) -> None:
        super().__init__(bounded(message))
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

    A submission's answer may have been lost after the server created the job: when
    ``operation`` is ``None``, submit again with ``idempotency_key=exc.idempotency_key``
    (``run()`` and ``submit()`` take it), and a server that honours the key answers with the
    same job instead of a second one.

    Attributes:
        url: the URL of the last attempt.
        attempts: how many attempts were made.
        idempotency_key: the ``Idempotency-Key`` the request carried (a submission's), or
            ``None``.
        request: the last attempt's ``httpx.Request``, as sent (its headers may hold
            credentials: do not log it whole).
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        attempts: int = 1,
        idempotency_key: str | None = None,
        request: httpx.Request | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts
        self.idempotency_key = idempotency_key
        self.request = request


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
        if status_code is not None:
            detail += f" (HTTP {status_code} from {url})"
        elif url is not None:
            detail += f" (from {url})"
        if self.body_excerpt:
            detail += f": {self.body_excerpt!r}"
        super().__init__(bounded(detail))


class NoStatusUrlError(ProtocolError):
    """The server says the job is still running but names no URL to follow it by.

    A running job is never returned as a result: describe where the status lives
    (``dialect="replicate"`` and the other presets, or ``DeclarativeDialect(status_url=...)``).
    """


class CancelNotSupportedError(AsyncReplyError):
    """The dialect says this API cannot cancel a job (or names no cancel URL): nothing was
    sent, so nothing was deleted by mistake."""


class InvalidTokenError(AsyncReplyError, ValueError):
    """A resume token is malformed, of an unknown version, or fails validation."""
