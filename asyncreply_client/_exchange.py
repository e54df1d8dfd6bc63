"""One exchange of a flow: the flows' configuration, and ``send``, which builds each attempt
through the request factory (credentials by origin), retries transient faults through the
``_retry`` sub-flow and follows non-303 redirects. I/O-free, like every flow."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._commands import CloseStream, Command, Send
from ._errors import ProtocolError
from ._http import HttpResponse
from ._policies import PollingPolicy
from ._retry import Answer, Recorder, RetryPolicy, attempts
from ._security import RequestFactory
from ._sse import SSEOptions
from ._uploads import Body
from ._urls import resolve_url, same_origin
from .dialects import Dialect

__all__ = ["DEFAULT_MAX_BODY", "FlowConfig", "StreamBudget", "answer_fields", "open_stream", "send"]

#: Non-303 redirects, followed by the flows themselves (RFC 9110 §15.4). A 303 is an answer
#: of the protocol ("done, the result is over there") and is never followed blindly.
_REDIRECTS = frozenset({301, 302, 307, 308})
#: Default budget of open event streams per client (half of httpx's default pool of 100).
_DEFAULT_STREAMS = 50
#: Default bound of the bodies read into memory (status documents, errors): a status
#: document is a few hundred bytes; 1 MiB leaves room for big ones and stops a 50 MiB
#: error page from costing a gigabyte. Results fetched by ``result()`` are not bounded,
#: and ``download()`` streams.
DEFAULT_MAX_BODY = 1 << 20


class StreamBudget:
    """How many event streams one client keeps open at once.

    Each open stream holds a pooled connection for as long as the job runs; without a bound,
    many concurrent waits in ``"auto"`` mode would take every connection of the pool and
    starve their own status requests. Beyond the budget, ``"auto"`` waits poll instead
    (an explicit ``mode="sse"`` always streams). Thread-safe: a sync client may be shared.
    """

    __slots__ = ("_lock", "limit", "open")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("max_streams must not be negative")
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def try_acquire(self, *, force: bool = False) -> bool:
        """Count one more open stream if the budget allows it (always with ``force``)."""
        with self._lock:
            if not force and self.open >= self.limit:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        """Count one stream fewer."""
        with self._lock:
            self.open = max(self.open - 1, 0)


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Everything a flow needs from its client; pure values and pure functions.

    Attributes:
        requests: builds requests and decides their credentials (by origin).
        dialect: interprets responses.
        now: the clock's ``now`` (monotonic seconds).
        polling: the default polling policy.
        long_polling: the policy of ``mode="long-poll"``.
        max_redirects: how many non-303 redirects one request may follow.
        events_url_template: a template (``{id}`` placeholder, relative to the base URL) for
            the events URL of servers that do not announce one.
        sse: options of the SSE channel.
        streams: the client's budget of concurrently open event streams.
        retry: how transient faults are retried (the ``_retry`` sub-flow); ``None``: never,
            and every answer, transient or not, is the caller's (the contract checker).
        follow_redirects: whether non-303 redirects are followed (else they are answers).
        record: told of every attempt, its request and its answer or exception.
        wall_now: wall-clock epoch seconds, for an HTTP-date ``Retry-After`` sent without
            a ``Date`` header.
        random: uniform random numbers in ``[0, 1)``, the retry backoff's jitter.
        max_body: the most bytes of a body read into memory (status, submission, error
            answers); ``None``: no bound. A successful result's body is not bounded.
    """

    requests: RequestFactory
    dialect: Dialect
    now: Callable[[], float]
    polling: PollingPolicy
    long_polling: PollingPolicy
    max_redirects: int = 10
    events_url_template: str | None = None
    sse: SSEOptions = field(default_factory=SSEOptions)
    streams: StreamBudget = field(default_factory=lambda: StreamBudget(_DEFAULT_STREAMS))
    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    follow_redirects: bool = True
    record: Recorder | None = None
    wall_now: Callable[[], float] = time.time
    random: Callable[[], float] = random.random
    max_body: int | None = DEFAULT_MAX_BODY


