"""``Client`` and ``AsyncClient``: thin shells that configure the flows and drive them.

``_ClientBase`` owns everything both share: the constructor, the configuration and the
construction of every flow with its arguments. The two classes add only what differs: the
driver that runs a flow on their httpx client, and ``await``.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import enum
import inspect
import uuid
from collections.abc import (
    AsyncGenerator,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Generic

import httpx
from typing_extensions import TypeVar

from . import _flow
from ._admission import DEFAULT_MAX_IN_FLIGHT, Admission, Slot, pool_limits
from ._clock import Clock, SystemClock
from ._commands import Command
from ._drivers import FlowResult, drive, drive_async
from ._flow import DEFAULT_MAX_BODY, FlowConfig, OperationState, StreamBudget, WaitMode
from ._models import JobStatus
from ._observe import Observer
from ._operation import AsyncOperation, Operation
from ._policies import Adaptive, LongPolling, PollingPolicy
from ._retry import RetryPolicy
from ._security import RequestFactory, check_headers
from ._sse import SSEOptions
from ._token import load_token
from ._transport import AsyncConnectionSlots, ConnectionSlots, env_proxies
from .dialects import Dialect, FinalStateVia, dialect_from

__all__ = ["AsyncClient", "Client", "ProgressCallback"]

T = TypeVar("T")
#: An operation's ``result_type``. Its PEP 696 default types an omitted one as ``Any``
#: (``submit(...)`` is an ``Operation[Any]``, ``submit(..., result_type=M)`` an
#: ``Operation[M]``), where two ``@overload`` stubs per method would be needed otherwise.
R = TypeVar("R", default=Any)
HttpClientT = TypeVar("HttpClientT", bound=httpx.Client | httpx.AsyncClient)
TransportT = TypeVar("TransportT", bound=httpx.BaseTransport | httpx.AsyncBaseTransport)

#: A progress callback: called with each new snapshot (an async client awaits a coroutine).
ProgressCallback = Callable[[JobStatus], object]


class _Default(enum.Enum):
    """Sentinels for "not given" where ``None`` means something (as httpx's
    ``USE_CLIENT_DEFAULT``)."""

    AUTO = "auto"


AUTO = _Default.AUTO
_DEFAULT_TIMEOUT = 30.0
#: The longest ``run()`` asks a server to hold its submission (``Prefer: wait``): an instant
#: job's result comes with the answer; a longer job's wait goes on in the chosen mode.
_RUN_HOLD = 10.0


def _run_hold(timeout: float | None) -> float:
    """The ``Prefer: wait`` of ``run()``'s submission: its ``timeout``, capped."""
    return _RUN_HOLD if timeout is None else min(max(timeout, 0.0), _RUN_HOLD)


