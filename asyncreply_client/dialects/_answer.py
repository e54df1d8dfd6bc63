"""One answer (a response or an SSE event) parsed once, and the snapshot built from it.

:class:`Answer` holds the status code, headers, body (as a document and raw) and the request's
URL and method; the functions here read what every family reads the same way from an answer:
monitors, final URLs, results, 404/410, and the :class:`JobStatus` built by :func:`snapshot`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx

from .._errors import JobExpiredError, JobNotFoundError, ProtocolError
from .._headers import (
    HeaderIndex,
    find_link,
    parse_content_disposition_filename,
    parse_number,
    parse_retry_after,
    preference_applied_wait,
    server_date,
)
from .._http import HttpResponse
from .._models import JobError, JobState, JobStatus, ResultFile
from .._urls import resolve_url
from ._fields import (
    CANCEL_KEYS,
    CREATED_KEYS,
    ETA_KEYS,
    EVENTS_KEYS,
    ID_KEYS,
    MONITOR_HEADERS,
    MONITOR_KEYS,
    REMAINING_KEYS,
    RESULT_KEYS,
    RETRY_KEYS,
    STARTED_KEYS,
    UPDATED_KEYS,
    Doc,
    first_value,
    job_error,
    links_href,
    progress_of,
    short_text,
    timestamp_of,
)

__all__ = [
    "PAGE_MEDIA_TYPES",
    "Answer",
    "MonitorKind",
    "body_monitor",
    "final_url_of",
    "header_monitor",
    "media_type",
    "monitor_kind",
    "raise_not_found_or_gone",
    "remaining_until",
    "result_of",
    "snapshot",
]


@dataclass(slots=True)
class Answer:
    """One response (or SSE event) parsed once: the body as a document, raw, and context.

    Never changed once made (but for the header index and media type it fills in at their
    first use); not a frozen dataclass, whose ``__init__`` sets each of its fields through
    ``object.__setattr__`` (a microsecond at every answer read).
    """

    status_code: int | None
    headers: httpx.Headers
    content: bytes
    url: str
    method: str
    doc: Doc | None
    raw: Any
    json_ok: bool
    wall_now: float
    #: Why a non-empty body is not valid JSON (``None`` when it is, or is empty).
    decode_error: ValueError | RecursionError | None = None
    _index: HeaderIndex | None = field(default=None, init=False, repr=False, compare=False)
    _media: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def index(self) -> HeaderIndex:
        """The headers indexed by name, built at the first lookup (one pass over them)."""
        index = self._index
        if index is None:
            index = HeaderIndex(self.headers)
            self._index = index
        return index

    @classmethod
    def of(cls, response: HttpResponse, wall_now: float) -> Answer:
        """Parse ``response`` (``wall_now``: the wall clock when it is interpreted)."""
        return cls.build(
            status_code=response.status_code,
            headers=response.headers,
            content=response.content,
            url=response.url,
            method=response.method,
            value=response.json(),
            wall_now=wall_now,
            decode_error=response.json_error(),
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
        decode_error: ValueError | RecursionError | None = None,
    ) -> Answer:
        """``value``: the body parsed as JSON, ``None`` when empty or not JSON
        (``decode_error`` then says why, when known)."""
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
            decode_error=decode_error,
        )

    def header(self, name: str) -> str | None:
        """The first non-blank value of header ``name``, stripped."""
        for value in self.index.get_all(name):
            if value.strip():
                return value.strip()
        return None

    def resolve(self, url: object) -> str | None:
        """``url`` resolved against the request's URL (``None`` when unusable)."""
        return resolve_url(self.url, url)

    def location(self) -> str | None:
        """The resolved ``Location`` header."""
        return self.resolve(self.header("location"))

    def protocol_error(self, message: str) -> ProtocolError:
        """A ``ProtocolError`` about this answer (status, URL and a body excerpt)."""
        return ProtocolError(message, status_code=self.status_code, url=self.url, body=self.content)

    def is_labelled_json(self) -> bool:
        """Whether the Content-Type says JSON (``application/json`` or ``+json``)."""
        media = media_type(self)
        return media == "application/json" or media.endswith("+json")

    def invalid_json_error(self, what: str) -> ProtocolError | None:
        """A ``ProtocolError`` saying ``what`` is not valid JSON, chained to the decoder's
        error, when the body failed to decode (else ``None``)."""
        cause = self.decode_error
        if cause is None:
            return None
        error = self.protocol_error(f"{what} is not valid JSON ({_reason(cause)})")
        error.__cause__ = cause
        error.__suppress_context__ = True
        return error

    def error_text(self) -> str:
        """``code: message`` of the body's error, or ``""``."""
        error = job_error(self.doc) if self.doc is not None else None
        return "" if error is None else error.summary


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


_SKEW = 2.0