def send(
    cfg: FlowConfig,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    private_headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    content: bytes | Body | None = None,
    read_timeout: float | None = None,
    accept: str = "application/json",
    retry: bool = True,
    stream: bool = False,
    deadline: float | None = None,
    bound: bool = True,
    submission: bool = False,
) -> Generator[Command, Any, Answer]:
    """Send one request and return its answer (and the answer's verdict): transient faults
    retried by the ``_retry`` sub-flow (with ``retry``, within ``deadline``), non-303
    redirects followed (bounded; a loop is a ``ProtocolError``).

    Each attempt's request is built afresh by the request factory, with the credentials of
    its origin. ``private_headers`` (the caller's per-call headers) go only to the first URL's
    origin. A 301/302 turns a POST into a GET (RFC 9110 §15.4.2-3); 307/308 keep method and
    body. At most ``cfg.max_body`` bytes of a body are read (of an error answer's always,
    of a successful one's with ``bound``). A ``submission`` (and its retries and redirects)
    waits for its turn behind the requests of operations under way.

    Raises:
        TransportError: the last attempt ended with a transport fault or a transient answer.
        ProtocolError: a redirect without a usable ``Location``, a loop, or too many; a
            successful answer's body longer than ``cfg.max_body``.
    """
    first = cfg.requests.resolve(url)
    target = first
    visited: set[tuple[str, str]] | None = None  # made at the first redirect
    for _ in range(cfg.max_redirects + 1):
        own = headers or _NO_HEADERS
        if private_headers and same_origin(first, target):
            own = {**private_headers, **own}
        make = _Attempt(
            cfg.requests,
            method,
            target,
            own,
            params,
            content,
            read_timeout,
            accept,
            stream,
            cfg.max_body if bound else None,
            cfg.max_body,
            submission,
        )
        answer = yield from attempts(cfg, make, retry=retry, deadline=deadline)
        response = answer.response
        if response.truncated and response.status_code < 400:
            raise ProtocolError(
                f"the answer's body is larger than the client reads (max_body_size="
                f"{cfg.max_body} bytes): not a status document",
                **answer_fields(response),
            )
        if response.status_code not in _REDIRECTS or not cfg.follow_redirects:
            return answer
        if stream:
            yield CloseStream()
        location = response.headers.get("location")
        if not location:
            raise ProtocolError("redirect without a Location header", **answer_fields(response))
        resolved = resolve_url(response.url, location)
        if resolved is None:
            raise ProtocolError(
                f"redirect to an unusable Location {location!r}", **answer_fields(response)
            )
        visited = visited or set()
        visited.add((method, target))
        target = resolved
        if response.status_code in (301, 302) and method == "POST":
            method, content = "GET", None
            headers = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        elif isinstance(content, Body) and content.one_shot is not None:
            raise ProtocolError(
                f"the server redirected the request, which must then be sent again: "
                f"{content.one_shot}",
                **answer_fields(response),
            )
        if (method, target) in visited:
            raise ProtocolError(f"redirect loop back to {target}", **answer_fields(response))
    raise ProtocolError(f"more than {cfg.max_redirects} redirects", url=first)


_NO_HEADERS: Mapping[str, str] = {}  # read only: the request factory copies what it gets


@dataclass(frozen=True, slots=True)
class _Attempt:
    """Makes the ``Send`` of each attempt at one request: a fresh request from the request
    factory, and the credentials of its origin. (One small object per request: a wait keeps
    one alive per operation while it polls.)"""

    requests: RequestFactory
    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str] | None
    content: bytes | Body | None
    read_timeout: float | None
    accept: str
    stream: bool
    max_body: int | None
    max_error_body: int | None
    submission: bool

    def __call__(self) -> Send:
        request = self.requests.build(
            self.method,
            self.url,
            headers=self.headers,
            params=self.params,
            content=self.content,
            read_timeout=self.read_timeout,
            accept=self.accept,
        )
        # The origin of the built URL (not of ``self.url``: the factory's memo of URL strings
        # would then keep one entry per job's status URL).
        return Send(
            request,
            auth=self.requests.auth_for(request.url),
            stream=self.stream,
            max_body=self.max_body,
            max_error_body=self.max_error_body,
            submission=self.submission,
        )


def open_stream(
    cfg: FlowConfig, url: str, *, headers: Mapping[str, str], timeout: Mapping[str, float]
) -> Generator[Command, Any, HttpResponse]:
    """Open an event stream: one attempt (a transient answer is a ``TransportError``), no
    redirect followed, the timeouts given (httpx's per-request ``timeout`` extension)."""

    def make() -> Send:
        request = cfg.requests.build("GET", url)
        for name, value in headers.items():
            # Set one by one: httpx encodes a str value set so as UTF-8 (a Last-Event-ID may
            # be any UTF-8 text), where a Headers mapping would insist on ASCII.
            request.headers[name] = value
        request.extensions = {**request.extensions, "timeout": dict(timeout)}
        return Send(request, auth=cfg.requests.auth_for(request.url), stream=True)

    answer = yield from attempts(cfg, make, retry=False)
    return answer.response


def answer_fields(response: HttpResponse) -> dict[str, Any]:
    """The ``status_code``, ``url`` and ``body`` of an error about ``response``."""
    return {"status_code": response.status_code, "url": response.url, "body": response.content}