class _ClientBase(abc.ABC, Generic[HttpClientT]):
    """The constructor (documented on :class:`Client`), configuration and flow construction
    shared by ``Client`` and ``AsyncClient``; each drives the flows on its ``HttpClientT``."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        timeout: float | httpx.Timeout | _Default | None = AUTO,
        http_client: HttpClientT | None = None,
        polling: PollingPolicy | None = None,
        retry: RetryPolicy | None = None,
        dialect: Dialect | str | None = None,
        on_progress: ProgressCallback | Sequence[ProgressCallback] | None = None,
        trusted_origins: Iterable[str] = (),
        clock: Clock | None = None,
        events_url_template: str | None = None,
        max_redirects: int = 10,
        sse: SSEOptions | None = None,
        max_streams: int = 50,
        max_body_size: int | None = DEFAULT_MAX_BODY,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        if max_body_size is not None and not (isinstance(max_body_size, int) and max_body_size > 0):
            raise ValueError(f"max_body_size must be a positive int or None; got {max_body_size!r}")
        self._admission = Admission(max_in_flight, max_streams)
        if timeout is not AUTO:
            resolved = httpx.Timeout(timeout)
        elif http_client is not None:
            resolved = http_client.timeout
        else:
            resolved = httpx.Timeout(_DEFAULT_TIMEOUT)
        # The user's httpx client's headers count as configured ones (trusted origins only).
        configured = httpx.Headers(None if http_client is None else http_client.headers)
        check_headers(headers)  # named here, not a UnicodeEncodeError from httpx
        configured.update(headers or {})
        self._requests = RequestFactory.create(
            base_url,
            headers=configured,
            auth=auth,
            trusted_origins=trusted_origins,
            timeout=resolved,
        )
        # Made once every argument is checked, so that a refused one leaves nothing open.
        self._owns_http = http_client is None
        self._http: HttpClientT = self._new_http() if http_client is None else http_client
        self._requests = dataclasses.replace(self._requests, cookies=self._http)
        self._clock: Clock = clock or SystemClock()
        chosen_dialect = dialect_from(dialect)
        self._flow_cfg = FlowConfig(
            requests=self._requests,
            dialect=chosen_dialect,
            now=self._clock.now,
            polling=polling if polling is not None else Adaptive(),
            long_polling=LongPolling(),
            max_redirects=max_redirects,
            events_url_template=events_url_template,
            sse=sse or SSEOptions(),
            streams=StreamBudget(max_streams),
            max_body=max_body_size,
            retry=retry or RetryPolicy(),
        )
        if on_progress is None:
            self._callbacks: tuple[ProgressCallback, ...] = ()
        elif callable(on_progress):
            self._callbacks = (on_progress,)
        else:
            self._callbacks = tuple(on_progress)

    @abc.abstractmethod
    def _new_http(self) -> HttpClientT:
        """The httpx client made when none is given (closed with this client)."""

    def _own_pool(
        self, slots: Callable[[int], TransportT]
    ) -> tuple[httpx.Limits, TransportT | None]:
        """The limits and the transport of the httpx client made when none is given: a
        connection per admission slot, each in a pool of its own (``slots``), except where
        the environment names a proxy (httpx's pool then, which applies it)."""
        limits = pool_limits(self._admission.max_in_flight, self._admission.max_streams)
        if env_proxies() or limits.max_connections is None:
            return limits, None
        return limits, slots(limits.max_connections)

    @property
    def base_url(self) -> str:
        """The base URL; relative URLs resolve against it and credentials go to its origin."""
        return self._requests.base_url

    @property
    def dialect(self) -> Dialect:
        """The dialect interpreting responses."""
        return self._flow_cfg.dialect

    @staticmethod
    def _key(key: str | _Default | None) -> str:
        return str(uuid.uuid4()) if key is None or key is AUTO else key

    def _submit_flow(
        self,
        url: str,
        json: Any,
        content: bytes | str | None,
        method: str,
        headers: Mapping[str, str] | None,
        idempotency_key: str | _Default | None,
        callback: str | Mapping[str, Any] | None,
        final_state_via: FinalStateVia | None,
        /,
        hold: float | None = None,
    ) -> Generator[Command, Any, OperationState]:
        """The submission flow; the arguments are ``submit``'s, in its order (``hold``:
        ``run()``'s ``Prefer: wait``)."""
        return _flow.submit(
            self._flow_cfg,
            url,
            method=method,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=None if idempotency_key is None else self._key(idempotency_key),
            callback=callback,
            final_state_via=final_state_via,
            hold=hold,
        )

    def _submission(
        self,
        reserved: Slot,
        url: str,
        json: Any,
        content: bytes | str | None,
        method: str,
        headers: Mapping[str, str] | None,
        idempotency_key: str | _Default | None,
        callback: str | Mapping[str, Any] | None,
        final_state_via: FinalStateVia | None,
        hold: float | None = None,
        /,
    ) -> tuple[Observer, Generator[Command, Any, OperationState]]:
        """The submission flow, watched by its observer; ``reserved`` (the turn it waited
        for, see ``Admission.reserve``) is given back if they cannot be built."""
        try:
            flow = self._submit_flow(
                url,
                json,
                content,
                method,
                headers,
                idempotency_key,
                callback,
                final_state_via,
                hold,
            )
            return self._watch_submission(flow)
        except BaseException:
            reserved.release()
            raise

    def _left(self, timeout: float | None, started: float) -> float | None:
        """What remains of ``run()``'s ``timeout`` once its submission is answered."""
        return None if timeout is None else max(timeout - (self._clock.now() - started), 0.0)

    def _watch_submission(
        self, flow: Generator[Command, Any, OperationState]
    ) -> tuple[Observer, Generator[Command, Any, OperationState]]:
        """``flow`` watched by the observer (logging, tracing) of the operation it creates."""
        observer = Observer(None, origin="submit", dialect=self._flow_cfg.dialect.name)
        return observer, observer.observe(flow, submitting=True)

    def _attach_state(
        self, status_url: str, events_url: str | None, cancel_url: str | None
    ) -> OperationState:
        resolve = self._requests.resolve
        return OperationState(
            status_url=resolve(status_url),
            events_url=None if events_url is None else resolve(events_url),
            cancel_url=None if cancel_url is None else resolve(cancel_url),
        )

    def _resumed_state(self, token: str) -> OperationState:
        data = load_token(token)
        return OperationState(
            status_url=data.status_url,
            id=data.id,
            events_url=data.events_url,
            cancel_url=data.cancel_url,
            final_url=data.result_url,
            submission=data.submission(),
            seen=True,
        )

    def _emitters(self, extra: ProgressCallback | None) -> tuple[ProgressCallback, ...]:
        return self._callbacks if extra is None else (*self._callbacks, extra)


class Client(_ClientBase[httpx.Client]):
    """A synchronous client for async request-reply APIs.

    Args:
        base_url: the API's base URL; relative URLs resolve against it, and the client's
            credentials are sent only to its origin (and to ``trusted_origins``).
        headers: headers sent with every request to a trusted origin.
        auth: httpx auth (a ``(user, password)`` tuple, an ``httpx.Auth``…), trusted origins
            only.
        timeout: per-request timeout (default 30 s, or ``http_client``'s).
        http_client: your own ``httpx.Client`` (proxies, TLS, transports, respx). Its
            headers and auth are treated as configured ones: sent to trusted origins only.
            Its cookie jar (filled by httpx from every response, affinity cookies
            included) is sent with every request to a trusted origin, never elsewhere; its
            transport, event hooks and proxies apply to every request, which is the user's
            responsibility. It is not closed by this client.
        polling: the default polling policy (default :class:`Adaptive`).
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
            drive(flow, self._http, self._clock, sink, self._admission, reserved)
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
        for _ in self._iterate(flow, out, on_progress, reserved):
            pass
        return out.value

    def submit(
        self,
        url: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
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
            json: a JSON body. ``content``: raw bytes or text instead.
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
        content: bytes | str | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | _Default | None = AUTO,
        callback: str | Mapping[str, Any] | None = None,
        final_state_via: FinalStateVia | None = None,
        result_type: type[R] | None = None,
        timeout: float | None = None,
        polling: PollingPolicy | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> R:
        """Submit and wait: return the result (see :meth:`submit` and
        :meth:`Operation.result`), typed ``result_type`` when given.

        The submission asks the server to hold its answer until the job ends (``Prefer:
        wait=N``, N the ``timeout`` capped at 10 s): a server that supports it answers an
        instant job with its result (one request; two when the result is behind a 303).
        ``timeout`` covers the submission and the wait together.
        """
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
            _run_hold(timeout),
        )
        state = self._run(flow, reserved=reserved)
        if state.last is not None and state.last.is_terminal:
            # Finished within the held submission: its callbacks still see the end.
            for report in self._emitters(on_progress):
                report(state.last)
        op = Operation(self, state, result_type, observer)
        return op.result(
            timeout=self._left(timeout, started),
            polling=polling,
            mode=mode,
            on_progress=on_progress,
        )

    def close(self) -> None:
        """Close the underlying httpx client, unless it was given by the caller."""
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
    functions or coroutine functions.

    Example:
        >>> async with AsyncClient("http://127.0.0.1:8080") as client:  # doctest: +SKIP
        ...     op = await client.submit("/jobs", json={"type": "echo", "input": {}})
        ...     print(await op.result(timeout=30))
    """

    def _new_http(self) -> httpx.AsyncClient:
        limits, transport = self._own_pool(AsyncConnectionSlots)
        return httpx.AsyncClient(limits=limits, transport=transport)

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
            drive_async(flow, self._http, self._clock, sink, self._admission, reserved)
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
        async with contextlib.aclosing(self._iterate(flow, out, on_progress, reserved)) as statuses:
            async for _ in statuses:
                pass
        return out.value

    async def submit(
        self,
        url: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
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
        content: bytes | str | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | _Default | None = AUTO,
        callback: str | Mapping[str, Any] | None = None,
        final_state_via: FinalStateVia | None = None,
        result_type: type[R] | None = None,
        timeout: float | None = None,
        polling: PollingPolicy | None = None,
        mode: WaitMode = "auto",
        on_progress: ProgressCallback | None = None,
    ) -> R:
        """Submit and wait: return the result; see :meth:`Client.run`."""
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
            _run_hold(timeout),
        )
        state = await self._run(flow, reserved=reserved)
        if state.last is not None and state.last.is_terminal:
            # Finished within the held submission: its callbacks still see the end.
            for report in self._emitters(on_progress):
                await _call(report, state.last)
        op = AsyncOperation(self, state, result_type, observer)
        return await op.result(
            timeout=self._left(timeout, started),
            polling=polling,
            mode=mode,
            on_progress=on_progress,
        )

    async def aclose(self) -> None:
        """Close the underlying httpx client, unless it was given by the caller."""
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
