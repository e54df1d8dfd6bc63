"""Contract checker: submit a job to *any* server and report, check by check, whether it
follows the asynchronous request-reply pattern (202 + status monitor, Retry-After, progress,
a terminal state, the result, cancellation, idempotency, SSE, 404 for unknown ids).

The checking logic is one I/O-free generator (STYLE.md §1) that yields the client's flow
commands (``Send``, ``ReadChunk``, ``CloseStream``, ``Sleep``); :func:`check` drives it with
a synchronous ``httpx.Client`` and :func:`acheck` with an ``httpx.AsyncClient``. It observes
raw responses: redirects are never followed for it and nothing is retried behind its back.

Example:
    >>> report = check(  # doctest: +SKIP
    ...     "http://127.0.0.1:8080/jobs",
    ...     json={"type": "sleep", "input": {"seconds": 0.2, "steps": 4}},
    ...     idempotency=True,
    ... )
    >>> print(report.render_table())  # doctest: +SKIP
    >>> report.passed  # doctest: +SKIP
    True
"""

from __future__ import annotations

import enum
import json as jsonlib
import math
import random
import string
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
import httpx

from ._commands import CloseStream, Command, ReadChunk, Send, Sleep
from ._dialects import AutoDialect, Dialect, ReferenceDialect, StatusCodeDialect, Submission
from ._errors import (
    AsyncReplyError,
    JobExpiredError,
    JobNotFoundError,
    TransportError,
    excerpt,
)
from ._headers import parse_http_date
from ._http import HttpResponse
from ._models import JobState, JobStatus
from ._sse import SSEDecoder
from ._urls import is_http_url, resolve_url, same_origin

__all__ = [
    "CHECKS",
    "CheckResult",
    "ContractReport",
    "Evidence",
    "Outcome",
    "acheck",
    "check",
]

#: The checks, in report order: ``(name, what it verifies)``.
CHECKS: tuple[tuple[str, str], ...] = (
    ("submit", "the submission answers 202 Accepted with a resolvable status monitor"),
    ("status_documents", "every status answer is a document the dialect understands"),
    ("retry_after", "Retry-After headers are valid (RFC 9110 §10.2.3) and plausible"),
    ("progress_monotonic", "reported progress never goes backwards"),
    ("terminal_state", "the job reaches a terminal state within the deadline"),
    ("result", "a completed job's result is retrievable (303 / result URL answers 2xx)"),
    (
        "cancellation",
        "cancel answers 2xx and the job becomes cancelled; cancelling again, or cancelling "
        "a finished job, answers 409",
    ),
    (
        "idempotency",
        "a resubmission with the same Idempotency-Key and body replays the same job; a "
        "different body with that key is refused (4xx)",
    ),
    (
        "sse",
        "the event stream is text/event-stream, its events parse, carry ids and end "
        "with a terminal event",
    ),
    ("unknown_id", "an unknown job id answers 404 or 410"),
)
_DESCRIPTIONS = dict(CHECKS)

_TRANSIENT = frozenset({429, 502, 503, 504})
_MAX_TRANSIENT = 3
_MAX_RESULT_REDIRECTS = 5
_SSE_MAX_BUFFER = 1 << 20
_SSE_PROBE = 2.0  # seconds the SSE stream of an unfinished job is observed
_JSON = "application/json"


