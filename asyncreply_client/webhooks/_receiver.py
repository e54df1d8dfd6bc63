"""Receiving: one I/O-free flow (verify, de-duplicate, dispatch), driven by a sync and an
async function."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._errors import (
    InvalidSignatureError,
    ReplayedDeliveryError,
    TimestampOutOfToleranceError,
    WebhookVerificationError,
)
from ._parsing import HeadersInput
from ._verify import WebhookCallback, WebhookEvent, WebhookVerifier

__all__ = ["CATCH_ALL", "WebhookResponse", "handle_webhook", "handle_webhook_async"]

logger = logging.getLogger("asyncreply_client.webhooks")

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
) -> Generator[_Dispatch, None, WebhookResponse]:
    """Verify, de-duplicate and dispatch one delivery; yield the callback call to the driver.

    The driver runs the yielded call and either sends ``None`` back or throws what the
    callback raised into the flow. Status codes follow what webhook senders expect: 2xx
    means "delivered, do not retry", 4xx "never retry this", 5xx "retry later".
    """
    try:
        event = verifier.verify(headers, body)
    except ReplayedDeliveryError as exc:
        if exc.processed:
            return _answer(200, {"status": "duplicate", "deliveryId": exc.delivery_id})
        # The first copy is still being handled (or failed after verification without being
        # forgotten): acknowledging now could lose the event if that handling fails, so ask
        # the sender to come back.
        return _error_answer(503, "delivery_in_progress", str(exc))
    except WebhookVerificationError as exc:
        logger.warning("webhook delivery rejected: %s", exc)
        unauthenticated = isinstance(exc, (InvalidSignatureError, TimestampOutOfToleranceError))
        return _error_answer(401 if unauthenticated else 400, exc.code, str(exc))
    callback = _select_callback(callbacks, event.type)
    if callback is not None:
        try:
            yield _Dispatch(callback, event)
        except Exception:
            # Forget the delivery so that the sender's retry is processed, not taken for a
            # duplicate.
            verifier.forget(event)
            logger.exception(
                "webhook callback for %s (delivery %s) failed", event.type, event.delivery_id
            )
            return _error_answer(500, "callback_failed", "the receiver failed to process it")
        except BaseException:
            verifier.forget(event)  # cancelled or interrupted: the work did not happen
            raise
    verifier._mark_processed(event)
    status = "processed" if callback is not None else "ignored"
    return _answer(200, {"status": status, "deliveryId": event.delivery_id})


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
    * 503 when a duplicate arrives while the first copy is still being processed.

    Callbacks must be synchronous here; use :func:`handle_webhook_async` for coroutines.

    Args:
        verifier: the verifier (its replay store de-duplicates deliveries).
        headers: the request headers.
        body: the raw request body.
        callbacks: event type (or ``"*"``) to callback.

    Returns:
        The status code and JSON body to answer with (see :attr:`WebhookResponse.headers`).

    Raises:
        TypeError: a callback is a coroutine function.

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
    flow = _receive_flow(verifier, headers, body, callbacks)
    try:
        step = next(flow)
        while True:
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

    Sync callbacks are called directly (on the event loop, so keep them short).

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
    try:
        step = next(flow)
        while True:
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
