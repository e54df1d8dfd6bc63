"""Test helpers for code that consumes async request-reply APIs: a scripted fake server and a
virtual clock.

:class:`FakeAsyncAPI` answers like an async request-reply server (the reference protocol, in
either dialect) without any socket: it is a set of `respx <https://lundberg.github.io/respx/>`_
routes. Each job route follows a script declared with a fluent API, and every request is
recorded. :class:`FakeClock` replaces the client's clock, so a job scripted with long
``Retry-After`` hints completes in milliseconds.

Example:
    >>> import httpx
    >>> from asyncreply_client.testing import FakeAsyncAPI
    >>> api = FakeAsyncAPI("https://api.example.test")
    >>> script = (
    ...     api.job("/jobs")
    ...     .pending(retry_after=0)
    ...     .pending(retry_after=0)
    ...     .progress(0.5, message="half way")
    ...     .completed(result={"answer": 42})
    ... )
    >>> with api, httpx.Client(base_url=api.base_url) as http:
    ...     submitted = http.post("/jobs", json={"type": "report", "input": {}})
    ...     location = submitted.headers["Location"]
    ...     states = [http.get(location).json()["status"] for _ in range(3)]
    ...     done = http.get(location, follow_redirects=True).json()
    >>> submitted.status_code, states, done
    (202, ['pending', 'pending', 'processing'], {'answer': 42})
    >>> len(script.jobs[0].polls)
    4

With the client SDK, pass the fake's clock so that its sleeps take no time::

    with api, Client(api.base_url, clock=api.clock) as client:
        assert client.run("/jobs", json={...}) == {"answer": 42}
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal

import anyio.lowlevel
import httpx
import respx

from . import _retry

__all__ = ["FakeAsyncAPI", "FakeClock", "FakeJob", "JobScript", "set_testing"]

FakeDialect = Literal["reference", "status-code"]

_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_SSE_RETRY_MS = 10


class _TestingMode:
    """What :func:`set_testing` returns: restores the previous mode when used with ``with``."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _retry.set_testing(self._previous)


def set_testing(on: bool = True) -> _TestingMode:
    """Turn the retry backoff off (``on=True``) or back on, process-wide, for test suites.

    Transient faults (429/502/503/504, a 500 that is not a job's state, network errors) are
    still retried as the client's :class:`~asyncreply_client.RetryPolicy` says, the same
    number of times, but without waiting between attempts (a server's ``Retry-After``
    included), so fault-injection tests run fast without a :class:`FakeClock`. It does not
    change polling intervals: pass a :class:`FakeClock` for those. Like
    ``stamina.set_testing``, call it once (e.g. in a ``conftest.py``), or use the returned
    object as a context manager, which restores the previous mode on exit.

    Args:
        on: ``True`` to retry without backoff, ``False`` to restore normal backoff.

    Returns:
        A context manager restoring the mode that was in force before the call.

    Example:
        In a ``conftest.py``::

            import pytest
            from asyncreply_client.testing import set_testing

            @pytest.fixture(autouse=True)
            def no_retry_backoff():
                with set_testing():
                    yield
    """
    previous = _retry.is_testing()
    _retry.set_testing(bool(on))
    return _TestingMode(previous)


