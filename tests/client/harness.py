"""One test body, two clients: ``Client`` and ``AsyncClient`` driven from the same coroutine.

Tests are ``async def`` and parametrised with ``flavor`` (``BOTH``). ``open_client`` yields
the client and a ``call`` helper: ``await call(op.result, timeout=5)`` awaits an
``AsyncClient`` method, or runs a ``Client`` method in a worker thread (so a server running
in the test's event loop keeps serving). ``call.collect(op.watch)`` gathers an iterator or an
async iterator into a list.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

from asyncreply_client import AsyncClient, Client

BOTH = pytest.mark.parametrize("flavor", ["sync", "async"])


class Call:
    """Calls client methods the same way whatever the flavour."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor

    @property
    def is_async(self) -> bool:
        return self.flavor == "async"

    async def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            outcome = fn(*args, **kwargs)
            return await outcome if inspect.isawaitable(outcome) else outcome
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def collect(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        if self.is_async:
            return [item async for item in fn(*args, **kwargs)]
        return await anyio.to_thread.run_sync(lambda: list(fn(*args, **kwargs)))


@contextlib.asynccontextmanager
async def open_client(
    flavor: str, base_url: str, *, transport: Any = None, **options: Any
) -> AsyncIterator[tuple[Any, Call]]:
    """A ``Client`` or ``AsyncClient`` for ``base_url`` (closed at the end) and its ``call``.

    ``transport``: an httpx transport (sync or async as the flavour needs) for a user-owned
    ``http_client``.
    """
    if flavor == "async":
        if transport is not None:
            options["http_client"] = httpx.AsyncClient(transport=transport)
        async with AsyncClient(base_url, **options) as client:
            yield client, Call(flavor)
        if transport is not None:
            await options["http_client"].aclose()
    else:
        if transport is not None:
            options["http_client"] = httpx.Client(transport=transport)
        client = Client(base_url, **options)
        try:
            yield client, Call(flavor)
        finally:
            client.close()
            if transport is not None:
                options["http_client"].close()
