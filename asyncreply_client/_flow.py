"""The client's behaviour, written once as I/O-free generators (STYLE.md §1).

Each flow yields :mod:`commands <asyncreply_client._commands>` (send this request, sleep, read
the stream, report this snapshot) and is sent the replies; the sync and async drivers in
``_drivers`` execute them. Each request goes through ``_exchange.send`` (request factory,
retry sub-flow, redirects). Nothing here touches a socket or a clock: time comes from
``FlowConfig.now`` and sleeping is a ``Sleep`` command, so unit tests drive every flow by hand.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from typing import Any

from . import _log
from ._arguments import check_submission, request_url
from ._commands import Command, Emit, Sleep, Tracker
from ._errors import (
    AsyncReplyError,
    JobExpiredError,
    JobNotFoundError,
    ProtocolError,
    RequestRejectedError,
    TransportError,
    WaitTimeoutError,
)
from ._exchange import (
    DEFAULT_MAX_BODY,
    FlowConfig,
    StreamBudget,
    answer_fields,
    open_stream,
    send,
)
from ._flow_state import OperationState, WaitMode, WaitOptions
from ._headers import preference_applied_wait
from ._http import HttpResponse
from ._models import JobStatus
from ._pace import ProgressPace
from ._policies import PollDecision, PollingPolicy, PollObservation, hint_ceiling
from ._retry import Answer, Verdict
from ._sse import SSEEnd, follow_events
from ._uploads import encode_body, query_params
from .dialects import (
    FINAL_STATE_VIA,
    FinalStateVia,
    Submission,
    monitor_move,
    rejection_error,
    with_final_state_via,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "Flow",
    "FlowConfig",
    "OperationState",
    "StreamBudget",
    "WaitMode",
    "WaitOptions",
    "open_stream",
    "refresh",
    "send",
    "submit",
    "wait",
]

Flow = Generator[Command, Any, Any]

#: Extra read time on top of a long poll's ``wait``, so the server answers before we give up.
_LONG_POLL_MARGIN = 5.0
#: Long polls shorter than this are not worth asking for.
_MIN_HOLD = 0.01
#: A first long poll goes out this much (at most a quarter of the hint) before the hinted
#: time: the server then holds it across the job's end and its answer, not our timer (late
#: by the 202's transit and the sleep's wake-up), marks when the end is noticed.
_LONG_POLL_LEAD = 0.05


# --------------------------------------------------------------------------------------------
# Errors and formatting


def _where(response: HttpResponse) -> dict[str, Any]:
    return {"status_code": response.status_code, "url": response.url, "body": response.content}


def _auth_error(response: HttpResponse, what: str) -> AsyncReplyError:
    """The ``AuthenticationError`` / ``PermissionDeniedError`` of a 401 / 403 answer."""
    error = rejection_error(response, what=what)
    return error if error is not None else ProtocolError("no error", **_where(response))


def _format_seconds(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return text or "0"


# --------------------------------------------------------------------------------------------
# Submit


def submit(
    cfg: FlowConfig,
    url: str,
    *,
    method: str = "POST",
    json: Any = None,
    content: Any = None,
    headers: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    callback: str | Mapping[str, Any] | None = None,
    final_state_via: FinalStateVia | None = None,
    hold: float | None = None,
    params: Any = None,
    data: Any = None,
    files: Any = None,
    asynchronous: bool = False,
) -> Generator[Command, Any, OperationState]:
    """Submit an operation and interpret the answer.

    The body is one of ``json``, ``content`` (bytes, text, or a byte stream: async for an
    ``asynchronous`` client) or a form (``data`` / ``files``), see ``_uploads``; ``params``
    is the query. A one-shot body (a stream, an unseekable file) is never retried.

    Retried on transient faults only with an ``idempotency_key`` (the same key on every
    attempt, so a retry can never create a second job). ``final_state_via`` says where the
    final result is (see :func:`~asyncreply_client.dialects.with_final_state_via`;
    ``None``: the dialect's automatic rule). With ``hold`` (``run()``), the server is asked
    to hold the answer until the job ends, up to that many whole seconds (``Prefer: wait``,
    RFC 7240 §4.3): an instant job's result then comes with the answer. Held submissions
    count as event streams (``max_streams``): beyond that budget, and when the caller sent
    a ``Prefer`` header of their own, the submission is not held.

    Raises:
        SubmissionRejectedError: a 4xx answer (with the server's error body).
        ProtocolError: a redirect loop, or an answer the dialect cannot interpret.
    """
    check_submission(method=method, headers=headers, idempotency_key=idempotency_key)
    url = request_url(cfg.requests.resolve, url)
    if final_state_via is not None and final_state_via not in FINAL_STATE_VIA:
        raise ValueError(
            f"final_state_via must be one of {', '.join(FINAL_STATE_VIA)} or None; "
            f"got {final_state_via!r}"
        )
    body = encode_body(
        json=json,
        content=content,
        data=data,
        files=files,
        callback=callback,
        asynchronous=asynchronous,
    )
    query = query_params(params)
    proto: dict[str, str] = {}
    if body.content_type is not None and not _names(headers, "content-type"):
        proto["Content-Type"] = body.content_type  # the caller's own wins
    if idempotency_key is not None:
        proto["Idempotency-Key"] = idempotency_key
    held = (
        hold is not None
        and hold >= 1
        and not _names(headers, "prefer")
        and cfg.streams.try_acquire()
    )
    read_timeout: float | None = None
    if held and hold is not None:
        seconds = math.floor(hold)
        proto["Prefer"] = f"wait={seconds}"
        read_timeout = seconds + _LONG_POLL_MARGIN
    try:
        answer = yield from send(
            cfg,
            method.upper(),
            url,
            headers=proto,
            private_headers=headers,
            params=query,
            content=body,
            retry=idempotency_key is not None and body.one_shot is None,
            read_timeout=read_timeout,
            submission=True,
        )
    except TransportError as exc:
        if body.one_shot is not None and idempotency_key is not None:
            exc.args = (f"{exc.args[0] if exc.args else exc}; not retried: {body.one_shot}",)
        raise
    finally:
        if held:
            cfg.streams.release()
    if final_state_via is None:
        state = _operation_from_submit_answer(cfg, answer)
    else:
        original = cfg.requests.resolve(url)
        state = _operation_from_submit_answer(
            cfg,
            answer,
            lambda sub: with_final_state_via(sub, answer.response, final_state_via, original),
        )
    if preference_applied_wait(answer.response.headers) is not None:
        # The server held the submission already: the wait starts at once, in its mode,
        # rather than after the answer's Retry-After.
        state.first_delay = None
    return state


def _names(headers: Mapping[str, str] | None, name: str) -> bool:
    """Whether ``headers`` has ``name`` (any case)."""
    return any(key.lower() == name for key in headers or {})


def _operation_from_submit_answer(
    cfg: FlowConfig,
    answer: Answer,
    adjust: Callable[[Submission], Submission] | None = None,
) -> OperationState:
    """The operation a submission (or a retry) started, from the server's answer.

    The dialect reads 2xx, 303 and the answers it calls a job's terminal state (a status-code
    server answers 500 ``{"state": "failed"}`` to the submission of a job that failed at once,
    409 for a cancelled one); any other 4xx is a rejection, anything else a protocol error.
    """
    response = answer.response
    code = response.status_code
    if answer.verdict is Verdict.JOB_STATE:
        return _state_of(cfg, cfg.dialect.interpret_submit(response))
    rejection = rejection_error(response, submission=True)
    if rejection is not None:
        raise rejection
    if not (200 <= code < 300 or code == 303):
        raise ProtocolError("unexpected answer to a submission", **answer_fields(response))
    submission = cfg.dialect.interpret_submit(response)
    if adjust is not None and not submission.status.is_terminal:
        submission = adjust(submission)
    return _state_of(cfg, submission)


def _state_of(cfg: FlowConfig, submission: Submission) -> OperationState:
    status = submission.status
    events_url = submission.events_url
    if events_url is None and cfg.events_url_template and status.id:
        events_url = cfg.requests.resolve(cfg.events_url_template.format(id=status.id))
    state = OperationState(
        status_url=submission.status_url,
        id=status.id,
        events_url=events_url,
        cancel_url=submission.cancel_url,
        final_url=submission.final_url,
        submission=submission,
        first_delay=submission.retry_after,
    )
    state.learn(status)
    return state


# --------------------------------------------------------------------------------------------
# Status


def refresh(
    cfg: FlowConfig,
    state: OperationState,
    *,
    hold: float | None = None,
    deadline: float | None = None,
) -> Generator[Command, Any, JobStatus]:
    """One status request (a long poll of up to ``hold`` seconds when given); transient
    faults are retried, never past ``deadline``.

    Raises:
        JobNotFoundError: 404 from a status URL that never answered with a status.
        JobExpiredError: 410, or 404 after the status URL answered (the job vanished).
        ProtocolError: no status URL, or an answer the dialect cannot interpret.
    """
    if state.status_url is None:
        raise ProtocolError("the operation has no status URL to poll")
    headers: dict[str, str] = {}
    params: dict[str, str] | None = None
    read_timeout: float | None = None
    if hold is not None and hold >= _MIN_HOLD:
        params = {"wait": _format_seconds(hold)}
        if hold >= 1:  # RFC 7240 §4.3: wait is delta-seconds, an integer
            headers["Prefer"] = f"wait={math.floor(hold)}"
        read_timeout = hold + _LONG_POLL_MARGIN
    answer = yield from send(
        cfg,
        "GET",
        state.status_url,
        headers=headers,
        params=params,
        read_timeout=read_timeout,
        deadline=deadline,
    )
    return _interpret(cfg, state, answer.response)


def _interpret(cfg: FlowConfig, state: OperationState, response: HttpResponse) -> JobStatus:
    try:
        status = cfg.dialect.interpret_status(response, submission=state.submission)
    except JobNotFoundError as exc:
        if state.answered:
            raise JobExpiredError(
                f"the job vanished: its status URL {response.url} now answers 404",
                status=state.last,
            ) from exc
        _explain_withheld(cfg, response, exc)
        raise
    except RequestRejectedError as exc:
        _explain_withheld(cfg, response, exc)
        raise
    state.learn(status)
    state.answered = True
    if not status.is_terminal:
        _follow_monitor(state, response)
    return status


def _explain_withheld(cfg: FlowConfig, response: HttpResponse, exc: AsyncReplyError) -> None:
    """Add to ``exc`` (a 404 or 4xx of a status URL) that the client withheld its
    credentials from that URL's origin, when it did (``RequestFactory.withheld_note``)."""
    note = cfg.requests.withheld_note(response.url)
    if note is not None:
        exc.args = (f"{exc.args[0] if exc.args else exc}; {note}", *exc.args[1:])


def _follow_monitor(state: OperationState, response: HttpResponse) -> None:
    """Move the status URL where a 202 poll answer points (a new monitor)."""
    submission = state.submission
    move = monitor_move(response, submission.monitored_by if submission is not None else None)
    if move is None:
        return
    url, kind = move
    state.status_url = url
    state.answered = False  # the new monitor has not answered yet
    if submission is not None:
        state.submission = replace(submission, status_url=url, monitored_by=kind)


# --------------------------------------------------------------------------------------------
# Wait


def wait(
    cfg: FlowConfig, state: OperationState, options: WaitOptions, tracker: Tracker
) -> Generator[Command, Any, JobStatus]:
    """Wait until the operation is terminal, by SSE and/or polling, within the deadline.

    Every snapshot ``tracker`` has not seen is reported with ``Emit``. The submission's
    ``Retry-After`` is honoured before the first poll (``0`` means poll now). Sleeps never go
    past the deadline; when it passes, one last poll is made at the deadline before giving up.

    Raises:
        WaitTimeoutError: the deadline passed (``operation`` is filled in by the shell).
        JobNotFoundError, JobExpiredError, ProtocolError, TransportError: from the polls.
    """
    started = cfg.now()
    deadline = None if options.timeout is None else started + options.timeout
    if state.last is not None and state.last.is_terminal:
        if options.watching:  # a watcher of a finished job sees its end once
            yield Emit(state.last)
        return state.last

    if options.mode == "sse" and state.events_url is None:
        first = yield from _learn_events_url(cfg, state, tracker, deadline)
        if first.is_terminal:
            return first
    outcome = yield from _by_events(cfg, state, options, tracker, deadline)
    if isinstance(outcome, JobStatus):
        return outcome
    poll_reason = outcome

    if state.status_url is None:
        raise ProtocolError("the operation has no status URL to poll")
    policy = options.polling or cfg.polling
    if options.mode == "long-poll" and options.polling is None:
        policy = cfg.long_polling
    if _log.active(_log.CLIENT):
        _mode_chosen(state, "long-poll" if options.mode == "long-poll" else "poll", poll_reason)
    schedule = policy.schedule()
    pace = ProgressPace(policy) if options.watching else None
    polls = 0
    while True:
        decision: PollDecision = schedule.next(
            PollObservation(status=state.last, now=cfg.now(), started=started, polls=polls)
        )
        delay, reason = _delay(cfg, state, policy, decision, deadline, pace)
        if pace is not None and polls == 0:
            # A watcher's first request is a plain poll: a server holds a long poll until
            # the job changes after the request arrives, so a change made since the
            # submission's answer (the job started, step 1) would show only at the next one.
            decision = PollDecision(decision.delay)
        if _log.active(_log.CLIENT):
            _delay_chosen(state, delay, reason, decision.wait)
        if delay > 0:
            yield Sleep(delay)
        hold = decision.wait
        if hold is not None and deadline is not None:
            hold = min(hold, max(deadline - cfg.now(), 0.0))
        status = yield from refresh(cfg, state, hold=hold, deadline=deadline)
        state.first_delay = None
        polls += 1
        if tracker.observe(status):
            yield Emit(status)
        if status.is_terminal:
            return status
        if deadline is not None and cfg.now() >= deadline:
            raise _timeout(options, state)


def _by_events(
    cfg: FlowConfig,
    state: OperationState,
    options: WaitOptions,
    tracker: Tracker,
    deadline: float | None,
) -> Generator[Command, Any, JobStatus | str]:
    """The SSE part of a wait: the terminal status it reached, or why the wait polls now
    (no stream to follow, the stream budget used up, or a fallback from a failed stream).

    Raises:
        WaitTimeoutError: the deadline passed while following the stream.
    """
    use_sse = options.mode == "sse" or (options.mode == "auto" and not state.sse_unusable)
    if use_sse and state.events_url is not None:
        if not cfg.streams.try_acquire(force=options.mode == "sse"):
            return "the event stream budget (max_streams) is used up"
    else:
        return _poll_reason(options, state, use_sse)
    if _log.active(_log.CLIENT):
        why = "mode='sse'" if options.mode == "sse" else "an events URL is known"
        _mode_chosen(state, "sse", why)
    try:
        ending = yield from follow_events(
            state.events_url,
            dialect=cfg.dialect,
            open_stream=functools.partial(open_stream, cfg),
            tracker=tracker,
            deadline=deadline,
            now=cfg.now,
            options=cfg.sse,
            watching=options.watching,
        )
    finally:
        cfg.streams.release()
    if ending.status is not None:
        state.learn(ending.status)
        state.answered = True
    if ending.end is SSEEnd.TERMINAL and ending.status is not None:
        return ending.status
    if ending.end is SSEEnd.DEADLINE:
        raise _timeout(options, state)
    # Fallback: poll from the last known state, within the same deadline.
    state.sse_unusable = True
    if _log.active(_log.SSE):
        _log.decision(
            _log.SSE,
            "asyncreply.sse.fallback",
            {
                "asyncreply.reason": _log.redact_text(ending.reason),
                "asyncreply.sse.reconnects": ending.reconnects,
            },
            "operation %s: SSE falls back to polling: %s",
            _name(state),
            _log.redact_text(ending.reason),
        )
    return "fallback from SSE"


def _delay(
    cfg: FlowConfig,
    state: OperationState,
    policy: PollingPolicy,
    decision: PollDecision,
    deadline: float | None,
    pace: ProgressPace | None = None,
) -> tuple[float, str]:
    """How long to sleep before the next poll, and why (``hint``, ``backoff``,
    ``progress``, ``deadline``). With ``pace`` (the caller watches progress), a delay that
    points at the job's end is shortened, and a first long poll goes out at once: the
    server answers it at the job's next change."""
    delay = max(decision.delay, 0.0)
    hinted = state.last is not None and state.last.retry_after is not None
    if state.first_delay is not None:
        # The submission's Retry-After, clamped like every hint (a 202 saying
        # "Retry-After: 999999999" must not sleep for 31 years).
        delay = min(max(state.first_delay, 0.0), hint_ceiling(policy))
        if decision.wait is not None:  # a long poll: be held across the hinted time
            delay = 0.0 if pace is not None else max(delay - min(_LONG_POLL_LEAD, delay / 4), 0.0)
        hinted = True
    reason = "hint" if hinted else "backoff"
    if pace is not None and delay > 0:
        paced = pace.delay(delay, state.last)
        reason = "progress" if paced < delay else reason
        delay = paced
    if deadline is not None:
        capped = min(delay, max(deadline - cfg.now(), 0.0))
        reason = "deadline" if capped < delay else reason
        delay = capped
    return delay, reason


def _name(state: OperationState) -> str:
    """How log lines name an operation: its id, else its status URL (redacted)."""
    if state.id:
        return state.id
    return "?" if state.status_url is None else _log.redact_url(state.status_url)


def _poll_reason(options: WaitOptions, state: OperationState, use_sse: bool) -> str:
    """Why a wait polls, when it does not stream (for the logs)."""
    if options.mode in ("poll", "long-poll"):
        return f"mode={options.mode!r}"
    if not use_sse:
        return "the event stream failed in an earlier wait"
    return "no events URL is known"


def _mode_chosen(state: OperationState, mode: str, why: str) -> None:
    _log.decision(
        _log.CLIENT,
        "asyncreply.mode",
        {"asyncreply.mode": mode, "asyncreply.reason": why},
        "operation %s: waiting by %s (%s)",
        _name(state),
        mode,
        why,
    )


def _delay_chosen(state: OperationState, delay: float, reason: str, hold: float | None) -> None:
    _log.decision(
        _log.CLIENT,
        "asyncreply.delay",
        {"asyncreply.delay": delay, "asyncreply.delay_reason": reason, "asyncreply.hold": hold},
        "operation %s: next poll in %.3f s (%s)%s",
        _name(state),
        delay,
        reason,
        "" if hold is None else f", held up to {_format_seconds(hold)} s",
    )


def _learn_events_url(
    cfg: FlowConfig, state: OperationState, tracker: Tracker, deadline: float | None
) -> Generator[Command, Any, JobStatus]:
    """One status request for ``mode="sse"`` without an events URL: an operation attached
    by URL or resumed knows none yet, and any status answer may announce it (``eventsUrl``,
    ``Link: rel="events"``). Returns that status (terminal: the wait is over).

    Raises:
        ProtocolError: the answer announced none either.
    """
    if state.status_url is not None:
        first = yield from refresh(cfg, state, deadline=deadline)
        if tracker.observe(first):
            yield Emit(first)
        if first.is_terminal or state.events_url is not None:
            return first
    raise ProtocolError(
        "mode='sse' needs an events URL: the server announced none (eventsUrl, "
        "Link rel=events) and the client has no events_url_template"
    )


def _timeout(options: WaitOptions, state: OperationState) -> WaitTimeoutError:
    last = state.last
    where = "" if last is None else f"; last state: {last.state.value}"
    return WaitTimeoutError(
        f"gave up waiting after {options.timeout} s (the job goes on{where})", status=last
    )