class FakeClock:
    """A virtual clock: sleeping advances time instantly, nothing really waits.

    It implements the client's ``Clock`` protocol (``now()``, ``sleep(seconds)`` and
    ``await asleep(seconds)``), so ``Client(..., clock=FakeClock())`` waits through any
    ``Retry-After`` in no time. ``sleeps`` lists every sleep requested, in order.

    Example:
        >>> clock = FakeClock()
        >>> clock.sleep(30)
        >>> clock.now(), clock.sleeps
        (30.0, [30.0])
    """

    def __init__(self, start: float = 0.0, *, wall_start: datetime = _EPOCH) -> None:
        """Start the clock at ``start`` (monotonic seconds); ``wall_start`` is its wall time."""
        self._now = float(start)
        self._start = float(start)
        self._wall_start = wall_start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Return the virtual monotonic time in seconds."""
        return self._now

    def wall(self) -> datetime:
        """Return the virtual wall-clock time (UTC), for timestamps in fake documents."""
        return self._wall_start + timedelta(seconds=self._now - self._start)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` without recording a sleep."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError(f"cannot move a clock backwards or by NaN: {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by ``seconds`` (negative counts as zero)."""
        seconds = max(0.0, float(seconds))
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then yield to the event loop once (so other tasks run)."""
        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()

    @property
    def slept(self) -> float:
        """Total virtual seconds slept."""
        return sum(self.sleeps)


@dataclass(frozen=True, slots=True)
class _Step:
    """One scripted status answer."""

    kind: str
    retry_after: float | None = None
    progress: tuple[float, float | None, str | None] | None = None
    result: Any = None
    file: bytes | None = None
    content_type: str = "application/json"
    filename: str | None = None
    inline: bool = False
    error: tuple[str, str, bool] | None = None
    dead_letter: bool = False
    status_code: int = 200
    body: Any = None
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def is_document(self) -> bool:
        """Whether this step is a state of the job (rather than a raw or gone answer)."""
        return self.kind in ("pending", "processing", "completed", "failed", "cancelled")

    @property
    def is_terminal(self) -> bool:
        """Whether the job cannot change after this step."""
        return self.kind in ("completed", "failed", "cancelled", "expired", "not_found")


_PENDING = _Step("pending", retry_after=0.0)
_CANCELLED = _Step("cancelled")


@dataclass(frozen=True, slots=True)
class _Rejection:
    """A script's refusal of every submission."""

    status_code: int
    code: str
    message: str
    details: Any


