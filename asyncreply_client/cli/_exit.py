"""Exit statuses of ``asyncreply`` and the one-line messages its errors end with."""

from __future__ import annotations

import json
import re
from typing import Any

from .._errors import (
    AsyncReplyError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    ProtocolError,
    RequestRejectedError,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
)
from .._models import JobError

__all__ = ["EXIT_CODES", "CliError", "ExitCode", "describe_error", "exit_code_for"]

PROG = "asyncreply"


class ExitCode:
    """The exit statuses of ``asyncreply`` (see :data:`EXIT_CODES`)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    FAILED = 3
    CANCELLED = 4
    GONE = 5
    TIMEOUT = 6
    PROTOCOL = 7
    TRANSPORT = 8
    CHECK_FAILED = 9
    WEBHOOK_INVALID = 10
    REJECTED = 11
    INTERRUPTED = 130


#: Exit status -> meaning, as documented in ``--help``.
EXIT_CODES: dict[int, str] = {
    ExitCode.OK: "done",
    ExitCode.ERROR: "other error",
    ExitCode.USAGE: "usage error",
    ExitCode.FAILED: "the job failed",
    ExitCode.CANCELLED: "the job was cancelled",
    ExitCode.GONE: "the job expired (410) or is unknown (404)",
    ExitCode.TIMEOUT: "the wait timed out (the job goes on)",
    ExitCode.PROTOCOL: "protocol error (the server broke the protocol)",
    ExitCode.TRANSPORT: "transport error (after retries, or the server is down)",
    ExitCode.CHECK_FAILED: "the contract check found failures",
    ExitCode.WEBHOOK_INVALID: "webhook verification failed",
    ExitCode.REJECTED: "the server rejected the submission (4xx)",
    ExitCode.INTERRUPTED: "interrupted",
}

# The error classes, most specific first: their exit status and the label of their message.
_ERRORS: tuple[tuple[type[BaseException], int, str], ...] = (
    (JobFailedError, ExitCode.FAILED, "job failed"),
    (JobCancelledError, ExitCode.CANCELLED, "job cancelled"),
    (JobExpiredError, ExitCode.GONE, "job gone"),
    (JobNotFoundError, ExitCode.GONE, "job gone"),
    (WaitTimeoutError, ExitCode.TIMEOUT, "wait timed out"),
    (ProtocolError, ExitCode.PROTOCOL, "protocol error"),
    (TransportError, ExitCode.TRANSPORT, "transport error"),
    (SubmissionRejectedError, ExitCode.REJECTED, "submission rejected"),
    (RequestRejectedError, ExitCode.REJECTED, "request rejected"),  # 401/403/4xx on a poll
)

_REJECTED_PREFIX = re.compile(r"^(the )?submission (was )?rejected( with HTTP \d+)?[\s:]*", re.I)


class CliError(Exception):
    """An error that ends the command with ``code`` and a one-line message on stderr."""

    def __init__(self, message: str, code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """Map a client error to its exit status."""
    for kind, code, _ in _ERRORS:
        if isinstance(exc, kind):
            return code
    return ExitCode.ERROR


def _label(exc: BaseException) -> str:
    for kind, _, label in _ERRORS:
        if isinstance(exc, kind):
            return label
    return ""  # the message says it all ("the job cannot be retried ...")


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except ValueError:  # a circular structure: fall back to its repr
        return repr(value)


def _job_error_text(error: JobError | None) -> str:
    """``code: message; details: {...}`` from the server's error object."""
    if error is None:
        return ""
    text = ": ".join(part for part in (error.code, error.message) if part)
    if error.details is not None:
        text += ("; " if text else "") + "details: " + _compact(error.details)
    return text


def _first_text(error: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` holding a non-empty string (a number only when none does:
    Google's ``code`` repeats the HTTP status, its ``status`` names the error)."""
    for wanted in (str, int):
        for key in keys:
            value = error.get(key)
            if type(value) is wanted and str(value).strip():
                return str(value).strip()
    return None


def _rejection_text(exc: SubmissionRejectedError) -> str:
    """``code: message; details: [...]`` from the server's error object, whichever shape:
    ``{"error": {code, message, details}}`` (reference, Microsoft, Google AIP-193), or an
    RFC 9457 problem document (``type``/``title``/``detail``, extension ``errors``)."""
    error = exc.error
    if isinstance(error, str):
        return error.strip()
    if not isinstance(error, dict):
        return ""
    if isinstance(error.get("error"), dict):  # the whole body rather than its error object
        error = error["error"]
    code = _first_text(error, "code", "status", "title")
    message = _first_text(error, "message", "detail")
    text = ": ".join(part for part in (code, message) if part)
    details = next((error[k] for k in ("details", "errors") if error.get(k) is not None), None)
    if details is not None:
        text += ("; " if text else "") + "details: " + _compact(details)
    return text


def _without_label(label: str, message: str) -> str:
    """``message`` without a leading restatement of ``label`` ("the job failed: x" -> "x")."""
    lowered = message.lower()
    subject, _, verb = label.partition(" ")
    for prefix in (label, f"the {subject} {verb}", f"the {subject} was {verb}"):
        if lowered.startswith(prefix):
            return message[len(prefix) :].lstrip(" :;,-")
    return message


def describe_error(exc: AsyncReplyError) -> str:
    """One line for an error: its label, then what the server said (no repeated prefix).

    The server's error object is preferred to the exception's text: ``code: message`` and
    its ``details`` (the field list of an ``invalid_input``, say).

    Example:
        >>> from asyncreply_client import JobCancelledError
        >>> describe_error(JobCancelledError("the job was cancelled"))
        'job cancelled'
    """
    label = _label(exc)
    if isinstance(exc, SubmissionRejectedError):
        detail = _rejection_text(exc) or _REJECTED_PREFIX.sub("", " ".join(str(exc).split()))
        return f"{label} (HTTP {exc.status_code}): {detail}".rstrip(": ")
    detail = ""
    if isinstance(exc, JobOutcomeError) and exc.status is not None:
        detail = _job_error_text(exc.status.error)
    if not detail:
        detail = " ".join(str(exc).split())
        detail = _without_label(label, detail) if label else detail
    if not label:
        return detail or type(exc).__name__
    return f"{label}: {detail}" if detail else label
