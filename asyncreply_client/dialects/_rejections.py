"""4xx answers that are no job state: which typed error each one is (pure).

401 → :class:`AuthenticationError`, 403 → :class:`PermissionDeniedError`, any other 4xx →
:class:`RequestRejectedError` (:class:`SubmissionRejectedError` for a submission; a 401/403
to a submission is both). Each carries the status, the URL, the server's parsed error and
the ``WWW-Authenticate`` challenge; its message quotes only an excerpt of the body.
"""

from __future__ import annotations

from typing import Any

from .._errors import RequestRejectedError, excerpt, rejection_class
from .._http import HttpResponse
from ._answer import Answer
from ._fields import job_error

__all__ = ["BODY_EXCERPT", "rejection_error", "rejection_of"]

#: How much of a body an error keeps when the body is not JSON.
BODY_EXCERPT = 500
_REASONS = {
    401: "authentication required",
    403: "permission denied",
}


def rejection_error(
    response: HttpResponse, *, submission: bool = False, what: str | None = None
) -> RequestRejectedError | None:
    """The typed error of a 4xx ``response``; ``None`` for any other status.

    It does not judge whether the 4xx is a job's state (404/410 on a status URL, a 409
    stating a cancelled job): callers ask their dialect first.

    Args:
        response: the answer.
        submission: whether it answers a submission (the error is then also a
            :class:`SubmissionRejectedError`).
        what: what was requested, for the message (default: "submission" or "request").

    Example:
        >>> import httpx
        >>> r = HttpResponse(401, httpx.Headers({"WWW-Authenticate": 'Bearer realm="api"'}),
        ...                  b'{"error": {"code": "unauthorized"}}', "https://api.test/jobs/1")
        >>> error = rejection_error(r)
        >>> type(error).__name__, error.www_authenticate, error.error
        ('AuthenticationError', 'Bearer realm="api"', {'code': 'unauthorized'})
        >>> str(error)
        'request rejected with HTTP 401 (authentication required; the server accepts: Bearer realm="api") from https://api.test/jobs/1: unauthorized'
    """  # noqa: E501
    if not 400 <= response.status_code < 500:
        return None
    return rejection_of(Answer.of(response, 0.0), submission=submission, what=what)


def rejection_of(
    answer: Answer, *, submission: bool = False, what: str | None = None
) -> RequestRejectedError:
    """The typed error of the 4xx ``answer`` (see :func:`rejection_error`)."""
    code = answer.status_code or 0
    challenge = answer.header("www-authenticate")
    reason = _REASONS.get(code)
    if reason is not None and code == 401 and challenge:
        reason += f"; the server accepts: {excerpt(challenge)}"
    subject = what or ("submission" if submission else "request")
    message = f"{subject} rejected with HTTP {code}"
    if reason:
        message += f" ({reason})"
    if not submission:
        message += f" from {answer.url}"
    detail = _detail(answer)
    if detail:
        message += f": {detail}"
    cls = rejection_class(code, submission=submission)
    return cls(
        message,
        status_code=code,
        url=answer.url,
        error=_error_body(answer),
        www_authenticate=challenge,
    )


def _detail(answer: Answer) -> str:
    if answer.doc is not None:
        error = job_error(answer.doc)
        return excerpt(error.summary, BODY_EXCERPT) if error is not None else ""
    if answer.json_ok and answer.raw is None:
        return ""
    return excerpt(answer.content, BODY_EXCERPT).strip()


def _error_body(answer: Answer) -> Any:
    """The server's ``error`` object, the whole JSON body, or an excerpt of the text."""
    if answer.doc is not None and "error" in answer.doc:
        return answer.doc["error"]
    if answer.json_ok:
        return answer.raw
    return excerpt(answer.content, BODY_EXCERPT) or None