class JobScript:
    """The scripted life of the jobs submitted to one route of a :class:`FakeAsyncAPI`.

    Build it fluently: each status step method appends one answer and returns the script.
    Every status request (``GET`` on the status URL) consumes the next step; the last step is
    repeated forever. Each submission starts a new :class:`FakeJob` at the first step.

    Example:
        >>> api = FakeAsyncAPI()
        >>> script = api.job("/reports").pending(retry_after=10).failed(code="boom")
        >>> [step.kind for step in script.steps]
        ['pending', 'failed']
    """

    def __init__(
        self,
        api: FakeAsyncAPI,
        *,
        path: str,
        method: str,
        status_path: str,
        retry_after: float | None,
        events: bool,
        long_poll: bool,
        job_id: str | None,
        match: Callable[[httpx.Request], bool] | None,
    ) -> None:
        self._api = api
        self.path = path
        self.method = method
        self.status_path = status_path
        self.retry_after = retry_after
        self.events = events
        self.long_poll = long_poll
        self._job_id = job_id
        self._match = match
        self._steps: list[_Step] = []
        self._rejection: _Rejection | None = None
        self.jobs: list[FakeJob] = []
        self.submissions: list[httpx.Request] = []
        self._keys: dict[str, FakeJob] = {}

    @property
    def steps(self) -> tuple[_Step, ...]:
        """The scripted steps, in order (read-only view)."""
        return tuple(self._steps)

    @property
    def job(self) -> FakeJob:
        """The most recently created job of this script.

        Raises:
            LookupError: when no job was submitted or created yet.
        """
        if not self.jobs:
            raise LookupError(f"no job was submitted to {self.method} {self.path} yet")
        return self.jobs[-1]

    # -- status steps --------------------------------------------------------------------

    def _add(self, step: _Step) -> JobScript:
        if self._rejection is not None:
            raise ValueError("a script that rejects submissions cannot have status steps")
        self._steps.append(step)
        return self

    def pending(self, *, retry_after: float | None = 0.0) -> JobScript:
        """Answer ``pending`` once, with ``Retry-After: retry_after`` (``None``: no hint)."""
        return self._add(_Step("pending", retry_after=_check_delay(retry_after)))

    def processing(
        self,
        *,
        retry_after: float | None = 0.0,
        progress: float | None = None,
        total: float | None = 1.0,
        message: str | None = None,
    ) -> JobScript:
        """Answer ``processing`` once, optionally with progress ``progress`` of ``total``."""
        prog = None if progress is None else (float(progress), total, message)
        return self._add(_Step("processing", retry_after=_check_delay(retry_after), progress=prog))

    def progress(
        self,
        current: float,
        total: float | None = 1.0,
        *,
        message: str | None = None,
        retry_after: float | None = 0.0,
    ) -> JobScript:
        """Answer ``processing`` once with progress ``current`` of ``total``.

        ``progress(0.5)`` is 50 %; ``progress(2, 5, message="step 2/5")`` is two of five.
        """
        return self.processing(
            retry_after=retry_after, progress=current, total=total, message=message
        )

    def completed(
        self,
        result: Any = None,
        *,
        file: bytes | None = None,
        content_type: str | None = None,
        filename: str | None = None,
        inline: bool = False,
    ) -> JobScript:
        """Finish the job with a JSON ``result``, or with a ``file`` (bytes + content type).

        In the reference dialect a completed job answers ``303 See Other`` to its result URL
        (``inline=True``: 200 with the result in the status document); in the status-code
        dialect, 200 with the result as the body (303 for a file).
        """
        if file is not None and result is not None:
            raise ValueError("give either a JSON result or a file, not both")
        if inline and file is not None:
            raise ValueError("a file result cannot be inline")
        ctype = content_type or ("application/octet-stream" if file is not None else None)
        return self._add(
            _Step(
                "completed",
                result=result,
                file=file,
                content_type=ctype or "application/json",
                filename=filename,
                inline=inline,
            )
        )

    def failed(
        self,
        *,
        code: str = "job_failed",
        message: str = "the job failed",
        retryable: bool = False,
        dead_letter: bool = False,
    ) -> JobScript:
        """Finish the job as failed with the given error.

        A ``retryable`` failure followed by more steps offers a ``retryUrl``: a ``POST`` to it
        answers 202 with a new job (``originalJobId``) that starts at the next step, so one
        script describes the first attempt and the retry. Otherwise the retry URL is absent
        and a ``POST`` answers 409 ``not_retryable``.

        Example:
            >>> api = FakeAsyncAPI()
            >>> _ = api.job().failed(code="flaky", retryable=True).completed({"ok": True})
        """
        return self._add(_Step("failed", error=(code, message, retryable), dead_letter=dead_letter))

    def cancelled(self) -> JobScript:
        """Finish the job as cancelled."""
        return self._add(_Step("cancelled"))

    def expired(self) -> JobScript:
        """Answer ``410 Gone`` (``{"error": {"code": "expired"}}``) from now on."""
        return self._add(_Step("expired", status_code=410))

    def not_found(self) -> JobScript:
        """Answer ``404 Not Found`` (``{"error": {"code": "not_found"}}``) from now on."""
        return self._add(_Step("not_found", status_code=404))

    def respond(
        self,
        status_code: int,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JobScript:
        """Answer once with an arbitrary response (a 503, a garbage body, …).

        ``json`` is serialised as the body; ``content`` is sent as raw bytes instead.
        """
        if json is not None and content is not None:
            raise ValueError("give either json or content, not both")
        return self._add(
            _Step(
                "raw",
                status_code=status_code,
                body=json,
                content=content,
                headers=tuple((headers or {}).items()),
            )
        )

    def rejects(
        self,
        status_code: int = 400,
        *,
        code: str = "invalid_input",
        message: str = "the submission was rejected",
        details: Any = None,
    ) -> JobScript:
        """Refuse every submission with ``status_code`` and an error body (no job created)."""
        if self._steps:
            raise ValueError("a script with status steps cannot also reject submissions")
        if not 400 <= status_code <= 599:
            raise ValueError(f"a rejection needs a 4xx or 5xx status, not {status_code}")
        self._rejection = _Rejection(status_code, code, message, details)
        return self

    # -- jobs ----------------------------------------------------------------------------

    def create(self, *, job_type: str = "job", job_input: Any = None) -> FakeJob:
        """Create a job as if it had been submitted (to test attaching to a status URL)."""
        return self._api._create_job(self, job_type=job_type, job_input=job_input)

    def _next_id(self) -> str:
        n = len(self.jobs) + 1
        if self._job_id is not None:
            return self._job_id if n == 1 else f"{self._job_id}-{n}"
        return f"job-{self._api._next_serial()}"

    def _matches(self, request: httpx.Request) -> bool:
        return self._match is None or bool(self._match(request))


@dataclass(eq=False)
class FakeJob:
    """One job of a :class:`FakeAsyncAPI`: where its script stands and what was asked of it.

    Attributes:
        id: the job id.
        script: the script it follows.
        status_url: its absolute status URL.
        requests: every request about this job (status, result, events, cancel), in order.
        polls: the status requests alone.
        cursor: index of the next step to answer.
        original_job_id: for a job started by a retry, the id of the failed job.
    """

    id: str
    script: JobScript
    status_url: str
    job_type: str = "job"
    job_input: Any = None
    requests: list[httpx.Request] = field(default_factory=list)
    polls: list[httpx.Request] = field(default_factory=list)
    cursor: int = 0
    index: int | None = None
    current: _Step | None = None
    last_progress: tuple[float, float | None, str | None] | None = None
    created_at: datetime = _EPOCH
    cancelled: bool = False
    event_seq: int = 0
    original_job_id: str | None = None

    @property
    def state(self) -> str:
        """The state the job last reported (``"pending"`` before any status request)."""
        return "pending" if self.current is None else self.current.kind

    @property
    def result_url(self) -> str:
        """The absolute URL of its result."""
        return f"{self.status_url}/result"

    @property
    def retry_url(self) -> str:
        """The absolute URL that retries it (offered only for a retryable failure)."""
        return f"{self.status_url}/retry"

    @property
    def retryable(self) -> bool:
        """Whether it failed retryably with script steps left for a retry."""
        step = self.current
        return (
            step is not None
            and step.kind == "failed"
            and step.error is not None
            and step.error[2]
            and self.index is not None
            and self.index + 1 < len(self.script._steps)
        )

    @property
    def events_url(self) -> str:
        """The absolute URL of its event stream."""
        return f"{self.status_url}/events"

    def _peek(self) -> _Step:
        """The step the next status request would get."""
        steps = self.script._steps
        if self.cancelled:
            return _CANCELLED
        if self.current is not None and self.current.is_terminal:
            return self.current  # a finished job stays finished (steps after it are a retry's)
        if not steps:
            return _PENDING
        return steps[min(self.cursor, len(steps) - 1)]

    @property
    def _exhausted(self) -> bool:
        """Whether the last scripted step has been served (it now repeats)."""
        return (
            self.cancelled
            or self.cursor >= len(self.script._steps)
            or (self.current is not None and self.current.is_terminal)
        )

    def _advance(self) -> _Step:
        step = self._peek()
        if step is self.current and step.is_terminal:
            return step
        steps = self.script._steps
        if not self.cancelled and steps:
            self.index = min(self.cursor, len(steps) - 1)
        self.cursor = min(self.cursor + 1, len(self.script._steps))
        if step.progress is not None:
            self.last_progress = step.progress
        self.current = step
        return step


class FakeAsyncAPI:
    """A fake async request-reply server made of respx routes; no sockets, no sleeping.

    Declare job routes with :meth:`job`, then either activate the fake globally for httpx
    (``with api:`` / ``async with api:``, or the ``fake_async_api`` pytest fixture) or hand
    :meth:`transport` to your own ``httpx.Client``/``AsyncClient``.

    Answers follow docs/protocol.md: a submission gets ``202 Accepted`` with ``Location``,
    ``Retry-After``, ``Retry-After-Ms`` and the submission body; the status URL answers the
    script's steps; ``GET {status}/result`` gives the result once completed (409 before);
    ``DELETE {status}`` cancels a job that is not terminal (409 otherwise); with
    ``events=True`` the job also offers an SSE stream of its remaining steps. A repeated
    ``Idempotency-Key`` replays the original submission.

    Args:
        base_url: the fake server's root (scheme, host and optional path prefix).
        dialect: ``"reference"`` (status documents are 200, completion is a 303) or
            ``"status-code"`` (the HTTP status carries the state).
        clock: the virtual clock (a new :class:`FakeClock` when omitted); pass it to the
            client as ``clock=api.clock``.
        router: an existing respx router to add routes to (the ``respx_mock`` fixture, say).

    Example:
        >>> api = FakeAsyncAPI("https://fake.test", dialect="status-code")
        >>> _ = api.job("/jobs").pending().completed({"ok": True})
        >>> with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        ...     url = http.post("/jobs", json={}).headers["Location"]
        ...     codes = [http.get(url).status_code for _ in range(2)]
        >>> codes
        [202, 200]
    """

    def __init__(
        self,
        base_url: str = "https://asyncreply.example.test",
        *,
        dialect: FakeDialect = "reference",
        clock: FakeClock | None = None,
        router: respx.MockRouter | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, not {base_url!r}")
        if dialect not in ("reference", "status-code"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.base_url = str(url).rstrip("/")
        self._origin = str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
        self._prefix = url.path.rstrip("/")
        self.dialect: FakeDialect = dialect
        self.clock = clock if clock is not None else FakeClock()
        self.router = (
            router
            if router is not None
            else respx.mock(assert_all_called=False, assert_all_mocked=True)
        )
        self.requests: list[httpx.Request] = []
        self.scripts: list[JobScript] = []
        self._jobs: dict[str, FakeJob] = {}
        self._serial = 0
        self._lock = threading.RLock()
        self._submit_routes: set[tuple[str, str]] = set()
        self._status_routes: set[str] = set()

    # -- declaring -----------------------------------------------------------------------

    def job(
        self,
        path: str = "/jobs",
        *,
        method: str = "POST",
        status_path: str | None = None,
        retry_after: float | None = 0.0,
        events: bool = False,
        long_poll: bool = False,
        job_id: str | None = None,
        match: Callable[[httpx.Request], bool] | None = None,
    ) -> JobScript:
        """Declare a submission route and return its (empty) script to fill in.

        Args:
            path: the submission path, relative to ``base_url``.
            method: the submission method (POST, PUT, PATCH or DELETE).
            status_path: template of the status path with ``{id}`` (default
                ``"{path}/{id}"``); result, events and cancel URLs derive from it.
            retry_after: the ``Retry-After`` of the 202 (``None``: no hint).
            events: offer an SSE stream (``eventsUrl`` and ``Link: rel="events"``).
            long_poll: honour long polls: a status request asking ``?wait=N`` or
                ``Prefer: wait=N`` is answered at once (as if the job had just changed) with
                ``Preference-Applied: wait=N``, which tells clients the server holds requests.
            job_id: the id of the first job (later ones get ``-2``, ``-3`` …).
            match: a predicate on the submission request, for several scripts on one path
                (the first script whose predicate accepts the request answers it).

        Returns:
            The script; chain step methods on it.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        method = method.upper()
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(f"unsupported submission method {method!r}")
        template = status_path if status_path is not None else path.rstrip("/") + "/{id}"
        if template.count("{id}") != 1 or not template.startswith("/"):
            raise ValueError(f"status_path needs one '{{id}}' and a leading '/': {template!r}")
        script = JobScript(
            self,
            path=path,
            method=method,
            status_path=template,
            retry_after=_check_delay(retry_after),
            events=events,
            long_poll=long_poll,
            job_id=job_id,
            match=match,
        )
        with self._lock:
            self.scripts.append(script)
            self._install_routes(script)
        return script

    def _install_routes(self, script: JobScript) -> None:
        key = (script.method, script.path)
        if key not in self._submit_routes:
            self._submit_routes.add(key)
            self.router.route(
                method=script.method, url=self._origin + self._prefix + script.path
            ).mock(side_effect=self._on_submit)
        before, after = script.status_path.split("{id}")
        pattern = (
            "^"
            + re.escape(self._prefix + before)
            + r"(?P<job_id>[^/?#]+)"
            + re.escape(after)
            + r"(?P<sub>/result|/events|/retry)?$"
        )
        if pattern not in self._status_routes:
            self._status_routes.add(pattern)
            url = httpx.URL(self._origin)
            lookups: dict[str, Any] = {"scheme": url.scheme, "host": url.host}
            if url.port is not None:
                lookups["port"] = url.port
            self.router.route(path__regex=pattern, **lookups).mock(side_effect=self._on_job)

    # -- using ---------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """Return a transport for your own ``httpx.Client``/``AsyncClient`` (no global patch)."""
        return httpx.MockTransport(self.router.handler)

    def start(self) -> None:
        """Start patching httpx so that every client reaches this fake (see ``with api:``)."""
        self.router.start()

    def stop(self) -> None:
        """Stop patching httpx."""
        self.router.stop()

    def __enter__(self) -> FakeAsyncAPI:
        self.router.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.router.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> FakeAsyncAPI:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    @property
    def jobs(self) -> list[FakeJob]:
        """Every job created so far, in order."""
        with self._lock:
            return list(self._jobs.values())

    def get_job(self, job_id: str) -> FakeJob:
        """Return the job ``job_id``.

        Raises:
            LookupError: when there is no such job.
        """
        with self._lock:
            found = self._jobs.get(job_id)
        if found is None:
            raise LookupError(f"no fake job {job_id!r}")
        return found

    # -- answering -----------------------------------------------------------------------

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _create_job(self, script: JobScript, *, job_type: str, job_input: Any) -> FakeJob:
        with self._lock:
            job_id = script._next_id()
            while job_id in self._jobs:
                job_id = f"{job_id}-x"
            path = script.status_path.replace("{id}", job_id)
            job = FakeJob(
                id=job_id,
                script=script,
                status_url=self.base_url + path,
                job_type=job_type,
                job_input=job_input,
                created_at=self.clock.wall(),
            )
            self._jobs[job_id] = job
            script.jobs.append(job)
            return job

    def _on_submit(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            path = request.url.path[len(self._prefix) :]
            candidates = [
                s
                for s in self.scripts
                if s.method == request.method and s.path == path and s._matches(request)
            ]
            if not candidates:
                return _error(404, "not_found", "no scripted job matches this submission")
            script = candidates[0]
            script.submissions.append(request)
            if script._rejection is not None:
                r = script._rejection
                return _error(r.status_code, r.code, r.message, r.details)
            body = _json_or_none(request.content)
            key = request.headers.get("idempotency-key")
            if key is not None:
                key = _bare_key(key)
                replay = script._keys.get(key)
                if replay is not None:
                    response = self._accepted(replay)
                    response.headers["Idempotent-Replayed"] = "true"
                    return response
            job_type = "job"
            job_input: Any = body
            if isinstance(body, dict):
                if isinstance(body.get("type"), str):
                    job_type = body["type"]
                job_input = body.get("input", body)
            job = self._create_job(script, job_type=job_type, job_input=job_input)
            job.requests.append(request)
            if key is not None:
                script._keys[key] = job
            return self._accepted(job)

    def _retry(self, job: FakeJob, request: httpx.Request) -> httpx.Response:
        if not job.retryable or job.index is None:
            return _error(409, "not_retryable", f"job {job.id} cannot be retried")
        key = request.headers.get("idempotency-key")
        replay_key = None if key is None else f"retry:{job.id}:{_bare_key(key)}"
        if replay_key is not None and replay_key in job.script._keys:
            response = self._accepted(job.script._keys[replay_key])
            response.headers["Idempotent-Replayed"] = "true"
            return response
        retried = self._create_job(job.script, job_type=job.job_type, job_input=job.job_input)
        retried.cursor = job.index + 1
        retried.original_job_id = job.id
        retried.requests.append(request)
        if replay_key is not None:
            job.script._keys[replay_key] = retried
        return self._accepted(retried)

    def _accepted(self, job: FakeJob) -> httpx.Response:
        script = job.script
        headers = {"Location": job.status_url}
        headers.update(_retry_headers(script.retry_after))
        body: dict[str, Any] = {
            "jobId": job.id,
            "status": "pending",
            "statusUrl": job.status_url,
            "cancelUrl": job.status_url,
            "estimatedWaitTime": script.retry_after,
        }
        if job.original_job_id is not None:
            body["originalJobId"] = job.original_job_id
        if script.events:
            body["eventsUrl"] = job.events_url
            headers["Link"] = f'<{job.events_url}>; rel="events"'
        return httpx.Response(202, json=body, headers=headers)

    def _on_job(self, request: httpx.Request, job_id: str, sub: str | None) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            job = self._jobs.get(job_id)
            if job is None:
                return _error(404, "not_found", f"no job {job_id!r}")
            job.requests.append(request)
            if sub == "/result":
                if request.method != "GET":
                    return _error(405, "method_not_allowed", "use GET")
                return self._result(job)
            if sub == "/events":
                if request.method != "GET":
                    return _error(405, "method_not_allowed", "use GET")
                return self._events(job)
            if sub == "/retry":
                if request.method != "POST":
                    return _error(405, "method_not_allowed", "use POST")
                return self._retry(job, request)
            if request.method == "DELETE":
                return self._cancel(job)
            if request.method != "GET":
                return _error(405, "method_not_allowed", "use GET or DELETE")
            job.polls.append(request)
            response = self._status(job, job._advance())
            held = _requested_wait(request) if job.script.long_poll else None
            if held is not None:
                response.headers["Preference-Applied"] = f"wait={held}"
            return response

    def _status(self, job: FakeJob, step: _Step) -> httpx.Response:
        if step.kind == "raw":
            headers = dict(step.headers)
            if step.content is not None:
                return httpx.Response(step.status_code, content=step.content, headers=headers)
            if step.body is not None:
                return httpx.Response(step.status_code, json=step.body, headers=headers)
            return httpx.Response(step.status_code, headers=headers)
        if step.kind == "expired":
            return _error(410, "expired", f"job {job.id} has expired")
        if step.kind == "not_found":
            return _error(404, "not_found", f"no job {job.id!r}")
        doc = self._document(job, step)
        headers = _retry_headers(step.retry_after) if not step.is_terminal else {}
        if self.dialect == "status-code":
            return self._status_code_answer(job, step, doc, headers)
        if step.kind == "completed" and not step.inline:
            headers["Location"] = job.result_url
            return httpx.Response(303, json=doc, headers=headers)
        return httpx.Response(200, json=doc, headers=headers)

    def _status_code_answer(
        self, job: FakeJob, step: _Step, doc: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        if step.kind in ("pending", "processing"):
            doc["state"] = "pending" if step.kind == "pending" else "inFlight"
            return httpx.Response(202, json=doc, headers=headers)
        if step.kind == "completed":
            if step.file is not None:
                return httpx.Response(303, headers={"Location": job.result_url})
            return _json_response(200, step.result)
        if step.kind == "failed":
            assert step.error is not None
            code, message, retryable = step.error
            body = {
                "jobId": job.id,
                "state": "deadLetter" if step.dead_letter else "failed",
                "error": {"code": code, "message": message, "retryable": retryable},
            }
            if job.retryable:
                body["retryUrl"] = job.retry_url
            return httpx.Response(500, json=body)
        body = {
            "jobId": job.id,
            "state": "cancelled",
            "error": {"code": "cancelled", "message": f"job {job.id} was cancelled"},
        }
        return httpx.Response(409, json=body)

    def _document(self, job: FakeJob, step: _Step) -> dict[str, Any]:
        now = _rfc3339(self.clock.wall())
        progress = None
        if job.last_progress is not None:
            current, total, message = job.last_progress
            progress = {"current": current, "total": total, "message": message}
        doc: dict[str, Any] = {
            "jobId": job.id,
            "type": job.job_type,
            "status": step.kind,
            "attempt": 1,
            "progress": progress,
            "createdAt": _rfc3339(job.created_at),
            "startedAt": None if step.kind == "pending" else _rfc3339(job.created_at),
            "updatedAt": now,
            "estimatedCompletion": None,
            "retryAfter": None if step.is_terminal else step.retry_after,
            "statusUrl": job.status_url,
            "cancelUrl": job.status_url,
        }
        if job.script.events:
            doc["eventsUrl"] = job.events_url
        if step.kind == "completed":
            doc["resultUrl"] = job.result_url
            if step.inline:
                doc["result"] = step.result
        elif step.kind == "failed":
            assert step.error is not None
            code, message, retryable = step.error
            doc["error"] = {"code": code, "message": message, "retryable": retryable}
            doc["deadLetter"] = step.dead_letter
            if job.retryable:
                doc["retryUrl"] = job.retry_url
        elif step.kind == "cancelled":
            doc["cancelledAt"] = now
        return doc

    def _result(self, job: FakeJob) -> httpx.Response:
        step = job.current
        if step is None or step.kind not in ("completed", "expired", "not_found"):
            return _error(409, "not_completed", f"job {job.id} is {job.state}")
        if step.kind == "expired":
            return _error(410, "expired", f"the result of job {job.id} has expired")
        if step.kind == "not_found":
            return _error(404, "not_found", f"no job {job.id!r}")
        if step.file is not None:
            headers = {"Content-Type": step.content_type}
            if step.filename is not None:
                headers["Content-Disposition"] = f'attachment; filename="{step.filename}"'
            return httpx.Response(200, content=step.file, headers=headers)
        return _json_response(200, step.result)

    def _cancel(self, job: FakeJob) -> httpx.Response:
        step = job.current
        if job.cancelled or (step is not None and step.is_terminal):
            return _error(409, "already_terminal", f"job {job.id} is already {job.state}")
        job.cancelled = True
        job.current = _CANCELLED
        return httpx.Response(200, json=self._document(job, job.current))

    def _events(self, job: FakeJob) -> httpx.Response:
        # The stream carries the job's remaining scripted states at once: a ``status`` event
        # (the current state), ``progress`` events, and ``complete`` for a terminal state. It
        # ends early at a step that is not a state (410, raw answer) or at the end of the
        # script, so the client reconnects or falls back to polling, as with a real server.
        if not job.script.events:
            return _error(404, "not_found", "this job offers no event stream")
        if not job._peek().is_document:
            job.polls.append(job.requests[-1])
            return self._status(job, job._advance())
        lines = [f"retry: {_SSE_RETRY_MS}", ""]

        def emit(name: str, step: _Step) -> None:
            job.event_seq += 1
            data = json.dumps(self._document(job, step), separators=(",", ":"))
            lines.extend([f"id: {job.event_seq}", f"event: {name}", f"data: {data}", ""])

        step = job._advance()
        emit("status", step)
        if step.is_terminal:
            emit("complete", step)
        while not step.is_terminal and not job._exhausted and job._peek().is_document:
            step = job._advance()
            emit("complete" if step.is_terminal else "progress", step)
        return httpx.Response(
            200,
            content=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )


def _check_delay(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"retry_after must be a finite number >= 0, not {value!r}")
    return value


def _retry_headers(retry_after: float | None) -> dict[str, str]:
    # Retry-After takes whole seconds (RFC 9110 §10.2.3); Retry-After-Ms carries the precise
    # hint, as the reference server does.
    if retry_after is None:
        return {}
    return {
        "Retry-After": str(math.ceil(retry_after)),
        "Retry-After-Ms": str(round(retry_after * 1000)),
    }


def _error(status: int, code: str, message: str, details: Any = None) -> httpx.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"error": error})


def _requested_wait(request: httpx.Request) -> str | None:
    """The N of ``?wait=N`` or ``Prefer: wait=N`` (RFC 7240), when the request asks to be held."""
    value = request.url.params.get("wait")
    if value is None:
        for preference in request.headers.get("prefer", "").split(","):
            name, _, raw = preference.strip().partition("=")
            if name.strip().lower() == "wait" and raw.strip():
                value = raw.strip()
                break
    try:
        return None if value is None or float(value) < 0 else value
    except ValueError:
        return None


def _bare_key(value: str) -> str:
    # Idempotency-Key may be sent bare or as a quoted string (protocol.md).
    return value.strip().strip('"')


def _json_response(status: int, value: Any) -> httpx.Response:
    # httpx treats ``json=None`` as "no body"; a JSON ``null`` result must still be sent.
    return httpx.Response(
        status,
        content=json.dumps(value).encode(),
        headers={"Content-Type": "application/json"},
    )


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content.strip() else None
    except (ValueError, UnicodeDecodeError):
        return None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