class Outcome(str, enum.Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a failed check saw: the request, the answer, the offending header or body.

    Attributes:
        method: the request's method.
        url: the request's URL.
        status_code: the answer's HTTP status (``None`` when there was no answer).
        header: the offending header, as ``"Name: value"``.
        body: an excerpt of the answer's body (or of the offending event).
        note: anything else worth knowing (a transport error, the previous value).
    """

    method: str | None = None
    url: str | None = None
    status_code: int | None = None
    header: str | None = None
    body: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as a JSON-ready dict."""
        fields = {
            "method": self.method,
            "url": self.url,
            "status_code": self.status_code,
            "header": self.header,
            "body": self.body,
            "note": self.note,
        }
        return {k: v for k, v in fields.items() if v is not None}

    def __str__(self) -> str:
        parts: list[str] = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.url is not None:
            parts.append(f"{self.method or 'GET'} {self.url}")
        if self.header is not None:
            parts.append(self.header)
        if self.note is not None:
            parts.append(self.note)
        if self.body:
            parts.append(f"body: {self.body!r}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check's name (one of :data:`CHECKS`).
        outcome: pass, fail or skipped.
        summary: one line: what was seen, or why it failed or was skipped.
        evidence: for a failure, what the server answered.
        duration: seconds spent on the check's own requests (0 for checks that audit the
            answers of others).
    """

    name: str
    outcome: Outcome
    summary: str
    evidence: Evidence | None = None
    duration: float = 0.0

    @property
    def description(self) -> str:
        """What the check verifies."""
        return _DESCRIPTIONS.get(self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        data: dict[str, Any] = {
            "name": self.name,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "description": self.description,
            "duration": round(self.duration, 6),
        }
        if self.evidence is not None:
            data["evidence"] = self.evidence.to_dict()
        return data


@dataclass(frozen=True, slots=True)
class ContractReport:
    """Every check's outcome for one server.

    Attributes:
        url: the submission URL.
        method: the submission method.
        dialect: the name of the dialect that interpreted the answers.
        checks: one result per check, in :data:`CHECKS` order.
        duration: seconds the whole run took.

    Example:
        >>> report = ContractReport("http://x/jobs", "POST", "reference", (
        ...     CheckResult("submit", Outcome.PASS, "202 Accepted"),))
        >>> report.passed
        True
    """

    url: str
    method: str
    dialect: str
    checks: tuple[CheckResult, ...]
    duration: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether no check failed (skipped checks do not count against the server)."""
        return not any(c.outcome is Outcome.FAIL for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks."""
        return [c for c in self.checks if c.outcome is Outcome.FAIL]

    def get(self, name: str) -> CheckResult | None:
        """The result of the check called ``name``, or ``None``."""
        return next((c for c in self.checks if c.name == name), None)

    def __getitem__(self, name: str) -> CheckResult:
        result = self.get(name)
        if result is None:
            raise KeyError(f"no check named {name!r}; known: {', '.join(n for n, _ in CHECKS)}")
        return result

    def counts(self) -> dict[str, int]:
        """How many checks passed, failed and were skipped."""
        return {o.value: sum(c.outcome is o for c in self.checks) for o in Outcome}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "url": self.url,
            "method": self.method,
            "dialect": self.dialect,
            "passed": self.passed,
            "duration": round(self.duration, 6),
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict` for the shape)."""
        return jsonlib.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_junit_xml(self, *, suite_name: str = "asyncreply.contract") -> str:
        """The report as JUnit XML: one ``testcase`` per check, ``failure`` elements carrying
        the evidence, ``skipped`` elements carrying the reason."""
        counts = self.counts()
        root = ET.Element(
            "testsuites",
            name=suite_name,
            tests=str(len(self.checks)),
            failures=str(counts["fail"]),
            errors="0",
            skipped=str(counts["skipped"]),
            time=f"{self.duration:.3f}",
        )
        suite = ET.SubElement(
            root,
            "testsuite",
            name=suite_name,
            tests=str(len(self.checks)),
            failures=str(counts["fail"]),
            errors="0",
            skipped=str(counts["skipped"]),
            time=f"{self.duration:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for key, value in (("url", self.url), ("method", self.method), ("dialect", self.dialect)):
            ET.SubElement(properties, "property", name=key, value=value)
        for result in self.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=suite_name,
                name=result.name,
                time=f"{result.duration:.3f}",
            )
            if result.outcome is Outcome.FAIL:
                failure = ET.SubElement(
                    case, "failure", message=result.summary, type="ContractViolation"
                )
                lines = [result.summary, f"check: {result.description}"]
                if result.evidence is not None:
                    lines.append(f"evidence: {result.evidence}")
                failure.text = _xml_safe("\n".join(lines))
            elif result.outcome is Outcome.SKIPPED:
                ET.SubElement(case, "skipped", message=result.summary)
            else:
                ET.SubElement(case, "system-out").text = _xml_safe(result.summary)
        ET.indent(root)
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

    def render_table(self) -> str:
        """The report as a plain-text table, one row per check, evidence under failures."""
        width = max(len(n) for n, _ in CHECKS)
        lines = [
            f"Contract check of {self.method} {self.url} (dialect: {self.dialect})",
            f"{'CHECK':<{width}}  {'RESULT':<7}  SUMMARY",
        ]
        for result in self.checks:
            label = (
                result.outcome.value.upper()
                if result.outcome is Outcome.FAIL
                else (result.outcome.value)
            )
            lines.append(f"{result.name:<{width}}  {label:<7}  {result.summary}")
            if result.evidence is not None and result.outcome is Outcome.FAIL:
                lines.append(f"{'':<{width}}  {'':<7}  evidence: {result.evidence}")
        counts = self.counts()
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skipped']} skipped in {self.duration:.2f} s"
        )
        return "\n".join(lines)


def _xml_safe(text: str) -> str:
    # XML 1.0 forbids most control characters even escaped; a server's body may hold them.
    return "".join(
        ch
        if ch in "\t\n\r"
        or (" " <= ch <= "\ud7ff")
        or ("\ue000" <= ch <= "\ufffd")
        or (ch >= "\U00010000")
        else "\ufffd"
        for ch in text
    )


# --------------------------------------------------------------------------------------------
# The I/O-free core.

_Flow: TypeAlias = Generator[Command, Any, ContractReport]


@dataclass(frozen=True, slots=True)
class _Options:
    url: str
    method: str
    content: bytes | None
    alternate_content: bytes | None
    headers: httpx.Headers
    timeout: float
    request_timeout: float
    min_poll_interval: float
    max_poll_interval: float
    max_retry_after: float
    idempotency: bool


@dataclass(frozen=True, slots=True)
class _Fault:
    """A request that got no answer (transport failure or an unusable URL)."""

    method: str
    url: str
    reason: str

    def evidence(self) -> Evidence:
        return Evidence(method=self.method, url=self.url, note=self.reason)


def _evidence(
    response: HttpResponse, *, header: str | None = None, note: str | None = None, body: bool = True
) -> Evidence:
    text = excerpt(response.content) if body and response.content else None
    return Evidence(
        method=response.method,
        url=response.url,
        status_code=response.status_code,
        header=header,
        body=text,
        note=note,
    )


def _header(response: HttpResponse, name: str) -> str | None:
    value = response.headers.get(name)
    return None if value is None else str(value)


@dataclass
class _Watch:
    """How polling one job ended."""

    status: JobStatus | None = None
    response: HttpResponse | None = None
    terminal: bool = False
    polls: int = 0
    elapsed: float = 0.0
    # Why polling stopped before a terminal state, when it was not the deadline.
    problem: str | None = None
    problem_evidence: Evidence | None = None
    # The first poll found no monitor (404/410/405, or no answer at all).
    unresolvable: bool = False
    # A status answer the dialect could not read stopped the polling.
    unreadable: bool = False


class _RetryAfterAudit:
    """Validates every Retry-After (and Retry-After-Ms) header the server sends."""

    def __init__(self, max_seconds: float, wall: Callable[[], float]) -> None:
        self.max_seconds = max_seconds
        self.wall = wall
        self.seen = 0
        self.values: list[float] = []
        self.failure: tuple[str, Evidence] | None = None

    def observe(self, response: HttpResponse) -> float | None:
        """Audit ``response``'s hints; return the valid hint in seconds (``None`` if none)."""
        hint: float | None = None
        raw = _header(response, "Retry-After")
        if raw is not None:
            self.seen += 1
            seconds, problem = _parse_retry_after(raw, response, self.wall())
            if problem is None and seconds is not None and seconds > self.max_seconds:
                problem = (
                    f"Retry-After {raw.strip()!r} asks for {seconds:g} s, more than the "
                    f"plausible {self.max_seconds:g} s"
                )
            if problem is not None:
                self._fail(problem, response, f"Retry-After: {raw}")
            elif seconds is not None:
                self.values.append(seconds)
                hint = seconds
        raw_ms = _header(response, "Retry-After-Ms")
        if raw_ms is not None:
            self.seen += 1
            text = raw_ms.strip()
            if not (text.isascii() and text.isdigit()):
                self._fail(
                    f"Retry-After-Ms {raw_ms!r} is not a non-negative whole number of milliseconds",
                    response,
                    f"Retry-After-Ms: {raw_ms}",
                )
            elif float(text) / 1000 > self.max_seconds:
                self._fail(
                    f"Retry-After-Ms {text} is more than the plausible {self.max_seconds:g} s",
                    response,
                    f"Retry-After-Ms: {raw_ms}",
                )
            else:
                hint = float(text) / 1000  # the precise form wins over whole seconds
                self.values.append(hint)
        return hint

    def _fail(self, problem: str, response: HttpResponse, header: str) -> None:
        if self.failure is None:
            self.failure = (problem, _evidence(response, header=header, body=False))

    def result(self) -> CheckResult:
        if self.failure is not None:
            return CheckResult("retry_after", Outcome.FAIL, self.failure[0], self.failure[1])
        if not self.seen:
            return CheckResult(
                "retry_after", Outcome.SKIPPED, "the server sent no Retry-After header"
            )
        low, high = min(self.values), max(self.values)
        return CheckResult(
            "retry_after",
            Outcome.PASS,
            f"{self.seen} Retry-After hints, all valid ({low:g}-{high:g} s)",
        )


def _parse_retry_after(
    raw: str, response: HttpResponse, wall: float
) -> tuple[float | None, str | None]:
    """Parse ``Retry-After = HTTP-date / delay-seconds`` strictly (RFC 9110 §10.2.3:
    ``delay-seconds = 1*DIGIT``, so no sign and no fraction).

    Returns ``(seconds, None)`` or ``(None, problem)``. A date is measured from the answer's
    ``Date`` header when it has a valid one (as the RFC intends), else from ``wall`` (epoch
    seconds); a date in the past means "now".
    """
    text = raw.strip()
    if text.isascii() and text.isdigit():
        return float(text), None  # float(): a thousand digits are "inf", not an error
    when = parse_http_date(text)
    if when is None:
        return None, (
            f"Retry-After {raw!r} is neither delay-seconds (a non-negative whole number) nor "
            "an HTTP-date"
        )
    date_header = _header(response, "Date")
    sent = parse_http_date(date_header) if date_header is not None else None
    return max(0.0, when - (wall if sent is None else sent)), None


class _ProgressAudit:
    """Checks that progress never decreases within one attempt of one job."""

    def __init__(self) -> None:
        self.values = 0
        self._last: tuple[float, Any, str] | None = None
        self.failure: tuple[str, Evidence] | None = None

    def observe(self, status: JobStatus, response: HttpResponse) -> None:
        progress = status.progress
        if progress is None:
            return
        value = progress.fraction
        if value is None:
            if progress.current is None:
                return
            value = float(progress.current)
        shown = _show_progress(status)
        raw = status.raw
        attempt = raw.get("attempt") if isinstance(raw, dict) else None
        self.values += 1
        last = self._last
        self._last = (value, attempt, shown)
        if last is None or self.failure is not None or last[1] != attempt:
            return  # a new attempt of a retried job starts its progress afresh
        if value < last[0]:
            self.failure = (
                f"progress went backwards from {last[2]} to {shown}",
                _evidence(response, note=f"previous progress {last[2]}"),
            )

    def result(self) -> CheckResult:
        if self.failure is not None:
            return CheckResult("progress_monotonic", Outcome.FAIL, self.failure[0], self.failure[1])
        if not self.values:
            return CheckResult(
                "progress_monotonic", Outcome.SKIPPED, "the server reported no progress"
            )
        return CheckResult(
            "progress_monotonic",
            Outcome.PASS,
            f"{self.values} progress reports, never decreasing",
        )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _reason(exc: BaseException) -> str:
    """An error's message without the "(HTTP n from url): body" tail that evidence shows."""
    return str(exc).split(" (HTTP ", 1)[0]


def _show_progress(status: JobStatus) -> str:
    p = status.progress
    if p is None:
        return "none"
    if p.total is not None:
        return f"{p.current:g}/{p.total:g}" if p.current is not None else f"?/{p.total:g}"
    return f"{p.current:g}" if p.current is not None else "?"


def _unknown_id(job_id: str) -> str:
    """A random id shaped like ``job_id`` (a UUID for a UUID; same character classes)."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        parsed = None
    if parsed is not None:
        fresh = str(uuid.uuid4())
        return fresh.upper() if job_id.isupper() else fresh
    rng = random.SystemRandom()
    classes = [
        next((c for c in _ID_CLASSES if ch in c), None) if ch.isascii() else None for ch in job_id
    ]
    if not any(classes):
        return job_id + "0"
    while True:  # a short id may be drawn again (1 in 260 for "j1"): same shape, new id
        drawn = (ch if c is None else rng.choice(c) for ch, c in zip(job_id, classes, strict=True))
        candidate = "".join(drawn)
        if candidate != job_id:
            return candidate


_ID_CLASSES = (string.digits, string.ascii_lowercase, string.ascii_uppercase)


def _replace_id(url: str, job_id: str) -> str | None:
    """``url`` with its last occurrence of ``job_id`` (in the path or the query) replaced by
    an unknown id of the same shape; ``None`` when the id is not there."""
    try:
        parsed = httpx.URL(url)
        target = parsed.raw_path.decode("ascii")
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    at = target.rfind(job_id)
    if at < 0:
        return None
    fresh = target[:at] + _unknown_id(job_id) + target[at + len(job_id) :]
    return str(parsed.copy_with(raw_path=fresh.encode("ascii")))


def _alternate_body(content: bytes | None) -> bytes:
    """A body that differs from ``content`` in substance (not merely in formatting).

    A JSON object gains a member; anything else gets a changed byte sequence.
    """
    if content:
        try:
            value = jsonlib.loads(content)
        except (ValueError, UnicodeDecodeError):
            value = None
        if isinstance(value, dict):
            value = {**value, "contractCheckNonce": uuid.uuid4().hex}
            return jsonlib.dumps(value).encode()
        return content + b"\n"
    return jsonlib.dumps({"contractCheckNonce": uuid.uuid4().hex}).encode()


class _Checker:
    """The whole contract run, as a generator of flow commands (no I/O, no clock of its own).

    ``run()`` yields ``Send`` / ``ReadChunk`` / ``CloseStream`` / ``Sleep`` and returns the
    :class:`ContractReport`. A transport failure is thrown in as ``TransportError`` at the
    ``yield`` of the command that failed.
    """

    def __init__(
        self,
        options: _Options,
        dialect: Dialect,
        now: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.o = options
        self.dialect = dialect
        self.now = now
        self.results: dict[str, CheckResult] = {}
        self.retry_after = _RetryAfterAudit(options.max_retry_after, wall)
        self.progress = _ProgressAudit()
        self.documents = 0
        self.document_failure: tuple[str, Evidence] | None = None

    # ------------------------------------------------------------------ plumbing
    def _headers_for(self, url: str, extra: Mapping[str, str] | None) -> httpx.Headers:
        # The caller's headers (credentials) go only to the submission's origin.
        headers = httpx.Headers(self.o.headers if same_origin(url, self.o.url) else None)
        for key, value in (extra or {}).items():
            headers[key] = value
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> Generator[Command, Any, HttpResponse | _Fault]:
        timeout = self.o.request_timeout
        read = timeout if read_timeout is None else max(0.001, min(timeout, read_timeout))
        try:
            request = httpx.Request(
                method,
                url,
                headers=self._headers_for(url, headers),
                content=content,
                extensions={
                    "timeout": {"connect": timeout, "read": read, "write": timeout, "pool": timeout}
                },
            )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            return _Fault(method, url, f"unusable URL: {exc}")
        try:
            reply: HttpResponse = yield Send(request, stream=stream)
        except TransportError as exc:
            return _Fault(method, url, f"no answer: {exc}")
        return reply

    def _read_excerpt(self) -> Generator[Command, Any, bytes]:
        """Read the first piece of the open stream (for evidence), then close it."""
        try:
            chunk: str | None = yield ReadChunk()
        except TransportError:
            chunk = None
        yield CloseStream()
        return (chunk or "").encode()

    def _set(self, result: CheckResult) -> None:
        # Summaries are one line whatever a server put in the text they quote.
        one_line = " ".join(result.summary.split())
        if one_line != result.summary:
            result = CheckResult(
                result.name, result.outcome, one_line, result.evidence, result.duration
            )
        self.results[result.name] = result

    def _pass(self, name: str, summary: str, started: float | None = None) -> None:
        self._set(CheckResult(name, Outcome.PASS, summary, duration=self._since(started)))

    def _fail(
        self, name: str, summary: str, evidence: Evidence | None, started: float | None = None
    ) -> None:
        self._set(CheckResult(name, Outcome.FAIL, summary, evidence, self._since(started)))

    def _skip(self, name: str, summary: str) -> None:
        self._set(CheckResult(name, Outcome.SKIPPED, summary))

    def _since(self, started: float | None) -> float:
        return 0.0 if started is None else max(0.0, self.now() - started)

    def _submit_request(
        self, *, key: str | None = None, content: bytes | None = None
    ) -> Generator[Command, Any, HttpResponse | _Fault]:
        extra: dict[str, str] = {}
        if key is not None:
            extra["Idempotency-Key"] = key
        body = self.o.content if content is None else content
        return (yield from self._send(self.o.method, self.o.url, content=body, headers=extra))

    def _interpret_submit(
        self, reply: HttpResponse | _Fault, *, what: str = "the submission"
    ) -> tuple[Submission | None, str | None, Evidence | None]:
        """``(submission, problem, evidence)`` for a submit answer that should be a 202."""
        if isinstance(reply, _Fault):
            return None, f"{what} got no answer", reply.evidence()
        if reply.status_code != 202:
            location = _header(reply, "Location")
            return (
                None,
                f"{what} answered HTTP {reply.status_code}, expected 202 Accepted",
                _evidence(reply, header=None if location is None else f"Location: {location}"),
            )
        location = _header(reply, "Location")
        shown = (
            _evidence(reply, header=f"Location: {location}")
            if location is not None
            else _evidence(reply, note="no Location header")
        )
        try:
            submission = self.dialect.interpret_submit(reply)
        except AsyncReplyError as exc:
            return None, f"{what}'s 202 has no usable status monitor: {_reason(exc)}", shown
        if submission.status_url is None:
            return None, f"{what}'s 202 names no status monitor", shown
        return submission, None, None

    # ------------------------------------------------------------------ polling
    def _next_delay(self, hint: float | None, status: JobStatus | None, backoff: float) -> float:
        if hint is None and status is not None and status.retry_after is not None:
            hint = status.retry_after
        if hint is None or not math.isfinite(hint):
            hint = backoff
        return min(max(hint, self.o.min_poll_interval), self.o.max_poll_interval)

    def _watch(
        self,
        url: str,
        submission: Submission,
        *,
        first_hint: float | None,
        deadline: float,
        track_progress: bool,
    ) -> Generator[Command, Any, _Watch]:
        """Poll ``url`` until a terminal state, the deadline, or a problem."""
        started = self.now()
        watch = _Watch()
        backoff = max(self.o.min_poll_interval, 0.01)
        delay = self._next_delay(first_hint, submission.status, backoff)
        transient = 0
        while True:
            left = deadline - self.now()
            if watch.polls and left <= 0:
                break
            if delay > 0:
                yield Sleep(max(0.0, min(delay, left)))
            reply = yield from self._send("GET", url)
            watch.polls += 1
            backoff = min(backoff * 2, self.o.max_poll_interval)
            if isinstance(reply, _Fault):
                if watch.polls == 1 and watch.status is None:
                    watch.unresolvable = True
                    watch.problem = f"the status monitor {url} cannot be reached"
                    watch.problem_evidence = reply.evidence()
                    break
                transient += 1
                if transient > _MAX_TRANSIENT:
                    watch.problem = f"the status monitor stopped answering ({reply.reason})"
                    watch.problem_evidence = reply.evidence()
                    break
                delay = backoff
                continue
            watch.response = reply
            hint = self.retry_after.observe(reply)
            if reply.status_code in _TRANSIENT:
                transient += 1
                if transient > _MAX_TRANSIENT:
                    watch.problem = f"the status monitor kept answering HTTP {reply.status_code}"
                    watch.problem_evidence = _evidence(reply)
                    break
                delay = self._next_delay(hint, None, backoff)
                continue
            transient = 0
            try:
                status = self.dialect.interpret_status(reply, submission=submission)
            except (JobNotFoundError, JobExpiredError) as exc:
                if watch.status is None:
                    watch.unresolvable = True
                    watch.problem = (
                        f"the status monitor {url} answered HTTP {reply.status_code} "
                        f"({_reason(exc)})"
                    )
                else:
                    watch.problem = (
                        f"the job vanished (HTTP {reply.status_code}) before reaching a "
                        "terminal state"
                    )
                watch.problem_evidence = _evidence(reply)
                break
            except AsyncReplyError as exc:
                if watch.status is None and reply.status_code in (404, 405, 410):
                    watch.unresolvable = True
                    watch.problem = f"the status monitor {url} answered HTTP {reply.status_code}"
                else:
                    watch.unreadable = True
                    watch.problem = (
                        f"the {self.dialect.name} dialect cannot read it: {_reason(exc)}"
                    )
                    if self.document_failure is None:
                        self.document_failure = (
                            f"a status answer (HTTP {reply.status_code}) is not a status "
                            f"document the {self.dialect.name} dialect understands",
                            _evidence(reply, note=_reason(exc)),
                        )
                watch.problem_evidence = _evidence(reply)
                break
            self.documents += 1
            watch.status = status
            if track_progress:
                self.progress.observe(status, reply)
            if status.is_terminal:
                watch.terminal = True
                break
            delay = self._next_delay(hint, status, backoff)
        watch.elapsed = self.now() - started
        return watch

    # ------------------------------------------------------------------ the run
    def run(self) -> _Flow:
        started = self.now()
        submission = yield from self._check_submit()
        if submission is not None:
            yield from self._after_submit(submission)
        ordered = []
        for name, _ in CHECKS:
            result = self.results.get(name)
            if result is None:
                result = CheckResult(name, Outcome.SKIPPED, "not run: the submit check failed")
            ordered.append(result)
        return ContractReport(
            url=self.o.url,
            method=self.o.method,
            dialect=self.dialect.name,
            checks=tuple(ordered),
            duration=self.now() - started,
        )

    def _check_submit(self) -> Generator[Command, Any, Submission | None]:
        started = self.now()
        reply = yield from self._submit_request()
        if not isinstance(reply, _Fault):
            self.retry_after.observe(reply)
        submission, problem, evidence = self._interpret_submit(reply)
        if submission is None:
            self._fail("submit", problem or "the submission failed", evidence, started)
            return None
        self._pass("submit", f"202 Accepted; status monitor {submission.status_url}", started)
        return submission

    def _after_submit(self, submission: Submission) -> Generator[Command, Any, None]:
        assert submission.status_url is not None  # _interpret_submit guarantees it
        status_url = submission.status_url
        first_hint = submission.retry_after
        started = self.now()
        watch = yield from self._watch(
            status_url,
            submission,
            first_hint=first_hint,
            deadline=started + self.o.timeout,
            track_progress=True,
        )
        if watch.unresolvable:
            self._fail(
                "submit",
                watch.problem or "the status monitor cannot be resolved",
                watch.problem_evidence,
                started,
            )
            self._set(self.retry_after.result())
            return
        last = watch.status
        self._set(self.progress.result())
        self._terminal_result(watch, started)
        job_id = (last.id if last is not None else None) or submission.status.id
        cancel_url = submission.cancel_url or (last.cancel_url if last is not None else None)
        events_url = submission.events_url or (last.events_url if last is not None else None)

        yield from self._check_result(watch, submission)
        yield from self._check_sse(events_url, watch)
        yield from self._check_cancellation(cancel_url, watch)
        yield from self._check_idempotency()
        yield from self._check_unknown_id(status_url, job_id)
        # Last: it audits the answers of every check above.
        self._set(self.retry_after.result())
        self._set(self._documents_result())

    def _documents_result(self) -> CheckResult:
        if self.document_failure is not None:
            return CheckResult("status_documents", Outcome.FAIL, *self.document_failure)
        if not self.documents:
            return CheckResult(
                "status_documents", Outcome.SKIPPED, "no status answer could be obtained"
            )
        return CheckResult(
            "status_documents",
            Outcome.PASS,
            f"{self.documents} status answers understood by the {self.dialect.name} dialect",
        )

    def _terminal_result(self, watch: _Watch, started: float) -> None:
        if watch.terminal and watch.status is not None:
            self._pass(
                "terminal_state",
                f"{watch.status.state.value} after {watch.elapsed:.2f} s and {watch.polls} polls",
                started,
            )
            return
        if watch.unreadable:
            self._skip(
                "terminal_state", "not judged: a status answer could not be read (status_documents)"
            )
            return
        if watch.problem is not None:
            self._fail("terminal_state", watch.problem, watch.problem_evidence, started)
            return
        state = watch.status.state.value if watch.status is not None else "unknown"
        evidence = (
            _evidence(watch.response, note=f"last state {state}")
            if watch.response is not None
            else None
        )
        self._fail(
            "terminal_state",
            f"no terminal state within {self.o.timeout:g} s ({watch.polls} polls; last state "
            f"{state})",
            evidence,
            started,
        )

    def _check_result(self, watch: _Watch, submission: Submission) -> Generator[Command, Any, None]:
        status = watch.status
        if not watch.terminal or status is None:
            self._skip("result", "not judged: the job did not reach a terminal state")
            return
        if status.state is not JobState.COMPLETED:
            self._skip("result", f"the job ended {status.state.value}: no result to retrieve")
            return
        url = status.result_url or submission.final_url
        if url is None:
            if status.has_result:
                self._pass(
                    "result",
                    f"result delivered inline in the status answer (HTTP {status.http_status})",
                )
            else:
                self._skip("result", "the completed job offers no result (no URL, no body)")
            return
        started = self.now()
        via = "303 See Other to " if status.http_status == 303 else "result URL "
        for _ in range(_MAX_RESULT_REDIRECTS + 1):
            reply = yield from self._send("GET", url, stream=True)
            if isinstance(reply, _Fault):
                self._fail(
                    "result", f"the result at {url} cannot be fetched", reply.evidence(), started
                )
                return
            if 200 <= reply.status_code < 300:
                yield CloseStream()
                shown = reply.content_type or "no Content-Type"
                self._pass(
                    "result",
                    f"{via}{url} answered HTTP {reply.status_code} ({shown})",
                    started,
                )
                return
            location = _header(reply, "Location")
            if 300 <= reply.status_code < 400 and location is not None:
                yield CloseStream()
                target = resolve_url(reply.url, location)
                if target is None:
                    self._fail(
                        "result",
                        "the result's redirect has an unusable Location",
                        _evidence(reply, header=f"Location: {location}"),
                        started,
                    )
                    return
                url = target
                continue
            body = yield from self._read_excerpt()
            evidence = Evidence(
                method="GET", url=url, status_code=reply.status_code, body=excerpt(body) or None
            )
            self._fail(
                "result",
                f"the result at {url} answered HTTP {reply.status_code}, expected 2xx",
                evidence,
                started,
            )
            return
        self._fail(
            "result",
            f"more than {_MAX_RESULT_REDIRECTS} redirects to the result",
            Evidence(url=url),
            started,
        )

    # ------------------------------------------------------------------ SSE
    def _check_sse(self, events_url: str | None, watch: _Watch) -> Generator[Command, Any, None]:
        if events_url is None:
            self._skip("sse", "the server offers no event stream")
            return
        started = self.now()
        expect_terminal = watch.terminal
        window = self.o.timeout if expect_terminal else min(self.o.timeout, _SSE_PROBE)
        deadline = started + window
        reply = yield from self._send(
            "GET",
            events_url,
            headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
            stream=True,
            read_timeout=window,
        )
        if isinstance(reply, _Fault):
            self._fail("sse", "the event stream cannot be opened", reply.evidence(), started)
            return
        content_type = _header(reply, "Content-Type")
        if reply.status_code != 200 or reply.content_type != "text/event-stream":
            body = yield from self._read_excerpt()
            evidence = Evidence(
                method="GET",
                url=reply.url,
                status_code=reply.status_code,
                header=f"Content-Type: {content_type}",
                body=excerpt(body) or None,
            )
            if reply.status_code != 200:
                summary = f"the event stream answered HTTP {reply.status_code}, expected 200"
            else:
                summary = (
                    f"the event stream's Content-Type is {content_type!r}, expected "
                    "text/event-stream"
                )
            self._fail("sse", summary, evidence, started)
            return
        decoder = SSEDecoder(max_buffer=_SSE_MAX_BUFFER)
        count = 0
        ids: set[str] = set()
        terminal: JobStatus | None = None
        problem: tuple[str, Evidence] | None = None
        ended = False
        while terminal is None and problem is None and self.now() < deadline:
            try:
                chunk: str | None = yield ReadChunk()
            except TransportError:
                break  # silence until the window closed, or a broken stream
            if chunk is None:
                ended = True
                break
            try:
                events = decoder.feed(chunk)
            except AsyncReplyError as exc:
                problem = (f"the event stream is malformed: {exc}", Evidence(url=reply.url))
                break
            for event in events:
                count += 1
                shown = Evidence(
                    method="GET",
                    url=reply.url,
                    status_code=200,
                    body=excerpt(f"id: {event.id}\nevent: {event.event}\ndata: {event.data}"),
                )
                if not event.id or event.id in ids:
                    problem = (f"event #{count} ({event.event!r}) has no id of its own", shown)
                    break
                ids.add(event.id)
                try:
                    status = self.dialect.interpret_event(event.event, event.data, url=reply.url)
                except AsyncReplyError as exc:
                    problem = (
                        f"event #{count} ({event.event!r}) cannot be read: {_reason(exc)}",
                        shown,
                    )
                    break
                if status is not None and status.is_terminal:
                    terminal = status
                    break
        yield CloseStream()
        if problem is not None:
            self._fail("sse", problem[0], problem[1], started)
            return
        where = Evidence(
            method="GET", url=reply.url, status_code=200, header=f"Content-Type: {content_type}"
        )
        if terminal is not None:
            self._pass(
                "sse",
                f"{_plural(count, 'event')} with ids, ending with a terminal event "
                f"({terminal.state.value})",
                started,
            )
        elif not expect_terminal:
            if count:
                self._pass(
                    "sse",
                    f"{_plural(count, 'well-formed event')} with ids (the job did not finish, "
                    "so no terminal event was expected)",
                    started,
                )
            else:
                self._fail("sse", f"no event within {window:g} s", where, started)
        else:
            why = "the stream ended" if ended else f"none within {window:g} s"
            self._fail(
                "sse",
                f"no terminal event for the finished job ({why}; {_plural(count, 'event')})",
                where,
                started,
            )

    # ------------------------------------------------------------------ cancellation
    def _check_cancellation(
        self, cancel_url: str | None, watch: _Watch
    ) -> Generator[Command, Any, None]:
        name = "cancellation"
        if cancel_url is None:
            self._skip(name, "the server offers no cancel URL")
            return
        started = self.now()
        notes: list[str] = []
        if watch.terminal:
            reply = yield from self._send("DELETE", cancel_url)
            if isinstance(reply, _Fault):
                self._fail(
                    name, "cancelling the finished job got no answer", reply.evidence(), started
                )
                return
            if reply.status_code != 409:
                self._fail(
                    name,
                    f"cancelling a finished job answered HTTP {reply.status_code}, expected 409",
                    _evidence(reply),
                    started,
                )
                return
            notes.append("a finished job: 409")
        reply = yield from self._submit_request()
        if not isinstance(reply, _Fault):
            self.retry_after.observe(reply)
        second, problem, evidence = self._interpret_submit(reply, what="a second submission")
        if second is None:
            self._fail(name, problem or "the second submission failed", evidence, started)
            return
        url = second.cancel_url
        if url is None:
            shown = reply.evidence() if isinstance(reply, _Fault) else _evidence(reply)
            self._fail(name, "the second job offers no cancel URL", shown, started)
            return
        reply = yield from self._send("DELETE", url)
        if isinstance(reply, _Fault):
            self._fail(name, "the cancel request got no answer", reply.evidence(), started)
            return
        if reply.status_code == 409:
            # The job may have finished before the DELETE arrived: then 409 is right.
            assert second.status_url is not None
            after = yield from self._watch(
                second.status_url,
                second,
                first_hint=0.0,
                deadline=self.now() + self.o.timeout,
                track_progress=False,
            )
            if (
                after.terminal
                and after.status is not None
                and (after.status.state is not JobState.CANCELLED)
            ):
                notes.append(
                    f"the second job finished ({after.status.state.value}) before it could be "
                    "cancelled: 409"
                )
                self._pass(name, "; ".join(notes), started)
                return
            self._fail(name, "cancelling a running job answered 409", _evidence(reply), started)
            return
        if not 200 <= reply.status_code < 300:
            self._fail(
                name,
                f"cancelling a running job answered HTTP {reply.status_code}, expected 200",
                _evidence(reply),
                started,
            )
            return
        code = reply.status_code
        assert second.status_url is not None
        after = yield from self._watch(
            second.status_url,
            second,
            first_hint=0.0,
            deadline=self.now() + self.o.timeout,
            track_progress=False,
        )
        if after.unreadable:
            self._skip(name, "not judged: a status answer could not be read (status_documents)")
            return
        if not after.terminal or after.status is None:
            why = after.problem or f"no terminal state within {self.o.timeout:g} s"
            ev = after.problem_evidence or (
                _evidence(after.response) if after.response is not None else None
            )
            self._fail(name, f"after the cancel (HTTP {code}): {why}", ev, started)
            return
        if after.status.state is not JobState.CANCELLED:
            self._fail(
                name,
                f"after the cancel (HTTP {code}) the job ended {after.status.state.value}, "
                "not cancelled",
                _evidence(after.response) if after.response is not None else None,
                started,
            )
            return
        again = yield from self._send("DELETE", url)
        if isinstance(again, _Fault):
            self._fail(name, "the second cancel request got no answer", again.evidence(), started)
            return
        if again.status_code != 409:
            self._fail(
                name,
                f"cancelling an already cancelled job answered HTTP {again.status_code}, "
                "expected 409",
                _evidence(again),
                started,
            )
            return
        notes.insert(0, f"cancel: {code}, then cancelled; again: 409")
        self._pass(name, "; ".join(notes), started)

    # ------------------------------------------------------------------ idempotency
    def _check_idempotency(self) -> Generator[Command, Any, None]:
        name = "idempotency"
        if not self.o.idempotency:
            self._skip(name, "not requested (idempotency=False)")
            return
        started = self.now()
        key = f"contract-check-{uuid.uuid4()}"
        first_reply = yield from self._submit_request(key=key)
        if not isinstance(first_reply, _Fault):
            self.retry_after.observe(first_reply)
        first, problem, evidence = self._interpret_submit(
            first_reply, what="a submission with an Idempotency-Key"
        )
        if first is None:
            self._fail(name, problem or "the keyed submission failed", evidence, started)
            return
        assert isinstance(first_reply, HttpResponse)
        replay = yield from self._submit_request(key=key)
        if isinstance(replay, _Fault):
            self._fail(name, "the resubmission got no answer", replay.evidence(), started)
            return
        if not 200 <= replay.status_code < 400:
            self._fail(
                name,
                f"the resubmission with the same key and body answered HTTP "
                f"{replay.status_code}, expected a replay of the 202",
                _evidence(replay, header=f"Idempotency-Key: {key}"),
                started,
            )
            return
        same, shown = self._same_job(first_reply, first, replay)
        if not same:
            self._fail(
                name,
                f"the resubmission with the same Idempotency-Key created a second job ({shown})",
                _evidence(replay, header=f"Idempotency-Key: {key}"),
                started,
            )
            return
        other = self.o.alternate_content or _alternate_body(self.o.content)
        reused = yield from self._submit_request(key=key, content=other)
        if isinstance(reused, _Fault):
            self._fail(
                name,
                "the submission with a different body got no answer",
                reused.evidence(),
                started,
            )
            return
        if not 400 <= reused.status_code < 500:
            self._fail(
                name,
                f"the same Idempotency-Key with a different body answered HTTP "
                f"{reused.status_code}, expected 4xx",
                _evidence(reused, header=f"Idempotency-Key: {key}"),
                started,
            )
            return
        self._pass(
            name,
            f"replay: HTTP {replay.status_code}, same job ({shown}); different body: "
            f"HTTP {reused.status_code}",
            started,
        )

    def _same_job(
        self, first_reply: HttpResponse, first: Submission, replay: HttpResponse
    ) -> tuple[bool, str]:
        """Whether ``replay`` designates the job ``first`` started, and how it looks."""
        if replay.status_code == 202:
            try:
                again = self.dialect.interpret_submit(replay)
            except AsyncReplyError:
                again = None
            if again is not None:
                if first.status.id and again.status.id:
                    return again.status.id == first.status.id, (
                        f"job {first.status.id} / {again.status.id}"
                    )
                return again.status_url == first.status_url, (
                    f"monitor {first.status_url} / {again.status_url}"
                )
        a, b = _header(first_reply, "Location"), _header(replay, "Location")
        if b is not None:
            same = resolve_url(replay.url, b) == resolve_url(first_reply.url, a)
            return same, f"Location {a} / {b}"
        body_a, body_b = first_reply.json(), replay.json()
        if isinstance(body_a, dict) and isinstance(body_b, dict) and body_a.get("jobId"):
            return body_a.get("jobId") == body_b.get("jobId"), (
                f"job {body_a.get('jobId')} / {body_b.get('jobId')}"
            )
        return False, "the replay names no job"

    # ------------------------------------------------------------------ unknown id
    def _check_unknown_id(
        self, status_url: str, job_id: str | None
    ) -> Generator[Command, Any, None]:
        name = "unknown_id"
        if not job_id:
            self._skip(name, "the job id is unknown, so no unknown id can be derived")
            return
        url = _replace_id(status_url, job_id)
        if url is None:
            self._skip(name, f"the job id {job_id!r} is not part of the status URL")
            return
        started = self.now()
        reply = yield from self._send("GET", url)
        if isinstance(reply, _Fault):
            self._fail(name, "the unknown id's URL got no answer", reply.evidence(), started)
            return
        if reply.status_code not in (404, 410):
            self._fail(
                name,
                f"an unknown job id answered HTTP {reply.status_code}, expected 404 or 410",
                _evidence(reply),
                started,
            )
            return
        self._pass(name, f"{url} answered HTTP {reply.status_code}", started)


# --------------------------------------------------------------------------------------------
# Public entry points and their drivers (the only code written twice).

_DIALECTS: dict[str, Callable[[], Dialect]] = {
    "auto": AutoDialect,
    "reference": ReferenceDialect,
    "status-code": StatusCodeDialect,
}


def _dialect(dialect: Dialect | str | None) -> Dialect:
    if dialect is None:
        return AutoDialect()
    if isinstance(dialect, str):
        factory = _DIALECTS.get(dialect.strip().lower())
        if factory is None:
            raise ValueError(
                f"unknown dialect {dialect!r}; expected one of {', '.join(_DIALECTS)} or a "
                "Dialect object"
            )
        return factory()
    return dialect


_OPTION_NAMES = (
    "json",
    "content",
    "method",
    "headers",
    "timeout",
    "request_timeout",
    "min_poll_interval",
    "max_poll_interval",
    "max_retry_after",
    "idempotency",
    "alternate_content",
)


def _option_args(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`_options`, picked from ``check``'s or ``acheck``'s
    own arguments (their signatures are the same apart from ``http_client``)."""
    return {name: arguments[name] for name in _OPTION_NAMES}


def _options(
    url: str,
    *,
    json: Any,
    content: bytes | str | None,
    method: str,
    headers: Mapping[str, str] | None,
    timeout: float,
    request_timeout: float,
    min_poll_interval: float,
    max_poll_interval: float,
    max_retry_after: float,
    idempotency: bool,
    alternate_content: bytes | str | None,
) -> _Options:
    if json is not None and content is not None:
        raise ValueError("pass json= or content=, not both")
    for label, value in (
        ("timeout", timeout),
        ("request_timeout", request_timeout),
        ("max_retry_after", max_retry_after),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{label} must be a positive number of seconds, not {value!r}")
    if not 0 <= min_poll_interval <= max_poll_interval or not math.isfinite(max_poll_interval):
        raise ValueError("poll intervals must satisfy 0 <= min_poll_interval <= max_poll_interval")
    if not is_http_url(url):
        raise ValueError(f"the URL must be an absolute http(s) URL, not {url!r}")
    merged = httpx.Headers(headers)
    body: bytes | None
    if json is not None:
        body = jsonlib.dumps(json).encode()
        merged.setdefault("Content-Type", _JSON)
    elif isinstance(content, str):
        body = content.encode()
    else:
        body = content
    other = alternate_content.encode() if isinstance(alternate_content, str) else alternate_content
    return _Options(
        url=str(httpx.URL(url)),
        method=method.upper(),
        content=body,
        alternate_content=other,
        headers=merged,
        timeout=float(timeout),
        request_timeout=float(request_timeout),
        min_poll_interval=float(min_poll_interval),
        max_poll_interval=float(max_poll_interval),
        max_retry_after=float(max_retry_after),
        idempotency=idempotency,
    )


def _transport_error(exc: httpx.HTTPError, request: httpx.Request | None) -> TransportError:
    url = str(request.url) if request is not None else None
    kind = type(exc).__name__
    return TransportError(f"{kind}: {exc}" if str(exc) else kind, url=url)


def check(
    url: str,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    dialect: Dialect | str | None = None,
    idempotency: bool = False,
    http_client: httpx.Client | None = None,
    request_timeout: float = 10.0,
    min_poll_interval: float = 0.05,
    max_poll_interval: float = 1.0,
    max_retry_after: float = 3600.0,
    alternate_content: bytes | str | None = None,
) -> ContractReport:
    """Submit a job to ``url`` and check, check by check, that the server follows the
    asynchronous request-reply pattern.

    The run submits the job and polls it to a terminal state (honouring ``Retry-After``,
    bounded by ``min_poll_interval``/``max_poll_interval``), fetches the result, reads the
    event stream, submits a second job to cancel it (when a cancel URL is offered), submits
    three keyed requests when ``idempotency`` is true, and asks for an unknown job id. See
    :data:`CHECKS` for the list. Nothing raises for a misbehaving server: every problem is a
    failed check with its evidence.

    Args:
        url: the absolute submission URL (``http://host/jobs``).
        json: the job to submit, sent as JSON.
        content: the raw body to submit instead (set ``Content-Type`` in ``headers``).
        method: the submission method.
        headers: headers for every request to the submission's origin (e.g.
            ``Authorization``); never sent to another origin.
        timeout: seconds each wait (the job's terminal state, the cancelled job, the event
            stream) may take.
        dialect: how to read the server's answers: a ``Dialect``, or ``"auto"`` (default),
            ``"reference"`` or ``"status-code"``.
        idempotency: also check ``Idempotency-Key`` replays (submits up to three more jobs'
            requests).
        http_client: your own ``httpx.Client`` (proxies, TLS, transports); redirects are not
            followed whatever its setting. Not closed.
        request_timeout: seconds one request may take.
        min_poll_interval: the least delay between two polls.
        max_poll_interval: the longest delay between two polls (``Retry-After`` is honoured
            up to this).
        max_retry_after: a ``Retry-After`` above this many seconds is implausible (a failure).
        alternate_content: the "different body" of the idempotency check (by default the JSON
            body with one more member).

    Returns:
        The report; ``report.passed`` is false when any check failed.

    Raises:
        ValueError: a bad argument (both ``json`` and ``content``, a relative URL, an unknown
            dialect name, a non-positive timeout).

    Example:
        >>> report = check("http://127.0.0.1:8080/jobs", json={"type": "echo", "input": {}})
        ... # doctest: +SKIP
        >>> [c.name for c in report.failures]  # doctest: +SKIP
        []
    """
    opts = _options(url, **_option_args(locals()))
    flow = _Checker(opts, _dialect(dialect), time.monotonic).run()
    if http_client is not None:
        return _drive(flow, http_client, opts.url)
    with httpx.Client(timeout=request_timeout, follow_redirects=False) as client:
        return _drive(flow, client, opts.url)


async def acheck(
    url: str,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 (bounds each wait, not the call)
    dialect: Dialect | str | None = None,
    idempotency: bool = False,
    http_client: httpx.AsyncClient | None = None,
    request_timeout: float = 10.0,
    min_poll_interval: float = 0.05,
    max_poll_interval: float = 1.0,
    max_retry_after: float = 3600.0,
    alternate_content: bytes | str | None = None,
) -> ContractReport:
    """The asynchronous form of :func:`check` (same arguments; ``http_client`` is an
    ``httpx.AsyncClient``).

    Example:
        >>> report = await acheck(url, json={"type": "echo", "input": {}})  # doctest: +SKIP
    """
    opts = _options(url, **_option_args(locals()))
    flow = _Checker(opts, _dialect(dialect), time.monotonic).run()
    if http_client is not None:
        return await _adrive(flow, http_client, opts.url)
    async with httpx.AsyncClient(timeout=request_timeout, follow_redirects=False) as client:
        return await _adrive(flow, client, opts.url)


def _prepare(
    client: httpx.Client | httpx.AsyncClient, request: httpx.Request, origin: str
) -> tuple[httpx.Request, Any]:
    """The request to send and the ``auth`` argument of ``send``.

    To the submission's origin the request goes through the client's ``build_request`` (its
    default headers and cookies) with the client's auth. Anywhere else it goes as the core
    built it, without the client's headers, cookies or auth: credentials never leave the
    origin they were given for.
    """
    if not same_origin(request.url, origin):
        return request, None
    rebuilt = client.build_request(
        request.method,
        request.url,
        headers=request.headers,
        content=request.content,
        extensions=request.extensions,
    )
    return rebuilt, httpx.USE_CLIENT_DEFAULT


def _drive(flow: _Flow, client: httpx.Client, origin: str) -> ContractReport:
    """Run ``flow`` with a synchronous client."""
    reply: Any = None
    error: TransportError | None = None
    stream: httpx.Response | None = None
    chunks: Iterator[str] | None = None
    try:
        while True:
            try:
                command = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                report: ContractReport = stop.value
                return report
            reply, error = None, None
            request = command.request if isinstance(command, Send) else None
            try:
                if isinstance(command, Send):
                    if stream is not None:
                        stream.close()
                        stream = chunks = None
                    prepared, auth = _prepare(client, command.request, origin)
                    response = client.send(
                        prepared, stream=command.stream, auth=auth, follow_redirects=False
                    )
                    if command.stream:
                        stream, chunks = response, response.iter_text()
                    reply = HttpResponse.from_httpx(response, read=not command.stream)
                elif isinstance(command, ReadChunk):
                    reply = next(chunks, None) if chunks is not None else None
                elif isinstance(command, CloseStream):
                    if stream is not None:
                        stream.close()
                    stream = chunks = None
                elif isinstance(command, Sleep):
                    time.sleep(command.seconds)
            except httpx.HTTPError as exc:
                error = _transport_error(exc, request)
    finally:
        if stream is not None:
            stream.close()
        flow.close()


async def _adrive(flow: _Flow, client: httpx.AsyncClient, origin: str) -> ContractReport:
    """Run ``flow`` with an asynchronous client."""
    reply: Any = None
    error: TransportError | None = None
    stream: httpx.Response | None = None
    chunks: Any = None
    try:
        while True:
            try:
                command = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                report: ContractReport = stop.value
                return report
            reply, error = None, None
            request = command.request if isinstance(command, Send) else None
            try:
                if isinstance(command, Send):
                    if stream is not None:
                        await stream.aclose()
                        stream = chunks = None
                    prepared, auth = _prepare(client, command.request, origin)
                    response = await client.send(
                        prepared, stream=command.stream, auth=auth, follow_redirects=False
                    )
                    if command.stream:
                        stream, chunks = response, response.aiter_text()
                    reply = HttpResponse.from_httpx(response, read=not command.stream)
                elif isinstance(command, ReadChunk):
                    reply = await anext(chunks, None) if chunks is not None else None
                elif isinstance(command, CloseStream):
                    if stream is not None:
                        await stream.aclose()
                    stream = chunks = None
                elif isinstance(command, Sleep):
                    await anyio.sleep(command.seconds)
            except httpx.HTTPError as exc:
                error = _transport_error(exc, request)
    finally:
        if stream is not None:
            await stream.aclose()
        flow.close()