def _remaining(answer: Answer, doc: Doc | None, eta: datetime | None) -> float | None:
    """Seconds until the server's estimated completion, measured at the response.

    The estimate is in the server's clock. Our wall clock is precise to the millisecond but
    may be skewed; the ``Date`` header is the server's clock but whole seconds only. So the
    wall clock is used unless it disagrees with ``Date`` by more than ``_SKEW`` seconds.
    """
    if eta is not None:
        try:
            eta_seconds = eta.timestamp()
        except (OverflowError, ValueError, OSError):
            return None
        server_now = server_date(answer.index) if len(answer.headers) else None  # SSE: none
        return remaining_until(eta_seconds, server_now, answer.wall_now)
    if doc is not None:
        number = parse_number(first_value(doc, REMAINING_KEYS))
        if number is not None and number >= 0:
            return number
    return None


def remaining_until(eta: float, server_now: float | None, wall_now: float) -> float | None:
    """Seconds from ``wall_now`` (or ``server_now``, when the two disagree by more than the
    skew allowed) to the estimated completion ``eta`` (epoch seconds); ``None`` when not
    finite."""
    reference = wall_now
    if server_now is not None and abs(server_now - reference) > _SKEW:
        reference = server_now
    left = eta - reference
    return max(left, 0.0) if math.isfinite(left) else None


