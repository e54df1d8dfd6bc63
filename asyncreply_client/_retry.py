"""Transient faults, retried by a pure sub-flow of the flows: which answers and errors are worth
another attempt, how long to wait, and the attempt loop itself (:func:`attempts`).

Each answer is classified once, here (:func:`classify`), the dialect first: a 500 it reads
as a failed job (or a 409 as a cancelled one) is the server's answer, not a fault. Waits are
``Sleep`` commands, bounded by the caller's deadline; the time (monotonic and wall) and the
jitter's random source come from the caller's configuration, never from globals.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import httpx

from . import _log
from ._commands import CloseStream, Command, ReadBytes, Send, Sleep
from ._errors import TransportError
from ._headers import parse_retry_after
from ._http import HttpResponse
from .dialects import Dialect, is_job_failure_response

__all__ = [
    "Answer",
    "Recorder",
    "RetryContext",
    "RetryEvent",
    "RetryPolicy",
    "Verdict",
    "attempts",
    "backoff",
    "classify",
    "exhausted",
    "is_testing",
    "is_transient_exception",
    "may_be_transient",
    "set_testing",
]

#: Statuses that say "try again later" whatever the dialect (RFC 6585 §4, RFC 9110 §15.6).
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})

_testing = False


def set_testing(enabled: bool) -> None:
    """Turn backoff off (``True``) or back on, for test suites: retries still happen, with no
    sleeping, so fault-injection tests run fast. Mirrors ``stamina.set_testing``; the public
    switch is :func:`asyncreply_client.testing.set_testing`."""
    global _testing
    _testing = enabled


def is_testing() -> bool:
    """Whether testing mode (no backoff) is on."""
    return _testing


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """A retry about to happen, as given to ``RetryPolicy(before_sleep=...)``.

    Attributes:
        attempt: the number of the attempt that failed (1-based).
        delay: seconds to wait before the next attempt.
        cause: what failed, in words: ``"HTTP 503"``, or the exception's class name.
        method: the request's method.
        url: the request's URL (as sent: it may hold query parameters you consider secret).
        status_code: the transient answer's status, or ``None`` for a network fault.
        exception: httpx's exception for a network fault, else ``None``.
        retry_after: whether ``delay`` is the server's ``Retry-After`` (else the backoff).
    """

    attempt: int
    delay: float
    cause: str
    method: str
    url: str
    status_code: int | None = None
    exception: BaseException | None = None
    retry_after: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient faults are retried: up to ``attempts`` tries in all, waiting a full-jitter
    exponential backoff (``initial * factor**n``, capped at ``cap``) between them, or the
    server's ``Retry-After`` when it gives one (capped at ``max_retry_after``).

    ``before_sleep``, when given, is called with a :class:`RetryEvent` before each wait for a
    retry (as tenacity's ``before_sleep`` and stamina's hooks, without exposing either): a plain
    function, run in the flow; an exception it raises ends the call.

    Example:
        >>> RetryPolicy(attempts=1)  # never retry
        RetryPolicy(attempts=1, initial=0.1, factor=2.0, cap=5.0, jitter=True, max_retry_after=30.0)
        >>> RetryPolicy(before_sleep=lambda e: print(e.cause, e.delay))  # doctest: +SKIP
    """

    attempts: int = 4
    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: bool = True
    max_retry_after: float = 30.0
    before_sleep: Callable[[RetryEvent], object] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError("initial, cap and max_retry_after must not be negative")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")


class Verdict(enum.Enum):
    """What one answer is, decided once by :func:`classify`."""

    ANSWER = "answer"
    """The server's answer: the caller reads it."""
    JOB_STATE = "job-state"
    """A 5xx or 409 that the dialect reads as the job's terminal state (failed, cancelled)."""
    TRANSIENT = "transient"
    """A fault worth another attempt (429, 502-504, a 500 that is no job's state)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer an exchange ended with, and its verdict (``TRANSIENT`` only when retries
    are off: then every answer is the caller's)."""

    response: HttpResponse
    verdict: Verdict


