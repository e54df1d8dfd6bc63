"""The ready aiohttp request handler for webhook receivers (needs the aiohttp extra)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from ._errors import MissingExtraError
from ._event import WebhookCallback
from ._receiver import handle_webhook_async
from ._verify import WebhookVerifier

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["aiohttp_webhook_handler"]


def aiohttp_webhook_handler(
    verifier: WebhookVerifier,
    callbacks: Mapping[str, WebhookCallback],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return an aiohttp request handler that receives webhooks (needs the aiohttp extra).

    It reads the raw body, runs :func:`handle_webhook_async` and answers with its result.

    Args:
        verifier: the verifier.
        callbacks: event type (or ``"*"``) to sync or async callback.

    Raises:
        MissingExtraError: aiohttp is not installed (``pip install 'asyncreply[server]'``);
            also an ``ImportError``.

    Example:
        >>> from aiohttp import web
        >>> async def on_completed(event: WebhookEvent) -> None: ...
        >>> app = web.Application()
        >>> verifier = WebhookVerifier("whsec_c2VjcmV0")
        >>> handler = aiohttp_webhook_handler(verifier, {"job.completed": on_completed})
        >>> _ = app.router.add_post("/webhooks", handler)
    """
    try:
        from aiohttp import web
    except ImportError as exc:
        raise MissingExtraError(
            "aiohttp_webhook_handler needs aiohttp: pip install 'asyncreply[server]'",
            extra="server",
        ) from exc

    async def receive_webhook(request: web.Request) -> web.Response:
        body = await request.read()
        answer = await handle_webhook_async(verifier, request.headers, body, callbacks)
        return web.Response(status=answer.status_code, body=answer.body, headers=answer.headers)

    return receive_webhook
