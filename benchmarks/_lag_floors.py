"""The floors of ``detection_lag``: what the transport itself allows on this machine.

Each floor waits for a ``sleep`` job's end the way a client costing nothing beyond its
transport would, so the SDK's pushed modes can be read against them:

- ``floor: socket long poll``: a raw socket sends ``GET /jobs/{id}?wait=30`` and reads the
  answer (``Content-Length``) until it is terminal (``completed`` or a 303), again while not;
- ``floor: socket SSE``: a raw socket reads ``/jobs/{id}/events`` until a piece holds
  ``event: complete``;
- ``floor: httpx long poll``: ``httpx.Client.get(status, params={"wait": "30"})`` and
  ``.json()``, again while not terminal;
- ``floor: httpx SSE``: ``httpx.Client.stream`` of the events URL and ``iter_lines``,
  leaving the ``with`` (the stream closed) at the ``complete`` event's ``data`` line.

The socket is opened before the job ends (with the submission), as a kept-alive
connection would be, so the lag holds only the wait's own receive and reading.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from ._harness import PathCounter

__all__ = ["floor_variants"]

_TERMINAL = (b'"status":"completed"', b'"status":"failed"', b'"status":"cancelled"')
_SSE_END = (b"event: complete", b"event: failed", b"event: cancelled")


def _read_answer(sock: socket.socket) -> bytes:
    """One HTTP/1.1 answer with a ``Content-Length`` body, head and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += _recv(sock)
    return head + b"\r\n\r\n" + body


def _recv(sock: socket.socket) -> bytes:
    piece = sock.recv(65536)
    if not piece:
        raise RuntimeError("the server closed the connection")
    return piece


def _connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(60.0)
    return sock


def _request(path: str, accept: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\n\r\n".encode()


def floor_variants(
    base_url: str, body: Callable[[float], dict[str, Any]]
) -> list[tuple[str, str, Callable[[float], str], PathCounter, Callable[[], None]]]:
    """The floors against the server at ``base_url``, as ``(name, note, run_job, counter,
    close)``; ``body(seconds)`` is the submission of a ``sleep`` job."""
    out = []
    for kind in ("socket long poll", "socket SSE", "httpx long poll", "httpx SSE"):
        counter = PathCounter()
        http = httpx.Client(base_url=base_url, event_hooks={"request": [counter.hook]})
        run_job = _floor(kind, base_url, http, counter, body)
        out.append((f"floor: {kind}", _NOTES[kind], run_job, counter, http.close))
    return out


_NOTES = {
    "socket long poll": "raw socket, GET ?wait=30, recv to the end of a terminal answer",
    "socket SSE": "raw socket on /events, recv until a piece holds the complete event",
    "httpx long poll": "httpx get(?wait=30) + .json() until terminal",
    "httpx SSE": "httpx stream + iter_lines, leaving the with at the complete event",
}


def _floor(
    kind: str,
    base_url: str,
    http: httpx.Client,
    counter: PathCounter,
    body: Callable[[float], dict[str, Any]],
) -> Callable[[float], str]:
    def submit(seconds: float) -> tuple[str, str]:
        answer = http.post("/jobs", json=body(seconds))
        answer.raise_for_status()
        return answer.json()["jobId"], urlsplit(urljoin(base_url, answer.headers["location"])).path

    def socket_long_poll(seconds: float) -> str:
        job_id, path = submit(seconds)
        with _connect(base_url) as sock:
            while True:
                counter.add("GET", path)
                sock.sendall(_request(path + "?wait=30", "application/json"))
                answer = _read_answer(sock)
                if answer.startswith(b"HTTP/1.1 303") or any(t in answer for t in _TERMINAL):
                    return job_id

    def socket_sse(seconds: float) -> str:
        job_id, path = submit(seconds)
        with _connect(base_url) as sock:
            counter.add("GET", path + "/events")
            sock.sendall(_request(path + "/events", "text/event-stream"))
            seen = b""
            while not any(end in seen for end in _SSE_END):
                seen = seen[-32:] + _recv(sock)  # an event name may straddle two pieces
        return job_id

    def httpx_long_poll(seconds: float) -> str:
        job_id, path = submit(seconds)
        while True:
            answer = http.get(path, params={"wait": "30"})
            if answer.status_code == 303 or answer.json()["status"] in _STATES:
                return job_id

    def httpx_sse(seconds: float) -> str:
        job_id, path = submit(seconds)
        headers = {"Accept": "text/event-stream"}
        with http.stream("GET", path + "/events", headers=headers) as stream:
            ending = False
            for line in stream.iter_lines():
                if ending and line.startswith("data:"):
                    break
                ending = ending or line in _SSE_END_LINES
        return job_id

    return {
        "socket long poll": socket_long_poll,
        "socket SSE": socket_sse,
        "httpx long poll": httpx_long_poll,
        "httpx SSE": httpx_sse,
    }[kind]


_STATES = ("completed", "failed", "cancelled")
_SSE_END_LINES = tuple(end.decode() for end in _SSE_END)
