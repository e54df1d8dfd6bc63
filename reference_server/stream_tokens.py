"""Signed, short-lived, job-scoped event-stream URLs for browsers.

A browser's ``EventSource`` cannot send ``Authorization``. When bearer users are configured,
status answers therefore carry an ``eventsUrl`` with ``?access_token=<token>``, where the token
is ``v1.<expiry>.<base64url(user)>.<base64url(HMAC-SHA256)>`` over the job id, the user and
the expiry under a per-process random secret. It is accepted only:

* on ``GET /jobs/<that job>/events`` (any other job, path or method ignores it),
* without an ``Authorization`` header (a header always wins),
* until its expiry (``events_token_ttl`` seconds after it was issued; a stream already open
  runs on). A client re-reads the job's status for a fresh URL.

Tokens never enter logs: the server's access log (:mod:`reference_server.access_log`) writes
paths without their query string, aiohttp's own access log is off, and
:class:`RedactingAccessLogger` (the class :func:`reference_server.serve` installs for it)
replaces the token with ``REDACTED`` when an application turns it on.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_log import AccessLogger

from asyncreply_signing import hmac_sha256

from .config import ServerConfig

__all__ = ["EVENTS_ROUTE", "QUERY_PARAMETER", "RedactingAccessLogger", "StreamTokens", "redact"]

#: The query parameter that carries the token.
QUERY_PARAMETER = "access_token"

#: The route (as registered) whose requests a token may authorise.
EVENTS_ROUTE = "/jobs/{job_id}/events"
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TOKEN = re.compile(r"v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{1,1400})\.([A-Za-z0-9_-]{43})")
_IN_QUERY = re.compile(rf"({QUERY_PARAMETER}=)[^&#\s]*")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def redact(text: str) -> str:
    """Replace every ``access_token=…`` value in ``text`` with ``REDACTED``.

    Example:
        >>> redact("GET /jobs/j/events?access_token=v1.1.YQ.x&lastEventId=3")
        'GET /jobs/j/events?access_token=REDACTED&lastEventId=3'
    """
    return _IN_QUERY.sub(r"\1REDACTED", text)


class StreamTokens:
    """Issues and checks event-stream tokens.

    Args:
        ttl: seconds a token stays valid.
        clock: epoch seconds.
        secret: the HMAC key (default: 32 random bytes, so tokens die with the process).

    Example:
        >>> tokens = StreamTokens(ttl=60, clock=lambda: 1000.0, secret=b"k" * 32)
        >>> token = tokens.issue("alice", "job1")
        >>> tokens.user_for(token, "job1"), tokens.user_for(token, "job2")
        ('alice', None)
    """

    def __init__(
        self, *, ttl: float, clock: Callable[[], float] = time.time, secret: bytes | None = None
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    @classmethod
    def for_config(
        cls, config: ServerConfig, clock: Callable[[], float] = time.time
    ) -> StreamTokens | None:
        """Tokens for a server with bearer users; ``None`` in dev mode (no users to prove)."""
        if config.tokens is None:
            return None
        return cls(ttl=config.events_token_ttl, clock=clock)

    def _mac(self, job_id: str, expiry: str, user_part: str) -> str:
        message = f"asyncreply-events\0{job_id}\0{expiry}\0{user_part}".encode()
        return _b64(hmac_sha256(self._secret, message))

    def issue(self, user: str, job_id: str) -> str:
        """Return a token that lets ``user`` read ``job_id``'s event stream until it expires."""
        expiry = str(math.ceil(self._clock() + self._ttl))
        user_part = _b64(user.encode("utf-8", "surrogatepass"))
        return f"v1.{expiry}.{user_part}.{self._mac(job_id, expiry, user_part)}"

    def user_for(self, token: str, job_id: str) -> str | None:
        """The user a valid, unexpired token for ``job_id`` names; else ``None``."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        expiry, user_part, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(job_id, expiry, user_part)):
            return None
        if int(expiry) <= self._clock():
            return None
        try:
            return _unb64(user_part).decode("utf-8", "surrogatepass")
        except (binascii.Error, ValueError):
            return None

    def events_url(self, user: str, job_id: str) -> str:
        """The job's events URL with a fresh token."""
        return f"/jobs/{job_id}/events?{QUERY_PARAMETER}={self.issue(user, job_id)}"

    def user_from_request(self, request: web.Request) -> str | None:
        """The token's user when ``request`` is a GET of the events of the token's job.

        The decision uses what the router matched (the route and its decoded ``job_id``),
        never a separately decoded path: ``/jobs/<id>%2Fevents`` is routed to the status of
        a job named ``<id>/events``, so the events token of ``<id>`` does not apply to it.
        """
        if request.method != "GET":
            return None
        match_info = request.match_info
        route = match_info.route if match_info is not None else None
        resource = route.resource if route is not None else None
        values = request.query.getall(QUERY_PARAMETER, [])
        if resource is None or resource.canonical != EVENTS_ROUTE or len(values) != 1:
            return None
        job_id = match_info.get("job_id", "")
        if not _JOB_ID.fullmatch(job_id):
            return None
        return self.user_for(values[0], job_id)

    def add_to(self, document: dict[str, Any], owner: str, job_id: str) -> None:
        """Point ``document["eventsUrl"]`` at a token-carrying URL (if it has one)."""
        if "eventsUrl" in document:
            document["eventsUrl"] = self.events_url(owner, job_id)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger with ``access_token`` values replaced by ``REDACTED``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log the request as aiohttp would, with the token removed from its URL."""
        if QUERY_PARAMETER not in request.query:
            super().log(request, response, time)
            return
        # Rebuilt from the decoded query, so that a percent-encoded parameter name
        # ("access%5Ftoken") is caught as well.
        url = request.rel_url.with_query(
            [(k, "REDACTED" if k == QUERY_PARAMETER else v) for k, v in request.query.items()]
        )
        try:
            clean = request.clone(rel_url=url)
        except RuntimeError:  # aiohttp refuses to clone a request whose body was read
            self.logger.info("%s %s %s", request.method, url, response.status)
            return
        super().log(clean, response, time)
