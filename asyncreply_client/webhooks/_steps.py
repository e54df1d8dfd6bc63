"""The replay store as steps of the verify and receive flows, and the two drivers that run them.

The decisions (claim a delivery, ask whether a duplicate was processed, release a claim) are
written once, in generators that yield a :class:`StoreCall`; the synchronous driver calls a
:class:`ReplayStore`, the asynchronous one awaits an :class:`AsyncReplayStore` (or calls a
synchronous store directly). These drivers are the only code written twice.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ._replay import AsyncReplayStore, ReplayStore

__all__ = [
    "AnyReplayStore",
    "StoreCall",
    "is_async_store",
    "run_async",
    "run_sync",
    "store_call_async",
    "store_call_sync",
]

T = TypeVar("T")
AnyReplayStore = ReplayStore | AsyncReplayStore


@dataclass(frozen=True, slots=True)
class StoreCall:
    """One replay store operation a flow asks its driver to perform."""

    operation: Literal["add", "discard", "contains"]
    key: str
    expires_at: float = 0.0


def is_async_store(store: object) -> bool:
    """Whether ``store`` is an :class:`AsyncReplayStore` (its ``add`` is a coroutine function)."""
    return inspect.iscoroutinefunction(getattr(store, "add", None))


def store_call_sync(store: AnyReplayStore, call: StoreCall) -> Any:
    """Perform ``call`` on a synchronous store."""
    if is_async_store(store):
        raise TypeError(
            "this verifier's replay store is asynchronous: use verify_async(), forget_async() "
            "or handle_webhook_async()"
        )
    sync_store: Any = store
    if call.operation == "add":
        return bool(sync_store.add(call.key, call.expires_at))
    if call.operation == "discard":
        sync_store.discard(call.key)
        return None
    return call.key in sync_store


async def store_call_async(store: AnyReplayStore, call: StoreCall) -> Any:
    """Perform ``call``, awaiting an asynchronous store and calling a synchronous one."""
    if not is_async_store(store):
        return store_call_sync(store, call)
    async_store: Any = store
    if call.operation == "add":
        return bool(await async_store.add(call.key, call.expires_at))
    if call.operation == "discard":
        await async_store.discard(call.key)
        return None
    return bool(await async_store.contains(call.key))


def run_sync(flow: Generator[StoreCall, Any, T], store: AnyReplayStore | None) -> T:
    """Run a flow whose only steps are store calls, synchronously."""
    try:
        call = next(flow)
        while True:
            if store is None:  # pragma: no cover - flows yield no store call without a store
                raise RuntimeError("a store call without a replay store")
            call = flow.send(store_call_sync(store, call))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(flow: Generator[StoreCall, Any, T], store: AnyReplayStore | None) -> T:
    """Run a flow whose only steps are store calls, awaiting an asynchronous store."""
    try:
        call = next(flow)
        while True:
            if store is None:  # pragma: no cover - flows yield no store call without a store
                raise RuntimeError("a store call without a replay store")
            call = flow.send(await store_call_async(store, call))
    except StopIteration as stop:
        result: T = stop.value
        return result
