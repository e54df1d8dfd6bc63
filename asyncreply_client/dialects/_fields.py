"""Field extraction shared by every dialect: the state vocabulary and the body's fields.

Pure functions over a JSON document (a ``Mapping``): which word means which
:class:`JobState`, where ids, progress, errors and timestamps live in each family's shape.
Nothing here knows about HTTP; :mod:`._answer` adds the response's headers and status code.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._headers import parse_number, parse_timestamp
from .._models import JobError, JobState, Progress

__all__ = [
    "CANCEL_KEYS",
    "CREATED_KEYS",
    "ETA_KEYS",
    "EVENTS_KEYS",
    "ID_KEYS",
    "MAX_TEXT",
    "MONITOR_HEADERS",
    "MONITOR_KEYS",
    "REMAINING_KEYS",
    "RESULT_KEYS",
    "RETRY_KEYS",
    "STARTED_KEYS",
    "UPDATED_KEYS",
    "Doc",
    "doc_state",
    "first_value",
    "has_provisioning_state",
    "has_result_fields",
    "job_error",
    "links_href",
    "parse_state",
    "progress_of",
    "short_text",
    "timestamp_of",
]

# --------------------------------------------------------------------------------------------
# State vocabulary: the one table every dialect uses.

# Keys are normalised words: lower case, without spaces, "_", "-" or ".".
_STATE_VOCABULARY: dict[JobState, str] = {
    # "starting" (Replicate: booting a model) and "inqueue" (fal, RunPod: IN_QUEUE) wait
    # for a worker; "validating" / "finalizing" (OpenAI Batch) run.
    JobState.PENDING: "pending queued notstarted accepted waiting scheduled submitted received "
    "new enqueued created paused suspended onhold starting inqueue",
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
    if type(value) is str:
        try:
            return _STATES_READ[value]  # nearly always: a server says the same few words
        except KeyError:
            pass
    if not isinstance(value, str) or len(value) > 64:
        return None
    state = _STATE_WORDS.get(_WORD_NOISE.sub("", value).lower())
    if type(value) is str and len(_STATES_READ) < _MAX_STATES_READ:
        _STATES_READ[value] = state
    return state


#: State words read, as the server spelled them (bounded: a server inventing words only
#: misses it).
_STATES_READ: dict[str, JobState | None] = {}
_MAX_STATES_READ = 256


# --------------------------------------------------------------------------------------------
# Where each field lives, across families.

ID_KEYS = ("jobId", "job_id", "operationId", "operation_id", "id", "name")
_STATE_KEYS = ("status", "state", "provisioningState")
MONITOR_HEADERS = ("operation-location", "azure-asyncoperation")
MONITOR_KEYS = (
    "statusUrl",
    "status_url",
    "monitorUrl",
    "monitor_url",
    "operationUrl",
    "operation_url",
    "operationLocation",
    "href",
)
EVENTS_KEYS = ("eventsUrl", "events_url")
CANCEL_KEYS = ("cancelUrl", "cancel_url")
RETRY_KEYS = ("retryUrl", "retry_url")
#: ``response_url``: fal's queue names the result there.
RESULT_KEYS = (
    "resultUrl",
    "result_url",
    "resourceLocation",
    "resource_location",
    "responseUrl",
    "response_url",
)
CREATED_KEYS = ("createdAt", "created_at", "createdDateTime", "createTime", "creationTime")
STARTED_KEYS = ("startedAt", "started_at", "startTime", "startDateTime", "startedDateTime")
UPDATED_KEYS = (
    "updatedAt",
    "updated_at",
    "lastUpdatedDateTime",
    "lastActionDateTime",
    "updateTime",
    "endTime",
)
ETA_KEYS = ("estimatedCompletion", "estimated_completion", "estimatedCompletionTime")
REMAINING_KEYS = (
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
#: The longest text kept from a body field (messages, ids).
MAX_TEXT = 4096

Doc = Mapping[str, Any]


def short_text(value: object) -> str | None:
    """A short identifier-ish string: strings as-is, integers converted, else ``None``."""
    if isinstance(value, str):
        return value[:MAX_TEXT] if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**30 else None
    return None


def first_value(doc: Doc, keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` that ``doc`` holds (not ``None``)."""
    for key in keys:
        value = doc.get(key)
        if value is not None:
            return value
    return None


def links_href(doc: Doc, rel: str) -> Any:
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


def doc_state(doc: Doc | None) -> JobState | None:
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


def has_provisioning_state(doc: Doc | None) -> bool:
    """Whether ``doc`` is an ARM resource: ``properties.provisioningState`` is a state."""
    if doc is None:
        return False
    props = doc.get("properties")
    return isinstance(props, Mapping) and parse_state(props.get("provisioningState")) is not None


def has_result_fields(doc: Doc | None) -> bool:
    """Whether a completed document holds its result or says where it is."""
    if doc is None:
        return False
    return "result" in doc or any(doc.get(key) is not None for key in RESULT_KEYS)


def _percent_progress(value: object) -> Progress | None:
    number = parse_number(value)
    if number is None:
        return None
    return Progress(current=number, total=100.0)