#: Sees every attempt: its request, and the answer or the exception it ended with.
Recorder: TypeAlias = Callable[[httpx.Request, "HttpResponse | BaseException"], None]


class RetryContext(Protocol):
    """What the retry sub-flow reads from its flow's configuration (``FlowConfig`` is one)."""

    @property
    def retry(self) -> RetryPolicy | None:
        """The retry policy; ``None``: retries off, every answer is returned as it is."""
        ...

    @property
    def record(self) -> Recorder | None:
        """Told of every attempt (the contract checker keeps them as evidence)."""
        ...

    @property
    def dialect(self) -> Dialect:
        """Reads a 5xx/409 as a job's state, or not."""
        ...

    @property
    def now(self) -> Callable[[], float]:
        """Monotonic seconds: the clock of deadlines."""
        ...

    @property
    def wall_now(self) -> Callable[[], float]:
        """Epoch seconds: measures an HTTP-date ``Retry-After`` sent without a ``Date``."""
        ...

    @property
    def random(self) -> Callable[[], float]:
        """A uniform random number in ``[0, 1)``: the backoff's jitter."""
        ...


def may_be_transient(status_code: int) -> bool:
    """Whether a status needs a closer look (and its body) to decide if it is transient."""
    return status_code in TRANSIENT_STATUSES or status_code == 500


def classify(response: HttpResponse, dialect: Dialect) -> Verdict:
    """What ``response`` is: the answer, a job's terminal state, or a transient fault.

    429/502/503/504 are always transient. A 409 or another 5xx is a job's state when the
    dialect reads it so (the status-code dialect answers 500 for a failed job, 409 for a
    cancelled one); otherwise a 500 is transient and the rest are answers.
    """
    code = response.status_code
    if code in TRANSIENT_STATUSES:
        return Verdict.TRANSIENT
    if code == 409 or code >= 500:
        if is_job_failure_response(response, dialect=dialect):
            return Verdict.JOB_STATE
        return Verdict.TRANSIENT if code == 500 else Verdict.ANSWER
    return Verdict.ANSWER


