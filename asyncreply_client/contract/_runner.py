"""The checker's entry points, :func:`check` and :func:`acheck`: their options, and the run
of the checker on the SDK's own drivers (the same sync and async loops as the client's)."""

from __future__ import annotations

import contextlib
import dataclasses
import json as jsonlib
import math
from collections.abc import Mapping
from typing import Any

import httpx

from .._clock import SystemClock
from .._drivers import FlowResult, drive, drive_async
from .._urls import is_http_url
from ..dialects import Dialect, dialect_from
from ._audits import _Options
from ._checks import _Checker
from ._report import ContractReport

__all__ = ["acheck", "check"]

_JSON = "application/json"


_OPTION_NAMES = (
    "json",
    "content",
    "method",
    "headers",
    "timeout",
    "request_timeout",
    "min_poll_interval",
    "max_poll_interval",
    "max_retry_after",
    "idempotency",
    "alternate_content",
)


def _option_args(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`_options`, picked from ``check``'s or ``acheck``'s
    own arguments (their signatures are the same apart from ``http_client``)."""
    return {name: arguments[name] for name in _OPTION_NAMES}


def _options(
    url: str,
    *,
    json: Any,
    content: bytes | str | None,
    method: str,
    headers: Mapping[str, str] | None,
    timeout: float,
    request_timeout: float,
    min_poll_interval: float,
    max_poll_interval: float,
    max_retry_after: float,
    idempotency: bool,
    alternate_content: bytes | str | None,
) -> _Options:
    if json is not None and content is not None:
        raise ValueError("pass json= or content=, not both")
    for label, value in (
        ("timeout", timeout),
        ("request_timeout", request_timeout),
        ("max_retry_after", max_retry_after),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{label} must be a positive number of seconds, not {value!r}")
    if not 0 <= min_poll_interval <= max_poll_interval or not math.isfinite(max_poll_interval):
        raise ValueError("poll intervals must satisfy 0 <= min_poll_interval <= max_poll_interval")
    if not is_http_url(url):
        raise ValueError(f"the URL must be an absolute http(s) URL, not {url!r}")
    merged = httpx.Headers(headers)
    body: bytes | None
    if json is not None:
        body = jsonlib.dumps(json).encode()
        merged.setdefault("Content-Type", _JSON)
    elif isinstance(content, str):
        body = content.encode()
    else:
        body = content
    other = alternate_content.encode() if isinstance(alternate_content, str) else alternate_content
    return _Options(
        url=str(httpx.URL(url)),
        method=method.upper(),
        content=body,
        alternate_content=other,
        headers=merged,
        timeout=float(timeout),
        request_timeout=float(request_timeout),
        min_poll_interval=float(min_poll_interval),
        max_poll_interval=float(max_poll_interval),
        max_retry_after=float(max_retry_after),
        idempotency=idempotency,
    )


def check(
    url: str,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    dialect: Dialect | str | None = None,
    idempotency: bool = False,
    http_client: httpx.Client | None = None,
    request_timeout: float = 10.0,
    min_poll_interval: float = 0.05,
    max_poll_interval: float = 1.0,
    max_retry_after: float = 3600.0,
    alternate_content: bytes | str | None = None,
) -> ContractReport:
    """Submit a job to ``url`` and check, check by check, that the server follows the
    asynchronous request-reply pattern.

    The run submits the job and polls it to a terminal state (honouring ``Retry-After``,
    bounded by ``min_poll_interval``/``max_poll_interval``), fetches the result, reads the
    event stream, submits a second job to cancel it (when a cancel URL is offered), submits
    three keyed requests when ``idempotency`` is true, and asks for an unknown job id. See
    :data:`CHECKS` for the list. Nothing raises for a misbehaving server: every problem is a
    failed check with its evidence.

    Args:
        url: the absolute submission URL (``http://host/jobs``).
        json: the job to submit, sent as JSON.
        content: the raw body to submit instead (set ``Content-Type`` in ``headers``).
        method: the submission method.
        headers: headers for every request to the submission's origin (e.g.
            ``Authorization``); never sent to another origin.
        timeout: seconds each wait (the job's terminal state, the cancelled job, the event
            stream) may take.
        dialect: how to read the server's answers: a ``Dialect``, or any name
            ``Client(dialect=...)`` takes (``"auto"``, the default, ``"reference"``,
            ``"status-code"``, ``"microsoft"``, ``"google"``, ``"arm"``, and the presets
            ``"replicate"``, ``"fal"``, ``"runpod"``, ``"openai-batch"``, ``"assemblyai"``).
            With a described API (a preset or a ``DeclarativeDialect``) a 2xx stating a
            running job is its accepted answer, cancellation uses its method, and an API
            without a cancel has the cancellation check skipped.
        idempotency: also check ``Idempotency-Key`` replays (submits up to three more jobs'
            requests).
        http_client: your own ``httpx.Client`` (proxies, TLS, transports); redirects are not
            followed whatever its setting. Not closed.
        request_timeout: seconds one request may take.
        min_poll_interval: the least delay between two polls.
        max_poll_interval: the longest delay between two polls (``Retry-After`` is honoured
            up to this).
        max_retry_after: a ``Retry-After`` above this many seconds is implausible (a failure).
        alternate_content: the "different body" of the idempotency check (by default the JSON
            body with one more member).

    Returns:
        The report; ``report.passed`` is false when any check failed.

    Raises:
        ValueError: a bad argument (both ``json`` and ``content``, a relative URL, an unknown
            dialect name, a non-positive timeout).

    Example:
        >>> report = check("http://127.0.0.1:8080/jobs", json={"type": "echo", "input": {}})
        ... # doctest: +SKIP
        >>> [c.name for c in report.failures]  # doctest: +SKIP
        []
    """
    opts = _options(url, **_option_args(locals()))
    chosen = dialect_from(dialect)
    if http_client is not None:
        return _run(opts, chosen, http_client)
    with httpx.Client(timeout=request_timeout, follow_redirects=False) as client:
        return _run(opts, chosen, client)


async def acheck(
    url: str,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    dialect: Dialect | str | None = None,
    idempotency: bool = False,
    http_client: httpx.AsyncClient | None = None,
    request_timeout: float = 10.0,
    min_poll_interval: float = 0.05,
    max_poll_interval: float = 1.0,
    max_retry_after: float = 3600.0,
    alternate_content: bytes | str | None = None,
) -> ContractReport:
    """The asynchronous form of :func:`check` (same arguments; ``http_client`` is an
    ``httpx.AsyncClient``).

    Example:
        >>> report = await acheck(url, json={"type": "echo", "input": {}})  # doctest: +SKIP
    """
    opts = _options(url, **_option_args(locals()))
    chosen = dialect_from(dialect)
    if http_client is not None:
        return await _arun(opts, chosen, http_client)
    async with httpx.AsyncClient(timeout=request_timeout, follow_redirects=False) as client:
        return await _arun(opts, chosen, client)


def _checker(
    opts: _Options, dialect: Dialect, client: httpx.Client | httpx.AsyncClient
) -> _Checker:
    """The checker for a run on ``client``, whose own headers count as the caller's: they go
    to the submission's origin only, as the client's auth does."""
    headers = httpx.Headers(client.headers)
    headers.update(opts.headers)
    return _Checker(dataclasses.replace(opts, headers=headers), dialect, SystemClock().now)


def _run(opts: _Options, dialect: Dialect, client: httpx.Client) -> ContractReport:
    """Run the checker with the synchronous driver."""
    out: FlowResult[ContractReport] = FlowResult()
    flow = _checker(opts, dialect, client).run()
    with contextlib.closing(drive(flow, client, SystemClock(), out)) as statuses:
        for _ in statuses:  # the checker emits no status
            pass
    return out.value


async def _arun(opts: _Options, dialect: Dialect, client: httpx.AsyncClient) -> ContractReport:
    """Run the checker with the asynchronous driver."""
    out: FlowResult[ContractReport] = FlowResult()
    flow = _checker(opts, dialect, client).run()
    async with contextlib.aclosing(drive_async(flow, client, SystemClock(), out)) as statuses:
        async for _ in statuses:  # the checker emits no status
            pass
    return out.value
