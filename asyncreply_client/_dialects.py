"""Dialects: pure interpretation of submit responses, status responses and SSE events.

A dialect turns ``(status code, headers, body, request URL)`` into a :class:`JobStatus` or a
:class:`Submission`, or raises one of our typed errors (``ProtocolError``,
``JobNotFoundError``, ``JobExpiredError``, ``SubmissionRejectedError``) — never anything
else, whatever the server sends. State words of every family go through one table
(:func:`parse_state`); field extraction is shared, and each dialect only decides what the
status code and the body's shape mean.

| dialect              | a 200/201 status answer is             | a 500 is a failed job when   |
| -------------------- | -------------------------------------- | ---------------------------- |
| ``ReferenceDialect`` | a status document (required)           | the body's state is failed   |
| ``StatusCodeDialect``| the result itself                      | the body has a failed state  |
|                      |                                        | or an ``error`` object       |
| ``MicrosoftDialect`` | an operation document (``status``)     | the body's state is failed   |
| ``GoogleDialect``    | a ``google.longrunning.Operation``     | never                        |
| ``ArmDialect``       | a status document, a resource with     | the body's state is failed   |
|                      | ``provisioningState``, else the result |                              |
| ``AutoDialect``      | recognised per answer (above); a       | the body's state is failed   |
|                      | completed document that names no       |                              |
|                      | result is itself the result; an HTML   |                              |
|                      | page is a ``ProtocolError``            |                              |

Any other 500 is a transient fault for the retry layer: :func:`is_job_failure_response` tells
them apart (equivalently, ``interpret_status`` raises ``ProtocolError`` for it).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from ._errors import (
    JobExpiredError,
    JobNotFoundError,
    ProtocolError,
    SubmissionRejectedError,
)
from ._headers import (
    find_link,
    header_values,
    parse_content_disposition_filename,
    parse_http_date,
    parse_number,
    parse_retry_after,
    parse_timestamp,
    preference_applied_wait,
)
from ._http import HttpResponse
from ._models import JobError, JobState, JobStatus, Progress, ResultFile
from ._urls import resolve_url

__all__ = [
    "ArmDialect",
    "AutoDialect",
    "Dialect",
    "GoogleDialect",
    "MicrosoftDialect",
    "ReferenceDialect",
    "StatusCodeDialect",
    "Submission",
    "is_job_failure_response",
    "parse_state",
]


@dataclass(frozen=True, slots=True)
class Submission:
    """What a submit response says about the operation it started.

    Attributes:
        status: the first snapshot (PENDING from a 202; terminal for an already-finished one).
        status_url: absolute URL of the status monitor (``None`` only when the operation is
            already terminal and the server gave no monitor).
        events_url: absolute URL of an SSE stream for the operation, when offered.
        cancel_url: absolute URL to DELETE to cancel, when known.
        final_url: where an already-known final result lives (ARM ``Location`` / original URI).
        retry_after: seconds the server asked to wait before the first poll (``0.0`` = now).
    """

    status: JobStatus
    status_url: str | None
    events_url: str | None = None
    cancel_url: str | None = None
    final_url: str | None = None
    retry_after: float | None = None


class Dialect(Protocol):
    """How one family of servers expresses operations. Pure functions; no I/O.

    Implement it to support another family. Besides the state, fill in what the polling
    policies use: ``retry_after`` (see :func:`~asyncreply_client._headers.parse_retry_after`),
    ``estimated_remaining``, ``progress``, and ``held`` (the server held a long-poll request:
    ``Preference-Applied: wait``; :class:`~asyncreply_client.LongPolling` falls back to
    plain polling while it is never true).
    """

    name: str

    def interpret_submit(self, response: HttpResponse) -> Submission:
        """Interpret the answer to a submission (2xx / 303).

        Raises ``ProtocolError`` for an answer it cannot read (a 202 naming no monitor);
        the dialects of this module also raise ``SubmissionRejectedError`` for a 4xx that is
        not a job's state.
        """
        ...

    def interpret_status(
        self, response: HttpResponse, *, submission: Submission | None = None
    ) -> JobStatus:
        """Interpret a status-monitor answer.

        Returns a ``JobStatus`` (a 303 is COMPLETED with ``result_url`` set to the resolved
        Location). Raises ``JobNotFoundError`` (404), ``JobExpiredError`` (410) or
        ``ProtocolError`` (anything it cannot interpret). Transient statuses (429/502/503/504)
        never reach a dialect: the retry layer handles them. ``submission`` is the
        operation's submission when this client made it (its URLs; its ``status`` is the
        latest snapshot the operation has seen, as only that one is kept).
        """
        ...

    def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
        """Interpret one SSE event (``url``: the stream's URL); ``None`` if not a status."""
        ...


# --------------------------------------------------------------------------------------------
# State vocabulary: the one table every dialect uses.

# Keys are normalised words: lower case, without spaces, "_", "-" or ".".
_STATE_VOCABULARY: dict[JobState, str] = {
    JobState.PENDING: "pending queued notstarted accepted waiting scheduled submitted received "
    "new enqueued created paused suspended onhold",
    JobState.PROCESSING: "processing running inprogress inflight started active updating "
    "creating deleting cancelling canceling executing validating finalizing retrying",
    JobState.COMPLETED: "completed complete succeeded success successful done finished "
    "partiallysucceeded partiallycompleted",
    JobState.FAILED: "failed failure error errored deadletter deadlettered timedout timeout "
    "expired rejected validationfailed",
    JobState.CANCELLED: "cancelled canceled aborted",
}
_STATE_WORDS: dict[str, JobState] = {
    word: state for state, words in _STATE_VOCABULARY.items() for word in words.split()
}
_WORD_NOISE = re.compile(r"[\s_\-.]")


def parse_state(value: object) -> JobState | None:
    """Map a server's state word to a :class:`JobState` (case and ``_``/``-`` insensitive).

    Example:
        >>> parse_state("inFlight"), parse_state("dead_letter")
        (<JobState.PROCESSING: 'processing'>, <JobState.FAILED: 'failed'>)
        >>> parse_state("banana") is None
        True
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    return _STATE_WORDS.get(_WORD_NOISE.sub("", value).lower())


# --------------------------------------------------------------------------------------------
# Field extraction shared by every dialect.

_ID_KEYS = ("jobId", "job_id", "operationId", "operation_id", "id", "name")
_STATE_KEYS = ("status", "state", "provisioningState")
_MONITOR_HEADERS = ("operation-location", "azure-asyncoperation")
_MONITOR_KEYS = (
    "statusUrl",
    "status_url",
    "monitorUrl",
    "monitor_url",
    "operationUrl",
    "operation_url",
    "operationLocation",
    "href",
)
_EVENTS_KEYS = ("eventsUrl", "events_url")
_CANCEL_KEYS = ("cancelUrl", "cancel_url")
_RETRY_KEYS = ("retryUrl", "retry_url")
_RESULT_KEYS = ("resultUrl", "result_url", "resourceLocation", "resource_location")
_CREATED_KEYS = ("createdAt", "created_at", "createdDateTime", "createTime", "creationTime")
_STARTED_KEYS = ("startedAt", "started_at", "startTime", "startDateTime", "startedDateTime")
_UPDATED_KEYS = (
    "updatedAt",
    "updated_at",
    "lastUpdatedDateTime",
    "lastActionDateTime",
    "updateTime",
    "endTime",
)
_ETA_KEYS = ("estimatedCompletion", "estimated_completion", "estimatedCompletionTime")
_REMAINING_KEYS = (
    "estimatedWaitTime",
    "estimated_wait_time",
    "estimatedTimeRemaining",
    "estimated_time_remaining",
    "remainingSeconds",
)
_PERCENT_KEYS = (
    "percentComplete",
    "percent_complete",
    "progressPercent",
    "progress_percent",
    "progressPercentage",
    "percentDone",
    "percentage",
)
_MAX_TEXT = 4096

Doc = Mapping[str, Any]


def _text(value: object) -> str | None:
    """A short identifier-ish string: strings as-is, integers converted, else ``None``."""
    if isinstance(value, str):
        return value[:_MAX_TEXT] if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**30 else None
    return None


def _first(doc: Doc, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = doc.get(key)
        if value is not None:
            return value
    return None


def _links_href(doc: Doc, rel: str) -> Any:
    """``_links.<rel>.href`` (HAL) or ``links.<rel>.href``."""
    for container in ("_links", "links"):
        links = doc.get(container)
        if isinstance(links, Mapping):
            entry = links.get(rel)
            if isinstance(entry, Mapping):
                return entry.get("href")
            if isinstance(entry, str):
                return entry
    return None


def _doc_state(doc: Doc | None) -> JobState | None:
    """The state the body states: ``status``/``state``/``provisioningState`` (top level, then
    ``properties.provisioningState``, ARM's resource shape)."""
    if doc is None:
        return None
    for key in _STATE_KEYS:
        state = parse_state(doc.get(key))
        if state is not None:
            return state
    props = doc.get("properties")
    if isinstance(props, Mapping):
        return parse_state(props.get("provisioningState"))
    return None


def _has_provisioning_state(doc: Doc | None) -> bool:
    if doc is None:
        return False
    props = doc.get("properties")
    return isinstance(props, Mapping) and parse_state(props.get("provisioningState")) is not None


def _percent_progress(value: object) -> Progress | None:
    number = parse_number(value)
    if number is None:
        return None
    return Progress(current=number, total=100.0)


def _progress(doc: Doc, *, depth: int = 0) -> Progress | None:
    """Progress from ``progress`` ({current,total,message}, a fraction or a percentage), a
    percentage field (``percentComplete``…), or the same inside ``metadata`` (Google)."""
    raw = doc.get("progress")
    if isinstance(raw, Mapping):
        current = parse_number(_first(raw, ("current", "completed", "done", "processed")))
        total = parse_number(_first(raw, ("total", "count")))
        message = raw.get("message")
        text = message[:_MAX_TEXT] if isinstance(message, str) else None
        if current is None and total is None:
            percent = _percent_progress(_first(raw, ("percent", *_PERCENT_KEYS)))
            if percent is not None:
                return Progress(current=percent.current, total=percent.total, message=text)
        if current is not None or total is not None or text is not None:
            return Progress(current=current, total=total, message=text)
    else:
        number = parse_number(raw)
        if number is not None and number >= 0:
            # A bare number: a fraction when in [0, 1], else a percentage.
            return Progress(current=number, total=1.0 if number <= 1 else 100.0)
    for key in _PERCENT_KEYS:
        percent = _percent_progress(doc.get(key))
        if percent is not None:
            return percent
    metadata = doc.get("metadata")
    if depth == 0 and isinstance(metadata, Mapping):
        return _progress(metadata, depth=1)
    return None


def _job_error(doc: Doc) -> JobError | None:
    raw = doc.get("error")
    if isinstance(raw, Mapping):
        message = raw.get("message")
        return JobError(
            code=_text(raw.get("code")) or _text(raw.get("status")),
            message=message[:_MAX_TEXT] if isinstance(message, str) else None,
            retryable=raw.get("retryable") is True,
            details=raw.get("details"),
        )
    if isinstance(raw, str) and raw:
        return JobError(message=raw[:_MAX_TEXT])
    return None


def _timestamp(doc: Doc, keys: tuple[str, ...]) -> datetime | None:
    for key in keys:
        parsed = parse_timestamp(doc.get(key))
        if parsed is not None:
            return parsed
    return None


@dataclass(frozen=True, slots=True)
class _Answer:
    """One response (or SSE event) parsed once: the body as a document, raw, and context."""

    status_code: int | None
    headers: httpx.Headers
    content: bytes
    url: str
    method: str
    doc: Doc | None
    raw: Any
    json_ok: bool
    wall_now: float

    @classmethod
    def of(cls, response: HttpResponse, wall_now: float) -> _Answer:
        return cls.build(
            status_code=response.status_code,
            headers=response.headers,
            content=response.content,
            url=response.url,
            method=response.method,
            value=response.json(),
            wall_now=wall_now,
        )

    @classmethod
    def build(
        cls,
        *,
        status_code: int | None,
        headers: httpx.Headers,
        content: bytes,
        url: str,
        method: str,
        value: Any,
        wall_now: float,
    ) -> _Answer:
        """``value``: the body parsed as JSON, ``None`` when empty or not JSON."""
        json_ok = value is not None or content.strip() == b"null"
        raw: Any = value
        if not json_ok and content.strip():
            raw = content.decode("utf-8", "replace")
        return cls(
            status_code=status_code,
            headers=headers,
            content=content,
            url=url,
            method=method.upper(),
            doc=value if isinstance(value, Mapping) else None,
            raw=raw,
            json_ok=json_ok,
            wall_now=wall_now if math.isfinite(wall_now) else 0.0,
        )

    def header(self, name: str) -> str | None:
        for value in header_values(self.headers, name):
            if value.strip():
                return value.strip()
        return None

    def resolve(self, url: object) -> str | None:
        return resolve_url(self.url, url)

    def location(self) -> str | None:
        return self.resolve(self.header("location"))

    def protocol_error(self, message: str) -> ProtocolError:
        return ProtocolError(message, status_code=self.status_code, url=self.url, body=self.content)

    def error_text(self) -> str:
        if self.doc is not None:
            error = _job_error(self.doc)
            if error is not None:
                return ": ".join(p for p in (error.code, error.message) if p)
        return ""


_SKEW = 2.0


def _remaining(answer: _Answer, doc: Doc | None, eta: datetime | None) -> float | None:
    """Seconds until the server's estimated completion, measured at the response.

    The estimate is in the server's clock. Our wall clock is precise to the millisecond but
    may be skewed; the ``Date`` header is the server's clock but whole seconds only. So the
    wall clock is used unless it disagrees with ``Date`` by more than ``_SKEW`` seconds.
    """
    if eta is not None:
        date = answer.header("date")
        server_now = parse_http_date(date) if date is not None else None
        reference = answer.wall_now
        if server_now is not None and abs(server_now - reference) > _SKEW:
            reference = server_now
        try:
            left = eta.timestamp() - reference
        except (OverflowError, ValueError, OSError):
            return None
        return max(left, 0.0) if math.isfinite(left) else None
    if doc is not None:
        number = parse_number(_first(doc, _REMAINING_KEYS))
        if number is not None and number >= 0:
            return number
    return None


def _status(
    answer: _Answer,
    state: JobState,
    *,
    doc: Doc | None = None,
    result: Any = None,
    has_result: bool = False,
    result_url: str | None = None,
    final_url: str | None = None,
    status_url: str | None = None,
    extra_docs: tuple[Doc, ...] = (),
) -> JobStatus:
    """Build a snapshot from the fields every family shares (ids, progress, error, links,
    timestamps, hints). ``extra_docs`` are looked into for timestamps (Google metadata)."""
    fields = doc if doc is not None else {}
    stamp_docs = (fields, *extra_docs)
    eta = next((t for d in stamp_docs if (t := _timestamp(d, _ETA_KEYS)) is not None), None)
    if state is JobState.COMPLETED and not has_result and result_url is None:
        result_url = (
            answer.resolve(_first(fields, _RESULT_KEYS))
            or answer.resolve(_links_href(fields, "result"))
            or final_url
        )
    error: JobError | None = None
    if state in (JobState.FAILED, JobState.CANCELLED):
        error = _job_error(fields)
        if error is None and state is JobState.FAILED:
            error = JobError()
    values: dict[str, Any] = dict(
        id=_text(_first(fields, _ID_KEYS)),
        state=state,
        progress=_progress(fields),
        result=result,
        has_result=has_result,
        result_url=result_url,
        error=error,
        retry_url=answer.resolve(_first(fields, _RETRY_KEYS)),
        cancel_url=answer.resolve(_first(fields, _CANCEL_KEYS))
        or answer.resolve(_links_href(fields, "cancel")),
        events_url=answer.resolve(_first(fields, _EVENTS_KEYS))
        or answer.resolve(find_link(answer.headers, "events"))
        or answer.resolve(_links_href(fields, "events")),
        status_url=status_url or _body_monitor(answer, fields),
        retry_after=parse_retry_after(answer.headers, fields, now=answer.wall_now),
        estimated_completion=eta,
        estimated_remaining=_remaining(answer, fields, eta),
        held=preference_applied_wait(answer.headers) is not None,
        created_at=next((t for d in stamp_docs if (t := _timestamp(d, _CREATED_KEYS))), None),
        started_at=next((t for d in stamp_docs if (t := _timestamp(d, _STARTED_KEYS))), None),
        updated_at=next((t for d in stamp_docs if (t := _timestamp(d, _UPDATED_KEYS))), None),
        http_status=answer.status_code,
        raw=answer.raw,
    )
    # Only what differs from the defaults: pydantic keeps the names of the fields given in
    # a set per model, ~2 KB for all twenty against ~0.5 KB for the handful usually set, and
    # every operation holds a few snapshots (fan-out memory per operation).
    return JobStatus(
        **{key: value for key, value in values.items() if value is not None and value is not False}
    )


def _body_monitor(answer: _Answer, doc: Doc) -> str | None:
    for key in _MONITOR_KEYS:
        url = answer.resolve(doc.get(key))
        if url is not None:
            return url
    for rel in ("status", "monitor", "self"):
        url = answer.resolve(_links_href(doc, rel))
        if url is not None:
            return url
    return None


def _header_monitor(answer: _Answer, *, with_location: bool) -> str | None:
    """``Operation-Location``, ``Azure-AsyncOperation``, then (for a 202) ``Location``, then
    a ``Link`` with rel ``monitor`` (RFC 5989)."""
    for name in _MONITOR_HEADERS:
        url = answer.resolve(answer.header(name))
        if url is not None:
            return url
    if with_location:
        url = answer.location()
        if url is not None:
            return url
    return answer.resolve(find_link(answer.headers, "monitor"))


def _final_url(answer: _Answer, monitor: str | None) -> str | None:
    """Where the final result lives when the monitor will not say (azure-core's rules).

    A PUT or PATCH operates on the resource at the request URL: that is the final result.
    Another method's result is at ``Location`` when the server gave one besides an
    ``Operation-Location``/``Azure-AsyncOperation`` monitor.
    """
    if answer.method in ("PUT", "PATCH"):
        return answer.url
    explicit = any(answer.header(name) for name in _MONITOR_HEADERS)
    if explicit:
        location = answer.location()
        if location is not None and location != monitor:
            return location
    return None


#: Media types of web pages (HTML, XHTML): never a status document.
_PAGE_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _media_type(answer: _Answer) -> str:
    """The answer's media type, lower case without parameters (``""`` when unlabelled)."""
    return (answer.header("content-type") or "").split(";", 1)[0].strip().lower()


def _result_of(answer: _Answer) -> tuple[Any, bool]:
    """The body of a "here is the result" answer: JSON, or a :class:`ResultFile`."""
    if answer.status_code == 204 or not answer.content.strip():
        return None, True
    content_type = answer.header("content-type")
    media = _media_type(answer)
    is_json = media == "application/json" or media.endswith("+json")
    if is_json or content_type is None:
        if answer.json_ok:
            return answer.raw, True
        if is_json:
            raise answer.protocol_error("the result is labelled JSON but does not parse")
    return (
        ResultFile(
            content_type=content_type or "application/octet-stream",
            filename=parse_content_disposition_filename(answer.header("content-disposition")),
            content=answer.content,
        ),
        True,
    )


def _not_found_or_gone(answer: _Answer) -> None:
    detail = answer.error_text()
    suffix = f" ({detail})" if detail else ""
    if answer.status_code == 404:
        raise JobNotFoundError(f"no such job at {answer.url}{suffix}")
    if answer.status_code == 410:
        raise JobExpiredError(f"the job at {answer.url} has expired{suffix}")


# --------------------------------------------------------------------------------------------
# The dialects.

OkMode = Literal["document", "result", "auto"]


class _Dialect:
    """Shared machinery: parsing once, 404/410, 303, SSE events, failure detection."""

    name = "base"
    #: How a 200/201 status answer is read: a status document (required), the result
    #: itself, or a status document when the body states a state and else the result.
    _ok_mode: OkMode = "auto"
    #: Whether a 500 with an ``error`` object (and no state) is a failed job.
    _error_object_fails = False
    #: Whether a PUT/PATCH answered 200/201 with a running state and no monitor is watched
    #: by polling the resource itself (ARM).
    _poll_resource = False

    __slots__ = ("_wall_clock",)

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        """Create the dialect.

        Args:
            wall_clock: wall-clock time in epoch seconds, used only to measure an
                HTTP-date ``Retry-After`` (when the response has no ``Date``) and the time
                left until an ``estimatedCompletion``. Inject a fake one in tests.
        """
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _answer(self, response: HttpResponse) -> _Answer:
        return _Answer.of(response, self._wall_clock())

    # -- public protocol ----------------------------------------------------------------------

    def interpret_submit(self, response: HttpResponse) -> Submission:
        """Interpret the answer to a submission.

        A 202 is an accepted operation and must name a status monitor; a 303 is a finished
        one whose result is at ``Location``; a 200/201/204 is finished (its body is the
        result) unless the body states a non-terminal state and a monitor is known. With
        ``Prefer: wait`` a server may answer what a status request would (a failed 500, a
        cancelled 409): those are read as statuses.

        Raises:
            ProtocolError: a 202 without a monitor, or an answer that makes no sense.
            SubmissionRejectedError: a 4xx that is not a job's state.
        """
        answer = self._answer(response)
        return self._submit(answer)

    def interpret_status(
        self, response: HttpResponse, *, submission: Submission | None = None
    ) -> JobStatus:
        """Interpret a status-monitor answer (see the module table).

        Raises:
            JobNotFoundError: 404.
            JobExpiredError: 410.
            ProtocolError: an answer this dialect cannot read as a job's status.
        """
        answer = self._answer(response)
        final_url = submission.final_url if submission is not None else None
        return self._status_answer(answer, final_url)

    def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
        """Interpret one SSE event whose ``data`` is a status document.

        Events named ``status``, ``progress`` or ``complete`` must carry one (else
        ``ProtocolError``); other events give a status only when their data is one.
        """
        strict = event in ("status", "progress", "complete")
        text = data if isinstance(data, str) else ""
        try:
            value: Any = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):  # not JSON, or absurdly deep ("[[[[…")
            value = None
        answer = _Answer.build(
            status_code=None,
            headers=httpx.Headers(),
            content=text.encode("utf-8", "replace"),
            url=url,
            method="GET",
            value=value,
            wall_now=self._wall_clock(),
        )
        status = self._event_status(answer)
        if status is None and strict:
            raise ProtocolError(f"SSE {event!r} event is not a status document", url=url, body=text)
        return status

    def is_job_failure(self, response: HttpResponse) -> bool:
        """Whether a 5xx/409 answer is a job's terminal state rather than a fault."""
        answer = self._answer(response)
        return self._failure_state(answer) is not None

    # -- overridable pieces ---------------------------------------------------------------

    def _event_status(self, answer: _Answer) -> JobStatus | None:
        state = _doc_state(answer.doc)
        if state is None:
            return None
        return self._document(answer, state, None)

    def _failure_state(self, answer: _Answer) -> JobState | None:
        """The terminal state a non-2xx answer states: FAILED (5xx) or CANCELLED (409)."""
        code = answer.status_code
        state = _doc_state(answer.doc)
        if code == 409 and state is JobState.CANCELLED:
            return state
        if code is not None and 500 <= code < 600:
            if state is JobState.FAILED:
                return state
            if (
                self._error_object_fails
                and state is None
                and answer.doc is not None
                and isinstance(answer.doc.get("error"), Mapping)
            ):
                return JobState.FAILED
        return None

    def _document(self, answer: _Answer, state: JobState, final_url: str | None) -> JobStatus:
        """A status document: its ``result`` when present, else a result URL."""
        doc = answer.doc or {}
        if state is JobState.COMPLETED and "result" in doc:
            return _status(answer, state, doc=doc, result=doc.get("result"), has_result=True)
        return _status(answer, state, doc=doc, final_url=final_url)

    def _ok(self, answer: _Answer, final_url: str | None) -> JobStatus:
        """A 200/201/204 status answer."""
        state = _doc_state(answer.doc)
        if self._ok_mode == "result" or (self._ok_mode == "auto" and state is None):
            result, has_result = _result_of(answer)
            return _status(
                answer, JobState.COMPLETED, doc=None, result=result, has_result=has_result
            )
        if state is None:
            raise answer.protocol_error(f"{self.name} dialect: the answer states no job state")
        if state is JobState.COMPLETED and _has_provisioning_state(answer.doc):
            # ARM: a resource whose provisioning succeeded is itself the result.
            return _status(answer, state, doc=answer.doc, result=answer.raw, has_result=True)
        status = self._document(answer, state, final_url)
        if (
            self._ok_mode == "auto"
            and state is JobState.COMPLETED
            and not status.has_result
            and status.result_url is None
        ):
            # "Completed" and nothing points elsewhere (``{"status": "success", "data": …}``):
            # the answer itself is the best result there is.
            return status.model_copy(update={"result": answer.raw, "has_result": True})
        return status

    def _status_answer(self, answer: _Answer, final_url: str | None) -> JobStatus:
        code = answer.status_code
        _not_found_or_gone(answer)
        if code == 303:
            location = answer.location()
            if location is None:
                raise answer.protocol_error("303 See Other without a usable Location")
            return _status(answer, JobState.COMPLETED, doc=answer.doc, result_url=location)
        if code in (200, 201, 204):
            return self._ok(answer, final_url)
        if code == 202:
            state = _doc_state(answer.doc) or JobState.PENDING
            if state.is_terminal:
                return self._document(answer, state, final_url)
            return _status(answer, state, doc=answer.doc)
        failure = self._failure_state(answer)
        if failure is not None:
            return _status(answer, failure, doc=answer.doc)
        raise answer.protocol_error(f"{self.name} dialect: unexpected status answer")

    def _submit(self, answer: _Answer) -> Submission:
        code = answer.status_code
        if code == 202:
            return self._accepted(answer)
        if code == 303:
            location = answer.location()
            if location is None:
                raise answer.protocol_error("303 See Other without a usable Location")
            status = _status(answer, JobState.COMPLETED, doc=answer.doc, result_url=location)
            return self._submission(answer, status, status.status_url)
        if code in (200, 201, 204):
            return self._finished(answer)
        failure = self._failure_state(answer)
        if failure is not None:
            status = _status(answer, failure, doc=answer.doc)
            return self._submission(answer, status, status.status_url)
        if code is not None and 400 <= code < 500:
            detail = answer.error_text()
            raise SubmissionRejectedError(
                f"submission rejected with HTTP {code}" + (f": {detail}" if detail else ""),
                status_code=code,
                url=answer.url,
                error=(answer.doc or {}).get("error", answer.raw),
            )
        raise answer.protocol_error("unexpected answer to a submission")

    def _accepted(self, answer: _Answer) -> Submission:
        """A 202: an accepted operation; it must say where to watch it."""
        doc = answer.doc or {}
        monitor = _header_monitor(answer, with_location=True) or _body_monitor(answer, doc)
        state = _doc_state(answer.doc) or JobState.PENDING
        if state.is_terminal:
            status = self._document(answer, state, _final_url(answer, monitor))
            return self._submission(answer, status, monitor)
        if monitor is None:
            raise answer.protocol_error(
                "202 Accepted names no status monitor (no Operation-Location, "
                "Azure-AsyncOperation, Location or status URL in the body)"
            )
        status = _status(answer, state, doc=answer.doc, status_url=monitor)
        return self._submission(answer, status, monitor)

    def _finished(self, answer: _Answer) -> Submission:
        """A 200/201/204 on submit: finished, unless the body says it is still running."""
        state = _doc_state(answer.doc)
        explicit = _header_monitor(answer, with_location=False)
        monitor = explicit or _body_monitor(answer, answer.doc or {})
        if self._ok_mode != "result" and state is not None and not state.is_terminal:
            if (
                monitor is None
                and answer.method in ("PUT", "PATCH")
                and (self._poll_resource or _has_provisioning_state(answer.doc))
            ):
                # ARM: no monitor header: poll the resource itself.
                monitor = answer.url
            if monitor is not None:
                status = _status(answer, state, doc=answer.doc, status_url=monitor)
                return self._submission(answer, status, monitor)
        elif explicit is not None and state is None and answer.status_code != 204:
            # An Operation-Location / Azure-AsyncOperation on a 200/201: still running.
            status = _status(answer, JobState.PENDING, doc=answer.doc, status_url=explicit)
            return self._submission(answer, status, explicit)
        if self._ok_mode != "result" and state is not None and state.is_terminal:
            if state is JobState.COMPLETED and not _has_result_fields(answer.doc):
                status = _status(answer, state, doc=answer.doc, result=answer.raw, has_result=True)
            else:
                status = self._ok(answer, None)
            return self._submission(answer, status, monitor)
        result, has_result = _result_of(answer)
        status = _status(
            answer, JobState.COMPLETED, doc=answer.doc, result=result, has_result=has_result
        )
        return self._submission(answer, status, monitor)

    def _submission(self, answer: _Answer, status: JobStatus, monitor: str | None) -> Submission:
        return Submission(
            status=status,
            status_url=monitor,
            events_url=status.events_url,
            cancel_url=status.cancel_url,
            final_url=_final_url(answer, monitor),
            retry_after=status.retry_after,
        )


def _has_result_fields(doc: Doc | None) -> bool:
    if doc is None:
        return False
    return "result" in doc or any(doc.get(key) is not None for key in _RESULT_KEYS)


class ReferenceDialect(_Dialect):
    """The reference server's JSON (docs/protocol.md, ``dialect: reference``).

    Status answers are 200 status documents (``status``, ``progress``, ``error``, URLs),
    except completed → 303 to the result (or 200 with an inline ``result``).

    Example:
        >>> from asyncreply_client._http import HttpResponse
        >>> import httpx
        >>> r = HttpResponse(200, httpx.Headers({"Content-Type": "application/json"}),
        ...                  b'{"jobId": "j1", "status": "processing"}', "http://h/jobs/j1")
        >>> ReferenceDialect().interpret_status(r).state
        <JobState.PROCESSING: 'processing'>
    """

    name = "reference"
    _ok_mode: OkMode = "document"
    __slots__ = ()


class StatusCodeDialect(_Dialect):
    """The status code carries the state (docs/protocol.md, ``dialect: status-code``).

    202 pending/running (body ``state``: ``pending``/``inFlight``), 200 → completed with the
    body as the result (a non-JSON body becomes a :class:`ResultFile`), 303 → completed with
    the result at ``Location``, 500 + error body → failed (``failed``/``deadLetter``), 409 +
    ``cancelled`` → cancelled, 410 → expired, 404 → not found.
    """

    name = "status-code"
    _ok_mode: OkMode = "result"
    _error_object_fails = True
    __slots__ = ()


class MicrosoftDialect(_Dialect):
    """Microsoft REST API guidelines operations.

    The monitor is ``Operation-Location``; its document has ``status`` (``NotStarted``,
    ``Running``, ``Succeeded``, ``Failed``, ``Canceled``), ``error {code, message}``,
    ``percentComplete``, and the outcome in ``result`` or at ``resourceLocation`` (else, for
    PUT/PATCH, at the original URL).
    """

    name = "microsoft"
    _ok_mode: OkMode = "document"
    __slots__ = ()


class ArmDialect(_Dialect):
    """Azure Resource Manager asynchronous operations.

    ``Azure-AsyncOperation`` (a ``{status, error}`` document) is preferred, else ``Location``
    polling (202 while running, 200/201/204 done with the body as the result), else for a
    PUT/PATCH answered with a non-terminal ``properties.provisioningState`` the resource
    itself. The final result of a PUT/PATCH is the original URI, of another method the
    ``Location`` header: :attr:`Submission.final_url`, which completed statuses carry as
    ``result_url``.
    """

    name = "arm"
    _ok_mode: OkMode = "auto"
    _poll_resource = True
    __slots__ = ()


_GOOGLE_KEYS = frozenset({"name", "metadata", "done", "response", "error"})
_GOOGLE_NAME = re.compile(r"(?:^|/)operations/[^/]+$")
_API_VERSION = re.compile(r"v\d+(?:(?:alpha|beta|p)\d*)*")
#: google.rpc.Code.CANCELLED
_RPC_CANCELLED = 1


def _looks_google(doc: Doc | None) -> bool:
    """Whether a body is a ``google.longrunning.Operation`` (AIP-151)."""
    if doc is None or any(parse_state(doc.get(key)) for key in ("status", "state")):
        return False
    if not set(doc) <= _GOOGLE_KEYS | {"@type"}:
        return False
    if isinstance(doc.get("done"), bool):
        return True
    name = doc.get("name")
    return isinstance(name, str) and ("metadata" in doc or bool(_GOOGLE_NAME.search(name)))


class GoogleDialect(_Dialect):
    """Google AIP-151 long-running operations.

    The body is an Operation ``{name, metadata, done, response | error}``. ``done`` false (or
    absent, as proto3 JSON omits it) means not finished, even on a 200 submit. The status URL
    is built from ``name`` with ``operation_url_template``, whose placeholders are
    ``{origin}`` (the request's ``scheme://host[:port]``), ``{version}`` (the request path's
    first version segment such as ``v1`` or ``v1beta1``; ``v1`` when there is none) and
    ``{name}``. ``metadata.progressPercent`` and similar become progress; an ``error`` with
    code 1 (CANCELLED) is a cancelled job.

    Example:
        >>> GoogleDialect().operation_url("operations/42", "https://g.test/v2beta/x:run")
        'https://g.test/v2beta/operations/42'
        >>> GoogleDialect("{origin}/v1/operations/{name}").operation_url("42", "https://g.test/")
        'https://g.test/v1/operations/42'
    """

    name = "google"
    _ok_mode: OkMode = "document"
    __slots__ = ("template",)

    def __init__(
        self,
        operation_url_template: str = "{origin}/{version}/{name}",
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the dialect.

        Args:
            operation_url_template: how to build a status URL from an operation's ``name``.
            wall_clock: wall-clock time in epoch seconds (see :class:`ReferenceDialect`).
        """
        super().__init__(wall_clock=wall_clock)
        self.template = operation_url_template

    def __repr__(self) -> str:
        return f"GoogleDialect({self.template!r})"

    def operation_url(self, name: str, request_url: str) -> str | None:
        """The status URL of the operation ``name``, from the template (``None`` if invalid)."""
        absolute = resolve_url(request_url, name) if "://" in name else None
        if absolute is not None:
            return absolute
        try:
            parsed = httpx.URL(request_url)
            origin = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        except (httpx.InvalidURL, ValueError, TypeError):
            return None
        version = next((seg for seg in parsed.path.split("/") if _API_VERSION.fullmatch(seg)), "v1")
        safe_name = quote(name.lstrip("/"), safe="/:@-._~!$&'()*+,;=")
        url = (
            self.template.replace("{origin}", origin)
            .replace("{version}", version)
            .replace("{name}", safe_name)
        )
        return resolve_url(request_url, url)

    def _operation(self, answer: _Answer, doc: Doc) -> JobStatus:
        metadata = doc.get("metadata")
        extra: tuple[Doc, ...] = ()
        if isinstance(metadata, Mapping):
            # Timestamps live in metadata, or in Vertex AI's metadata.genericMetadata.
            generic = metadata.get("genericMetadata")
            extra = (metadata, generic) if isinstance(generic, Mapping) else (metadata,)
        name = doc.get("name")
        monitor = self.operation_url(name, answer.url) if isinstance(name, str) and name else None
        if doc.get("done") is not True:
            meta_state = (
                parse_state(metadata.get("state")) if isinstance(metadata, Mapping) else None
            )
            state = (
                meta_state
                if meta_state is not None and not meta_state.is_terminal
                else JobState.PENDING
            )
            return _status(answer, state, doc=doc, status_url=monitor, extra_docs=extra)
        error = doc.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, Mapping) else None
            state = JobState.CANCELLED if code == _RPC_CANCELLED else JobState.FAILED
            return _status(answer, state, doc=doc, status_url=monitor, extra_docs=extra)
        return _status(
            answer,
            JobState.COMPLETED,
            doc=doc,
            result=doc.get("response"),
            has_result=True,
            status_url=monitor,
            extra_docs=extra,
        )

    def _event_status(self, answer: _Answer) -> JobStatus | None:
        if answer.doc is not None and _looks_google(answer.doc):
            return self._operation(answer, answer.doc)
        return super()._event_status(answer)

    def _ok(self, answer: _Answer, final_url: str | None) -> JobStatus:
        if answer.doc is None or not _looks_google(answer.doc):
            raise answer.protocol_error("google dialect: the answer is not an Operation")
        return self._operation(answer, answer.doc)

    def _failure_state(self, answer: _Answer) -> JobState | None:
        # Google reports a failed operation as a 200 Operation with an error: a 5xx is a fault.
        return None

    def _finished(self, answer: _Answer) -> Submission:
        if answer.doc is None or not _looks_google(answer.doc):
            return super()._finished(answer)
        status = self._operation(answer, answer.doc)
        monitor = status.status_url or _header_monitor(answer, with_location=True)
        if not status.is_terminal and monitor is None:
            raise answer.protocol_error("the Operation is not done and has no name to poll")
        return self._submission(answer, status, monitor)

    def _accepted(self, answer: _Answer) -> Submission:
        if answer.doc is not None and _looks_google(answer.doc):
            return self._finished(answer)
        return super()._accepted(answer)


class AutoDialect(_Dialect):
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
    __slots__ = ("google",)

    def __init__(
        self,
        *,
        google_operation_url_template: str = "{origin}/{version}/{name}",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the dialect.

        Args:
            google_operation_url_template: see :class:`GoogleDialect`.
            wall_clock: wall-clock time in epoch seconds (see :class:`ReferenceDialect`).
        """
        super().__init__(wall_clock=wall_clock)
        self.google = GoogleDialect(google_operation_url_template, wall_clock=wall_clock)

    def _event_status(self, answer: _Answer) -> JobStatus | None:
        if answer.doc is not None and _looks_google(answer.doc):
            return self.google._operation(answer, answer.doc)
        return super()._event_status(answer)

    def _ok(self, answer: _Answer, final_url: str | None) -> JobStatus:
        if answer.doc is not None and _looks_google(answer.doc):
            return self.google._operation(answer, answer.doc)
        if _media_type(answer) in _PAGE_MEDIA_TYPES:
            # A web page where a status monitor should answer is a proxy's, a login's or an
            # error page, not a job's result; only StatusCodeDialect, told that results may
            # be anything, reads it as one.
            raise answer.protocol_error("auto dialect: the status monitor answered a web page")
        return super()._ok(answer, final_url)

    def _finished(self, answer: _Answer) -> Submission:
        if answer.doc is not None and _looks_google(answer.doc):
            return self.google._finished(answer)
        return super()._finished(answer)

    def _accepted(self, answer: _Answer) -> Submission:
        if answer.doc is not None and _looks_google(answer.doc):
            return self.google._finished(answer)
        return super()._accepted(answer)


def is_job_failure_response(response: HttpResponse, *, dialect: Dialect | None = None) -> bool:
    """Whether a 5xx/409 answer is a job's terminal state (the answer) rather than a fault.

    The retry layer retries a 500 only when this is false. Dialects of this module decide
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
    if isinstance(chosen, _Dialect):
        return chosen.is_job_failure(response)
    try:
        chosen.interpret_status(response)
    except Exception:
        return False
    return True


_AUTO = AutoDialect()
