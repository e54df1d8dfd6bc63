"""Checks of the arguments users pass, at the call: each message names the argument, what
was given and the forms accepted, so nothing bad fails later deep inside (httpx's
``ValueError: Timeout value out of range``, ``'float' object has no attribute 'schedule'``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from ._log import redact_url
from ._policies import FixedInterval, PollingPolicy
from ._retry import RetryPolicy
from ._sse import SSEOptions
from ._urls import scheme_of

__all__ = [
    "WAIT_MODES",
    "callbacks",
    "check_client_options",
    "check_submission",
    "client_timeout",
    "polling_policy",
    "request_url",
    "seconds_or_none",
    "wait_mode",
]

WAIT_MODES: tuple[str, ...] = ("auto", "sse", "long-poll", "poll")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def wait_mode(mode: object) -> str:
    """``mode`` as a wait mode: case and blanks ignored, ``_`` read as ``-``.

    Example:
        >>> wait_mode(" SSE "), wait_mode("long_poll")
        ('sse', 'long-poll')
    """
    if isinstance(mode, str):
        name = mode.strip().lower().replace("_", "-")
        if name in WAIT_MODES:
            return name
    raise ValueError(
        f"mode must be one of {', '.join(repr(m) for m in WAIT_MODES)} (any case); "
        f"got {_shown(mode)}"
    )


def polling_policy(polling: object, name: str = "polling") -> PollingPolicy | None:
    """``polling`` as a policy: ``None``, a policy, or a number of seconds (azure-core's
    ``polling_interval``), which means ``FixedInterval(seconds)``.

    Raises:
        ValueError: a negative or non-finite number.
        TypeError: anything else.

    Example:
        >>> polling_policy(1.5)
        FixedInterval(interval=1.5, honour_retry_after=True, max_retry_after=300.0, max_immediate=3)
    """
    if polling is None:
        return None
    if _is_number(polling):
        seconds = float(polling)  # type: ignore[arg-type]
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"{name}= as a number is the seconds between polls (FixedInterval); it must "
                f"be finite and >= 0, got {_shown(polling)}"
            )
        return FixedInterval(seconds)
    if callable(getattr(polling, "schedule", None)) and not isinstance(polling, type):
        return polling  # type: ignore[return-value]
    raise TypeError(
        f"{name}= must be a polling policy (Adaptive(), FixedInterval(2.0), LongPolling(), …), "
        f"a number of seconds between polls, or None; got {_shown(polling)}"
    )


def seconds_or_none(value: object, name: str) -> float | None:
    """A duration argument: ``None`` or a finite number of seconds >= 0."""
    if value is None:
        return None
    if _is_number(value) and math.isfinite(value) and value >= 0:  # type: ignore[operator,arg-type]
        return float(value)  # type: ignore[arg-type]
    error = ValueError if _is_number(value) else TypeError
    raise error(f"{name} must be a number of seconds >= 0 or None; got {_shown(value)}")


def client_timeout(timeout: object) -> httpx.Timeout:
    """The ``timeout=`` of a client: seconds (>= 0), ``None`` (no limit) or an
    ``httpx.Timeout`` whose every part is one of those."""
    if isinstance(timeout, httpx.Timeout):
        parts = timeout.as_dict()
        for part, value in parts.items():
            seconds_or_none(value, f"timeout ({part})")
        return timeout
    if timeout is None or _is_number(timeout):
        seconds_or_none(timeout, "timeout")
        return httpx.Timeout(timeout)  # type: ignore[arg-type]
    raise TypeError(
        "timeout must be a number of seconds >= 0, None (no limit) or an httpx.Timeout; "
        f"got {_shown(timeout)}"
    )


def callbacks(value: object, name: str = "on_progress") -> tuple[Callable[[Any], object], ...]:
    """``None``, one callable or a sequence of callables, as a tuple."""
    if value is None:
        return ()
    if callable(value):
        return (value,)
    if isinstance(value, Sequence | Iterable) and not isinstance(value, str | bytes | Mapping):
        items = tuple(value)
        if all(callable(item) for item in items):
            return items
    raise TypeError(
        f"{name} must be a callable, a sequence of callables or None; got {_shown(value)}"
    )


def check_client_options(
    *,
    headers: object,
    retry: object,
    sse: object,
    trusted_origins: object,
    max_redirects: object,
    clock: object = None,
    events_url_template: object = None,
) -> None:
    """The client's other arguments whose mistakes would only show later."""
    if clock is not None and not all(
        callable(getattr(clock, name, None)) for name in ("now", "sleep", "asleep")
    ):
        raise TypeError(
            "clock must have now(), sleep() and asleep() (SystemClock, or "
            f"asyncreply_client.testing.FakeClock); got {_shown(clock)}"
        )
    if events_url_template is not None and not isinstance(events_url_template, str):
        raise TypeError(
            "events_url_template must be a URL template such as '/jobs/{id}/events'; "
            f"got {_shown(events_url_template)}"
        )
    if headers is not None and not isinstance(headers, Mapping | httpx.Headers):
        raise TypeError(f"headers must be a mapping of names to values; got {_shown(headers)}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy or None; got {_shown(retry)}")
    if sse is not None and not isinstance(sse, SSEOptions):
        raise TypeError(f"sse must be an SSEOptions or None; got {_shown(sse)}")
    if isinstance(trusted_origins, str | bytes):
        raise TypeError(
            "trusted_origins must be a list of origins (['https://files.example.com']), "
            f"not one string; got {_shown(trusted_origins)}"
        )
    if not isinstance(max_redirects, int) or isinstance(max_redirects, bool) or max_redirects < 0:
        raise ValueError(f"max_redirects must be an int >= 0; got {_shown(max_redirects)}")


def check_submission(*, method: object, headers: object, idempotency_key: object) -> None:
    """``submit()``'s arguments besides the body (``_uploads`` checks that)."""
    if not isinstance(method, str) or not method.isascii() or not method.isalpha():
        raise ValueError(
            f"method must be an HTTP method name ('POST', 'PUT', …); got {_shown(method)}"
        )
    if headers is not None and not isinstance(headers, Mapping | httpx.Headers):
        raise TypeError(f"headers must be a mapping of names to values; got {_shown(headers)}")
    if idempotency_key is not None and not (isinstance(idempotency_key, str) and idempotency_key):
        raise TypeError(
            "idempotency_key must be a non-empty string, None (no key: never retried) or "
            f"left out (a fresh UUID); got {_shown(idempotency_key)}"
        )


def request_url(resolve: Callable[[str], str], url: object, name: str = "url") -> str:
    """``url`` (an argument called ``name``) resolved by ``resolve`` (the client's
    ``RequestFactory.resolve``), or an error naming ``name`` and the scheme found, raised
    before anything is sent.

    Raises:
        TypeError: ``url`` is not a string.
        ValueError: it is no http(s) URL, absolute or relative to the base URL.
    """
    if not isinstance(url, str):
        raise TypeError(f"{name} must be a URL string; got {_shown(url)}")
    try:
        return resolve(url)
    except ValueError:
        scheme = scheme_of(url)
    found = "no usable host or path" if scheme in ("http", "https", None) else f"scheme {scheme!r}"
    raise ValueError(
        f"{name} must be an http(s) URL (absolute, or relative to the base URL); "
        f"got {redact_url(url)!r} ({found})"
    )
