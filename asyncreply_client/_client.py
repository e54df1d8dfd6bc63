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
from ._arguments import callbacks, check_client_options, client_timeout, polling_policy
from ._clock import Clock, SystemClock
from ._commands import Command
from ._drivers import FlowResult, drive, drive_async
from ._flow import (
    DEFAULT_MAX_BODY,
    FlowConfig,
    OperationState,
    StreamBudget,
    WaitMode,
    WaitOptions,
)
from ._models import JobStatus
from ._observe import Observer
from ._operation import AsyncOperation, Operation
from ._policies import Adaptive, LongPolling, PollingPolicy
from ._retry import RetryPolicy
from ._security import RequestFactory
from ._sse import SSEOptions
from ._token import load_token
from ._transport import AsyncConnectionSlots, ConnectionSlots, env_proxies
from ._uploads import Content, Files, QueryParams
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


#: The hold of a ``run()`` whose caller watches progress: a held submission reports nothing
#: until it is answered, so it is held one second only (the least ``Prefer: wait`` says):
#: an instant job still costs one request, a longer one reports from its first second on.
_WATCHED_HOLD = 1.0


def _run_hold(timeout: float | None, watching: bool) -> float:
    """The ``Prefer: wait`` of ``run()``'s submission: its ``timeout``, capped at
    ``_RUN_HOLD``, or at ``_WATCHED_HOLD`` when the caller watches progress."""
    cap = _WATCHED_HOLD if watching else _RUN_HOLD
    return cap if timeout is None else min(max(timeout, 0.0), cap)


class _ClientBase(abc.ABC, Generic[HttpClientT]):
    """The constructor (documented on :class:`Client`), configuration and flow construction
    shared by ``Client`` and ``AsyncClient``; each drives the flows on its ``HttpClientT``."""

    #: Whether the client sends with ``httpx.AsyncClient`` (its byte streams are async).
    _asynchronous = False

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        timeout: float | httpx.Timeout | _Default | None = AUTO,
        http_client: HttpClientT | None = None,
        polling: PollingPolicy | float | None = None,
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
        check_client_options(
            headers=headers,
            retry=retry,
            sse=sse,
            trusted_origins=trusted_origins,
            max_redirects=max_redirects,
            clock=clock,
            events_url_template=events_url_template,
        )
        default_polling = polling_policy(polling)
        self._callbacks: tuple[ProgressCallback, ...] = callbacks(on_progress)
        self._admission = Admission(max_in_flight, max_streams)
        if timeout is not AUTO:
            resolved = client_timeout(timeout)
        elif http_client is not None:
            resolved = http_client.timeout
        else:
            resolved = httpx.Timeout(_DEFAULT_TIMEOUT)
        # The user's httpx client's headers count as configured ones (trusted origins only).
        configured = httpx.Headers(None if http_client is None else http_client.headers)
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
            polling=default_polling if default_polling is not None else Adaptive(),
            long_polling=LongPolling(),
            max_redirects=max_redirects,
            events_url_template=events_url_template,
            sse=sse or SSEOptions(),
            streams=StreamBudget(max_streams),
            max_body=max_body_size,
            retry=retry or RetryPolicy(),
        )

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
        content: Content,
        method: str,
        headers: Mapping[str, str] | None,
        idempotency_key: str | _Default | None,
        callback: str | Mapping[str, Any] | None,
        final_state_via: FinalStateVia | None,
        /,
        hold: float | None = None,
        upload: Mapping[str, Any] | None = None,
    ) -> Generator[Command, Any, OperationState]:
        """The submission flow; the arguments are ``submit``'s, in its order (``hold``:
        ``run()``'s ``Prefer: wait``; ``upload``: its ``params``, ``data`` and ``files``)."""
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
            asynchronous=self._asynchronous,
            **(upload or {}),
        )

    def _submission(
        self,
        reserved: Slot,
        url: str,
        json: Any,
        content: Content,
        method: str,
        headers: Mapping[str, str] | None,
        idempotency_key: str | _Default | None,
        callback: str | Mapping[str, Any] | None,
        final_state_via: FinalStateVia | None,
        hold: float | None = None,
        /,
        upload: Mapping[str, Any] | None = None,
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
                upload,
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

    def _wait_options(
        self,
        timeout: float | None,
        polling: PollingPolicy | float | None,
        mode: WaitMode,
        on_progress: ProgressCallback | None,
        *,
        watch: bool = False,
    ) -> WaitOptions:
        """A wait's options, checked before anything is sent; it watches progress when
        its caller does (``watch()``, or a progress callback of the call or the client)."""
        if on_progress is not None and not callable(on_progress):
            raise TypeError(f"on_progress must be a callable or None; got {on_progress!r}")
        watching = watch or on_progress is not None or bool(self._callbacks)
        return WaitOptions(
            timeout=timeout, polling=polling_policy(polling), mode=mode, watching=watching
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
