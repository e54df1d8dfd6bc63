"""``Operation`` and ``AsyncOperation``: thin shells over the flows, one per submitted job.

``_OperationBase`` builds every flow (``_flow``) with its arguments, watched by the operation's
:class:`~asyncreply_client._observe.Observer` (logging, tracing, last answer); the two shells
only hand it to their client's driver, so each method is one line. Nothing here decides
anything about the protocol. The future-like idioms (``done()``, ``exception()``,
``add_done_callback()``, ``await op``) are those of ``concurrent.futures``, azure-core's
``LROPoller`` and google-api-core's ``Operation``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from . import _flow, _log, _outcomes
from ._commands import Command, Tracker
from ._errors import (
    InvalidTokenError,
    JobCancelledError,
    JobFailedError,
)
from ._flow import OperationState, WaitMode, WaitOptions
from ._models import JobState, JobStatus
from ._observe import Observer, OperationMetadata
from ._policies import PollingPolicy
from ._token import TokenData, dump_token

if TYPE_CHECKING:
    from ._client import AsyncClient, Client
    from ._client_base import ProgressCallback, _ClientBase

__all__ = ["AsyncOperation", "Operation"]

ResultT = TypeVar("ResultT")
T = TypeVar("T")
Destination = str | os.PathLike[str] | IO[bytes]


class _OperationBase(Generic[ResultT]):
    """What both shells share: the state, read-only views of it, and the resume token."""

    __slots__ = ("__weakref__", "_base", "_callbacks", "_observer", "_result_type", "_state")

    def __init__(
        self,
        base: _ClientBase[Any],
        state: OperationState,
        result_type: type[ResultT] | None,
        observer: Observer | None = None,
        *,
        origin: str = "attach",
    ) -> None:
        self._base = base
        self._state = state
        self._result_type = result_type
        self._callbacks: list[Callable[[Any], object]] | None = None
        if observer is None:
            observer = Observer(state, origin=origin, dialect=base._flow_cfg.dialect.name)
        else:
            observer.state = state
        self._observer = observer
        span = observer.span
        if span is not None and span.recording:
            # An operation dropped before its end still ends its span (the job goes on).
            weakref.finalize(self, observer.end)

    @property
    def id(self) -> str | None:
        """The job id, when the server gave one."""
        return self._state.id

    @property
    def status_url(self) -> str | None:
        """Absolute URL of the status monitor (``None`` for an operation finished on submit
        without one)."""
        return self._state.status_url

    @property
    def events_url(self) -> str | None:
        """Absolute URL of the operation's event stream, when known."""
        return self._state.events_url

    @property
    def cancel_url(self) -> str | None:
        """Absolute URL used to cancel, when known (else the status URL is used)."""
        return self._state.cancel_url

    @property
    def status(self) -> JobStatus | None:
        """The latest status snapshot seen (``None`` before the first one)."""
        return self._state.last

    @property
    def metadata(self) -> OperationMetadata:
        """The latest status with the last answer that gave one: its raw body, HTTP status,
        response headers and URL (azure-core's ``polling_method()._pipeline_response``,
        google-api-core's ``metadata``)."""
        return self._observer.metadata()

    @property
    def headers(self) -> httpx.Headers:
        """The response headers of the last answer that gave a status (empty before one)."""
        return self._observer.metadata().headers

    def done(self) -> bool:
        """Whether the job is known to be terminal (completed, failed or cancelled).

        Sends nothing: it reads the latest snapshot, which ``refresh()``, ``wait()`` and the
        other methods update.
        """
        last = self._state.last
        return last is not None and last.is_terminal

    def cancelled(self) -> bool:
        """Whether the job is known to be cancelled (from the latest snapshot; sends nothing)."""
        last = self._state.last
        return last is not None and last.state is JobState.CANCELLED

    def _outcome_error(self, status: JobStatus) -> JobFailedError | JobCancelledError | None:
        """The error ``result()`` raises for ``status``'s outcome (``None`` when completed)."""
        try:
            _outcomes.check_outcome(status)
        except (JobFailedError, JobCancelledError) as exc:
            return exc
        return None

    def _add_done_callback(self, fn: Callable[[Any], object]) -> None:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                "add_done_callback takes a plain function; start a task from it for async work"
            )
        if self.done():
            self._call_back(fn)
            return
        if self._callbacks is None:
            self._callbacks = []
            self._observer.on_done = self._run_callbacks
        self._callbacks.append(fn)

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks or [], None
        self._observer.on_done = None
        for fn in callbacks:
            self._call_back(fn)

    def _call_back(self, fn: Callable[[Any], object]) -> None:
        try:
            fn(self)
        except Exception:  # as concurrent.futures: a callback's error is logged, not raised
            _log.CLIENT.exception("done callback %r of %r raised", fn, self)

    def to_token(self) -> str:
        """An opaque, versioned token from which ``client.resume(token)`` continues, in this
        or another process. It holds URLs and the id, never credentials.

        Raises:
            InvalidTokenError: the operation has no status URL to resume from.
        """
        state = self._state
        if state.status_url is None:
            raise InvalidTokenError("this operation has no status URL: there is nothing to resume")
        last, submission = state.last, state.submission
        return dump_token(
            TokenData(
                status_url=state.status_url,
                id=state.id,
                events_url=state.events_url,
                cancel_url=state.cancel_url,
                result_url=state.final_url or (None if last is None else last.result_url),
                dialect=self._base._flow_cfg.dialect.name,
                # How the submission's answers are read (which header named the monitor,
                # whether its last answer is the result) goes along to the resumed operation.
                monitored_by=None if submission is None else submission.monitored_by,
                final_from_monitor=submission is not None and submission.final_from_monitor,
            )
        )

    # The flows of the public methods, built here once for both shells. Building one checks
    # its options and takes the tracker, before anything is sent.

    def _refresh_flow(self) -> Generator[Command, Any, JobStatus]:
        return self._attached(_flow.refresh(self._base._flow_cfg, self._state))

    def _options(
        self,
        timeout: float | None,
        polling: PollingPolicy | float | None,
        mode: WaitMode,
        on_progress: ProgressCallback | None,
        *,
        watch: bool = False,
    ) -> WaitOptions:
        """A wait's options (see ``_ClientBase._wait_options``), noted by the observer."""
        options = self._base._wait_options(timeout, polling, mode, on_progress, watch=watch)
        self._observer.waiting(options.mode)
        return options

    def _wait_flow(self, options: WaitOptions) -> Generator[Command, Any, JobStatus]:
        return self._attached(
            _flow.wait(self._base._flow_cfg, self._state, options, self._tracker())
        )

    def _result_flow(self, options: WaitOptions) -> Generator[Command, Any, ResultT]:
        cfg, tracker = self._base._flow_cfg, self._tracker()
        return self._attached(
            _outcomes.result(cfg, self._state, options, tracker, self._result_type)
        )

    def _cancel_flow(self) -> Generator[Command, Any, JobStatus]:
        return self._attached(_outcomes.cancel(self._base._flow_cfg, self._state))

    def _retry_flow(
        self, idempotency_key: str | None
    ) -> tuple[Observer, Generator[Command, Any, OperationState]]:
        """The retry flow, watched by the observer of the operation it creates."""
        key = self._base._key(idempotency_key)
        flow = _outcomes.retry(self._base._flow_cfg, self._state, idempotency_key=key)
        observer = Observer(None, origin="retry", dialect=self._base._flow_cfg.dialect.name)
        return observer, observer.observe(flow, submitting=True)

    def _download_flow(
        self, destination: Destination, options: WaitOptions
    ) -> Generator[Command, Any, int]:
        return self._attached(self._download_into(destination, options, self._tracker()))

    def _download_into(
        self, destination: Destination, options: WaitOptions, tracker: Tracker
    ) -> Generator[Command, Any, int]:
        """The download flow, writing into ``destination`` while it runs (drivers always
        close their flow, so a ``.part`` file never outlives a failure)."""
        with contextlib.ExitStack() as stack:
            write = _writer(destination, stack)
            flow = _outcomes.download(self._base._flow_cfg, self._state, options, tracker, write)
            return (yield from flow)

    def _tracker(self) -> Tracker:
        return Tracker(self._state.last)

    def _attached(self, flow: Generator[Command, Any, T]) -> Generator[Command, Any, T]:
        """``flow``, watched by the observer, giving its errors this operation
        (``exc.operation``): the job exists, so the caller waits again or resumes it instead
        of submitting a second one. (The observer does it: no generator layer of its own,
        which a waiting operation would keep suspended.)"""
        return self._observer.observe(flow, operation=self)

    def __repr__(self) -> str:
        state = None if self._state.last is None else self._state.last.state.value
        return f"<{type(self).__name__} id={self.id!r} state={state!r} url={self.status_url!r}>"


