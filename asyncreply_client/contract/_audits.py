"""What the checker observes and how it judges it: its options, the evidence of a failure,
the Retry-After and progress audits, and the small helpers of the checks (unknown ids,
alternate bodies)."""

from __future__ import annotations

import json as jsonlib
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .._errors import excerpt
from .._headers import parse_http_date
from .._http import HttpResponse
from .._models import JobStatus
from ._report import CheckResult, Evidence, audit_result


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
        return audit_result(
            "retry_after",
            self.failure,
            self.seen,
            nothing="the server sent no Retry-After header",
            passed=lambda: (
                f"{self.seen} Retry-After hints, all valid "
                f"({min(self.values):g}-{max(self.values):g} s)"
            ),
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
        return audit_result(
            "progress_monotonic",
            self.failure,
            self.values,
            nothing="the server reported no progress",
            passed=lambda: f"{self.values} progress reports, never decreasing",
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
