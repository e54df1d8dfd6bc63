"""Transient faults, retried by a pure sub-flow of the flows: which answers and errors are worth
another attempt (:func:`classify`), and the attempt loop itself (:func:`attempts`), which asks
tenacity what to do (its step API: ``DoAttempt`` / ``DoSleep`` / the outcome) and yields the
``Sleep`` itself.

Each answer is classified once, here, the dialect first: a 500 it reads as a failed job (or a
409 as a cancelled one) is the server's answer, not a fault. Waits are ``Sleep`` commands,
bounded by the caller's deadline; the time (monotonic and wall) and the jitter's random
source come from the caller's configuration, never from globals. The policy and its
tenacity strategies are in ``_retry_policy``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeAlias

import httpx
import tenacity

from . import _log
from ._commands import CloseStream, Command, ReadBytes, Send, Sleep
from ._errors import TransportError
from ._http import HttpResponse
from ._retry_policy import (
    GIVE_UP,
    Answer,
    FlowCallState,
    RetryEvent,
    RetryPolicy,
    Verdict,
    backoff,
    is_testing,
    is_transient_exception,
    retry_if_transient,
    retrying,
    set_testing,
)
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
    "retry_if_transient",
    "set_testing",
]

#: Statuses that say "try again later" whatever the dialect (RFC 6585 §4, RFC 9110 §15.6).
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


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


def attempts(
    ctx: RetryContext,
    make: Callable[[], Send],
    *,
    retry: bool = True,
    deadline: float | None = None,
) -> Generator[Command, Any, Answer]:
    """Send the request ``make`` builds until it gets an answer (a sub-flow).

    ``make`` is called for EACH attempt, so per-attempt headers and credentials are fresh.
    With ``retry`` and a policy, tenacity decides (``BaseRetrying.iter``): ``DoAttempt``
    sends, ``DoSleep(seconds)`` becomes a ``Sleep`` command, anything else ends the exchange;
    each answer is given to it as a result (an :class:`Answer`), each httpx exception as an
    exception, on the flow's clock. No retry waits past ``deadline`` (on ``ctx.now``'s
    clock): when the next try would come after it, the fault is final. A streamed answer
    that may be transient is read whole first (its body decides). Without ``retry`` there is
    one attempt; with ``ctx.retry`` ``None`` (retries off) any answer is returned as it is.

    Raises:
        TransportError: the last attempt ended with a fault (or with a non-transient
            ``httpx.TransportError``, which is never retried).
    """
    policy = ctx.retry
    started = ctx.now()
    state: FlowCallState | None = None  # made at the first fault (or for a custom retry=)
    while True:
        command = make()
        # One try, inline (a long poll keeps this frame alive while the server holds it):
        # its answer, or httpx's exception.
        outcome: Answer | httpx.TransportError
        try:
            response: HttpResponse = yield command
            if policy is not None and command.stream and may_be_transient(response.status_code):
                response = yield from _read_whole(response)  # its body decides
        except httpx.TransportError as exc:
            outcome = exc
            seen: HttpResponse | httpx.TransportError = exc
        else:
            outcome = Answer(response, classify(response, ctx.dialect))
            seen = response
        if ctx.record is not None:
            ctx.record(command.request, seen)
        if state is None:
            if isinstance(outcome, Answer) and (
                policy is None
                or (
                    outcome.verdict is not Verdict.TRANSIENT and (not retry or policy.retry is None)
                )
            ):
                # Retries off: every answer is the caller's. Else an answer that is no fault,
                # which the default retry= never retries: nothing to ask tenacity (most
                # exchanges end here, without the cost of its state).
                return outcome
            if policy is None or not retry:  # one attempt: a fault is final
                fault = outcome.response if isinstance(outcome, Answer) else outcome
                raise exhausted(fault, command.request, 1)
            state = FlowCallState(retrying(policy, _reporter(policy)), ctx, policy, deadline)
            state.start_time = started
            state.retry_object.begin()  # its statistics, as tenacity's own loop starts
            state.retry_object.iter(state)  # DoAttempt: the attempt just made
        state.request = command.request
        _record(state, outcome)
        action = yield from _next_action(state, command.request)
        if action is not None:
            return _final(state, action, command.request)


def _next_action(
    state: FlowCallState, request: httpx.Request
) -> Generator[Command, Any, object | None]:
    """Ask tenacity what follows an attempt: ``None`` for another attempt (after the
    ``Sleep`` of its ``DoSleep``), else what ends the exchange (see :func:`_final`)."""
    while True:
        try:
            action: object = state.retry_object.iter(state)
        except httpx.TransportError as exc:
            # Not to be retried: tenacity re-raises the attempt's own exception.
            if state.outcome is None or state.outcome.exception() is not exc:
                raise
            raise exhausted(exc, request, state.attempt_number) from exc
        if isinstance(action, tenacity.DoAttempt):
            return None
        if not isinstance(action, tenacity.DoSleep):
            return action
        state.prepare_for_next_attempt()
        if float(action) > 0:
            yield Sleep(float(action))


def _record(state: FlowCallState, outcome: Answer | httpx.TransportError) -> None:
    """Give tenacity an attempt's outcome: an answer as a result, httpx's exception as one."""
    if isinstance(outcome, Answer):
        state.set_result(outcome)
    else:
        state.set_exception((type(outcome), outcome, outcome.__traceback__))


def _final(state: FlowCallState, action: object, request: httpx.Request) -> Answer:
    """What an exchange ends with once tenacity stops retrying (``GIVE_UP``) or declines to
    retry (the answer itself): an answer that is no fault, else the ``TransportError``."""
    last = action
    outcome = state.outcome
    if action is GIVE_UP and outcome is not None:
        last = outcome.exception() if outcome.failed else outcome.result()
    if isinstance(last, Answer) and last.verdict is not Verdict.TRANSIENT:
        return last
    fault = last.response if isinstance(last, Answer) else last
    if not isinstance(fault, HttpResponse | BaseException):
        raise TypeError(f"the retry policy ended with {fault!r}, not an answer")
    raise exhausted(fault, request, state.attempt_number)


def _reporter(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], None]:
    """tenacity's ``before_sleep`` for ``policy``: :func:`_before_sleep`."""

    def report(retry_state: tenacity.RetryCallState) -> None:
        if isinstance(retry_state, FlowCallState) and retry_state.request is not None:
            _before_sleep(policy, retry_state, retry_state.request)

    return report


