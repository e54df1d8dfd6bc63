"""Receiving: one I/O-free flow (verify, de-duplicate, dispatch), driven by a sync and an
async function."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import _log
from ._errors import (
    InvalidSignatureError,
    ReplayedDeliveryError,
    TimestampOutOfToleranceError,
    WebhookVerificationError,
)
from ._event import WebhookCallback, WebhookEvent
from ._headers import HeadersInput, arrange_arguments
from ._steps import StoreCall, is_async_store, store_call_async, store_call_sync
from ._verify import WebhookVerifier

__all__ = ["CATCH_ALL", "WebhookResponse", "handle_webhook", "handle_webhook_async"]

# One record per delivery, on the documented tree (``asyncreply.webhooks``): DEBUG for a
# delivery processed, ignored or a duplicate acknowledged; INFO for one refused (4xx) or
# deferred (503); ERROR, with the traceback, for a callback that raised.
logger = _log.WEBHOOKS

CATCH_ALL = "*"
"""The callbacks key whose callback receives events no other key names."""


class WebhookResponse(NamedTuple):
    """What to answer the sender: ``status_code`` and ``body``, the JSON document as *bytes*
    (UTF-8), ready to write to the wire; :meth:`json` decodes it.

    Example:
        >>> status_code, body = WebhookResponse(200, b'{"status": "processed"}')
        >>> status_code, body
        (200, b'{"status": "processed"}')
        >>> WebhookResponse(200, body).json()
        {'status': 'processed'}
    """

    status_code: int
    body: bytes

    def json(self) -> Any:
        """The body decoded from JSON (the receiver always answers a JSON document)."""
        return json.loads(self.body)

    @property
    def headers(self) -> dict[str, str]:
        """Response headers: the content type, and ``Retry-After`` on a 503."""
        headers = {"Content-Type": "application/json"}
        if self.status_code == 503:
            headers["Retry-After"] = "1"
        return headers


class _StoreUnavailable(Exception):
    """What a driver throws into the flow when the replay store failed (Redis down, …)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True, slots=True)
class _Dispatch:
    """The flow's one request to its driver: call ``callback`` with ``event``."""

    callback: WebhookCallback
    event: WebhookEvent


def _answer(status_code: int, document: Mapping[str, Any]) -> WebhookResponse:
    return WebhookResponse(status_code, json.dumps(document).encode())


def _error_answer(status_code: int, code: str, message: str) -> WebhookResponse:
    # The protocol's error shape (docs/protocol.md): {"error": {"code", "message"}}.
    return _answer(status_code, {"error": {"code": code, "message": message}})


def _select_callback(
    callbacks: Mapping[str, WebhookCallback], event_type: str | None
) -> WebhookCallback | None:
    if event_type is not None and event_type in callbacks:
        return callbacks[event_type]
    return callbacks.get(CATCH_ALL)


