"""Ready receivers for Starlette / FastAPI, Flask and Django, and handle_webhook inside the
standard library's servers (http.server, wsgiref) and a bare ASGI app, each with the real
framework (issues 20.7, 20.8)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from asyncreply_client.webhooks import (
    MissingExtraError,
    WebhookEvent,
    WebhookVerifier,
    aiohttp_webhook_handler,
    django_webhook_view,
    flask_webhook_view,
    handle_webhook,
    handle_webhook_async,
    sign,
    starlette_webhook_endpoint,
)

NOW = 1_700_000_000
SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="
BODY = b'{"type": "job.completed", "jobId": "j1", "data": {"status": "succeeded"}}'


def _signed(msg_id: str = "msg_1") -> dict[str, str]:
    return sign(BODY, SECRET, msg_id=msg_id, timestamp=NOW, scheme="standard")


def _verifier() -> WebhookVerifier:
    return WebhookVerifier(SECRET, clock=lambda: NOW)


Post = Callable[[dict[str, str], bytes], tuple[int, Any, str]]


def _check_receiver(post: Post, seen: list[str | None]) -> None:
    """The behaviour every receiver shares: processed, duplicate, forged."""
    status, document, content_type = post(_signed(), BODY)
    assert (status, document) == (200, {"status": "processed", "deliveryId": "msg_1"})
    assert content_type.startswith("application/json")
    assert seen == ["j1"]
    status, document, _ = post(_signed(), BODY)
    assert (status, document["status"]) == (200, "duplicate")
    forged = sign(BODY, "whsec_b3RoZXI=", msg_id="msg_2", timestamp=NOW, scheme="standard")
    status, document, _ = post(forged, BODY)
    assert (status, document["error"]["code"]) == (401, "invalid_signature")
    assert seen == ["j1"]


# --------------------------------------------------------------------------------------------
# Starlette and FastAPI (async callbacks)


def _starlette_app(seen: list[str | None]) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def on_completed(event: WebhookEvent) -> None:
        seen.append(event.job_id)

    endpoint = starlette_webhook_endpoint(_verifier(), {"job.completed": on_completed})
    return Starlette(routes=[Route("/hooks", endpoint, methods=["POST"])])


def _fastapi_app(seen: list[str | None]) -> Any:
    from fastapi import FastAPI

    async def on_completed(event: WebhookEvent) -> None:
        seen.append(event.job_id)

    app = FastAPI()
    endpoint = starlette_webhook_endpoint(_verifier(), {"job.completed": on_completed})
    app.add_api_route("/hooks", endpoint, methods=["POST"])
    return app


@pytest.mark.anyio
@pytest.mark.parametrize("build", [_starlette_app, _fastapi_app], ids=["starlette", "fastapi"])
async def test_the_starlette_endpoint_receives(build: Callable[[list[str | None]], Any]) -> None:
    seen: list[str | None] = []
    transport = httpx.ASGITransport(app=build(seen))
    answers: list[httpx.Response] = []
    forged = sign(BODY, "whsec_b3RoZXI=", msg_id="msg_2", timestamp=NOW, scheme="standard")
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        for headers in (_signed(), _signed(), forged):
            answers.append(await client.post("/hooks", content=BODY, headers=headers))
    replies = iter(answers)

    def post(headers: dict[str, str], body: bytes) -> tuple[int, Any, str]:
        answer = next(replies)  # the answers above, in the order _check_receiver asks
        return answer.status_code, answer.json(), answer.headers["content-type"]

    _check_receiver(post, seen)


# --------------------------------------------------------------------------------------------
# Flask and Django (sync callbacks)


def test_the_flask_view_receives() -> None:
    import flask

    seen: list[str | None] = []
    app = flask.Flask("receiver")
    view = flask_webhook_view(_verifier(), {"job.completed": lambda e: seen.append(e.job_id)})
    app.add_url_rule("/hooks", "hooks", view, methods=["POST"])
    client = app.test_client()

    def post(headers: dict[str, str], body: bytes) -> tuple[int, Any, str]:
        answer = client.post("/hooks", data=body, headers=headers)
        return answer.status_code, answer.get_json(), answer.headers["Content-Type"]

    _check_receiver(post, seen)


@pytest.fixture(scope="module")
def django_settings() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            SECRET_KEY="tests-only",
            USE_TZ=True,
        )
        django.setup()


@pytest.mark.usefixtures("django_settings")
def test_the_django_view_receives() -> None:
    from django.test import RequestFactory

    seen: list[str | None] = []
    view = django_webhook_view(_verifier(), {"job.completed": lambda e: seen.append(e.job_id)})
    factory = RequestFactory()

    def post(headers: dict[str, str], body: bytes) -> tuple[int, Any, str]:
        request = factory.post(
            "/hooks", data=body, content_type="application/json", headers=headers
        )
        answer = view(request)
        return answer.status_code, json.loads(answer.content), answer["Content-Type"]

    _check_receiver(post, seen)
    assert view(factory.get("/hooks")).status_code == 405
    assert getattr(view, "csrf_exempt", False)


# --------------------------------------------------------------------------------------------
# The standard library's servers and a bare ASGI app, each calling handle_webhook itself


def _poster(url: str) -> Post:
    def post(headers: dict[str, str], body: bytes) -> tuple[int, Any, str]:
        answer = httpx.post(url, content=body, headers=headers, timeout=10)
        return answer.status_code, answer.json(), answer.headers["content-type"]

    return post


@pytest.fixture
def http_server_receiver() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    verifier = _verifier()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            # self.headers is an email.message.Message: issue 20.7's lost deliveries.
            answer = handle_webhook(
                verifier, self.headers, body, {"job.completed": lambda e: seen.append(e.job_id)}
            )
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_handle_webhook_inside_http_server(http_server_receiver: tuple[str, list[Any]]) -> None:
    url, seen = http_server_receiver
    _check_receiver(_poster(url), seen)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_receiver() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    verifier = _verifier()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        answer = handle_webhook(
            verifier, environ, body, {"job.completed": lambda e: seen.append(e.job_id)}
        )
        start_response(f"{answer.status_code} X", list(answer.headers.items()))
        return [answer.body]

    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_handle_webhook_with_a_wsgi_environ(wsgi_receiver: tuple[str, list[Any]]) -> None:
    url, seen = wsgi_receiver
    _check_receiver(_poster(url), seen)


@pytest.mark.anyio
async def test_handle_webhook_async_with_asgi_headers() -> None:
    seen: list[str | None] = []
    verifier = _verifier()
    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = await handle_webhook_async(
            verifier, scope["headers"], body, {"job.completed": lambda e: seen.append(e.job_id)}
        )
        raw = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": answer.body})

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        first = await client.post("/hooks", content=BODY, headers=_signed())
        again = await client.post("/hooks", content=BODY, headers=_signed())
    assert (first.status_code, first.json()["status"]) == (200, "processed")
    assert again.json()["status"] == "duplicate"
    assert seen == ["j1"]


@pytest.mark.parametrize(
    ("build", "module", "extra"),
    [
        (starlette_webhook_endpoint, "starlette.requests", "starlette"),
        (flask_webhook_view, "flask", "flask"),
        (django_webhook_view, "django.http", "django"),
        (aiohttp_webhook_handler, "aiohttp", "server"),
    ],
)
def test_a_missing_framework_is_a_typed_error_naming_its_extra(
    monkeypatch: pytest.MonkeyPatch, build: Callable[..., Any], module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=rf"asyncreply\[{extra}\]") as caught:
        build(_verifier(), {})
    assert caught.value.extra == extra and isinstance(caught.value, ImportError)
