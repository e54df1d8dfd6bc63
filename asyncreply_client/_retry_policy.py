"""The retry policy, in tenacity's words: :class:`RetryPolicy` names the defaults and takes
tenacity's own ``stop=`` / ``wait=`` / ``retry=`` / ``before_sleep=`` objects; the strategies
here (the server's ``Retry-After`` first, a refused connection's time budget, the wait's
deadline) and :class:`FlowCallState` adapt tenacity to the I/O-free retry sub-flow
(``_retry.attempts``), whose clock, wall clock and random source they read.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ._headers import parse_retry_after
from ._http import HttpResponse

if TYPE_CHECKING:
    from ._retry import RetryContext

__all__ = [
    "Answer",
    "FlowCallState",
    "RetryEvent",
    "RetryPolicy",
    "Verdict",
    "backoff",
    "is_testing",
    "is_transient_exception",
    "retry_if_transient",
    "set_testing",
]

#: Uncounted refused connections one exchange may make within ``connect_for`` (a frozen
#: clock or a zero backoff cannot make it spin for ever).
_MAX_REFUSED = 64

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


class Verdict(enum.Enum):
    """What one answer is, decided once by ``_retry.classify``."""

    ANSWER = "answer"
    """The server's answer: the caller reads it."""
    JOB_STATE = "job-state"
    """A 5xx or 409 that the dialect reads as the job's terminal state (failed, cancelled)."""
    TRANSIENT = "transient"
    """A fault worth another attempt (429, 502-504, a 500 that is no job's state)."""


@dataclass(frozen=True, slots=True, repr=False)
class Answer:
    """The answer an exchange ended with, and its verdict (``TRANSIENT`` only when retries
    are off: then every answer is the caller's). It is also the *result* tenacity's
    strategies see (``retry_if_result(lambda answer: answer.status_code == 404)``)."""

    response: HttpResponse
    verdict: Verdict

    @property
    def status_code(self) -> int:
        """The answer's HTTP status."""
        return self.response.status_code

    def __repr__(self) -> str:
        # Short, and without the URL (its query may hold secrets): tenacity's hooks log it.
        return f"Answer(HTTP {self.response.status_code}, {self.verdict.value})"

    @property
    def headers(self) -> httpx.Headers:
        """The answer's headers."""
        return self.response.headers


