"""What ``Client`` and ``AsyncClient`` share: the constructor, the configuration and the
construction of every flow with its arguments (``_ClientBase``), and the ``run()`` hold.

The two shells in :mod:`._client` add only what differs: the driver that runs a flow on
their httpx client, and ``await``.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import uuid
from collections.abc import (
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Generic

import httpx
from typing_extensions import TypeVar

from . import _flow
from ._admission import DEFAULT_MAX_IN_FLIGHT, Admission, Slot, pool_limits
from ._arguments import (
    callbacks,
    check_client_options,
    client_timeout,
    polling_policy,
    request_url,
)
from ._clock import Clock, SystemClock
from ._commands import Command
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
from ._policies import Adaptive, LongPolling, PollingPolicy
from ._retry import RetryPolicy
from ._security import RequestFactory, check_headers
from ._sse import SSEOptions
from ._stream_ends import StreamEnds
from ._token import load_token
from ._transport import env_proxies
from ._uploads import Content
from .dialects import Dialect, FinalStateVia, dialect_from

__all__ = ["AUTO", "ProgressCallback", "R", "T"]

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
        # Event streams a wait has its answer from, closed off the wait's path.
        self._ends = StreamEnds()
        if timeout is not AUTO:
            resolved = client_timeout(timeout)
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
        """The submission flow, watched by its observer; the arguments are ``submit``'s, in
        its order (``hold``: ``run()``'s ``Prefer: wait``; ``upload``: its ``params``,
        ``data`` and ``files``). ``reserved`` (the turn it waited for, see
        ``Admission.reserve``) is given back if they cannot be built."""
        try:
            flow = _flow.submit(
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

        def optional(url: str | None, name: str) -> str | None:
            return None if url is None else request_url(resolve, url, name)

        return OperationState(
            status_url=request_url(resolve, status_url, "status_url"),
            events_url=optional(events_url, "events_url"),
            cancel_url=optional(cancel_url, "cancel_url"),
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
