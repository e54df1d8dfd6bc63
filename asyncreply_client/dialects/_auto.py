"""The default dialect: recognises each family per answer, from headers and body shape."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from .._http import HttpResponse
from .._models import JobStatus
from ._answer import PAGE_MEDIA_TYPES, Answer, media_type
from ._base import Dialect, DialectBase, OkMode, Submission
from ._fields import doc_state
from ._google import (
    DEFAULT_OPERATION_URL_TEMPLATE,
    GoogleDialect,
    looks_google,
    operation_submission,
    read_operation,
)

__all__ = ["AutoDialect", "is_job_failure_response"]


class AutoDialect(DialectBase):
    """The default: recognises each family per answer, from headers and body shape.

    A Google Operation body is read as Google's; everything else with the shared rules,
    which cover the reference server, Microsoft operations (``Operation-Location``,
    ``status``, ``resourceLocation``, ``percentComplete``) and ARM (``Azure-AsyncOperation``,
    ``provisioningState``, final URLs). A 200/201 status answer whose body states a state is a
    status document, else the result itself (the status-code dialect), except a web page
    (``text/html``: a proxy's or a login page), which is a ``ProtocolError``; a 500 is a
    failed job only when its body states a failed state. Use :class:`StatusCodeDialect`
    explicitly when results may themselves carry a ``status`` field.

    Example:
        >>> AutoDialect().name
        'auto'
    """

    name = "auto"
    _ok_mode: OkMode = "auto"
    _memo_status = True
    __slots__ = ("google",)

    def __init__(
        self,
        *,
        google_operation_url_template: str = DEFAULT_OPERATION_URL_TEMPLATE,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the dialect.

        Args:
            google_operation_url_template: see :class:`GoogleDialect`.
            wall_clock: wall-clock time in epoch seconds (see :class:`ReferenceDialect`).
        """
        super().__init__(wall_clock=wall_clock)
        self.google = GoogleDialect(google_operation_url_template, wall_clock=wall_clock)

    def _states(self, answer: Answer) -> bool:
        return looks_google(answer.doc) or super()._states(answer)

    def _event_status(self, answer: Answer) -> JobStatus | None:
        if answer.doc is not None and looks_google(answer.doc):
            return read_operation(answer, answer.doc, self.google.operation_url)
        return super()._event_status(answer)

    def _status_of_2xx(self, answer: Answer, submission: Submission | None) -> JobStatus:
        if answer.doc is not None and looks_google(answer.doc):
            return read_operation(answer, answer.doc, self.google.operation_url)
        if media_type(answer) in PAGE_MEDIA_TYPES:
            # A web page where a status monitor should answer is a proxy's, a login's or an
            # error page, not a job's result; only StatusCodeDialect, told that results may
            # be anything, reads it as one.
            raise answer.protocol_error("auto dialect: the status monitor answered a web page")
        if doc_state(answer.doc) is None and answer.status_code != 204:
            _judge_stateless(answer, submission)
        return super()._status_of_2xx(answer, submission)

    def _submission_of_2xx(self, answer: Answer) -> Submission:
        if answer.doc is not None and looks_google(answer.doc):
            return operation_submission(answer, answer.doc, self.google.operation_url)
        return super()._submission_of_2xx(answer)

    def _submission_of_202(self, answer: Answer) -> Submission:
        if answer.doc is not None and looks_google(answer.doc):
            return operation_submission(answer, answer.doc, self.google.operation_url)
        return super()._submission_of_202(answer)


def _judge_stateless(answer: Answer, submission: Submission | None) -> None:
    """Refuse a 200/201 status answer that states no state and cannot be a job's result.

    It is read as the result (the status-code protocol) only when it can be one: not a
    listing of jobs (a wrong URL, such as the collection's), and either for a job this client
    submitted or when ``Content-Location`` says the body represents another resource (the
    result, RFC 9110 §8.7). Anything else from a URL the client was merely given
    (``client.operation(url)``, a resumed token) is a wrong URL, not a finished job.
    """
    what = _describe_body(answer)
    if _is_job_listing(answer.raw):
        raise answer.protocol_error(
            f"auto dialect: the status URL answered {what}, a listing of jobs, not one job's "
            "status (is it the collection's URL?)"
        )
    if submission is not None:
        return
    represents = answer.resolve(answer.header("content-location"))
    if represents is not None and represents != answer.url:
        return
    raise answer.protocol_error(
        f"auto dialect: the status URL answered {what}, which states no job state "
        "(no status or state field), and this client did not submit the job, so it cannot "
        "tell a result from a wrong URL; use dialect='status-code' if this server answers "
        "a finished job's status URL with the result"
    )


def _is_job_listing(value: object) -> bool:
    """A JSON list of jobs, or a page of them (``{"jobs": [...], "nextCursor": ...}``)."""
    if isinstance(value, list):
        return any(_is_job(item) for item in value)
    if isinstance(value, Mapping):
        return any(
            isinstance(entries, list) and any(_is_job(item) for item in entries)
            for entries in value.values()
        )
    return False


def _is_job(value: object) -> bool:
    return isinstance(value, Mapping) and (doc_state(value) is not None or looks_google(value))


def _describe_body(answer: Answer) -> str:
    raw = answer.raw
    if isinstance(raw, list):
        return f"a JSON list of {len(raw)} entries"
    if isinstance(raw, Mapping):
        keys = ", ".join(repr(key) for key in list(raw)[:5])
        more = ", ..." if len(raw) > 5 else ""
        return f"a JSON document with keys {keys}{more}" if raw else "an empty JSON document"
    if answer.json_ok:
        return f"a JSON {type(raw).__name__ if raw is not None else 'null'}"
    return f"a {media_type(answer) or 'non-JSON'} body"


def is_job_failure_response(response: HttpResponse, *, dialect: Dialect | None = None) -> bool:
    """Whether a 5xx/409 answer is a job's terminal state (the answer) rather than a fault.

    The retry layer retries a 500 only when this is false. The built-in dialects decide
    with their own rule; another dialect is asked to interpret the answer, and it is a job
    state when that succeeds.

    Example:
        >>> import httpx
        >>> body = b'{"state": "failed", "error": {"code": "boom"}}'
        >>> r = HttpResponse(500, httpx.Headers({"Content-Type": "application/json"}), body,
        ...                  "http://h/jobs/1")
        >>> is_job_failure_response(r), is_job_failure_response(
        ...     HttpResponse(500, httpx.Headers(), b"oops", "http://h/jobs/1"))
        (True, False)
    """
    chosen: Dialect = dialect if dialect is not None else _AUTO
    if isinstance(chosen, DialectBase):
        return chosen.is_job_failure(response)
    try:
        chosen.interpret_status(response)
    except Exception:
        return False
    return True


_AUTO = AutoDialect()
