"""Ready webhook receivers for Starlette / FastAPI, Flask and Django (each an optional extra).

Each reads the raw body and the framework's own header object, runs the one receive flow
(:func:`handle_webhook` or :func:`handle_webhook_async`) and answers with its status, JSON
body and headers. The framework is imported when the receiver is built, never before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._errors import MissingExtraError
from ._event import WebhookCallback
from ._receiver import handle_webhook, handle_webhook_async
from ._verify import WebhookVerifier

if TYPE_CHECKING:
    import flask
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["django_webhook_view", "flask_webhook_view", "starlette_webhook_endpoint"]


def _missing(framework: str, extra: str) -> MissingExtraError:
    return MissingExtraError(
        f"this receiver needs {framework}: pip install 'asyncreply[{extra}]'", extra=extra
    )


def starlette_webhook_endpoint(
    verifier: WebhookVerifier, callbacks: Mapping[str, WebhookCallback]
) -> Callable[[Request], Awaitable[Response]]:
    """Return a Starlette (and FastAPI) endpoint that receives webhooks.

    Callbacks may be coroutine functions; the verifier's replay store may be asynchronous
    (:class:`AsyncRedisReplayStore`).

    Args:
        verifier: the verifier.
        callbacks: event type (or ``"*"``) to sync or async callback.

    Raises:
        MissingExtraError: Starlette is not installed (``pip install 'asyncreply[starlette]'``).

    Example:
        >>> from starlette.applications import Starlette
        >>> from starlette.routing import Route
        >>> verifier = WebhookVerifier("whsec_c2VjcmV0")
        >>> endpoint = starlette_webhook_endpoint(verifier, {"job.completed": print})
        >>> app = Starlette(routes=[Route("/webhooks", endpoint, methods=["POST"])])

        With FastAPI: ``app.add_api_route("/webhooks", endpoint, methods=["POST"])``.
    """
    try:
        from starlette.requests import Request
        from starlette.responses import Response
    except ImportError as exc:
        raise _missing("Starlette", "starlette") from exc

    async def receive_webhook(request: Request) -> Response:
        body = await request.body()
        answer = await handle_webhook_async(verifier, request.headers, body, callbacks)
        return Response(answer.body, status_code=answer.status_code, headers=answer.headers)

    # FastAPI reads the annotations to inject the request: give it the classes, not strings.
    receive_webhook.__annotations__ = {"request": Request, "return": Response}
    return receive_webhook


def flask_webhook_view(
    verifier: WebhookVerifier, callbacks: Mapping[str, WebhookCallback]
) -> Callable[[], flask.Response]:
    """Return a Flask view function that receives webhooks (sync callbacks and store).

    Args:
        verifier: the verifier (with a synchronous replay store).
        callbacks: event type (or ``"*"``) to sync callback.

    Raises:
        MissingExtraError: Flask is not installed (``pip install 'asyncreply[flask]'``).

    Example:
        >>> import flask
        >>> app = flask.Flask("receiver")
        >>> view = flask_webhook_view(WebhookVerifier("whsec_c2VjcmV0"), {"*": print})
        >>> app.add_url_rule("/webhooks", "webhooks", view, methods=["POST"])
    """
    try:
        import flask
    except ImportError as exc:
        raise _missing("Flask", "flask") from exc

    def receive_webhook() -> flask.Response:
        request = flask.request
        body = request.get_data(cache=False)
        answer = handle_webhook(verifier, request.headers, body, callbacks)
        return flask.Response(answer.body, status=answer.status_code, headers=answer.headers)

    return receive_webhook


def django_webhook_view(
    verifier: WebhookVerifier, callbacks: Mapping[str, WebhookCallback]
) -> Callable[[Any], Any]:
    """Return a Django view that receives webhooks (CSRF-exempt: the signature is the check).

    Sync callbacks and replay store. Route it with ``path("webhooks", view)``.

    Args:
        verifier: the verifier (with a synchronous replay store).
        callbacks: event type (or ``"*"``) to sync callback.

    Raises:
        MissingExtraError: Django is not installed (``pip install 'asyncreply[django]'``).
    """
    try:
        from django.http import HttpResponse, HttpResponseNotAllowed
        from django.views.decorators.csrf import csrf_exempt
    except ImportError as exc:
        raise _missing("Django", "django") from exc

    def receive_webhook(request: Any) -> Any:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        answer = handle_webhook(verifier, request.headers, request.body, callbacks)
        response = HttpResponse(answer.body, status=answer.status_code)
        for name, value in answer.headers.items():
            response[name] = value
        return response

    view: Callable[[Any], Any] = csrf_exempt(receive_webhook)
    return view
