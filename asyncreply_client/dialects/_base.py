"""The dialect protocol, the submission value, and the machinery every built-in dialect shares.

:class:`DialectBase` reads an answer once and routes it by status code (404/410, 303, 2xx,
202, a failed 500 / cancelled 409); each family overrides only the hooks where its shape
differs (how a 2xx status answer is read, what a 5xx means, a Google Operation body).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import httpx

from .._errors import NoStatusUrlError, ProtocolError
from .._http import HttpResponse
from .._models import JobState, JobStatus
from ._answer import (
    Answer,
    MonitorKind,
    body_monitor,
    final_url_of,
    header_monitor,
    media_type,
    monitor_kind,
    raise_not_found_or_gone,
    result_of,
    snapshot,
)
from ._fields import (
    MONITOR_HEADERS,
    doc_state,
    has_provisioning_state,
    has_result_fields,
    parse_state,
)
from ._rejections import rejection_of
from ._status_memo import StatusMemo, memo_key

__all__ = [
    "FINAL_STATE_VIA",
    "Dialect",
    "DialectBase",
    "FinalStateVia",
    "MonitorKind",
    "OkMode",
    "Submission",
    "monitor_move",
    "running_without_monitor",
    "submission_of",
    "with_final_state_via",
]


@dataclass(frozen=True, slots=True)
class Submission:
    """What a submit response says about the operation it started.

    Attributes:
        status: the first snapshot (PENDING from a 202; terminal for an already-finished one).
        status_url: absolute URL of the status monitor (``None`` only when the operation is
            already terminal and the server gave no monitor).
        events_url: absolute URL of an SSE stream for the operation, when offered.
        cancel_url: absolute URL to cancel at (with the dialect's method), when known.
        final_url: where an already-known final result lives (ARM ``Location`` / original URI).
        retry_after: seconds the server asked to wait before the first poll (``0.0`` = now).
        monitored_by: where the submit answer named ``status_url``: ``"operation"``
            (``Operation-Location`` / ``Azure-AsyncOperation``: every 2xx answer there must
            state a status), ``"location"`` (``Location``: a 200/204 without a status is the
            result), ``"resource"`` (a PUT/PATCH's own URL), ``"body"``; ``None`` without
            a monitor.
        final_from_monitor: the monitor's last answer is the final result (the caller
            chose ``final_state_via="operation-location"`` / ``"azure-async-operation"``).
    """

    status: JobStatus
    status_url: str | None
    events_url: str | None = None
    cancel_url: str | None = None
    final_url: str | None = None
    retry_after: float | None = None
    monitored_by: MonitorKind | None = None
    final_from_monitor: bool = False

    def with_status(self, status: JobStatus) -> Submission:
        """This submission with ``status`` as its snapshot (``dataclasses.replace``, without
        its look at every field: an operation's state does it at every status it learns)."""
        return Submission(
            status,
            self.status_url,
            self.events_url,
            self.cancel_url,
            self.final_url,
            self.retry_after,
            self.monitored_by,
            self.final_from_monitor,
        )


class Dialect(Protocol):
    """How one family of servers expresses operations. Pure functions; no I/O.

    Implement it to support another family. Besides the state, fill in what the polling
    policies use: ``retry_after`` (see :func:`~asyncreply_client._headers.parse_retry_after`),
    ``estimated_remaining``, ``progress``, and ``held`` (the server held a long-poll request:
    ``Preference-Applied: wait``; :class:`~asyncreply_client.LongPolling` falls back to
    plain polling while it is never true).

    Two optional members, read when present (see :class:`DeclarativeDialect`):
    ``cancel_method`` (the cancel request's method; ``None``: the API has no cancel, and
    ``cancel()`` raises ``CancelNotSupportedError`` without sending anything; ``DELETE``
    when absent) and ``interpret_result_failure(response)`` (a result-URL answer that is
    the job's failure, as a FAILED ``JobStatus``, else ``None``).
    """

    name: str

    def interpret_submit(self, response: HttpResponse) -> Submission:
        """Interpret the answer to a submission (2xx / 303).

        Raises ``ProtocolError`` for an answer it cannot read (a 202 naming no monitor);
        the built-in dialects also raise ``SubmissionRejectedError`` for a 4xx that is
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


def submission_of(answer: Answer, status: JobStatus, monitor: str | None) -> Submission:
    """The :class:`Submission` of a submit answer read as ``status``, watched at ``monitor``."""
    return Submission(
        status=status,
        status_url=monitor,
        events_url=status.events_url,
        cancel_url=status.cancel_url,
        final_url=final_url_of(answer, monitor),
        retry_after=status.retry_after,
        monitored_by=monitor_kind(answer, monitor),
    )


FinalStateVia = Literal["location", "azure-async-operation", "operation-location", "original-uri"]
#: The values of ``submit(..., final_state_via=...)`` (Azure's ``x-ms-long-running-operation-
#: options.final-state-via``).
FINAL_STATE_VIA: tuple[str, ...] = (
    "location",
    "azure-async-operation",
    "operation-location",
    "original-uri",
)


def with_final_state_via(
    submission: Submission, response: HttpResponse, via: FinalStateVia, original_url: str
) -> Submission:
    """``submission`` with its final result where ``via`` says (Azure's final-state-via).

    ``"location"``: a GET on the submit answer's ``Location``; ``"original-uri"``: a GET on
    ``original_url`` (the submission's URL); ``"azure-async-operation"`` /
    ``"operation-location"``: the last answer of that monitor is itself the result. When the
    answer lacks the header named, the automatic rule stays.

    Raises:
        ValueError: ``via`` is none of :data:`FINAL_STATE_VIA`.

    Example:
        >>> import httpx
        >>> from asyncreply_client._models import JobState, JobStatus
        >>> r = HttpResponse(202, httpx.Headers({"Location": "/r/1"}), b"", "https://h/x", "POST")
        >>> s = Submission(JobStatus(state=JobState.PENDING), "https://h/op/1")
        >>> with_final_state_via(s, r, "location", "https://h/x").final_url
        'https://h/r/1'
    """
    if via not in FINAL_STATE_VIA:
        raise ValueError(
            f"final_state_via must be one of {', '.join(FINAL_STATE_VIA)}; got {via!r}"
        )
    answer = Answer.of(response, 0.0)
    if via == "original-uri":
        return replace(submission, final_url=original_url, final_from_monitor=False)
    if via == "location":
        location = answer.location()
        if location is None:
            return submission
        return replace(submission, final_url=location, final_from_monitor=False)
    header = "azure-asyncoperation" if via == "azure-async-operation" else "operation-location"
    monitor = answer.resolve(answer.header(header))
    if monitor is None:
        return submission
    return replace(submission, status_url=monitor, final_url=None, final_from_monitor=True)


def monitor_move(
    response: HttpResponse, monitored_by: MonitorKind | None
) -> tuple[str, MonitorKind] | None:
    """Where a non-terminal 202 poll answer moves the status monitor, and its new kind.

    An ``Operation-Location`` / ``Azure-AsyncOperation`` header moves it (an operation
    monitor wins over ``Location``); a ``Location`` header moves it too, except for an
    operation watched through its operation monitor, which keeps it (a ``Location`` there
    names the final resource, not a new monitor). ``None``: stay.

    Example:
        >>> import httpx
        >>> r = HttpResponse(202, httpx.Headers({"Location": "/q/2"}), b"", "https://h/q/1")
        >>> monitor_move(r, "location"), monitor_move(r, "operation")
        (('https://h/q/2', 'location'), None)
    """
    if response.status_code != 202:
        return None
    answer = Answer.of(response, 0.0)
    for name in MONITOR_HEADERS:
        url = answer.resolve(answer.header(name))
        if url is not None:
            return None if url == response.url else (url, "operation")
    if monitored_by == "operation":
        return None
    location = answer.location()
    if location is None or location == response.url:
        return None
    return location, "location"


OkMode = Literal["document", "result", "auto"]
#: The headers of an SSE event's answer: none (shared, never modified).
_NO_HEADERS = httpx.Headers()


class DialectBase:
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
    #: Whether a completed status document that names no result (no ``result``, no
    #: result URL, no final URL) is itself the result, rather than "no result".
    _completed_document_is_result = False
    #: Whether a ``Location`` monitor's 200/201/204 without a status is the result, even
    #: where status answers are documents (Microsoft, as ARM does).
    _location_gives_result = False
    #: Whether status answers are read through a :class:`StatusMemo` (set by the built-in
    #: dialects whose reading depends on the answer alone; never inherited by a subclass).
    _memo_status = False

    __slots__ = ("_status_memo", "_wall_clock")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_memo_status" not in cls.__dict__:
            cls._memo_status = False

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        """Create the dialect.

        Args:
            wall_clock: wall-clock time in epoch seconds, used only to measure an
                HTTP-date ``Retry-After`` (when the response has no ``Date``) and the time
                left until an ``estimatedCompletion``. Inject a fake one in tests.
        """
        self._wall_clock = wall_clock
        self._status_memo = StatusMemo() if self._memo_status else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _answer(self, response: HttpResponse) -> Answer:
        return Answer.of(response, self._wall_clock())

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
        return self._read_submit(self._answer(response))

    def interpret_status(
        self, response: HttpResponse, *, submission: Submission | None = None
    ) -> JobStatus:
        """Interpret a status-monitor answer (see the package table).

        Raises:
            JobNotFoundError: 404.
            JobExpiredError: 410.
            ProtocolError: an answer this dialect cannot read as a job's status.
        """
        # Only an opted-in class touches the slot: a subclass's ``__init__`` may not call
        # this one's.
        memo = self._status_memo if self._memo_status else None
        key = None if memo is None else memo_key(response)
        if memo is not None and key is not None:
            status = memo.get(key, response, submission, self._wall_clock())
            if status is not None:
                return status
        answer = self._answer(response)
        status = self._read_status(answer, submission)
        if memo is not None and key is not None:
            memo.put(key, submission, status, answer)
        return status

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
        answer = Answer.build(
            status_code=None,
            headers=_NO_HEADERS,
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
        return self._failure_state(self._answer(response)) is not None

    # -- overridable pieces ---------------------------------------------------------------

    def _event_status(self, answer: Answer) -> JobStatus | None:
        state = doc_state(answer.doc)
        if state is None:
            return None
        return self._document(answer, state, None)

    def _failure_state(self, answer: Answer) -> JobState | None:
        """The terminal state a non-2xx answer states: FAILED (5xx) or CANCELLED (409)."""
        code = answer.status_code
        state = doc_state(answer.doc)
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

    def _document(self, answer: Answer, state: JobState, final_url: str | None) -> JobStatus:
        """A status document: its ``result`` when present, else a result URL."""
        doc = answer.doc or {}
        if state is JobState.COMPLETED and "result" in doc:
            return snapshot(answer, state, doc=doc, result=doc.get("result"), has_result=True)
        return snapshot(answer, state, doc=doc, final_url=final_url)

    def _states(self, answer: Answer) -> bool:
        """Whether the body states the operation's state (a Google Operation does too)."""
        return doc_state(answer.doc) is not None

    def _status_of_2xx(self, answer: Answer, submission: Submission | None) -> JobStatus:
        """A 200/201/204 status answer."""
        final_url = submission.final_url if submission is not None else None
        ok_mode = self._ok_mode
        monitored_by = _monitored_by(submission)
        if self._location_gives_result and monitored_by == "location":
            ok_mode = "auto"
        elif monitored_by == "operation":
            # An operation monitor's answers are status documents, even for a dialect
            # whose 200s are results elsewhere.
            ok_mode = "document"
        state = doc_state(answer.doc)
        if ok_mode == "result" or (ok_mode == "auto" and state is None):
            result, has_result = result_of(answer)
            return snapshot(
                answer, JobState.COMPLETED, doc=None, result=result, has_result=has_result
            )
        if state is None:
            raise answer.protocol_error(f"{self.name} dialect: the answer states no job state")
        if (
            state is JobState.COMPLETED
            and has_provisioning_state(answer.doc)
            and (final_url is None or final_url == answer.url)
        ):
            # ARM: a resource whose provisioning succeeded is itself the result, unless a
            # final GET is due elsewhere (a POST's Location, a PUT's original URL): the
            # final-state rules decide first, a monitor's body is not the resource.
            return snapshot(answer, state, doc=answer.doc, result=answer.raw, has_result=True)
        status = self._document(answer, state, final_url)
        if (
            (ok_mode == "auto" or self._completed_document_is_result)
            and state is JobState.COMPLETED
            and not status.has_result
            and status.result_url is None
        ):
            # "Completed" and nothing points elsewhere (``{"status": "success", "data": …}``):
            # the answer itself is the best result there is.
            return status.model_copy(update={"result": answer.raw, "has_result": True})
        return status

    def _read_status(self, answer: Answer, submission: Submission | None) -> JobStatus:
        status = self._read_status_answer(answer, submission)
        if (
            submission is not None
            and submission.final_from_monitor
            and status.state is JobState.COMPLETED
            and answer.status_code != 303
        ):
            # final_state_via names the monitor: its last answer is the result.
            return status.model_copy(
                update={"result": answer.raw, "has_result": True, "result_url": None}
            )
        return status

    def _read_status_answer(self, answer: Answer, submission: Submission | None) -> JobStatus:
        code = answer.status_code
        raise_not_found_or_gone(answer)
        if code == 303:
            location = answer.location()
            if location is None:
                raise answer.protocol_error("303 See Other without a usable Location")
            return snapshot(answer, JobState.COMPLETED, doc=answer.doc, result_url=location)
        if code in (200, 201, 202) and (
            answer.is_labelled_json() or (self._ok_mode == "document" and not media_type(answer))
        ):
            # A JSON status answer that does not decode is broken, whatever the dialect
            # would have made of it (RFC 8259); the decoder's error is the cause.
            invalid = answer.invalid_json_error("the status answer's body")
            if invalid is not None:
                raise invalid
        if code in (200, 201, 204):
            if _monitored_by(submission) == "operation" and not self._states(answer):
                # An operation monitor answers with the operation's status document; a 2xx
                # without one is not "done, result {}" (azure-core: "no status found").
                raise answer.protocol_error(
                    f"{self.name} dialect: the operation monitor (Operation-Location / "
                    f"Azure-AsyncOperation) answered {code} with no status"
                )
            return self._status_of_2xx(answer, submission)
        final_url = submission.final_url if submission is not None else None
        if code == 202:
            state = _operation_state(answer) or JobState.PENDING
            if state.is_terminal:
                return self._document(answer, state, final_url)
            return snapshot(answer, state, doc=answer.doc)
        failure = self._failure_state(answer)
        if failure is not None:
            return snapshot(answer, failure, doc=answer.doc)
        if code is not None and 400 <= code < 500:
            raise rejection_of(answer, what="status request")
        raise answer.protocol_error(f"{self.name} dialect: unexpected status answer")

    def _read_submit(self, answer: Answer) -> Submission:
        code = answer.status_code
        if code == 202:
            return self._submission_of_202(answer)
        if code == 303:
            location = answer.location()
            if location is None:
                raise answer.protocol_error("303 See Other without a usable Location")
            status = snapshot(answer, JobState.COMPLETED, doc=answer.doc, result_url=location)
            return submission_of(answer, status, status.status_url)
        if code in (200, 201, 204):
            return self._submission_of_2xx(answer)
        failure = self._failure_state(answer)
        if failure is not None:
            status = snapshot(answer, failure, doc=answer.doc)
            return submission_of(answer, status, status.status_url)
        if code is not None and 400 <= code < 500:
            raise rejection_of(answer, submission=True)
        raise answer.protocol_error("unexpected answer to a submission")

    def _submission_of_202(self, answer: Answer) -> Submission:
        """A 202: an accepted operation; it must say where to watch it."""
        doc = answer.doc or {}
        monitor = header_monitor(answer, with_location=True) or body_monitor(answer, doc)
        state = (_operation_state(answer) if monitor else doc_state(answer.doc)) or JobState.PENDING
        if state.is_terminal:
            status = self._document(answer, state, final_url_of(answer, monitor))
            return submission_of(answer, status, monitor)
        if monitor is None and answer.method == "GET":
            # A GET answered 202 without a monitor (GitHub's "statistics are being
            # computed"): ask the same URL again after the hint (ARM's original-URI rule).
            monitor = answer.url
        if monitor is None:
            raise NoStatusUrlError(
                "202 Accepted names no status monitor (no Operation-Location, "
                "Azure-AsyncOperation, Location or status URL in the body); describe where "
                "the status is with dialect= (a preset such as 'replicate', or "
                "DeclarativeDialect(status_url=...))",
                status_code=answer.status_code,
                url=answer.url,
                body=answer.content,
            )
        status = snapshot(answer, state, doc=answer.doc, status_url=monitor)
        return submission_of(answer, status, monitor)

    def _submission_of_2xx(self, answer: Answer) -> Submission:
        """A 200/201/204 on submit: finished, unless the body says it is still running."""
        state = doc_state(answer.doc)
        explicit = header_monitor(answer, with_location=False)
        monitor = explicit or body_monitor(answer, answer.doc or {})
        if self._ok_mode != "result" and state is not None and not state.is_terminal:
            if (
                monitor is None
                and answer.method in ("PUT", "PATCH")
                and (self._poll_resource or has_provisioning_state(answer.doc))
            ):
                # ARM: no monitor header: poll the resource itself.
                monitor = answer.url
            if monitor is None and answer.method == "GET":
                monitor = answer.url
            if monitor is None:
                # A running job is never a result (issue 17): say what is missing.
                raise running_without_monitor(answer, self.name, state)
            status = snapshot(answer, state, doc=answer.doc, status_url=monitor)
            return submission_of(answer, status, monitor)
        elif explicit is not None and state is None and answer.status_code != 204:
            # An Operation-Location / Azure-AsyncOperation on a 200/201: still running.
            status = snapshot(answer, JobState.PENDING, doc=answer.doc, status_url=explicit)
            return submission_of(answer, status, explicit)
        if self._ok_mode != "result" and state is not None and state.is_terminal:
            if state is JobState.COMPLETED and not has_result_fields(answer.doc):
                status = snapshot(answer, state, doc=answer.doc, result=answer.raw, has_result=True)
            else:
                status = self._status_of_2xx(answer, None)
            return submission_of(answer, status, monitor)
        result, has_result = result_of(answer)
        status = snapshot(
            answer, JobState.COMPLETED, doc=answer.doc, result=result, has_result=has_result
        )
        return submission_of(answer, status, monitor)


def running_without_monitor(answer: Answer, dialect: str, state: JobState) -> NoStatusUrlError:
    """The error of a submission answer that states a running job and names no status URL."""
    from ._presets import PRESETS  # the presets are built on this module: imported late

    return NoStatusUrlError(
        f"{dialect} dialect: the server says the job is {state.value} but names no status "
        "URL to follow it (no Operation-Location, Location or status URL in the body), so it "
        "cannot be returned as a result; describe where its status is with dialect= (a "
        f"preset: {', '.join(PRESETS)}; or DeclarativeDialect(status_url=...))",
        status_code=answer.status_code,
        url=answer.url,
        body=answer.content,
    )


def _monitored_by(submission: Submission | None) -> MonitorKind | None:
    return submission.monitored_by if submission is not None else None


def _operation_state(answer: Answer) -> JobState | None:
    """The state of a 202 that goes on being watched: a resource's terminal
    ``provisioningState`` in it describes the resource, not the operation, which is still
    running (ARM: the monitor says when it ends); any other stated state counts."""
    state = doc_state(answer.doc)
    if (
        state is not None
        and state.is_terminal
        and answer.doc is not None
        and not any(parse_state(answer.doc.get(key)) for key in ("status", "state"))
    ):
        return None
    return state
