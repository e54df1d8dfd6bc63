"""The flows that follow a wait: fetching or downloading the result, cancelling, retrying a
failed job. I/O-free generators like those of :mod:`._flow`, whose wait and status requests
they build on; the drivers execute their commands.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pydantic

from ._commands import CloseStream, Command, ReadBytes, Tracker
from ._errors import (
    AsyncReplyError,
    CancelNotSupportedError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    ProtocolError,
    TransportError,
)
from ._exchange import (
    FlowConfig,
    answer_fields,
    send,
)
from ._flow import (
    OperationState,
    WaitOptions,
    _auth_error,
    _interpret,
    _operation_from_submit_answer,
    refresh,
    wait,
)
from ._headers import parse_content_disposition_filename
from ._http import HttpResponse, undecodable
from ._models import JobState, JobStatus, ResultFile
from ._retry import exhausted
from .dialects import cancel_method_of, result_failure_of

__all__ = ["cancel", "check_outcome", "download", "result", "retry"]


# --------------------------------------------------------------------------------------------
# Results


def result(
    cfg: FlowConfig,
    state: OperationState,
    options: WaitOptions,
    tracker: Tracker,
    result_type: Any = None,
) -> Generator[Command, Any, Any]:
    """Wait, then return the result (validated against ``result_type`` when given).

    Raises:
        JobFailedError, JobCancelledError: the job ended that way.
        JobExpiredError: the result is gone (410, or 404 after the job was seen).
        ProtocolError: the result cannot be fetched or does not match ``result_type``.
    """
    status = yield from _finished(cfg, state, options, tracker)
    if status.has_result:
        return _convert(status.result, result_type, url=state.status_url, code=status.http_status)
    url = status.result_url or state.final_url
    if url is None:
        return _convert(None, result_type, url=state.status_url, code=status.http_status)
    fetched = yield from send(cfg, "GET", url, accept="application/json, */*;q=0.8", bound=False)
    response = fetched.response
    _check_result_answer(cfg, response, state)
    if response.is_json or not response.headers.get("content-type"):
        value = response.json()
        if value is None and response.content.strip() not in (b"", b"null"):
            raise ProtocolError("the result is not valid JSON", **answer_fields(response))
        return _convert(value, result_type, url=response.url, code=response.status_code)
    file = ResultFile(
        content_type=response.headers.get("content-type", "application/octet-stream"),
        filename=parse_content_disposition_filename(response.headers.get("content-disposition")),
        content=response.content,
    )
    return _convert(file, result_type, url=response.url, code=response.status_code)


def _finished(
    cfg: FlowConfig, state: OperationState, options: WaitOptions, tracker: Tracker
) -> Generator[Command, Any, JobStatus]:
    """Wait for the end; a failed or cancelled job raises. An end learnt from an event
    stream that carries neither the result nor its URL (an event the dialect gives the ``end``
    role) is followed by one status request, whose completed document names the output."""
    status = yield from wait(cfg, state, options, tracker)
    if (
        status.state is JobState.COMPLETED
        and status.http_status is None
        and not status.has_result
        and status.result_url is None
        and state.final_url is None
        and state.status_url is not None
    ):
        status = yield from refresh(cfg, state)
    check_outcome(status)
    return status


def check_outcome(status: JobStatus) -> None:
    if status.state is JobState.FAILED:
        # The server's own words only: no code is made up when it gave none.
        summary = status.error.summary if status.error is not None else ""
        raise JobFailedError(
            f"the job failed: {summary}" if summary else "the job failed", status=status
        )
    if status.state is JobState.CANCELLED:
        raise JobCancelledError("the job was cancelled", status=status)


def _check_result_answer(cfg: FlowConfig, response: HttpResponse, state: OperationState) -> None:
    code = response.status_code
    failed = result_failure_of(cfg.dialect, response)
    if failed is not None:
        # The vendor's documented failure answer at the result URL: the job failed.
        state.learn(failed)
        check_outcome(failed)
    if code == 410 or (code == 404 and state.seen):
        raise JobExpiredError(
            f"the result at {response.url} is gone (HTTP {code})", status=state.last
        )
    if code == 404:
        raise JobNotFoundError(f"no result at {response.url} (HTTP 404)", status=state.last)
    if code in (401, 403):
        raise _auth_error(response, "result request")
    if code != 200:
        raise ProtocolError("could not fetch the result", **answer_fields(response))


#: Validation errors a result-type mismatch names (the rest are counted).
_NAMED_ERRORS = 3


def _convert(value: Any, result_type: Any, *, url: str | None, code: int | None) -> Any:
    """``value`` validated into ``result_type`` (the answer it came from: ``url``,
    ``code``, the HTTP status of that answer when known)."""
    if result_type is None:
        return value
    if isinstance(value, ResultFile) and result_type is bytes:
        return value.content
    try:
        return pydantic.TypeAdapter(result_type).validate_python(value)
    except pydantic.ValidationError as exc:
        raise ProtocolError(
            f"the result does not match {getattr(result_type, '__name__', result_type)}: "
            f"{_mismatches(exc)}",
            status_code=code,
            url=url,
            body=repr(value),
        ) from exc


def _mismatches(exc: pydantic.ValidationError) -> str:
    """Which fields failed and why: ``field 'slept': Field required; …``."""
    named = []
    for error in exc.errors(include_url=False)[:_NAMED_ERRORS]:
        where = ".".join(str(part) for part in error["loc"])
        field = f"field {where!r}" if where else "the value"
        named.append(f"{field}: {error['msg']}")
    more = exc.error_count() - len(named)
    return "; ".join(named) + (f" (and {more} more)" if more > 0 else "")


def download(
    cfg: FlowConfig,
    state: OperationState,
    options: WaitOptions,
    tracker: Tracker,
    write: Callable[[bytes], object],
) -> Generator[Command, Any, int]:
    """Wait, then stream the result's bytes to ``write``; return how many were written.

    An inline result (no result URL) is written as it came: a file's bytes (a status URL that
    ends in ``200`` with a non-JSON body), or a JSON value's JSON encoding.
    """
    status = yield from _finished(cfg, state, options, tracker)
    url = status.result_url or state.final_url
    if url is None:
        if not status.has_result:
            raise ProtocolError(
                "the completed job offers no result to download", url=state.status_url
            )
        value = status.result
        if isinstance(value, ResultFile):
            data = value.content
        else:
            data = jsonlib.dumps(value).encode("utf-8")
        write(data)
        return len(data)
    response = (yield from send(cfg, "GET", url, accept="*/*", stream=True)).response
    if response.status_code != 200:
        yield CloseStream()
        _check_result_answer(cfg, response, state)
    total = 0
    while True:
        try:
            chunk: bytes | None = yield ReadBytes()
        except httpx.TransportError as exc:
            raise _broken_stream(exc, response) from exc
        except httpx.DecodingError as exc:
            raise undecodable(exc) from exc
        if chunk is None:
            break
        write(chunk)
        total += len(chunk)
    yield CloseStream()
    return total


def _broken_stream(error: httpx.TransportError, response: HttpResponse) -> TransportError:
    """The error of a body that broke while being read (no retry: bytes were consumed)."""
    return exhausted(error, httpx.Request(response.method, response.url), 1)


# --------------------------------------------------------------------------------------------
# Cancel and retry


def cancel(cfg: FlowConfig, state: OperationState) -> Generator[Command, Any, JobStatus]:
    """Ask the server to cancel; return the status after the request.

    The dialect says how (``cancel_method_of``): a ``DELETE`` on the cancel URL, else on
    the status monitor (our protocol, Microsoft's); another method only on a cancel URL the
    server named (learnt by one status request when not known yet); no cancel at all raises
    ``CancelNotSupportedError`` and sends nothing. A job already terminal (409) is not an
    error: its current (terminal) status is returned, so callers check ``status.state``. A
    cancellation the server accepted but has not finished (202, or a body that does not say
    cancelled) is followed by one status request.
    """
    method = cancel_method_of(cfg.dialect)
    if method is None:
        raise CancelNotSupportedError(
            f"the {cfg.dialect.name} dialect says this API cannot cancel a job; nothing was sent"
        )
    url = state.cancel_url
    if url is None and method != "DELETE" and state.status_url is not None:
        yield from refresh(cfg, state)
        url = state.cancel_url
        if url is None:
            raise CancelNotSupportedError(
                f"the server named no cancel URL for this job ({cfg.dialect.name} dialect); "
                "nothing was sent"
            )
    url = url or state.status_url
    if url is None:
        raise ProtocolError("the operation has no cancel or status URL")
    response = (yield from send(cfg, method, url)).response
    code = response.status_code
    if code in (404, 410):
        _interpret(cfg, state, response)  # raises the typed error
    if code == 409 or code == 204 or (200 <= code < 300 and not response.content.strip()):
        return (yield from refresh(cfg, state))
    if code in (401, 403):
        raise _auth_error(response, "cancellation")
    if not 200 <= code < 300:
        raise ProtocolError("the server refused the cancellation", **answer_fields(response))
    try:
        status = cfg.dialect.interpret_status(response, submission=state.submission)
    except AsyncReplyError:
        status = None
    if status is not None and status.state is JobState.CANCELLED:
        state.learn(status)
        return status
    return (yield from refresh(cfg, state))


def retry(
    cfg: FlowConfig, state: OperationState, *, idempotency_key: str
) -> Generator[Command, Any, OperationState]:
    """Ask the server to run a failed job again; return the new operation's state.

    Raises:
        JobOutcomeError: the job offers no retry URL (it is not failed, or not retryable).
        SubmissionRejectedError: the server refused (409 ``not_retryable``).
    """
    last = state.last
    if last is None or last.retry_url is None:
        last = yield from refresh(cfg, state)
    if last.retry_url is None:
        raise JobOutcomeError(
            f"the job cannot be retried (state {last.state.value}, no retry URL)", status=last
        )
    answer = yield from send(
        cfg, "POST", last.retry_url, headers={"Idempotency-Key": idempotency_key}
    )
    return _operation_from_submit_answer(cfg, answer)