def _before_sleep(policy: RetryPolicy, state: FlowCallState, request: httpx.Request) -> None:
    """Report a retry about to wait: a DEBUG line on ``asyncreply.retry``, an event on the
    operation's span, and the policy's ``before_sleep`` hook."""
    hook = policy.before_sleep
    report = _log.active(_log.RETRY)
    if hook is None and not report:
        return
    outcome = state.outcome
    if outcome is None:  # (tenacity calls it after an outcome, always)
        return
    failure = outcome.exception() if outcome.failed else None
    code = None if failure is not None else outcome.result().status_code
    cause = f"HTTP {code}" if code is not None else type(failure).__name__
    attempt = state.attempt_number
    delay = state.next_action.sleep if state.next_action is not None else state.delay()
    retry_after = failure is None and state.hint() is not None
    if report:
        reason = "retry-after" if retry_after else "backoff"
        limit = policy.attempts if policy.stop is None else None
        of = f" of {limit}" if limit is not None and attempt <= limit else ""
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
            "retrying %s %s after attempt %d%s failed (%s) in %.3f s (%s)",
            request.method,
            _log.redact_url(request.url),
            attempt,
            of,
            cause,
            delay,
            reason,
        )
    if hook is not None:
        hook(
            RetryEvent(
                state,
                attempt=attempt,
                delay=delay,
                cause=cause,
                method=request.method,
                url=str(request.url),
                status_code=code,
                exception=failure,
                retry_after=retry_after,
            )
        )


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
    exception) ended the last attempt at ``request``: with the request, and the
    ``Idempotency-Key`` it carried (a submission sent again with it is the same job)."""
    if isinstance(error, HttpResponse):
        what = f"HTTP {error.status_code}"
    else:
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    plural = "attempt" if attempts == 1 else "attempts"
    error_out = TransportError(
        f"{request.method} {request.url} failed after {attempts} {plural} ({what})",
        url=str(request.url),
        attempts=attempts,
        request=request,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    if isinstance(error, BaseException):
        error_out.__cause__ = error
    return error_out