def is_transient_exception(error: BaseException) -> bool:
    """Whether an exception raised by httpx is a network fault worth retrying."""
    return isinstance(
        error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def backoff(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None = None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's ``retry_after`` wins when given (capped); otherwise full jitter over an
    exponential ceiling, drawn from ``rand`` (uniform in ``[0, 1)``). Zero in testing mode.
    """
    if _testing:
        return 0.0
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.cap, policy.initial * policy.factor ** max(attempt - 1, 0))
    return ceiling * rand() if policy.jitter else ceiling


def attempts(
    ctx: RetryContext,
    make: Callable[[], Send],
    *,
    retry: bool = True,
    deadline: float | None = None,
) -> Generator[Command, Any, Answer]:
    """Send the request ``make`` builds until it gets an answer (a sub-flow).

    ``make`` is called for EACH attempt, so per-attempt headers and credentials are fresh.
    A transient fault is retried (with ``retry``, up to ``ctx.retry.attempts`` tries in all)
    after :func:`backoff`, or the server's ``Retry-After``; never past ``deadline`` (on
    ``ctx.now``'s clock): when the next try would come after it, the fault is final. A
    streamed answer that may be transient is read whole first (its body decides). With
    ``ctx.retry`` ``None`` (retries off) there is one attempt and any answer is returned.

    Raises:
        TransportError: the last attempt ended with a fault (or with a non-transient
            ``httpx.TransportError``, which is never retried).
    """
    policy = ctx.retry
    limit = policy.attempts if retry and policy is not None else 1
    attempt = 0
    while True:
        attempt += 1
        command = make()
        # One try (inline: a wait keeps this frame alive while it polls): its answer, or
        # its fault (a transient answer, or httpx's exception).
        fault: HttpResponse | httpx.TransportError
        try:
            response: HttpResponse = yield command
            if policy is not None and command.stream and may_be_transient(response.status_code):
                response = yield from _read_whole(response)  # its body decides
        except httpx.TransportError as exc:
            fault = exc
        else:
            fault = response
        if ctx.record is not None:
            ctx.record(command.request, fault)
        if isinstance(fault, HttpResponse):
            verdict = classify(fault, ctx.dialect)
            if verdict is not Verdict.TRANSIENT or policy is None:
                return Answer(fault, verdict)
        if policy is None or attempt >= limit or not _worth_retrying(fault):
            raise exhausted(fault, command.request, attempt)
        retry_after = None
        if isinstance(fault, HttpResponse):
            retry_after = parse_retry_after(fault.headers, fault.json(), now=ctx.wall_now())
        delay = backoff(policy, attempt, retry_after, rand=ctx.random)
        if deadline is not None and delay >= deadline - ctx.now() and delay > 0:
            raise exhausted(fault, command.request, attempt)
        _before_sleep(policy, command.request, fault, attempt, limit, delay, retry_after)
        if delay > 0:
            yield Sleep(delay)


def _before_sleep(
    policy: RetryPolicy,
    request: httpx.Request,
    fault: HttpResponse | httpx.TransportError,
    attempt: int,
    limit: int,
    delay: float,
    retry_after: float | None,
) -> None:
    """Report a retry about to wait: a DEBUG line on ``asyncreply.retry``, an event on the
    operation's span, and the policy's ``before_sleep`` hook."""
    hook = policy.before_sleep
    report = _log.active(_log.RETRY)
    if hook is None and not report:
        return
    code = fault.status_code if isinstance(fault, HttpResponse) else None
    cause = f"HTTP {code}" if code is not None else type(fault).__name__
    if report:
        reason = "retry-after" if retry_after is not None else "backoff"
        _log.decision(
            _log.RETRY,
            "asyncreply.retry",
            {
                "asyncreply.attempt": attempt,
                "asyncreply.cause": cause,
                "asyncreply.delay": delay,
                "asyncreply.delay_reason": reason,
                "http.request.method": request.method,
                "http.response.status_code": code,
            },
            "retrying %s %s after attempt %d of %d failed (%s) in %.3f s (%s)",
            request.method,
            _log.redact_url(request.url),
            attempt,
            limit,
            cause,
            delay,
            reason,
        )
    if hook is not None:
        hook(
            RetryEvent(
                attempt=attempt,
                delay=delay,
                cause=cause,
                method=request.method,
                url=str(request.url),
                status_code=code,
                exception=None if isinstance(fault, HttpResponse) else fault,
                retry_after=retry_after is not None,
            )
        )


def _worth_retrying(fault: HttpResponse | httpx.TransportError) -> bool:
    return isinstance(fault, HttpResponse) or is_transient_exception(fault)


def _read_whole(response: HttpResponse) -> Generator[Command, Any, HttpResponse]:
    """Read and close the open stream of ``response``; return it with its body."""
    pieces: list[bytes] = []
    while (piece := (yield ReadBytes())) is not None:
        pieces.append(piece)
    # On a read fault the stream stays open: the driver closes it before its next send.
    yield CloseStream()
    return HttpResponse(
        response.status_code, response.headers, b"".join(pieces), response.url, response.method
    )


def exhausted(
    error: HttpResponse | BaseException, request: httpx.Request, attempts: int
) -> TransportError:
    """The ``TransportError`` a flow raises once ``error`` (a transient answer or httpx's
    exception) ended the last attempt at ``request``."""
    if isinstance(error, HttpResponse):
        what = f"HTTP {error.status_code}"
    else:
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    plural = "attempt" if attempts == 1 else "attempts"
    error_out = TransportError(
        f"{request.method} {request.url} failed after {attempts} {plural} ({what})",
        url=str(request.url),
        attempts=attempts,
    )
    if isinstance(error, BaseException):
        error_out.__cause__ = error
    return error_out