def _receive_flow(
    verifier: WebhookVerifier,
    headers: HeadersInput,
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> Generator[_Dispatch | StoreCall, Any, WebhookResponse]:
    """Verify, de-duplicate and dispatch one delivery; yield store and callback calls.

    The driver performs each yielded :class:`StoreCall` and sends its result back, and runs
    each :class:`_Dispatch`, sending ``None`` back or throwing what the callback raised into
    the flow. Status codes follow what webhook senders expect: 2xx means "delivered, do not
    retry", 4xx "never retry this", 5xx "retry later".
    """
    found, raw = arrange_arguments(headers, body)
    try:
        event = yield from verifier._verify_steps(found, raw)
    except _StoreUnavailable as exc:
        # Nothing was processed: the sender's retry is safe and will be de-duplicated.
        logger.error(
            "webhook delivery not recorded: the replay store failed (%s): answered 503",
            type(exc.cause).__name__,
            exc_info=exc.cause,
        )
        return _error_answer(
            503, "replay_store_unavailable", "the receiver cannot record deliveries now"
        )
    except ReplayedDeliveryError as exc:
        if exc.processed:
            if _log.enabled(logger):
                logger.debug("webhook delivery %r is a duplicate: answered 200", exc.delivery_id)
            return _answer(200, {"status": "duplicate", "deliveryId": exc.delivery_id})
        # The first copy is still being handled (or failed after verification without being
        # forgotten): acknowledging now could lose the event if that handling fails, so ask
        # the sender to come back.
        if _log.enabled(logger, logging.INFO):
            logger.info(
                "webhook delivery %r is still being processed: answered 503", exc.delivery_id
            )
        return _error_answer(503, "delivery_in_progress", str(exc))
    except WebhookVerificationError as exc:
        unauthenticated = isinstance(exc, (InvalidSignatureError, TimestampOutOfToleranceError))
        status_code = 401 if unauthenticated else 400
        if _log.enabled(logger, logging.INFO):
            logger.info(
                "webhook delivery rejected: %s: answered %d", type(exc).__name__, status_code
            )
        return _error_answer(status_code, exc.code, str(exc))
    callback = _select_callback(callbacks, event.type)
    if callback is not None:
        try:
            yield _Dispatch(callback, event)
        except Exception:
            # Forget the delivery so that the sender's retry is processed, not taken for a
            # duplicate (if the store fails too, the claim expires with its window).
            released = yield from _release(verifier, event)
            logger.exception(
                "webhook callback for %s (delivery %r) failed: answered 500%s",
                event.type,
                event.delivery_id,
                "" if released else " (the replay store could not release its claim)",
            )
            return _error_answer(500, "callback_failed", "the receiver failed to process it")
        except BaseException:
            yield from _release(verifier, event)  # cancelled or interrupted: not done
            raise
    status = "processed" if callback is not None else "ignored"
    try:
        yield from verifier._processed_steps(event)
    except _StoreUnavailable as exc:
        # The work is done: acknowledge it. A later duplicate finds only the claim and is
        # answered 503 until the claim expires, which is safe.
        logger.error(
            "webhook delivery %r %s, but the replay store failed to record it (%s): answered 200",
            event.delivery_id,
            status,
            type(exc.cause).__name__,
        )
        return _answer(200, {"status": status, "deliveryId": event.delivery_id})
    if _log.enabled(logger):
        logger.debug(
            "webhook delivery %r %s (%s, %s): answered 200",
            event.delivery_id,
            status,
            event.type,
            event.scheme,
        )
    return _answer(200, {"status": status, "deliveryId": event.delivery_id})


def _release(verifier: WebhookVerifier, event: WebhookEvent) -> Generator[StoreCall, Any, bool]:
    """Forget ``event``'s claim; ``False`` when the replay store failed to."""
    try:
        yield from verifier._forget_steps(event)
    except _StoreUnavailable:
        return False
    return True


def _required(store: Any) -> Any:
    if store is None:  # pragma: no cover - the flow yields store calls only with a store
        raise RuntimeError("a replay store call without a replay store")
    return store


def _close_unawaited(result: object) -> None:
    if inspect.iscoroutine(result):
        result.close()  # avoid "coroutine was never awaited" on the way to the error


def handle_webhook(
    verifier: WebhookVerifier,
    headers: HeadersInput,
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> WebhookResponse:
    """Verify one delivery, dispatch it to a callback, and say what to answer the sender.

    The callback for the event's type runs (``callbacks[event.type]``), else the catch-all
    ``callbacks["*"]``, else none (the delivery is acknowledged as ``ignored``). Answers:

    * 200 ``processed`` / ``ignored``, and 200 ``duplicate`` for a delivery already processed;
    * 400 for a missing or malformed header or payload, 401 for a bad signature or a timestamp
      outside the tolerance (senders do not retry 4xx);
    * 500 when the callback raised: the delivery is forgotten, so the sender's retry runs it;
    * 503 when a duplicate arrives while the first copy is still being processed, or when
      the replay store fails before anything was processed (Redis down: the sender retries).

    Callbacks must be synchronous here, and so must the verifier's replay store; use
    :func:`handle_webhook_async` for coroutines and an :class:`AsyncReplayStore`.

    Args:
        verifier: the verifier (its replay store de-duplicates deliveries).
        headers: the request headers in any common shape (a mapping, an
            ``email.message.Message``, a framework's header object, a WSGI environ, ASGI
            pairs: :data:`HeadersInput`).
        body: the raw request body.
        callbacks: event type (or ``"*"``) to callback.

    Returns:
        The status code and JSON body to answer with (see :attr:`WebhookResponse.headers`).

    Raises:
        TypeError: a callback is a coroutine function, the replay store is asynchronous, or
            the body is not bytes.

    Example:
        >>> seen = []
        >>> verifier = WebhookVerifier("s3cret", clock=lambda: 1700000000)
        >>> body = b'{"type": "job.completed", "jobId": "j1"}'
        >>> headers = sign(body, "s3cret", msg_id="m1", timestamp=1700000000)
        >>> handle_webhook(verifier, headers, body, {"job.completed": seen.append}).status_code
        200
        >>> [event.job_id for event in seen]
        ['j1']
    """
    for callback in callbacks.values():
        if inspect.iscoroutinefunction(callback):
            raise TypeError("handle_webhook needs sync callbacks; use handle_webhook_async")
    if is_async_store(verifier.replay_store):
        raise TypeError("this verifier's replay store is asynchronous: use handle_webhook_async()")
    flow = _receive_flow(verifier, headers, body, callbacks)
    store = verifier.replay_store
    try:
        step = next(flow)
        while True:
            if isinstance(step, StoreCall):
                try:
                    answer = store_call_sync(_required(store), step)
                except Exception as exc:
                    step = flow.throw(_StoreUnavailable(exc))
                else:
                    step = flow.send(answer)
                continue
            try:
                result = step.callback(step.event)
                if inspect.isawaitable(result):
                    _close_unawaited(result)
                    raise TypeError("a webhook callback returned an awaitable to handle_webhook")
            except BaseException as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(None)
    except StopIteration as stop:
        response: WebhookResponse = stop.value
        return response


async def handle_webhook_async(
    verifier: WebhookVerifier,
    headers: HeadersInput,
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> WebhookResponse:
    """Like :func:`handle_webhook`, awaiting callbacks that are coroutine functions.

    Sync callbacks are called directly (on the event loop, so keep them short); the
    verifier's replay store may be an :class:`AsyncReplayStore` (awaited) or a synchronous
    one (called directly).

    Example:
        >>> import asyncio
        >>> async def on_done(event: WebhookEvent) -> None:
        ...     print("done", event.job_id)
        >>> verifier = WebhookVerifier("s3cret", clock=lambda: 1700000000)
        >>> body = b'{"type": "job.completed", "jobId": "j1"}'
        >>> headers = sign(body, "s3cret", msg_id="m1", timestamp=1700000000)
        >>> answer = asyncio.run(
        ...     handle_webhook_async(verifier, headers, body, {"job.completed": on_done})
        ... )
        done j1
        >>> answer.status_code
        200
    """
    flow = _receive_flow(verifier, headers, body, callbacks)
    store = verifier.replay_store
    try:
        step = next(flow)
        while True:
            if isinstance(step, StoreCall):
                try:
                    answer = await store_call_async(_required(store), step)
                except Exception as exc:
                    step = flow.throw(_StoreUnavailable(exc))
                else:
                    step = flow.send(answer)
                continue
            try:
                result = step.callback(step.event)
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(None)
    except StopIteration as stop:
        response: WebhookResponse = stop.value
        return response
