"""Fuzzing both clients with hostile answers *and* hostile local inputs (issue 19 item 9).

Every scenario builds a client (a dialect, a body bound, configured headers), calls one public
entry point (``run``, ``submit`` then ``result``/``wait``/``download``/``cancel``/``retry``,
``resume``, ``operation``) with drawn arguments, and answers each request the SDK sends from a
drawn list: any status, hostile ``Location`` / ``Retry-After`` / ``Content-Encoding`` /
monitor headers, JSON documents with odd fields, garbage and compressed bodies, event
streams, or httpx exceptions. Only two outcomes are allowed: the call returns, or it raises
an ``AsyncReplyError``; a ``ValueError``/``TypeError`` of our own is allowed only at the call
site, before any request was sent (bad local input). Time is virtual (``FakeClock``), and the
transport advances it on each request, so no scenario can spin.

Quick and derandomised in the suite; ``ASYNCREPLY_FUZZ_EXAMPLES=10000`` runs that many random
scenarios per flavour.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncreply_client import AsyncClient, AsyncReplyError, Client, FixedInterval, RetryPolicy
from asyncreply_client.testing import FakeClock
from tests.client.chunks import Chunks

API = "https://api.test"
_EXAMPLES = os.environ.get("ASYNCREPLY_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_EXAMPLES) if _EXAMPLES else 50,
    derandomize=not _EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Requests answered per scenario at most (then every request is refused).
MAX_REQUESTS = 40

# --------------------------------------------------------------------------------------------
# Answers

LOCATIONS = st.sampled_from(
    [
        "/jobs/1",
        f"{API}/jobs/1",
        f"{API}/jobs/1/result",
        "https://other.test/jobs/1",
        "javascript:alert(1)",
        "mailto:someone@example.com",
        "http://xn--a.test/",
        "http://xn--zz--.test/",
        "http://[::1",
        "http://a b/",
        "http://%zz/",
        "https://api.test:99999/",
        "//evil.test/x",
        "ftp://x/y",
        "data:,x",
        "",
        " ",
        "?",
        "#frag",
        "http://\u00e9.test/",
        "http://user:pw@api.test/jobs/1?access_token=x",
    ]
) | st.text(max_size=30)
HEADER_VALUES: dict[str, st.SearchStrategy[str]] = {
    "location": LOCATIONS,
    "retry-after": st.sampled_from(
        ["0", "1", "-1", "1.5", "abc", "Wed, 21 Oct 2015 07:28:00 GMT", "9" * 40]
    )
    | st.text(max_size=10),
    "content-type": st.sampled_from(
        [
            "application/json",
            "application/problem+json",
            "application/json; charset=utf-16",
            "application/json; charset=nope",
            "text/plain",
            "text/html",
            "application/pdf",
            "text/event-stream",
            "multipart/mixed; boundary=x",
            "",
        ]
    ),
    "content-encoding": st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, gzip", "x"]),
    "link": st.builds(lambda url, rel: f"<{url}>; rel={rel}", LOCATIONS, st.text(max_size=8))
    | st.just('</jobs/1/events>; rel="events"'),
    "azure-asyncoperation": LOCATIONS,
    "operation-location": LOCATIONS,
    "content-disposition": st.sampled_from(
        ['attachment; filename="a.pdf"', "attachment; filename*=UTF-8''%ff%fe", "inline; x"]
    )
    | st.text(max_size=20),
    "www-authenticate": st.text(max_size=20),
    "preference-applied": st.sampled_from(["wait=5", "wait=-1", "wait=x"]),
    "etag": st.text(max_size=10),
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
STATES = st.sampled_from(
    [
        "pending",
        "running",
        "completed",
        "succeeded",
        "Succeeded",
        "failed",
        "Failed",
        "cancelled",
        "Canceled",
        "InProgress",
        "notStarted",
        "",
    ]
)
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "jobId": st.text(max_size=8) | st.integers() | st.none(),
        "id": st.text(max_size=8),
        "status": STATES | JSON,
        "state": STATES,
        "done": st.booleans() | JSON,
        "resultUrl": LOCATIONS | JSON,
        "statusUrl": LOCATIONS,
        "eventsUrl": LOCATIONS,
        "cancelUrl": LOCATIONS,
        "retryUrl": LOCATIONS,
        "result": JSON,
        "response": JSON,
        "error": JSON,
        "progress": JSON,
        "percentComplete": JSON,
        "retryAfter": JSON,
        "createdAt": st.text(max_size=30) | JSON,
        "estimatedCompletion": st.text(max_size=30),
        "name": st.text(max_size=12),
        "metadata": JSON,
    },
)
EVENTS = st.lists(
    st.sampled_from(
        [
            'event: status\ndata: {"jobId": "1", "status": "running"}\n\n',
            'data: {"jobId": "1", "status": "completed", "result": 1}\n\n',
            "data: not json\n\n",
            "retry: " + "9" * 40 + "\n",
            "id: a\x00b\n",
            "event: progress\ndata: {}\n\n",
            ": comment\n",
            "data: " + "x" * 300 + "\n",
            "\ufeffdata: {}\n\n",
        ]
    ),
    max_size=5,
).map(lambda lines: "".join(lines).encode())


def _compress(body: bytes, coding: str) -> bytes:
    wbits = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}.get(coding)
    if wbits is None:
        return body
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(body) + compressor.flush()


@dataclass(frozen=True)
class Answer:
    """One answer: a response, or an exception of the transport."""

    status: int = 200
    headers: tuple[tuple[str, bytes], ...] = ()
    body: bytes = b""
    encode: bool = False
    fault: str | None = None

    def response(self, request: httpx.Request) -> httpx.Response:
        if self.fault is not None:
            raise getattr(httpx, self.fault)("fuzzed fault", request=request)
        body = self.body
        coding = dict(self.headers).get("content-encoding", b"").decode("latin-1")
        if self.encode:
            body = _compress(body, coding)
        return httpx.Response(self.status, headers=list(self.headers), stream=Chunks(body))


STATUSES = (200, 201, 202, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 410, 412)
STATUSES += (422, 429, 500, 502, 503, 504)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    if draw(st.integers(0, 19)) == 0:
        fault = draw(
            st.sampled_from(
                ["ConnectError", "ReadTimeout", "RemoteProtocolError", "ReadError", "WriteError"]
            )
        )
        return Answer(fault=fault)
    status = draw(st.sampled_from(STATUSES) | st.integers(100, 599))
    names = draw(st.lists(st.sampled_from(sorted(HEADER_VALUES)), max_size=4, unique=True))
    headers: list[tuple[str, bytes]] = []
    for name in names:
        value = draw(HEADER_VALUES[name])
        headers.append((name, value.encode("utf-8")))
    kind = draw(st.sampled_from(["json", "json", "json", "bytes", "events", "empty"]))
    if kind == "json":
        document = draw(DOCUMENT | JSON)
        body = json.dumps(document).encode("utf-8", "surrogatepass")
    elif kind == "bytes":
        body = draw(st.binary(max_size=64))
    elif kind == "events":
        body = draw(EVENTS)
    else:
        body = b""
    return Answer(status, tuple(headers), body, encode=draw(st.booleans()))


# --------------------------------------------------------------------------------------------
# Local inputs and the call


TEXT = st.text(max_size=12)
KEYS = st.none() | st.just("key-1") | TEXT
CALL_HEADERS = st.none() | st.dictionaries(
    st.sampled_from(["X-Trace", "Prefer", "Content-Type"]) | TEXT, TEXT, max_size=2
)
TOKENS = TEXT | st.builds(
    lambda payload: base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("="),
    st.fixed_dictionaries(
        {"v": st.sampled_from([1, 2, 3, [], {}, True, "1", None])},
        optional={
            "status_url": LOCATIONS | JSON,
            "events_url": LOCATIONS | JSON,
            "id": JSON,
            "dialect": st.sampled_from(["reference", "microsoft", "x"]) | JSON,
            "monitored_by": st.sampled_from(["location", "operation-location", "x"]) | JSON,
            "final_from_monitor": JSON,
        },
    )
    | JSON,
)


@dataclass
class Scenario:
    action: str
    answers: list[Answer]
    dialect: str
    max_body: int | None
    client_headers: dict[str, str] | None
    url: str
    key: str | None
    headers: dict[str, str] | None
    mode: str
    token: str
    sent: list[httpx.Request] = field(default_factory=list)
    #: How many requests had been sent when the last call began.
    mark: int = 0


SCENARIOS = st.builds(
    Scenario,
    action=st.sampled_from(
        ["run", "result", "wait", "download", "cancel", "retry", "resume", "operation"]
    ),
    answers=st.lists(answers(), min_size=1, max_size=8),
    dialect=st.sampled_from(["auto", "reference", "status-code", "microsoft", "google", "arm"]),
    max_body=st.sampled_from([None, 64, 1 << 20]),
    # Local inputs: mostly valid (so that the answers get their turn), sometimes hostile.
    client_headers=st.none() | st.none() | st.dictionaries(st.just("X-Tenant"), TEXT, max_size=1),
    url=st.just("/jobs") | st.just("/jobs") | st.just("/jobs") | LOCATIONS,
    key=st.none() | st.none() | KEYS,
    headers=st.none() | st.none() | CALL_HEADERS,
    mode=st.sampled_from(["auto", "sse", "long-poll", "poll"]),
    token=TOKENS,
)


def transport(scenario: Scenario, clock: FakeClock) -> httpx.MockTransport:
    """Answers the scenario's requests in order (the last one again once they run out);
    each request moves the virtual clock on a second."""

    def handle(request: httpx.Request) -> httpx.Response:
        scenario.sent.append(request)
        clock.advance(1.0)
        if len(scenario.sent) > MAX_REQUESTS:
            raise httpx.ConnectError("no more answers", request=request)
        index = min(len(scenario.sent), len(scenario.answers)) - 1
        return scenario.answers[index].response(request)

    return httpx.MockTransport(handle)


def client_options(scenario: Scenario, clock: FakeClock) -> dict[str, Any]:
    return {
        "clock": clock,
        "polling": FixedInterval(1.0),
        "retry": RetryPolicy(attempts=2, initial=0.5),
        "dialect": scenario.dialect,
        "max_body_size": scenario.max_body,
        "headers": scenario.client_headers,
    }


class Steps:
    """The scenario's call, written once over a ``call`` that runs a sync method or awaits
    an async one."""

    def __init__(self, scenario: Scenario, call: Callable[..., Any]) -> None:
        self.scenario = scenario
        self._call = call

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.scenario.mark = len(self.scenario.sent)
        return await self._call(fn, *args, **kwargs)

    async def run(self, client: Any) -> Any:
        s, call = self.scenario, self.call
        if s.action == "run":
            return await call(client.run, s.url, json={}, headers=s.headers, timeout=5)
        if s.action in ("resume", "operation"):
            s.mark = len(s.sent)  # both are plain calls, in both flavours
            op = client.resume(s.token) if s.action == "resume" else client.operation(s.url)
            return await call(op.wait, mode=s.mode, timeout=5)
        op = await call(client.submit, s.url, json={}, idempotency_key=s.key, headers=s.headers)
        if s.action == "result":
            return await call(op.result, mode=s.mode, timeout=5)
        if s.action == "wait":
            return await call(op.wait, mode=s.mode, timeout=5)
        if s.action == "download":
            return await call(op.download, io.BytesIO(), mode=s.mode, timeout=5)
        if s.action == "cancel":
            return await call(op.cancel)
        return await call(op.retry, idempotency_key=s.key)


async def _sync_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


async def _async_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    outcome = fn(*args, **kwargs)
    return await outcome if hasattr(outcome, "__await__") else outcome


async def play(scenario: Scenario, flavor: str) -> None:
    clock = FakeClock()
    options = client_options(scenario, clock)
    if flavor == "sync":
        with (
            httpx.Client(transport=transport(scenario, clock)) as http,
            _closing(Client(API, http_client=http, **options)) as client,
        ):
            await Steps(scenario, _sync_call).run(client)
    else:
        async with (
            httpx.AsyncClient(transport=transport(scenario, clock)) as http,
            AsyncClient(API, http_client=http, **options) as aclient,
        ):
            await Steps(scenario, _async_call).run(aclient)


@contextlib.contextmanager
def _closing(client: Client) -> Iterator[Client]:
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.timeout(0 if _EXAMPLES else 60)  # a long run takes what it takes
@FUZZ
@given(scenario=SCENARIOS)
def test_only_typed_errors_escape(flavor: str, scenario: Scenario) -> None:
    try:
        anyio.run(play, scenario, flavor)
    except AsyncReplyError:
        pass
    except (ValueError, TypeError) as exc:
        # Bad local input, refused at the call: not an encoder's or a hash's error, nothing
        # sent by the call that failed, and the message names what was refused.
        assert not isinstance(exc, UnicodeError), repr(exc)
        assert len(scenario.sent) == scenario.mark, (repr(exc), scenario)
        assert any(word in str(exc) for word in DOCUMENTED), repr(exc)


#: What the documented refusals of local inputs name: a header (``_security.check_headers``),
#: the idempotency key, a URL that is no http(s) URL.
DOCUMENTED = ("header", "idempotency_key", "http(s) URL")
