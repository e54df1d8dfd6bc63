"""The in-process admin handle of a running reference server (for tests and benchmarks).

Every method is synchronous and safe to call both from inside the server's event loop
(``serve()``) and from another thread (``ServerThread``): calls from another thread are
run on the loop and waited for. A call that awaits the store (``job``, ``expire``,
``sweep``, ``clear``) finishes at once with the memory and SQLite stores, whose calls never
suspend; with a store that does (Redis) it must come from another thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from .app import ServerState
from .config import FaultConfig
from .eager import StepSuspended, finish_now
from .records import DeliveryRecord, JobRecord, JobState

__all__ = ["Admin", "DeliverySnapshot", "JobSnapshot", "ResultMeta"]

T = TypeVar("T")


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class ResultMeta(BaseModel):
    """What kind of result a completed job holds."""

    model_config = ConfigDict(frozen=True)

    kind: str
    content_type: str | None
    filename: str | None
    size: int | None
    expired: bool


class JobSnapshot(BaseModel):
    """A point-in-time copy of a job, as the server sees it."""

    model_config = ConfigDict(frozen=True)

    id: str
    owner: str
    type: str
    state: JobState
    attempt: int
    input: Any
    callback: dict[str, Any] | None
    progress: dict[str, Any] | None
    estimate: float | None
    result: ResultMeta | None
    error: dict[str, Any] | None
    dead_letter: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancelled_at: datetime | None
    not_before: datetime | None
    expires_at: datetime | None
    original_job_id: str | None
    events: int

    @classmethod
    def of(cls, job: JobRecord) -> JobSnapshot:
        """Snapshot a job record."""
        result = None
        if job.result_kind is not None:
            result = ResultMeta(
                kind=job.result_kind,
                content_type=job.result_content_type,
                filename=job.result_filename,
                size=job.result_size,
                expired=job.result_expired,
            )
        created = _dt(job.created_at)
        updated = _dt(job.updated_at)
        assert created is not None and updated is not None
        return cls(
            id=job.id,
            owner=job.owner,
            type=job.type,
            state=job.state,
            attempt=job.attempt,
            input=job.input,
            callback=job.callback,
            progress=job.progress.to_json() if job.progress is not None else None,
            estimate=job.estimate,
            result=result,
            error=job.error.to_json() if job.error is not None else None,
            dead_letter=job.dead_letter,
            created_at=created,
            updated_at=updated,
            started_at=_dt(job.started_at),
            finished_at=_dt(job.finished_at),
            cancelled_at=_dt(job.cancelled_at),
            not_before=_dt(job.not_before),
            expires_at=_dt(job.expires_at),
            original_job_id=job.original_job_id,
            events=job.event_seq,
        )


class DeliverySnapshot(BaseModel):
    """A point-in-time copy of a webhook delivery record."""

    model_config = ConfigDict(frozen=True)

    id: str
    job_id: str
    owner: str
    event: str
    url: str
    attempts: int
    status: str
    last_error: str | None
    response_status: int | None
    created_at: datetime
    updated_at: datetime
    body: bytes

    @classmethod
    def of(cls, rec: DeliveryRecord) -> DeliverySnapshot:
        """Snapshot a delivery record."""
        created = _dt(rec.created_at)
        updated = _dt(rec.updated_at)
        assert created is not None and updated is not None
        return cls(
            id=rec.id,
            job_id=rec.job_id,
            owner=rec.owner,
            event=rec.event,
            url=rec.url,
            attempts=rec.attempts,
            status=rec.status,
            last_error=rec.last_error,
            response_status=rec.response_status,
            created_at=created,
            updated_at=updated,
            body=rec.payload,
        )


class Admin:
    """Inspect and steer a running reference server from tests.

    Example:
        >>> async def check(server):  # server from ``async with serve() as server``
        ...     server.admin.set_faults(p_503=0.5, seed=1)
        ...     return server.admin.count("GET", "/jobs/abc")
    """

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def _call(self, fn: Callable[[], T]) -> T:
        loop = self._state.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return fn()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def _await(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine ``fn()`` makes on the server's loop and return its value."""
        loop = self._state.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and not loop.is_closed() and loop.is_running() and running is not loop:
            return asyncio.run_coroutine_threadsafe(fn(), loop).result(timeout=30)
        try:
            return finish_now(fn())
        except StepSuspended:
            raise StepSuspended(
                "this admin call waits for the store: call it from another thread than the server's"
            ) from None

    # jobs ---------------------------------------------------------------
    def jobs(self) -> list[JobSnapshot]:
        """Every live job, oldest first."""
        return self._call(lambda: [JobSnapshot.of(j) for j in self._state.manager.all_jobs()])

    def job(self, job_id: str) -> JobSnapshot | None:
        """One job (``None`` if unknown or expired)."""

        async def get() -> JobSnapshot | None:
            job = await self._state.manager.get(job_id)
            return JobSnapshot.of(job) if job is not None else None

        return self._await(get)

    def expire(self, job_id: str) -> bool:
        """Expire a job now (it answers 410 from then on); ``False`` if unknown."""
        return self._await(lambda: self._state.manager.expire(job_id))

    def sweep(self) -> None:
        """Run the expiry sweep now."""
        self._await(self._state.manager.sweep)

    def clear(self) -> None:
        """Forget all jobs, keys, tombstones, deliveries and request counters.

        Faults are left as they are.
        """

        async def clear() -> None:
            await self._state.manager.clear()
            await self._state.webhooks.clear()
            self._reset_counts()

        self._await(clear)

    # webhooks -----------------------------------------------------------
    def deliveries(self, *, status: str | None = None) -> list[DeliverySnapshot]:
        """Webhook delivery records, oldest first (optionally only one ``status``)."""
        return self._call(
            lambda: [
                DeliverySnapshot.of(d)
                for d in self._state.webhooks.deliveries.values()
                if status is None or d.status == status
            ]
        )

    # faults -------------------------------------------------------------
    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return self._state.faults

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the faults: ``set_faults(FaultConfig(...))`` or ``set_faults(p_503=0.5)``.

        With keyword fields, unspecified fields keep their current values. Returns the new
        configuration.
        """
        if faults is None:
            faults = self._state.faults.model_copy(update=fields)
            faults = FaultConfig.model_validate(faults.model_dump())
        elif fields:
            raise TypeError("pass either a FaultConfig or keyword fields, not both")
        new = faults
        self._call(lambda: self._state.set_faults(new))
        return new

    # counters -----------------------------------------------------------
    @property
    def request_count(self) -> int:
        """How many requests the server has received (faulted ones included)."""
        return self._state.total_requests

    @property
    def path_counts(self) -> dict[str, int]:
        """Requests per ``"METHOD /actual/path"`` (query strings excluded)."""
        return self._call(lambda: dict(self._state.path_counts))

    @property
    def route_counts(self) -> dict[str, int]:
        """Requests per ``"METHOD /route/{template}"``, e.g. ``"GET /jobs/{job_id}"``."""
        return self._call(lambda: dict(self._state.route_counts))

    def count(self, method: str, path: str) -> int:
        """Requests received for one method and path, e.g. ``count("GET", "/jobs/abc")``."""
        return self._call(lambda: self._state.path_counts.get(f"{method.upper()} {path}", 0))

    def status_requests(self, job_id: str) -> int:
        """How many ``GET /jobs/{job_id}`` status requests the server has received."""
        return self.count("GET", f"/jobs/{job_id}")

    def reset_counts(self) -> None:
        """Zero the request counters."""
        self._call(self._reset_counts)

    def _reset_counts(self) -> None:
        self._state.total_requests = 0
        self._state.path_counts.clear()
        self._state.route_counts.clear()