#: Progress read, by its numbers (floats: :func:`parse_number`'s) and message: a job's last
#: step and its end say the same, a poller sees each step several times (``Progress`` is
#: frozen: one is shared). Bounded: the oldest goes.
_PROGRESSES: dict[tuple[float | None, float | None, str | None], Progress] = {}
_MAX_PROGRESSES = 64


def _progress(current: float | None, total: float | None, text: str | None) -> Progress:
    key = (current, total, text)
    found = _PROGRESSES.get(key)
    if found is None:
        found = Progress(current=current, total=total, message=text)
        if len(_PROGRESSES) >= _MAX_PROGRESSES:
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del _PROGRESSES[next(iter(_PROGRESSES))]
        _PROGRESSES[key] = found
    return found


def progress_of(doc: Doc, *, depth: int = 0) -> Progress | None:
    """Progress from ``progress`` ({current,total,message}, a fraction or a percentage), a
    percentage field (``percentComplete``…), or the same inside ``metadata`` (Google)."""
    raw = doc.get("progress")
    if isinstance(raw, Mapping):
        current = parse_number(first_value(raw, ("current", "completed", "done", "processed")))
        total = parse_number(first_value(raw, ("total", "count")))
        message = raw.get("message")
        text = message[:MAX_TEXT] if isinstance(message, str) else None
        if current is None and total is None:
            percent = _percent_progress(first_value(raw, ("percent", *_PERCENT_KEYS)))
            if percent is not None:
                return Progress(current=percent.current, total=percent.total, message=text)
        if current is not None or total is not None or text is not None:
            return _progress(current, total, text)
    else:
        number = parse_number(raw)
        if number is not None and number >= 0:
            # A bare number: a fraction when in [0, 1], else a percentage.
            return Progress(current=number, total=1.0 if number <= 1 else 100.0)
    for key in _PERCENT_KEYS:
        value = doc.get(key)
        if value is None:  # nearly always: most spellings are absent
            continue
        percent = _percent_progress(value)
        if percent is not None:
            return percent
    metadata = doc.get("metadata")
    if depth == 0 and isinstance(metadata, Mapping):
        return progress_of(metadata, depth=1)
    return None


#: Where a failure's error object or text lives: ``error`` (Microsoft, Google, ours) and
#: ``lastError`` (queue-backed status-code servers).
_ERROR_KEYS = ("error", "lastError", "last_error")
#: A code the server gave, in an error object or at the top level of the body.
_CODE_KEYS = ("code", "errorCode", "error_code")
#: A human-readable reason: ``message``, RFC 9457 ``detail`` then ``title``, and others.
_MESSAGE_KEYS = (
    "message",
    "errorMessage",
    "error_message",
    "detail",
    "title",
    "failureReason",
    "failure_reason",
    "reason",
)
#: Structured details: ``details`` (Microsoft, google.rpc.Status), ``errors`` (RFC 9457
#: extension, JSON:API, GraphQL), ``innererror`` (Microsoft).
_DETAIL_KEYS = ("details", "errors", "innererror")


def _message_of(doc: Doc) -> str | None:
    for key in _MESSAGE_KEYS:
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value[:MAX_TEXT]
    return None


def _error_of_object(doc: Doc, *, top_level: bool = False) -> JobError | None:
    """An error object: ``{code, message, details}`` and their common spellings; ``None``
    when it holds none of them. At the body's top level ``status`` is the state word, not
    an error code (Google's ``error.status`` is one)."""
    code = short_text(first_value(doc, _CODE_KEYS))
    if code is None and not top_level:
        code = short_text(doc.get("status"))
    message = _message_of(doc)
    details = first_value(doc, _DETAIL_KEYS)
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        # ``errors: [{code, message}, ...]`` alone says what went wrong.
        code = code or short_text(first_value(details[0], _CODE_KEYS))
        message = message or _message_of(details[0])
    retryable = doc.get("retryable") is True
    if code is None and message is None and details is None and not retryable:
        return None
    return JobError(code=code, message=message, retryable=retryable, details=details)


def job_error(doc: Doc) -> JobError | None:
    """The error the body reports, when it reports one; ``None`` when it says nothing.

    Looked for in order: an ``error`` or ``lastError`` object (``code``, ``message``,
    ``details``) or string; then the body's own ``code``/``errorCode``, ``message``,
    RFC 9457 ``detail``/``title``, and ``errors[]``. A code is only ever one the server
    gave: none is made up from the state or the status code.

    Example:
        >>> job_error({"state": "failed", "lastError": "queue exploded"}).message
        'queue exploded'
        >>> job_error({"title": "Out of credit", "detail": "Balance is 30"}).message
        'Balance is 30'
    """
    for key in _ERROR_KEYS:
        raw = doc.get(key)
        if isinstance(raw, Mapping):
            error = _error_of_object(raw)
            if error is not None:
                return error
        elif isinstance(raw, str) and raw.strip():
            return JobError(message=raw[:MAX_TEXT], details=first_value(doc, _DETAIL_KEYS))
    return _error_of_object(doc, top_level=True)


def timestamp_of(doc: Doc, keys: tuple[str, ...]) -> datetime | None:
    """The first of ``keys`` that holds a timestamp (RFC 3339 or epoch), parsed."""
    for key in keys:
        value = doc.get(key)
        if value is None:  # most of the spellings looked for are absent
            continue
        parsed = parse_timestamp(value)
        if parsed is not None:
            return parsed
    return None
