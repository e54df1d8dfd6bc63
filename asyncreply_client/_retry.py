"""Transient faults: which answers and errors are worth another attempt, and how long to wait.

The decision is pure (:func:`is_transient_response`, :func:`is_transient_exception`,
:func:`backoff`); the drivers feed it to tenacity, imported here privately as stamina does:
:func:`retrying_kwargs` is the ONE set of arguments given to both ``tenacity.Retrying`` and
``tenacity.AsyncRetrying``, and sleeps go through the client's clock.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from ._dialects import Dialect, is_job_failure_response
from ._errors import TransportError
from ._headers import parse_retry_after
from ._http import HttpResponse

__all__ = [
    "RetryPolicy",
    "TransientAnswer",
    "backoff",
    "exhausted",
    "is_transient_exception",
    "is_testing",
    "is_transient_response",
    "may_be_transient",
    "retrying_kwargs",
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
class RetryPolicy:
    """How transient faults are retried: up to ``attempts`` tries in all, waiting a full-jitter
    exponential backoff (``initial * factor**n``, capped at ``cap``) between them, or the
    server's ``Retry-After`` when it gives one (capped at ``max_retry_after``).

    Example:
        >>> RetryPolicy(attempts=1)  # never retry
        RetryPolicy(attempts=1, initial=0.1, factor=2.0, cap=5.0, jitter=True, max_retry_after=30.0)
    """

    attempts: int = 4
    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: bool = True
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError("initial, cap and max_retry_after must not be negative")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")


class TransientAnswer(Exception):
    """Raised inside an attempt for a transient answer, so that tenacity retries it."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"HTTP {response.status_code} from {response.url}")
        self.response = response


def may_be_transient(status_code: int) -> bool:
    """Whether a status needs a closer look (and its body) to decide if it is transient."""
    return status_code in TRANSIENT_STATUSES or status_code == 500


def is_transient_response(response: HttpResponse, dialect: Dialect) -> bool:
    """Whether an answer is a transient fault worth retrying.

    429/502/503/504 always are. A 500 is, unless the dialect reads it as a job's state (the
    status-code dialect answers 500 for a failed job): then it is the answer, not a fault.
    """
    if response.status_code in TRANSIENT_STATUSES:
        return True
    if response.status_code != 500:
        return False
    return not is_job_failure_response(response, dialect=dialect)


def is_transient_exception(error: BaseException) -> bool:
    """Whether an exception raised by httpx is a network fault worth retrying."""
    if isinstance(error, TransientAnswer):
        return True
    return isinstance(
        error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def backoff(policy: RetryPolicy, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's ``retry_after`` wins when given (capped); otherwise full jitter over an
    exponential ceiling. Zero in testing mode.
    """
    if _testing:
        return 0.0
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.cap, policy.initial * policy.factor ** max(attempt - 1, 0))
    return random.uniform(0.0, ceiling) if policy.jitter else ceiling


class _Wait(tenacity.wait.wait_base):
    """tenacity wait strategy delegating to :func:`backoff`."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        retry_after: float | None = None
        outcome = retry_state.outcome
        error = None if outcome is None else outcome.exception()
        if isinstance(error, TransientAnswer):
            # An HTTP-date is measured from the response's Date header, else from wall time.
            response = error.response
            retry_after = parse_retry_after(response.headers, response.json(), now=time.time())
        return backoff(self.policy, retry_state.attempt_number, retry_after)


def retrying_kwargs(policy: RetryPolicy, *, retry: bool) -> dict[str, Any]:
    """The arguments of ``tenacity.Retrying`` and ``tenacity.AsyncRetrying`` (both), minus
    ``sleep`` which the driver takes from the clock. ``retry=False`` makes one attempt."""
    return {
        "stop": tenacity.stop_after_attempt(policy.attempts if retry else 1),
        "wait": _Wait(policy),
        "retry": tenacity.retry_if_exception(is_transient_exception),
        "reraise": True,
    }


def exhausted(error: BaseException, request: httpx.Request, attempts: int) -> TransportError:
    """The ``TransportError`` thrown into the flow once ``error`` ended the last attempt."""
    if isinstance(error, TransientAnswer):
        what = f"HTTP {error.response.status_code}"
    else:
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    plural = "attempt" if attempts == 1 else "attempts"
    return TransportError(
        f"{request.method} {request.url} failed after {attempts} {plural} ({what})",
        url=str(request.url),
        attempts=attempts,
    )