def _writer(destination: Destination, stack: contextlib.ExitStack) -> Callable[[bytes], object]:
    """A ``write`` for the download flow: a file object's, or a ``.part`` file's that is
    renamed over ``destination`` only once every byte arrived."""
    if not isinstance(destination, str | os.PathLike):
        return destination.write
    path = Path(destination)
    part = path.with_name(path.name + ".part")
    handle = stack.enter_context(part.open("wb"))

    def finish(exc_type: object, exc: object, tb: object) -> None:
        handle.close()
        if exc_type is None:
            part.replace(path)
        else:
            part.unlink(missing_ok=True)

    stack.push(finish)
    return handle.write


class Operation(_OperationBase[ResultT]):
    """A submitted job, followed synchronously. Made by :meth:`Client.submit`,
    :meth:`Client.operation` and :meth:`Client.resume`.

    Example:
        >>> op = client.submit("/jobs", json={"type": "sleep", "input": {}})  # doctest: +SKIP
        >>> op.wait(timeout=30).state  # doctest: +SKIP
        <JobState.COMPLETED: 'completed'>
    """

    __slots__ = ()
    _base: Client

    def refresh(self) -> JobStatus:
        """Send one status request and return the snapshot (also stored in ``status``)."""
        return self._base._run(self._refresh_flow())

    def wait(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> JobStatus:
        """Wait until the job is terminal and return its final status (failed and cancelled
        are returned, not raised).

        Args:
            timeout: seconds to wait at most (``None``: no limit).
            polling: a polling policy for this wait (default: the client's), or a number
                of seconds between polls (``FixedInterval(seconds)``).
            mode: ``"auto"`` (SSE when an events URL is known, else polling), ``"sse"``,
                ``"long-poll"`` or ``"poll"`` (any case).
            on_progress: called with each new snapshot, after the client's callbacks. With
                a progress callback (this one or the client's) the wait watches progress:
                a hint that only points at the job's end is split into shorter polls
                (guide §4), and a job already finished is reported once.

        Raises:
            ValueError, TypeError: a bad argument (before anything is sent).
        Raises:
            WaitTimeoutError: the timeout passed; the job goes on (``error.operation``).
        """
        options = self._options(timeout, polling, mode, on_progress)
        return self._base._run(self._wait_flow(options), on_progress)

    def result(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> ResultT:
        """Wait, then return the result: JSON, a validated ``result_type``, or a
        :class:`ResultFile` for a non-JSON result.

        Raises:
            JobFailedError: the job failed (``error.status.error`` says why).
            JobCancelledError: the job was cancelled.
            JobExpiredError: the job or its result is gone.
            WaitTimeoutError: the timeout passed; the job goes on.
        """
        options = self._options(timeout, polling, mode, on_progress)
        return self._base._run(self._result_flow(options), on_progress)

    def watch(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
    ) -> Iterator[JobStatus]:
        """Iterate over each new snapshot until the job is terminal (the last one yielded);
        a job already finished yields its terminal snapshot once. The wait watches progress
        (see :meth:`wait`'s ``on_progress``).

        Raises:
            WaitTimeoutError: the timeout passed; the job goes on.
        """
        options = self._options(timeout, polling, mode, None, watch=True)
        yield from self._base._iterate(self._wait_flow(options))

    def exception(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
    ) -> JobFailedError | JobCancelledError | None:
        """Wait until the job is terminal, then return the error :meth:`result` would raise
        for its outcome (``None`` when it completed), without fetching the result.

        Raises:
            WaitTimeoutError: the timeout passed; the job goes on.
            JobExpiredError, JobNotFoundError: the job is gone.
        """
        return self._outcome_error(self.wait(timeout=timeout, polling=polling, mode=mode))

    def add_done_callback(self, fn: Callable[[Operation[ResultT]], object]) -> None:
        """Call ``fn(operation)`` once the job is seen terminal, at the end of the call that
        saw it (``wait``, ``result``, ``refresh``...), or now if it already is.

        ``fn`` is a plain function (an exception it raises is logged on
        ``asyncreply.client``, not raised), as ``concurrent.futures.Future``'s.
        """
        self._add_done_callback(fn)

    def cancel(self) -> JobStatus:
        """Ask the server to cancel the job; return the status after the request.

        The request uses the dialect's cancel URL and method (``DELETE`` on the cancel URL
        or the status URL for the built-in families). A job that had already finished is not
        an error: its terminal status is returned (check ``status.state``).

        Raises:
            CancelNotSupportedError: the dialect says the API has no cancel (nothing sent).
        """
        return self._base._run(self._cancel_flow())

    def retry(self, *, idempotency_key: str | None = None) -> Operation[ResultT]:
        """Ask the server to run a failed, retryable job again; return the new operation.

        Raises:
            JobOutcomeError: the job offers no retry URL.
            SubmissionRejectedError: the server refused (not retryable).
        """
        observer, flow = self._retry_flow(idempotency_key)
        return Operation(self._base, self._base._run(flow), self._result_type, observer)

    def download(
        self,
        destination: Destination,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
    ) -> int:
        """Wait, then stream the result's bytes to a path or a binary file object; return
        the number of bytes written. A path is written through a ``.part`` file renamed
        at the end, so it never holds a partial result."""
        options = self._options(timeout, polling, mode, None)
        return self._base._run(self._download_flow(destination, options))


class AsyncOperation(_OperationBase[ResultT]):
    """A submitted job, followed asynchronously: :class:`Operation`'s methods, awaited.

    ``await op`` waits for the result, as ``await op.result()`` does.

    Example:
        >>> op = await client.submit("/jobs", json={"type": "sleep", "input": {}})  # doctest: +SKIP
        >>> await op.result(timeout=30)  # doctest: +SKIP
        >>> await op  # the same  # doctest: +SKIP
    """

    __slots__ = ()
    _base: AsyncClient

    async def refresh(self) -> JobStatus:
        """Send one status request and return the snapshot; see :meth:`Operation.refresh`."""
        return await self._base._run(self._refresh_flow())

    async def wait(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> JobStatus:
        """Wait until the job is terminal; see :meth:`Operation.wait`."""
        options = self._options(timeout, polling, mode, on_progress)
        return await self._base._run(self._wait_flow(options), on_progress)

    async def result(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> ResultT:
        """Wait, then return the result; see :meth:`Operation.result`."""
        options = self._options(timeout, polling, mode, on_progress)
        return await self._base._run(self._result_flow(options), on_progress)

    async def watch(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
    ) -> AsyncGenerator[JobStatus, None]:
        """Iterate over each new snapshot until the job is terminal; see
        :meth:`Operation.watch`."""
        flow = self._wait_flow(self._options(timeout, polling, mode, None, watch=True))
        async with contextlib.aclosing(self._base._iterate(flow)) as statuses:
            async for status in statuses:
                yield status

    async def exception(
        self,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
    ) -> JobFailedError | JobCancelledError | None:
        """Wait, then return the outcome's error (``None`` when completed); see
        :meth:`Operation.exception`."""
        status = await self.wait(timeout=timeout, polling=polling, mode=mode)
        return self._outcome_error(status)

    def add_done_callback(self, fn: Callable[[AsyncOperation[ResultT]], object]) -> None:
        """Call ``fn(operation)`` once the job is seen terminal; see
        :meth:`Operation.add_done_callback` (``fn`` is a plain function, as for
        ``asyncio.Future``)."""
        self._add_done_callback(fn)

    def __await__(self) -> Generator[Any, None, ResultT]:
        """``await op`` is ``await op.result()``."""
        return self.result().__await__()

    async def cancel(self) -> JobStatus:
        """Ask the server to cancel the job; see :meth:`Operation.cancel`."""
        return await self._base._run(self._cancel_flow())

    async def retry(self, *, idempotency_key: str | None = None) -> AsyncOperation[ResultT]:
        """Run a failed, retryable job again; see :meth:`Operation.retry`."""
        observer, flow = self._retry_flow(idempotency_key)
        state = await self._base._run(flow)
        return AsyncOperation(self._base, state, self._result_type, observer)

    async def download(
        self,
        destination: Destination,
        *,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
    ) -> int:
        """Stream the result to a path or binary file; see :meth:`Operation.download`.
        (File writes are plain blocking writes of each received chunk.)"""
        options = self._options(timeout, polling, mode, None)
        return await self._base._run(self._download_flow(destination, options))
