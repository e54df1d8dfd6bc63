"""``Client`` and ``AsyncClient``: thin shells that configure the flows and drive them.

``_ClientBase`` (:mod:`._client_base`) owns everything both share: the constructor, the
configuration and the construction of every flow with its arguments. The two classes add only
what differs: the driver that runs a flow on their httpx client, and ``await``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, Generator, Mapping
from types import TracebackType
from typing import Any

import httpx

from ._admission import Slot
from ._client_base import AUTO, ProgressCallback, R, T, _ClientBase, _Default, _run_hold
from ._commands import Command
from ._drivers import FlowResult, drive, drive_async
from ._flow import WaitMode
from ._models import JobStatus
from ._operation import AsyncOperation, Operation
from ._policies import PollingPolicy
from ._transport import AsyncConnectionSlots, ConnectionSlots
from ._uploads import Content, Files, QueryParams
from .dialects import FinalStateVia

__all__ = ["AsyncClient", "Client", "ProgressCallback"]


class Client(_ClientBase[httpx.Client]):
    """A synchronous client for async request-reply APIs.

    Args:
        base_url: the API's base URL; relative URLs resolve against it, and the client's
            credentials are sent only to its origin (and to ``trusted_origins``).
        headers: headers sent with every request to a trusted origin.
        auth: httpx auth (a ``(user, password)`` tuple, an ``httpx.Auth``…), trusted origins
            only.
        timeout: per-request timeout: seconds (>= 0), ``None`` (no limit) or an
            ``httpx.Timeout`` (default 30 s, or ``http_client``'s).
        http_client: your own ``httpx.Client`` (proxies, TLS, transports, respx). Its
            headers and auth are treated as configured ones: sent to trusted origins only.
            Its cookie jar (filled by httpx from every response, affinity cookies
            included) is sent with every request to a trusted origin, never elsewhere; its
            transport, event hooks and proxies apply to every request, which is the user's
            responsibility. It is not closed by this client.
        polling: the default polling policy (default :class:`Adaptive`), or a number of
            seconds between polls (``FixedInterval(seconds)``).
        retry: the transient-fault policy (default :class:`RetryPolicy`).
        dialect: how responses are interpreted: a :class:`Dialect`, or one of the names
            ``"auto"`` (default), ``"reference"``, ``"status-code"``, ``"microsoft"``,
            ``"google"``, ``"arm"``. Anything else raises ``ValueError`` (an unknown
            name) or ``TypeError`` (not a name nor a dialect) here, at construction.
        on_progress: callback(s) given each new snapshot during waits.
        trusted_origins: other origins (``"https://files.example.com"``) that may receive
            the credentials.
        clock: the source of time and sleeps (tests pass a fake one).
        events_url_template: the events URL of servers that announce none, ``{id}`` being
            the job id (e.g. ``"/jobs/{id}/events"``).
        max_redirects: non-303 redirects followed per request.
        sse: options of the SSE wait mode.
        max_streams: event streams open at once; beyond it ``"auto"`` waits poll instead,
            so streams never take the whole connection pool. Long polls and result
            downloads share this bound (they wait for a free slot, first come first served).
        max_body_size: the most bytes of a status, submission or error answer read into
            memory (default 1 MiB; ``None``: no bound). A longer successful answer is a
            ``ProtocolError``; a longer error answer is read up to the bound (its message
            quotes an excerpt). Results fetched by ``result()`` are not bounded;
            ``download()`` streams them.
        max_in_flight: short requests (submissions, status checks, results) in flight at
            once, default 100; more wait their turn in this client: the requests of
            operations already submitted first, then new submissions, each first come
            first served. Any number of concurrent waits costs each the same CPU. The
            client's own connection pool keeps a connection for every slot of both bounds
            alive (without your ``http_client``, and without a proxy in the environment).

    Security: the credentials (``auth``, ``headers``, and the ``http_client``'s) reach only
    the base URL's origin and ``trusted_origins``; a status, result, events or redirect URL
    elsewhere is requested without them (and with ``auth=None``, so no httpx auth either).

    Example:
        >>> with Client("http://127.0.0.1:8080") as client:  # doctest: +SKIP
        ...     op = client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 1}})
        ...     print(op.result(timeout=30))
    """

    def _new_http(self) -> httpx.Client:
        limits, transport = self._own_pool(ConnectionSlots)
        return httpx.Client(limits=limits, transport=transport)

    def _iterate(
        self,
        flow: Generator[Command, Any, T],
        out: FlowResult[T] | None = None,
        on_progress: ProgressCallback | None = None,
        reserved: Slot | None = None,
    ) -> Generator[JobStatus, None, None]:
        """Drive ``flow``: give each status to the progress callbacks, then yield it."""
        sink: FlowResult[T] = FlowResult() if out is None else out
        emitters = self._emitters(on_progress)
        with contextlib.closing(
            drive(flow, self._http, self._clock, sink, self._admission, reserved, self._ends)
        ) as statuses:
            for status in statuses:
                for callback in emitters:
                    callback(status)
                yield status

    def _run(
        self,
        flow: Generator[Command, Any, T],
        on_progress: ProgressCallback | None = None,
        reserved: Slot | None = None,
    ) -> T:
        out: FlowResult[T] = FlowResult()
        if on_progress is None and not self._callbacks:  # nobody to hand statuses to
            statuses = drive(
                flow, self._http, self._clock, out, self._admission, reserved, self._ends
            )
            try:
                for _ in statuses:
                    pass
            finally:
                statuses.close()
            return out.value
        for _ in self._iterate(flow, out, on_progress, reserved):
            pass
        return out.value

    def submit(
        self,
        url: str,
        *,
        json: Any = None,
        content: Content = None,
        params: QueryParams | None = None,
        data: Mapping[str, Any] | None = None,
        files: Files | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | _Default | None = AUTO,
        callback: str | Mapping[str, Any] | None = None,
        final_state_via: FinalStateVia | None = None,
        result_type: type[R] | None = None,
    ) -> Operation[R]:
        """Submit an operation and return it (without waiting).

        Args:
            url: where to submit (relative to ``base_url``, or absolute).
            json: a JSON body. Or ``content``: bytes (sent as
                ``application/octet-stream`` unless ``headers`` name a ``Content-Type``),
                text (``text/plain; charset=utf-8``), or a byte stream (an iterator; an
                async one for ``AsyncClient``), which is sent once and never retried.
                Or a form: ``data`` (fields) and ``files`` (httpx's ``files=``: a
                multipart upload; each file is read again from its start on a retry, and
                an unseekable one makes the submission one-shot).
            params: query parameters of the submission URL (httpx's ``params=``).
            method: POST by default (PUT, PATCH, DELETE for APIs that start operations so).
            headers: extra headers for this submission (its origin only).
            idempotency_key: by default a fresh UUID per call, reused across the retries
                of this submission; a string of your own; or ``None`` for no key, in which
                case the submission is never retried.
            callback: a webhook URL, or ``{"url": ..., "events": [...]}``, added to the JSON
                body as ``callback`` for servers that take one.
            final_state_via: where the final result is, for APIs that say so (Azure's
                ``final-state-via``): ``"location"`` (GET the answer's ``Location``),
                ``"original-uri"`` (GET ``url``), ``"azure-async-operation"`` /
                ``"operation-location"`` (that monitor's last answer is the result).
                ``None`` (default): the dialect decides (see the guide's dialect table).
            result_type: a type (e.g. a pydantic model) that ``result()`` validates into.

        Raises:
            SubmissionRejectedError: the server answered 4xx.
            ProtocolError: the answer broke the protocol.
            TransportError: the network failed (after retries, when allowed).

        Example:
            >>> op = client.submit("/jobs", json={"type": "echo", "input": {}})  # doctest: +SKIP
        """
        reserved = self._admission.reserve()  # the turn first: nothing built while waiting
        observer, flow = self._submission(
            reserved,
            url,
            json,
            content,
            method,
            headers,
            idempotency_key,
            callback,
            final_state_via,
            None,
            {"params": params, "data": data, "files": files},
        )
        return Operation(self, self._run(flow, reserved=reserved), result_type, observer)

    def operation(
        self,
        status_url: str,
        *,
        events_url: str | None = None,
        cancel_url: str | None = None,
        result_type: type[R] | None = None,
    ) -> Operation[R]:
        """Attach to an existing operation by its status URL (no request is sent)."""
        state = self._attach_state(status_url, events_url, cancel_url)
        return Operation(self, state, result_type)

    def resume(self, token: str, *, result_type: type[R] | None = None) -> Operation[R]:
        """Continue following an operation from ``op.to_token()``.

        Raises:
            InvalidTokenError: the token is malformed, of another version, or invalid.
        """
        return Operation(self, self._resumed_state(token), result_type, origin="resume")

    def run(
        self,
        url: str,
        *,
        json: Any = None,
        content: Content = None,
        params: QueryParams | None = None,
        data: Mapping[str, Any] | None = None,
        files: Files | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | _Default | None = AUTO,
        callback: str | Mapping[str, Any] | None = None,
        final_state_via: FinalStateVia | None = None,
        result_type: type[R] | None = None,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> R:
        """Submit and wait: return the result (see :meth:`submit` and
        :meth:`Operation.result`), typed ``result_type`` when given.

        The submission asks the server to hold its answer until the job ends (``Prefer:
        wait=N``, N the ``timeout`` capped at 10 s): a server that supports it answers an
        instant job with its result (one request; two when the result is behind a 303).
        With a progress callback (``on_progress``, or the client's) the hold is 1 s only,
        so that the callbacks see the job from its first second (its snapshot as
        submitted, then each change). ``timeout`` covers the submission and the wait.
        """
        options = self._wait_options(timeout, polling, mode, on_progress)
        emitters, watching = self._emitters(on_progress), options.watching
        started = self._clock.now()
        reserved = self._admission.reserve()  # the turn first: nothing built while waiting
        observer, flow = self._submission(
            reserved,
            url,
            json,
            content,
            method,
            headers,
            idempotency_key,
            callback,
            final_state_via,
            _run_hold(timeout, watching),
            {"params": params, "data": data, "files": files},
        )
        state = self._run(flow, reserved=reserved)
        if state.last is not None and not state.last.is_terminal:
            # The job as submitted: reported at once (the wait reports a terminal one).
            for report in emitters:
                report(state.last)
        op = Operation(self, state, result_type, observer)
        # ``op.result()``'s flow, driven here: a call of ``op.result()`` would stay suspended
        # for the whole wait, a frame more per operation of a fan-out.
        options = op._options(self._left(timeout, started), polling, mode, on_progress)
        return self._run(op._result_flow(options), on_progress)

    def close(self) -> None:
        """Close the event streams waits left open and the underlying httpx client, unless
        it was given by the caller."""
        try:
            self._ends.close()
        finally:
            if self._owns_http:
                self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _call(callback: ProgressCallback, status: JobStatus) -> None:
    outcome = callback(status)
    if inspect.isawaitable(outcome):
        await outcome


class AsyncClient(_ClientBase[httpx.AsyncClient]):
    """An asynchronous client: :class:`Client`'s constructor and methods, awaited.

    ``http_client`` is an ``httpx.AsyncClient``; ``on_progress`` callbacks may be plain
    functions or coroutine functions; a ``content=`` stream is an async iterable of bytes.

    Example:
        >>> async with AsyncClient("http://127.0.0.1:8080") as client:  # doctest: +SKIP
        ...     op = await client.submit("/jobs", json={"type": "echo", "input": {}})
        ...     print(await op.result(timeout=30))
    """

    def _new_http(self) -> httpx.AsyncClient:
        limits, transport = self._own_pool(AsyncConnectionSlots)
        return httpx.AsyncClient(limits=limits, transport=transport)

    _asynchronous = True

    async def _iterate(
        self,
        flow: Generator[Command, Any, T],
        out: FlowResult[T] | None = None,
        on_progress: ProgressCallback | None = None,
        reserved: Slot | None = None,
    ) -> AsyncGenerator[JobStatus, None]:
        """Drive ``flow``: give each status to the progress callbacks, then yield it."""
        sink: FlowResult[T] = FlowResult() if out is None else out
        emitters = self._emitters(on_progress)
        async with contextlib.aclosing(
            drive_async(flow, self._http, self._clock, sink, self._admission, reserved, self._ends)
        ) as it:
            async for status in it:
                for callback in emitters:
                    await _call(callback, status)
                yield status

    async def _run(
        self,
        flow: Generator[Command, Any, T],
        on_progress: ProgressCallback | None = None,
        reserved: Slot | None = None,
    ) -> T:
        out: FlowResult[T] = FlowResult()
        if on_progress is None and not self._callbacks:  # nobody to hand statuses to
            driven = drive_async(
                flow, self._http, self._clock, out, self._admission, reserved, self._ends
            )
            async with contextlib.aclosing(driven) as statuses:
                async for _ in statuses:
                    pass
            return out.value
        async with contextlib.aclosing(self._iterate(flow, out, on_progress, reserved)) as statuses:
            async for _ in statuses:
                pass
        return out.value

    async def submit(
        self,
        url: str,
        *,
        json: Any = None,
        content: Content = None,
        params: QueryParams | None = None,
        data: Mapping[str, Any] | None = None,
        files: Files | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | _Default | None = AUTO,
        callback: str | Mapping[str, Any] | None = None,
        final_state_via: FinalStateVia | None = None,
        result_type: type[R] | None = None,
    ) -> AsyncOperation[R]:
        """Submit an operation and return it (without waiting); see :meth:`Client.submit`."""
        reserved = await self._admission.areserve()  # see Client.submit
        observer, flow = self._submission(
            reserved,
            url,
            json,
            content,
            method,
            headers,
            idempotency_key,
            callback,
            final_state_via,
            None,
            {"params": params, "data": data, "files": files},
        )
        state = await self._run(flow, reserved=reserved)
        return AsyncOperation(self, state, result_type, observer)

    def operation(
        self,
        status_url: str,
        *,
        events_url: str | None = None,
        cancel_url: str | None = None,
        result_type: type[R] | None = None,
    ) -> AsyncOperation[R]:
        """Attach to an existing operation by its status URL; see :meth:`Client.operation`."""
        state = self._attach_state(status_url, events_url, cancel_url)
        return AsyncOperation(self, state, result_type)

    def resume(self, token: str, *, result_type: type[R] | None = None) -> AsyncOperation[R]:
        """Continue following an operation from ``op.to_token()``; see :meth:`Client.resume`."""
        return AsyncOperation(self, self._resumed_state(token), result_type, origin="resume")

    async def run(
        self,
        url: str,
        *,
        json: Any = None,
        content: Content = None,
        params: QueryParams | None = None,
        data: Mapping[str, Any] | None = None,
        files: Files | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | _Default | None = AUTO,
        callback: str | Mapping[str, Any] | None = None,
        final_state_via: FinalStateVia | None = None,
        result_type: type[R] | None = None,
        timeout: float | None = None,
        polling: PollingPolicy | float | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> R:
        """Submit and wait: return the result; see :meth:`Client.run`."""
        options = self._wait_options(timeout, polling, mode, on_progress)
        emitters, watching = self._emitters(on_progress), options.watching
        started = self._clock.now()
        reserved = await self._admission.areserve()  # see Client.submit
        observer, flow = self._submission(
            reserved,
            url,
            json,
            content,
            method,
            headers,
            idempotency_key,
            callback,
            final_state_via,
            _run_hold(timeout, watching),
            {"params": params, "data": data, "files": files},
        )
        state = await self._run(flow, reserved=reserved)
        if state.last is not None and not state.last.is_terminal:
            # The job as submitted: reported at once (the wait reports a terminal one).
            for report in emitters:
                await _call(report, state.last)
        op = AsyncOperation(self, state, result_type, observer)
        # As Client.run: op.result()'s flow, without a coroutine of op.result() suspended.
        options = op._options(self._left(timeout, started), polling, mode, on_progress)
        return await self._run(op._result_flow(options), on_progress)

    async def aclose(self) -> None:
        """Close the event streams waits left open and the underlying httpx client, unless
        it was given by the caller."""
        try:
            await self._ends.aclose()
        finally:
            if self._owns_http:
                await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
