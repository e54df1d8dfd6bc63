"""The fake server itself: :class:`FakeAsyncAPI` declares routes on a respx router, keeps the
jobs, and dispatches each request to the job's script and the answers of :mod:`._routes`."""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._clock import FakeClock
from ._routes import Answers, FakeDialect, bare_key, error, json_or_none, requested_wait
from ._script import FakeJob, JobScript, check_delay

if TYPE_CHECKING:
    import respx

    from .. import AsyncClient, Client, Dialect, PollingPolicy, RetryPolicy
    from .._client import ProgressCallback

__all__ = ["FakeAsyncAPI", "RealClockWarning"]

# A hint shorter than this is not worth a warning when a client waits it out for real.
_REAL_WAIT_WORTH_WARNING = 0.2


def _new_router() -> respx.MockRouter:
    # Imported on use: the rest of the testing kit (FakeClock, set_testing, the pytest
    # plugin's server fixtures) works without the ``testing`` extra.
    try:
        import respx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"FakeAsyncAPI needs respx: `pip install asyncreply[testing]` ({exc})"
        ) from exc
    return respx.mock(assert_all_called=False, assert_all_mocked=True)


class RealClockWarning(UserWarning):
    """A client with the real clock waited out a :class:`FakeAsyncAPI`'s ``Retry-After``.

    The test really slept: give the client the fake's clock (``clock=api.clock``), or create
    it with :meth:`FakeAsyncAPI.client` / :meth:`FakeAsyncAPI.async_client`, which do.
    """


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
    ``Idempotency-Key`` replays the original submission: a 202 about the same job with its
    document as it last reported it (the receipt before any status request), as the
    reference server answers a replay.

    Args:
        base_url: the fake server's root (scheme, host and optional path prefix).
        dialect: ``"reference"`` (status documents are 200, completion is a 303) or
            ``"status-code"`` (the HTTP status carries the state).
        clock: the virtual clock (a new :class:`FakeClock` when omitted). Clients made by
            :meth:`client` and :meth:`async_client` use it; pass it to your own client as
            ``clock=api.clock``. A client on the real clock that waits out a hint of 0.2 s or
            more gets a :class:`RealClockWarning`.
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
        self.router = router if router is not None else _new_router()
        self.requests: list[httpx.Request] = []
        self.scripts: list[JobScript] = []
        self._jobs: dict[str, FakeJob] = {}
        self._serial = 0
        self._lock = threading.RLock()
        self._submit_routes: set[tuple[str, str]] = set()
        self._status_routes: set[str] = set()
        self._answers = Answers(self)
        # Per job: (real time, fake time, Retry-After hint) of its last answer, to notice a
        # client that waits hints out with the real clock.
        self._marks: dict[str, tuple[float, float, float | None]] = {}
        self._real_clock_warned = False

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
            retry_after=check_delay(retry_after),
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

    def client(
        self,
        *,
        headers: dict[str, str] | None = None,
        polling: PollingPolicy | None = None,
        retry: RetryPolicy | None = None,
        dialect: Dialect | None = None,
        on_progress: ProgressCallback | Sequence[ProgressCallback] | None = None,
    ) -> Client:
        """A :class:`~asyncreply_client.Client` wired to this fake: its base URL, its clock
        (hints take no real time) and its transport (no ``with api:`` needed).

        Example:
            >>> api = FakeAsyncAPI()
            >>> _ = api.job().pending(retry_after=60).completed({"ok": True})
            >>> with api.client() as client:
            ...     client.run("/jobs", json={})
            {'ok': True}
            >>> api.clock.slept >= 60
            True
        """
        from .. import Client

        return Client(
            self.base_url,
            http_client=httpx.Client(transport=self.transport()),
            clock=self.clock,
            headers=headers,
            polling=polling,
            retry=retry,
            dialect=dialect,
            on_progress=on_progress,
        )

    def async_client(
        self,
        *,
        headers: dict[str, str] | None = None,
        polling: PollingPolicy | None = None,
        retry: RetryPolicy | None = None,
        dialect: Dialect | None = None,
        on_progress: ProgressCallback | Sequence[ProgressCallback] | None = None,
    ) -> AsyncClient:
        """An :class:`~asyncreply_client.AsyncClient` wired to this fake (see :meth:`client`)."""
        from .. import AsyncClient

        return AsyncClient(
            self.base_url,
            http_client=httpx.AsyncClient(transport=self.transport()),
            clock=self.clock,
            headers=headers,
            polling=polling,
            retry=retry,
            dialect=dialect,
            on_progress=on_progress,
        )

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
                return error(404, "not_found", "no scripted job matches this submission")
            script = candidates[0]
            script.submissions.append(request)
            if script._rejection is not None:
                r = script._rejection
                return error(r.status_code, r.code, r.message, r.details)
            body = json_or_none(request.content)
            key = request.headers.get("idempotency-key")
            if key is not None:
                key = bare_key(key)
                replay = script._keys.get(key)
                if replay is not None:
                    response = self._answers.accepted(replay, current=True)
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
            self._mark(job, script.retry_after)
            return self._answers.accepted(job)

    def _retry(self, job: FakeJob, request: httpx.Request) -> httpx.Response:
        if not job.retryable or job.index is None:
            return error(409, "not_retryable", f"job {job.id} cannot be retried")
        key = request.headers.get("idempotency-key")
        replay_key = None if key is None else f"retry:{job.id}:{bare_key(key)}"
        if replay_key is not None and replay_key in job.script._keys:
            response = self._answers.accepted(job.script._keys[replay_key], current=True)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        retried = self._create_job(job.script, job_type=job.job_type, job_input=job.job_input)
        retried.cursor = job.index + 1
        retried.original_job_id = job.id
        retried.requests.append(request)
        if replay_key is not None:
            job.script._keys[replay_key] = retried
        self._mark(retried, job.script.retry_after)
        return self._answers.accepted(retried)

    def _on_job(self, request: httpx.Request, job_id: str, sub: str | None) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            job = self._jobs.get(job_id)
            if job is None:
                return error(404, "not_found", f"no job {job_id!r}")
            job.requests.append(request)
            if sub == "/result":
                if request.method != "GET":
                    return error(405, "method_not_allowed", "use GET")
                return self._answers.result(job)
            if sub == "/events":
                if request.method != "GET":
                    return error(405, "method_not_allowed", "use GET")
                return self._answers.events(job)
            if sub == "/retry":
                if request.method != "POST":
                    return error(405, "method_not_allowed", "use POST")
                return self._retry(job, request)
            if request.method == "DELETE":
                return self._answers.cancel(job)
            if request.method != "GET":
                return error(405, "method_not_allowed", "use GET or DELETE")
            job.polls.append(request)
            self._check_clock(job)
            step = job._advance()
            response = self._answers.status(job, step)
            self._mark(job, None if step.is_terminal else step.retry_after)
            held = requested_wait(request) if job.script.long_poll else None
            if held is not None:
                response.headers["Preference-Applied"] = f"wait={held}"
            return response

    def _mark(self, job: FakeJob, hint: float | None) -> None:
        self._marks[job.id] = (time.monotonic(), self.clock.now(), hint)

    def _check_clock(self, job: FakeJob) -> None:
        """Warn (once) when a client waited out this job's last hint with the real clock."""
        mark = self._marks.get(job.id)
        if mark is None or self._real_clock_warned:
            return
        real, fake, hint = mark
        if hint is None or hint < _REAL_WAIT_WORTH_WARNING:
            return
        if self.clock.now() - fake >= hint / 2 or time.monotonic() - real < hint / 2:
            return  # the fake clock slept the hint, or the client did not wait it out
        self._real_clock_warned = True
        warnings.warn(
            RealClockWarning(
                f"a client waited {time.monotonic() - real:.1f} s of real time for a "
                f"Retry-After of {hint:g} s from the fake API at {self.base_url}: pass "
                "clock=api.clock, or create it with api.client() / api.async_client()"
            ),
            stacklevel=2,
        )