def is_transient_exception(error: BaseException) -> bool:
    """Whether an exception raised by httpx is a network fault worth retrying."""
    return isinstance(
        error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def _is_transient_answer(answer: object) -> bool:
    return isinstance(answer, Answer) and answer.verdict is Verdict.TRANSIENT


class _RetryIfTransient(tenacity.retry_any):
    """The default ``retry=`` strategy of :class:`RetryPolicy`: a network fault (a timeout,
    a refused or broken connection) or a transient answer (429, 502-504, a 500 that is no
    job's state), as tenacity's ``retry_if_exception`` | ``retry_if_result``.

    Combine it with tenacity's own strategies to retry more (or less)::

        RetryPolicy(retry=retry_if_transient | retry_if_result(lambda a: a.status_code == 404))

    A result is the exchange's answer (``.status_code``, ``.headers``, ``.verdict``), an
    exception httpx's.
    """

    def __init__(self) -> None:
        super().__init__(
            tenacity.retry_if_exception(is_transient_exception),
            tenacity.retry_if_result(_is_transient_answer),
        )

    def __repr__(self) -> str:
        return "retry_if_transient"


retry_if_transient = _RetryIfTransient()


class RetryEvent(tenacity.RetryCallState):
    """A retry about to happen, as given to ``RetryPolicy(before_sleep=...)``.

    It is also a snapshot of tenacity's ``RetryCallState`` at that moment (``attempt_number``,
    ``outcome``, ``next_action``, ``idle_for``...), so tenacity's own hooks work as they are:
    ``RetryPolicy(before_sleep=tenacity.before_sleep_log(logger, logging.INFO))``.

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

    def __init__(
        self,
        state: tenacity.RetryCallState,
        *,
        attempt: int,
        delay: float,
        cause: str,
        method: str,
        url: str,
        status_code: int | None = None,
        exception: BaseException | None = None,
        retry_after: bool = False,
    ) -> None:
        super().__init__(state.retry_object, state.fn, state.args, state.kwargs)
        # A snapshot: the live state moves on with the next attempt; a hook may keep this.
        vars(self).update({k: v for k, v in vars(state).items() if not k.startswith("_")})
        self.attempt = attempt
        self.delay = delay
        self.cause = cause
        self.method = method
        self.url = url
        self.status_code = status_code
        self.exception = exception
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"RetryEvent(attempt={self.attempt}, delay={self.delay!r}, cause={self.cause!r}, "
            f"method={self.method!r}, url={self.url!r})"
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient faults are retried: up to ``attempts`` tries in all, waiting a full-jitter
    exponential backoff (``initial * factor**n``, capped at ``cap``) between them, or the
    server's ``Retry-After`` when it gives one (capped at ``max_retry_after``). A refused
    connection (``httpx.ConnectError``: nothing was sent, e.g. a server restarting) is not
    counted against ``attempts`` for ``connect_for`` seconds after the first attempt: it is
    retried through that time (the last wait cut to end with it), and a connection refused
    after that ends the retries. With ``connect_for=0`` it counts as any fault.

    tenacity runs the policy (its step API, driven by the retry sub-flow), and takes its own
    strategies, on the flow's clock (``stop_after_delay`` measures the client's clock):

    - ``stop=``: when to give up (replaces ``attempts`` and ``connect_for``);
    - ``wait=``: the wait when the server gives no ``Retry-After`` (replaces the backoff;
      a server's hint still wins, capped at ``max_retry_after``; testing mode waits 0);
    - ``retry=``: which outcomes are retried (default :data:`retry_if_transient`); a result
      is the exchange's answer (``.status_code``, ``.headers``, ``.verdict``), an exception
      httpx's;
    - ``before_sleep=``: called before each wait with a :class:`RetryEvent` (also tenacity's
      ``RetryCallState``): a plain function, run in the flow; an exception it raises ends
      the call.

    A wait's deadline (``timeout=``) stops retries whose wait would end after it, whatever
    the strategies say. ``attempts=1`` (without ``stop=``) never retries.

    Example:
        >>> RetryPolicy(attempts=1)  # never retry
        RetryPolicy(attempts=1, initial=0.1, factor=2.0, cap=5.0, jitter=True, max_retry_after=30.0, connect_for=10.0)
        >>> import tenacity
        >>> policy = RetryPolicy(stop=tenacity.stop_after_delay(60))  # a total-time limit
    """  # noqa: E501

    attempts: int = 4
    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: bool = True
    max_retry_after: float = 30.0
    connect_for: float = 10.0
    stop: Callable[[tenacity.RetryCallState], bool] | None = field(
        default=None, kw_only=True, repr=False
    )
    wait: Callable[[tenacity.RetryCallState], float] | None = field(
        default=None, kw_only=True, repr=False
    )
    retry: Callable[[tenacity.RetryCallState], bool] | None = field(
        default=None, kw_only=True, repr=False
    )
    before_sleep: Callable[[RetryEvent], object] | None = field(
        default=None, repr=False, compare=False, kw_only=True
    )

    def __repr__(self) -> str:
        # The numbers always; tenacity's strategies when given (the hook never).
        names = ("attempts", "initial", "factor", "cap", "jitter", "max_retry_after")
        parts = [f"{name}={getattr(self, name)!r}" for name in (*names, "connect_for")]
        for name in ("stop", "wait", "retry"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"RetryPolicy({', '.join(parts)})"

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        numbers = (self.initial, self.cap, self.max_retry_after, self.connect_for)
        if not all(isinstance(v, int | float) and v >= 0 for v in numbers):
            raise ValueError("initial, cap, max_retry_after and connect_for must be numbers >= 0")
        if not self.factor >= 1:
            raise ValueError("factor must be at least 1")
        for name in ("stop", "wait", "retry", "before_sleep"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(
                    f"{name}= must be a tenacity strategy or a function of the retry state, "
                    f"got {value!r}"
                )


def backoff(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None = None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), by the defaults.

    The server's ``retry_after`` wins when given (capped); otherwise full jitter over an
    exponential ceiling, drawn from ``rand`` (uniform in ``[0, 1)``). Zero in testing mode.
    """
    if _testing:
        return 0.0
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.cap, policy.initial * policy.factor ** max(attempt - 1, 0))
    return ceiling * rand() if policy.jitter else ceiling


class FlowCallState(tenacity.RetryCallState):
    """tenacity's state of one exchange, on the flow's clocks: its timestamps come from
    ``ctx.now`` (not ``time.monotonic``), so ``stop_after_delay`` and the deadline follow the
    client's clock (a fake one in tests). It also computes the wait once per attempt
    (:meth:`delay`) for the strategies below, and remembers the request of the attempt."""

    def __init__(
        self,
        retrying: tenacity.BaseRetrying,
        ctx: RetryContext,
        policy: RetryPolicy,
        deadline: float | None,
    ) -> None:
        super().__init__(retrying, None, (), {})
        self._ctx = ctx
        self._policy = policy
        self._deadline = deadline
        self._delay: tuple[int, float] | None = None
        self._refusals = 0
        self.start_time = ctx.now()
        #: The request of the current attempt (set by the sub-flow).
        self.request: httpx.Request | None = None

    def set_result(self, val: Any) -> None:
        """Record the attempt's answer (an :class:`Answer`), stamped by the flow's clock."""
        super().set_result(val)
        self.outcome_timestamp = self._ctx.now()

    def set_exception(self, exc_info: Any) -> None:
        """Record the attempt's exception, stamped by the flow's clock."""
        super().set_exception(exc_info)
        self.outcome_timestamp = self._ctx.now()

    def hint(self) -> float | None:
        """The server's ``Retry-After`` on the last answer, in seconds, or ``None``."""
        outcome = self.outcome
        if outcome is None or outcome.failed:
            return None
        answer = outcome.result()
        if not isinstance(answer, Answer):
            return None
        response = answer.response
        return parse_retry_after(response.headers, response.json(), now=self._ctx.wall_now())

    def refused(self) -> bool:
        """Whether the last attempt's connection was refused (nothing was sent)."""
        outcome = self.outcome
        return (
            outcome is not None
            and outcome.failed
            and isinstance(outcome.exception(), httpx.ConnectError)
        )

    def _connect_left(self) -> float | None:
        """What remains of ``connect_for`` (the flow's clock, or the waits made, whichever
        says more), when a refused connection may still go uncounted; else ``None``."""
        policy = self._policy
        if _testing or policy.stop is not None or policy.attempts < 2 or not self.refused():
            return None  # (testing mode: a test against a server that is down fails fast)
        if self._refusals >= _MAX_REFUSED:
            return None
        elapsed = max(self._ctx.now() - self.start_time, self.idle_for)
        left = policy.connect_for - elapsed
        return left if left > 0 else None

    def delay(self) -> float:
        """Seconds to wait before the next attempt, computed once per attempt: zero in
        testing mode; else the server's ``Retry-After`` (capped); else the policy's ``wait=``
        or its backoff (cut to what remains of ``connect_for`` after a refused connection)."""
        n = self.attempt_number
        if self._delay is not None and self._delay[0] == n:
            return self._delay[1]
        policy = self._policy
        hint = self.hint()
        if policy.wait is None or hint is not None or _testing:
            value = backoff(policy, n, hint, rand=self._ctx.random)
        else:
            value = float(policy.wait(self))
            if math.isnan(value) or value < 0:
                value = 0.0
            if math.isinf(value):
                raise ValueError(f"the retry policy's wait= returned {value!r} seconds")
        left = self._connect_left()
        if left is not None and hint is None:
            value = min(value, left)
        self._delay = (n, value)
        return value

    def counts(self) -> bool:
        """Whether the last fault counts against ``attempts`` (a refused connection within
        ``connect_for`` does not); called once per fault, by the default stop."""
        if self._connect_left() is None:
            return True
        self._refusals += 1
        return False

    def past_deadline(self) -> bool:
        """Whether the next attempt would come after the wait's deadline."""
        if self._deadline is None:
            return False
        delay = self.delay()
        return delay > 0 and delay >= self._deadline - self._ctx.now()

    @property
    def uncounted(self) -> int:
        """Refused connections retried within ``connect_for``, not counted as attempts."""
        return self._refusals


class _StopDefault(stop_base):
    """Stop after ``attempts`` counted tries; a refused connection within ``connect_for`` is
    not counted, and one refused after that time was spent on them ends the retries."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if not isinstance(retry_state, FlowCallState):
            return True
        if not retry_state.counts():
            return False
        if retry_state.uncounted and retry_state.refused():
            return True  # refused again once the budget is spent: the server is not back
        return retry_state.attempt_number - retry_state.uncounted >= retry_state._policy.attempts


class _StopFlow(stop_base):
    """The policy's stop (or the default), or the wait's deadline: stop when the next
    attempt would come after it."""

    def __init__(self, stop: Callable[[tenacity.RetryCallState], bool]) -> None:
        self._stop = stop

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if self._stop(retry_state):
            return True
        return isinstance(retry_state, FlowCallState) and retry_state.past_deadline()


class _FlowWait(wait_base):
    """The wait of every policy: :meth:`FlowCallState.delay`."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        if not isinstance(retry_state, FlowCallState):
            return 0.0
        return retry_state.delay()


_STOP_DEFAULT = _StopFlow(_StopDefault())
_WAIT = _FlowWait()


def _give_up(retry_state: tenacity.RetryCallState) -> object:
    return GIVE_UP


#: What tenacity answers when its ``stop`` ends the retries (``retry_error_callback``).
GIVE_UP = object()


class _Engine(tenacity.Retrying):
    """tenacity's ``Retrying`` for one exchange, whose statistics belong to it rather than to
    a thread: a flow may be resumed from any thread (tenacity keeps them thread-local, and
    updates them at each step)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._statistics: dict[str, Any] = {}

    @property
    def statistics(self) -> dict[str, Any]:
        """tenacity's statistics of this exchange."""
        return self._statistics


def retrying(
    policy: RetryPolicy, before_sleep: Callable[[tenacity.RetryCallState], None]
) -> tenacity.Retrying:
    """A fresh tenacity engine for one exchange under ``policy`` (its step API only: the
    sub-flow sleeps, never tenacity); ``before_sleep`` reports each retry."""
    return _Engine(
        stop=_STOP_DEFAULT if policy.stop is None else _StopFlow(policy.stop),
        wait=_WAIT,
        retry=retry_if_transient if policy.retry is None else policy.retry,
        before_sleep=before_sleep,
        retry_error_callback=_give_up,
    )