def snapshot(
    answer: Answer,
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
    if doc is not None and doc is answer.doc and not extra_docs and not state.is_terminal:
        # A poller reads the same document again and again while the job runs: what
        # depends on the body alone is read once per distinct body (the headers and the
        # clock are read every time).
        reading = _memo_reading(answer, fields, status_url)
    else:
        reading = _reading(answer, fields, stamp_docs, status_url)
    eta = reading[10]
    if state is JobState.COMPLETED and not has_result and result_url is None:
        result_url = (
            answer.resolve(first_value(fields, RESULT_KEYS))
            or answer.resolve(links_href(fields, "result"))
            or final_url
        )
    error: JobError | None = None
    if state in (JobState.FAILED, JobState.CANCELLED):
        error = job_error(fields)
        if error is None and state is JobState.FAILED:
            error = JobError()
    ident, progress, retry_url, cancel_url, body_events, linked_events, monitor = reading[:7]
    # An SSE event's answer has no headers: none is looked for.
    index = answer.index if len(answer.headers) else None
    events_url = body_events
    if events_url is None and index is not None:
        events_url = answer.resolve(find_link(index, "events"))
    events_url = events_url or linked_events
    retry_after = parse_retry_after(index, fields, now=answer.wall_now)
    remaining = _remaining(answer, fields, eta)
    # Only what differs from the defaults (``None``, ``False``): pydantic keeps the names of
    # the fields given in a set per model, ~2 KB for all twenty against ~0.5 KB for the
    # handful usually set, and every operation holds a few snapshots (fan-out memory per
    # operation). Each name is added when set, in the model's order.
    created, started, updated = reading[7:10]
    held = index is not None and preference_applied_wait(index) is not None
    raw = answer.raw
    values: dict[str, Any] = {"state": state}
    for name, value in (
        ("id", ident),
        ("progress", progress),
        ("result", None if result is False else result),
        ("has_result", has_result or None),
        ("result_url", result_url),
        ("error", error),
        ("retry_url", retry_url),
        ("cancel_url", cancel_url),
        ("events_url", events_url),
        ("status_url", monitor),
        ("retry_after", retry_after),
        ("estimated_completion", eta),
        ("estimated_remaining", remaining),
        ("held", held or None),
        ("created_at", created),
        ("started_at", started),
        ("updated_at", updated),
        ("http_status", answer.status_code),
        ("raw", None if raw is False else raw),
    ):
        if value is not None:
            values[name] = value
    return JobStatus(**values)


#: What :func:`snapshot` reads from a body alone (and the URL it came from): id, progress,
#: retry, cancel and events URLs (body field, then body link), status URL, created,
#: started and updated times, estimated completion. Values are immutable (strings, frozen
#: models, datetimes).
_Reading = tuple[Any, ...]
_READINGS: dict[tuple[bytes, str, str | None], _Reading] = {}
#: Readings kept: a poller's few documents; a fan-out's new ones pass through.
_MAX_READINGS = 16


def _reading(
    answer: Answer, fields: Doc, stamp_docs: tuple[Doc, ...], status_url: str | None
) -> _Reading:
    return (
        short_text(first_value(fields, ID_KEYS)),
        progress_of(fields),
        answer.resolve(first_value(fields, RETRY_KEYS)),
        answer.resolve(first_value(fields, CANCEL_KEYS))
        or answer.resolve(links_href(fields, "cancel")),
        answer.resolve(first_value(fields, EVENTS_KEYS)),
        answer.resolve(links_href(fields, "events")),
        status_url or body_monitor(answer, fields),
        _stamp(stamp_docs, CREATED_KEYS),
        _stamp(stamp_docs, STARTED_KEYS),
        _stamp(stamp_docs, UPDATED_KEYS),
        _stamp(stamp_docs, ETA_KEYS),
    )


def _stamp(stamp_docs: tuple[Doc, ...], keys: tuple[str, ...]) -> datetime | None:
    """The first timestamp under ``keys`` in the first of ``stamp_docs`` holding one."""
    for doc in stamp_docs:
        found = timestamp_of(doc, keys)
        if found is not None:
            return found
    return None


def _memo_reading(answer: Answer, fields: Doc, status_url: str | None) -> _Reading:
    """:func:`_reading` of a body that is the whole answer's, memoised by its bytes and URL."""
    key = (answer.content, answer.url, status_url)
    found = _READINGS.get(key)
    if found is None:
        found = _reading(answer, fields, (fields,), status_url)
        if len(_READINGS) >= _MAX_READINGS:
            # The oldest goes (another thread may have taken it first).
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del _READINGS[next(iter(_READINGS))]
        _READINGS[key] = found
    return found


def body_monitor(answer: Answer, doc: Doc) -> str | None:
    """A status URL the body names (``statusUrl``…, a ``status``/``monitor``/``self`` link,
    or ``urls.get``)."""
    for key in MONITOR_KEYS:
        url = answer.resolve(doc.get(key))
        if url is not None:
            return url
    for rel in ("status", "monitor", "self"):
        url = answer.resolve(links_href(doc, rel))
        if url is not None:
            return url
    # Replicate's prediction: ``urls: {get, cancel, stream}``.
    urls = doc.get("urls")
    if isinstance(urls, Mapping):
        return answer.resolve(urls.get("get"))
    return None


def header_monitor(answer: Answer, *, with_location: bool) -> str | None:
    """``Operation-Location``, ``Azure-AsyncOperation``, then (for a 202) ``Location``, then
    a ``Link`` with rel ``monitor`` (RFC 5989)."""
    for name in MONITOR_HEADERS:
        url = answer.resolve(answer.header(name))
        if url is not None:
            return url
    if with_location:
        url = answer.location()
        if url is not None:
            return url
    return answer.resolve(find_link(answer.index, "monitor"))


MonitorKind = Literal["operation", "location", "resource", "body"]


def monitor_kind(answer: Answer, monitor: str | None) -> MonitorKind | None:
    """Where the submit answer named ``monitor``: an operation monitor header
    (``Operation-Location`` / ``Azure-AsyncOperation``, whose answers are status documents),
    ``Location`` (whose 200/204 may be the result), the resource itself (a PUT/PATCH URL),
    or the body (a status URL or link, an Operation's name)."""
    if monitor is None:
        return None
    if any(answer.resolve(answer.header(name)) == monitor for name in MONITOR_HEADERS):
        return "operation"
    if answer.location() == monitor:
        return "location"
    if monitor == answer.url and answer.method in ("PUT", "PATCH", "GET"):
        return "resource"
    return "body"


def final_url_of(answer: Answer, monitor: str | None) -> str | None:
    """Where the final result lives when the monitor will not say (azure-core's rules).

    A PUT or PATCH operates on the resource at the request URL: that is the final result.
    A POST's result is at ``Location`` when the server gave one besides an
    ``Operation-Location``/``Azure-AsyncOperation`` monitor. A DELETE (or another method)
    has no final resource to fetch: the monitor's last answer is all there is.
    """
    if answer.method in ("PUT", "PATCH"):
        return answer.url
    if answer.method != "POST":
        return None
    explicit = any(answer.header(name) for name in MONITOR_HEADERS)
    if explicit:
        location = answer.location()
        if location is not None and location != monitor:
            return location
    return None


#: Media types of web pages (HTML, XHTML): never a status document.
PAGE_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def media_type(answer: Answer) -> str:
    """The answer's media type, lower case without parameters (``""`` when unlabelled)."""
    media = answer._media
    if media is None:
        media = (answer.header("content-type") or "").split(";", 1)[0].strip().lower()
        answer._media = media
    return media


def result_of(answer: Answer) -> tuple[Any, bool]:
    """The body of a "here is the result" answer: JSON, or a :class:`ResultFile`."""
    if answer.status_code == 204 or not answer.content.strip():
        return None, True
    content_type = answer.header("content-type")
    is_json = answer.is_labelled_json()
    if is_json or content_type is None:
        if answer.json_ok:
            return answer.raw, True
        if is_json:
            error = answer.invalid_json_error("the body labelled JSON")
            raise error or answer.protocol_error("the body labelled JSON does not decode")
    return (
        ResultFile(
            content_type=content_type or "application/octet-stream",
            filename=parse_content_disposition_filename(answer.header("content-disposition")),
            content=answer.content,
        ),
        True,
    )


def raise_not_found_or_gone(answer: Answer) -> None:
    """Raise ``JobNotFoundError`` for a 404 and ``JobExpiredError`` for a 410."""
    if answer.status_code not in (404, 410):
        return  # every other answer: no error text to extract
    detail = answer.error_text()
    suffix = f" ({detail})" if detail else ""
    if answer.status_code == 404:
        raise JobNotFoundError(f"no such job at {answer.url}{suffix}")
    if answer.status_code == 410:
        raise JobExpiredError(f"the job at {answer.url} has expired{suffix}")
