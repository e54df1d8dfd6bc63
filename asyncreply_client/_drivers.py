"""The two drivers: the only code of the client written twice, once sync and once async.

A driver runs a flow (``_flow``): it sends each request (a first try directly; retrying a
transient fault through tenacity, sleeping on the client's clock), reads the open stream,
sleeps, and hands each ``Emit`` to its caller by yielding it. The flow's return value lands
in an ``Outcome``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import tenacity

from ._admission import Admission, Slot
from ._clock import Clock
from ._commands import CloseStream, Command, Emit, ReadBytes, ReadChunk, Send, Sleep
from ._dialects import Dialect
from ._errors import TransportError
from ._http import HttpResponse
from ._models import JobStatus
from ._retry import (
    RetryPolicy,
    TransientAnswer,
    exhausted,
    is_transient_response,
    may_be_transient,
    retrying_kwargs,
)
from ._security import RequestFactory

__all__ = ["DriverConfig", "Outcome", "drive", "drive_async"]

T = TypeVar("T")
_FAULTS = (httpx.TransportError, TransientAnswer)


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """What a driver needs: the request factory (auth by origin), the dialect (is a 500 a
    job's state?), the retry policy, the clock and the client's admission gates."""

    requests: RequestFactory
    dialect: Dialect
    retry: RetryPolicy
    clock: Clock
    admission: Admission = field(default_factory=Admission)


class Outcome(Generic[T]):
    """Receives a flow's return value (an async generator cannot return one)."""

    __slots__ = ("value",)

    value: T


def _settle(response: httpx.Response, cfg: DriverConfig) -> HttpResponse:
    """The reply for a response whose body has been read.

    Raises ``TransientAnswer`` for a transient fault, so that tenacity retries it.
    """
    view = HttpResponse.from_httpx(response)
    if may_be_transient(response.status_code) and is_transient_response(view, cfg.dialect):
        raise TransientAnswer(view)
    return view


def _keep_open(command: Send, response: httpx.Response) -> bool:
    return command.stream and not may_be_transient(response.status_code)


# --------------------------------------------------------------------------------------------
# sync


class _SyncIO:
    __slots__ = ("cfg", "chunks", "http", "slot", "stream")

    def __init__(self, http: httpx.Client, cfg: DriverConfig) -> None:
        self.http, self.cfg = http, cfg
        self.stream: httpx.Response | None = None
        self.chunks: Iterator[Any] | None = None
        self.slot: Slot | None = None

    def execute(self, command: Command) -> Any:
        if isinstance(command, Send):
            return self.send(command)
        if isinstance(command, ReadChunk | ReadBytes):
            if self.stream is None:
                return None
            if self.chunks is None:
                text = isinstance(command, ReadChunk)
                self.chunks = self.stream.iter_text() if text else self.stream.iter_bytes()
            try:
                return next(self.chunks, None)
            except httpx.TransportError as exc:
                raise exhausted(exc, self.stream.request, 1) from exc
        if isinstance(command, CloseStream):
            self.close()
        return None

    def send(self, command: Send) -> HttpResponse:
        self.close()
        try:
            return self.attempt(command)
        except _FAULTS as exc:
            first: BaseException | None = exc
        # The first try runs outside tenacity, so that the common case (it succeeds) builds
        # no Retrying object. When it fails, tenacity starts with an attempt that re-raises
        # its fault: tenacity then decides whether to retry and how long to wait exactly as
        # if it had made the first try itself (same attempt numbers, Retry-After and clock).
        attempts = 1
        try:
            retrying = tenacity.Retrying(
                sleep=self.cfg.clock.sleep, **retrying_kwargs(self.cfg.retry, retry=command.retry)
            )
            for attempt in retrying:
                with attempt:
                    if first is not None:  # tenacity's attempt 1: the first try's fault
                        fault, first = first, None
                        raise fault
                    attempts += 1
                    return self.attempt(command)
        except _FAULTS as exc:
            raise exhausted(exc, command.request, attempts) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def attempt(self, command: Send) -> HttpResponse:
        """One attempt at ``command``; raises ``TransientAnswer`` for a transient answer."""
        request = command.request
        auth = self.cfg.requests.auth_for(request.url)
        slot: Slot | None = self.cfg.admission.enter(request, stream=command.stream)
        try:
            response = self.http.send(request, stream=True, auth=auth, follow_redirects=False)
            if _keep_open(command, response):
                self.stream, self.slot, slot = response, slot, None  # released by close()
                return HttpResponse.from_httpx(response, read=False)
            try:
                response.read()
            finally:
                response.close()
        finally:
            if slot is not None:
                slot.release()
        return _settle(response, self.cfg)

    def close(self) -> None:
        stream, self.stream, self.chunks = self.stream, None, None
        slot, self.slot = self.slot, None
        try:
            if stream is not None:
                stream.close()
        finally:
            if slot is not None:
                slot.release()


def drive(
    flow: Generator[Command, Any, T], http: httpx.Client, cfg: DriverConfig, out: Outcome[T]
) -> Generator[JobStatus, None, None]:
    """Run ``flow`` synchronously; yield each emitted status; store the result in ``out``."""
    io = _SyncIO(http, cfg)
    reply: Any = None
    error: TransportError | None = None
    try:
        while True:
            try:
                command = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                out.value = stop.value
                return
            reply, error = None, None
            try:
                if isinstance(command, Emit):
                    yield command.status
                elif isinstance(command, Sleep):
                    cfg.clock.sleep(command.seconds)
                else:
                    reply = io.execute(command)
            except TransportError as exc:
                error = exc
    finally:
        io.close()
        flow.close()


# --------------------------------------------------------------------------------------------
# async


class _AsyncIO:
    __slots__ = ("cfg", "chunks", "http", "slot", "stream")

    def __init__(self, http: httpx.AsyncClient, cfg: DriverConfig) -> None:
        self.http, self.cfg = http, cfg
        self.stream: httpx.Response | None = None
        self.chunks: AsyncIterator[Any] | None = None
        self.slot: Slot | None = None

    async def execute(self, command: Command) -> Any:
        if isinstance(command, Send):
            return await self.send(command)
        if isinstance(command, ReadChunk | ReadBytes):
            if self.stream is None:
                return None
            if self.chunks is None:
                text = isinstance(command, ReadChunk)
                self.chunks = self.stream.aiter_text() if text else self.stream.aiter_bytes()
            try:
                return await anext(self.chunks, None)
            except httpx.TransportError as exc:
                raise exhausted(exc, self.stream.request, 1) from exc
        if isinstance(command, CloseStream):
            await self.close()
        return None

    async def send(self, command: Send) -> HttpResponse:
        await self.close()
        try:
            return await self.attempt(command)
        except _FAULTS as exc:
            first: BaseException | None = exc
        # The first try runs outside tenacity, so that the common case (it succeeds) builds
        # no Retrying object. When it fails, tenacity starts with an attempt that re-raises
        # its fault: tenacity then decides whether to retry and how long to wait exactly as
        # if it had made the first try itself (same attempt numbers, Retry-After and clock).
        attempts = 1
        try:
            retrying = tenacity.AsyncRetrying(
                sleep=self.cfg.clock.asleep, **retrying_kwargs(self.cfg.retry, retry=command.retry)
            )
            async for attempt in retrying:
                with attempt:
                    if first is not None:  # tenacity's attempt 1: the first try's fault
                        fault, first = first, None
                        raise fault
                    attempts += 1
                    return await self.attempt(command)
        except _FAULTS as exc:
            raise exhausted(exc, command.request, attempts) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def attempt(self, command: Send) -> HttpResponse:
        """One attempt at ``command``; raises ``TransientAnswer`` for a transient answer."""
        request = command.request
        auth = self.cfg.requests.auth_for(request.url)
        slot: Slot | None = await self.cfg.admission.aenter(request, stream=command.stream)
        try:
            response = await self.http.send(request, stream=True, auth=auth, follow_redirects=False)
            if _keep_open(command, response):
                self.stream, self.slot, slot = response, slot, None  # released by close()
                return HttpResponse.from_httpx(response, read=False)
            try:
                await response.aread()
            finally:
                await response.aclose()
        finally:
            if slot is not None:
                slot.release()
        return _settle(response, self.cfg)

    async def close(self) -> None:
        stream, self.stream, self.chunks = self.stream, None, None
        slot, self.slot = self.slot, None
        try:
            if stream is not None:
                await stream.aclose()
        finally:
            if slot is not None:
                slot.release()


async def drive_async(
    flow: Generator[Command, Any, T], http: httpx.AsyncClient, cfg: DriverConfig, out: Outcome[T]
) -> AsyncGenerator[JobStatus, None]:
    """Run ``flow`` asynchronously; yield each emitted status; store the result in ``out``."""
    io = _AsyncIO(http, cfg)
    reply: Any = None
    error: TransportError | None = None
    try:
        while True:
            try:
                command = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                out.value = stop.value
                return
            reply, error = None, None
            try:
                if isinstance(command, Emit):
                    yield command.status
                elif isinstance(command, Sleep):
                    await cfg.clock.asleep(command.seconds)
                else:
                    reply = await io.execute(command)
            except TransportError as exc:
                error = exc
    finally:
        await io.close()
        flow.close()
