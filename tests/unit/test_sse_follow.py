"""``follow_events`` driven by hand: scripted connections, a fake clock, no sockets."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from asyncreply_client._commands import (
    CloseStream,
    Command,
    Emit,
    ReadBytes,
    Send,
    Sleep,
    Tracker,
)
from asyncreply_client._errors import ProtocolError, TransportError
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobState, JobStatus, Progress
from asyncreply_client._sse import SSEEnd, SSEEnding, SSEOptions, follow_events

URL = "http://api.test/jobs/j1/events"


class JsonDialect:
    """Reads events whose data is ``{"status": ..., "step": n}``; anything else is no status."""

    name = "test"

    def __init__(self) -> None:
        self.urls: list[str] = []

    def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
        self.urls.append(url)
        if event == "broken":
            raise ProtocolError("bad event data", url=url, body=data)
        if event not in ("status", "progress", "complete"):
            return None
        body = json.loads(data)
        step = body.get("step")
        return JobStatus(
            id="j1",
            state=JobState(body["status"]),
            progress=None if step is None else Progress(current=step, total=5),
        )

    # The rest of the Dialect protocol is not used by follow_events.
    def interpret_submit(self, response: HttpResponse) -> Any:
        raise NotImplementedError

    def interpret_status(self, response: HttpResponse, *, submission: Any = None) -> JobStatus:
        raise NotImplementedError


def ev(n: int, kind: str, status: str, step: int | None = None) -> bytes:
    body: dict[str, Any] = {"status": status}
    if step is not None:
        body["step"] = step
    return f"id: {n}\nevent: {kind}\ndata: {json.dumps(body)}\n\n".encode()


@dataclass
class Wait:
    """A chunk entry that advances the clock (time passing while reading)."""

    seconds: float


@dataclass
class Conn:
    """One answer to the stream request, then its body, then how it ends."""

    chunks: list[bytes | Wait] = field(default_factory=list)
    end: BaseException | None = None  # None: a clean end of stream
    status: int = 200
    content_type: str = "text/event-stream"


class Harness:
    """Executes the flow's commands against scripted connections."""

    def __init__(self, conns: list[Conn | BaseException], *, start: float = 100.0) -> None:
        self.conns = list(conns)
        self.clock = start
        self.requests: list[httpx.Request] = []
        self.emitted: list[JobStatus] = []
        self.sleeps: list[float] = []
        self.commands: list[Command] = []
        self.open: Conn | None = None
        self.closes = 0

    def now(self) -> float:
        return self.clock

    def run(self, flow: Generator[Command, Any, SSEEnding]) -> SSEEnding:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                command = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                assert self.open is None, "the flow returned with the stream still open"
                outcome: SSEEnding = stop.value
                return outcome
            self.commands.append(command)
            reply, error = None, None
            if isinstance(command, Send):
                assert command.stream
                assert self.open is None, "opened a stream while another was open"
                self.requests.append(command.request)
                conn = self.conns.pop(0)
                if isinstance(conn, BaseException):
                    error = conn
                    continue
                self.open = conn
                reply = HttpResponse(
                    status_code=conn.status,
                    headers=httpx.Headers({"content-type": conn.content_type}),
                    content=b"",
                    url=str(command.request.url),
                )
            elif isinstance(command, ReadBytes):
                assert self.open is not None
                while self.open.chunks and isinstance(self.open.chunks[0], Wait):
                    wait = self.open.chunks.pop(0)
                    assert isinstance(wait, Wait)
                    self.clock += wait.seconds
                if self.open.chunks:
                    reply = self.open.chunks.pop(0)
                else:
                    error = self.open.end
            elif isinstance(command, CloseStream):
                self.closes += 1
                self.open = None
            elif isinstance(command, Sleep):
                assert command.seconds >= 0
                self.sleeps.append(command.seconds)
                self.clock += command.seconds
            elif isinstance(command, Emit):
                self.emitted.append(command.status)
            else:  # pragma: no cover - a command follow_events must never yield
                raise AssertionError(f"unexpected command {command!r}")


def open_stream(
    url: str, *, headers: Mapping[str, str], timeout: Mapping[str, float]
) -> Generator[Command, Any, HttpResponse]:
    """The simplest opener: one ``Send`` (the client's opener is tested with the flows)."""
    request = httpx.Request("GET", url, headers={"Authorization": "Bearer t"})
    for name, value in headers.items():
        request.headers[name] = value
    request.extensions = {"timeout": dict(timeout)}
    response: HttpResponse = yield Send(request, stream=True)
    return response


def follow(
    harness: Harness,
    *,
    tracker: Tracker | None = None,
    deadline: float | None = None,
    options: SSEOptions | None = None,
    dialect: JsonDialect | None = None,
    watching: bool = True,
) -> Generator[Command, Any, SSEEnding]:
    return follow_events(
        URL,
        dialect=dialect or JsonDialect(),
        open_stream=open_stream,
        tracker=tracker or Tracker(),
        deadline=deadline,
        now=harness.now,
        options=options or SSEOptions(),
        watching=watching,
    )


def states(statuses: list[JobStatus]) -> list[tuple[str, float | None]]:
    return [(s.state.value, s.progress.current if s.progress else None) for s in statuses]


HAPPY = [
    b"retry: 200\n\n",
    ev(1, "status", "processing", 1),
    b": keepalive\n\n",
    ev(2, "progress", "processing", 2),
    ev(3, "complete", "completed"),
]


# --- the normal course --------------------------------------------------------------------------


def test_follows_the_stream_to_the_terminal_status() -> None:
    harness = Harness([Conn(list(HAPPY))])
    outcome = harness.run(follow(harness))
    assert outcome.end is SSEEnd.TERMINAL
    assert outcome.status is not None and outcome.status.state is JobState.COMPLETED
    assert (outcome.last_event_id, outcome.reconnects) == ("3", 0)
    assert states(harness.emitted) == [("processing", 1), ("processing", 2), ("completed", None)]
    assert harness.closes == 1 and harness.sleeps == []


def test_the_terminal_event_closes_the_stream_as_answered() -> None:
    harness = Harness([Conn(list(HAPPY))])
    harness.run(follow(harness))
    [close] = [c for c in harness.commands if isinstance(c, CloseStream)]
    assert close.answered  # the driver may close it after the wait returns


def test_a_stream_that_ends_early_is_closed_at_once() -> None:
    harness = Harness([Conn([ev(1, "status", "processing", 1)], end=httpx.ReadError("x"))])
    harness.run(follow(harness, options=SSEOptions(max_reconnects=0)))
    [close] = [c for c in harness.commands if isinstance(c, CloseStream)]
    assert not close.answered


@pytest.mark.parametrize("watching", [True, False])
def test_statuses_before_a_terminal_one_in_a_piece_are_read_only_when_watched(
    watching: bool,
) -> None:
    # A job's last step and its completion often arrive in one piece: a wait nobody
    # watches does not read the step.
    piece = ev(2, "progress", "processing", 5) + b": note\n\n" + ev(3, "complete", "completed")
    dialect = JsonDialect()
    harness = Harness([Conn([ev(1, "status", "processing", 1), piece])])
    outcome = harness.run(follow(harness, dialect=dialect, watching=watching))
    assert outcome.end is SSEEnd.TERMINAL and outcome.last_event_id == "3"
    if watching:
        assert states(harness.emitted) == [
            ("processing", 1),
            ("processing", 5),
            ("completed", None),
        ]
        assert len(dialect.urls) == 3
    else:
        assert states(harness.emitted) == [("processing", 1), ("completed", None)]
        assert len(dialect.urls) == 2


def test_unwatched_statuses_of_a_piece_not_ending_the_job_are_all_read_in_order() -> None:
    piece = ev(1, "status", "processing", 1) + ev(2, "progress", "processing", 2)
    piece += ev(3, "message", "processing")  # no status: the one before is the last
    harness = Harness([Conn([piece, ev(4, "complete", "completed")])])
    harness.run(follow(harness, watching=False))
    assert states(harness.emitted) == [("processing", 1), ("processing", 2), ("completed", None)]


def test_the_stream_request_asks_for_events_without_total_timeout() -> None:
    harness = Harness([Conn(list(HAPPY))])
    harness.run(follow(harness, options=SSEOptions(silence_timeout=30, connect_timeout=5)))
    [request] = harness.requests
    assert request.method == "GET" and str(request.url) == URL
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["Cache-Control"] == "no-cache"
    assert request.headers["Authorization"] == "Bearer t"  # the client's own headers stay
    assert "Last-Event-ID" not in request.headers
    assert request.extensions["timeout"] == {"connect": 5, "read": 30, "write": 5, "pool": 5}


def test_the_read_timeout_never_outlasts_the_deadline() -> None:
    harness = Harness([Conn(list(HAPPY))], start=100.0)
    harness.run(follow(harness, deadline=112.5, options=SSEOptions(silence_timeout=30)))
    timeout = harness.requests[0].extensions["timeout"]
    assert timeout["read"] == pytest.approx(12.5)
    assert timeout["connect"] == pytest.approx(10.0)


def test_events_are_interpreted_against_the_stream_url() -> None:
    harness, dialect = Harness([Conn(list(HAPPY))]), JsonDialect()
    harness.run(follow(harness, dialect=dialect))
    assert dialect.urls and set(dialect.urls) == {URL}


def test_a_snapshot_already_seen_is_not_reported_again() -> None:
    tracker = Tracker()
    tracker.observe(
        JobStatus(id="j1", state=JobState.PROCESSING, progress=Progress(current=1, total=5))
    )
    harness = Harness([Conn(list(HAPPY))])
    harness.run(follow(harness, tracker=tracker))
    assert states(harness.emitted) == [("processing", 2), ("completed", None)]
    assert tracker.last is not None and tracker.last.state is JobState.COMPLETED


def test_events_that_are_not_statuses_are_ignored() -> None:
    chunks: list[bytes | Wait] = [b"event: hello\ndata: {}\n\ndata: plain message\n\n", *HAPPY]
    harness = Harness([Conn(chunks)])
    assert harness.run(follow(harness)).end is SSEEnd.TERMINAL
    assert len(harness.emitted) == 3


def test_an_already_terminal_operation_opens_no_stream() -> None:
    harness = Harness([])
    outcome = harness.run(follow(harness, tracker=Tracker(JobStatus(state=JobState.FAILED))))
    assert outcome.end is SSEEnd.TERMINAL and harness.commands == []


def test_an_event_split_across_reads_is_reassembled() -> None:
    whole = b"".join(c for c in HAPPY if isinstance(c, bytes))
    chunks: list[bytes | Wait] = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    harness = Harness([Conn(chunks)])
    assert harness.run(follow(harness)).end is SSEEnd.TERMINAL
    assert states(harness.emitted) == [("processing", 1), ("processing", 2), ("completed", None)]


# --- drops and reconnection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "drop",
    [
        TransportError("connection reset", url=URL),
        httpx.ReadError("connection reset"),
        httpx.ReadTimeout("silence"),
        None,  # a clean end of stream before the operation finished
    ],
    ids=["our-transport-error", "httpx-read-error", "silence", "clean-end"],
)
def test_a_dropped_stream_resumes_with_last_event_id(drop: BaseException | None) -> None:
    first = Conn(
        [b"retry: 300\n\n", ev(1, "status", "processing", 1), ev(2, "progress", "processing", 2)],
        end=drop,
    )
    second = Conn([ev(3, "progress", "processing", 3), ev(4, "complete", "completed")])
    harness = Harness([first, second])
    outcome = harness.run(follow(harness))
    assert outcome.end is SSEEnd.TERMINAL and outcome.reconnects == 1
    assert [r.headers.get("Last-Event-ID") for r in harness.requests] == [None, "2"]
    assert harness.sleeps == [pytest.approx(0.3)]  # the server's retry, no backoff yet
    assert states(harness.emitted) == [
        ("processing", 1),
        ("processing", 2),
        ("processing", 3),
        ("completed", None),
    ]
    assert harness.closes == 2


def test_a_failure_to_connect_is_a_drop_too() -> None:
    harness = Harness([httpx.ConnectError("refused"), Conn(list(HAPPY))])
    outcome = harness.run(follow(harness, options=SSEOptions(retry_delay=0.5)))
    assert outcome.end is SSEEnd.TERMINAL
    assert harness.sleeps == [0.5]
    assert harness.closes == 1  # no stream was open after the failed connect


def test_replayed_events_are_not_reported_twice() -> None:
    # A server that ignores Last-Event-ID and replays from the start.
    first = Conn([ev(1, "status", "processing", 1), ev(2, "progress", "processing", 2)])
    harness = Harness([first, Conn(list(HAPPY))])
    harness.run(follow(harness, options=SSEOptions(retry_delay=0)))
    assert states(harness.emitted) == [("processing", 1), ("processing", 2), ("completed", None)]


def test_events_inheriting_the_resumed_id_are_not_replays() -> None:
    # A server that sends an id once: later events carry it as their last event ID.
    def no_id(kind: str, status: str, step: int | None = None) -> bytes:
        return ev(0, kind, status, step).split(b"\n", 1)[1]

    first = Conn([b"id: s\n" + no_id("status", "processing", 1)])
    second = Conn([no_id("progress", "processing", 2), no_id("complete", "completed")])
    harness = Harness([first, second])
    harness.run(follow(harness, options=SSEOptions(retry_delay=0)))
    assert states(harness.emitted) == [("processing", 1), ("processing", 2), ("completed", None)]
    assert harness.requests[1].headers["Last-Event-ID"] == "s"


def test_the_last_event_id_survives_a_reconnection_that_brought_nothing() -> None:
    conns: list[Conn | BaseException] = [
        Conn([ev(7, "status", "processing", 1)]),
        Conn([b"retry: 10\n\n"]),  # dispatches nothing but an empty block
        Conn([ev(8, "complete", "completed")]),
    ]
    harness = Harness(conns)
    harness.run(follow(harness, options=SSEOptions(backoff=0)))
    assert [r.headers.get("Last-Event-ID") for r in harness.requests] == [None, "7", "7"]


def test_a_non_ascii_last_event_id_is_sent_as_utf8() -> None:
    harness = Harness(
        [
            Conn(['id: é1\nevent: status\ndata: {"status": "pending"}\n\n'.encode()]),
            Conn(list(HAPPY)),
        ]
    )
    harness.run(follow(harness, options=SSEOptions(retry_delay=0)))
    assert harness.requests[1].headers.raw[-1] == (b"Last-Event-ID", "é1".encode())


def test_the_server_retry_is_bounded() -> None:
    harness = Harness([Conn([b"retry: 3600000\n\n"]), Conn(list(HAPPY))])
    harness.run(follow(harness, options=SSEOptions(max_retry_delay=2.0)))
    assert harness.sleeps == [2.0]


def test_gives_up_after_too_many_consecutive_drops_with_backoff() -> None:
    options = SSEOptions(max_reconnects=3, retry_delay=1.0, backoff=0.5, max_backoff=0.75)
    conns: list[Conn | BaseException] = [Conn([ev(1, "status", "processing", 1)])]
    conns += [Conn([ev(1, "status", "processing", 1)]) for _ in range(3)]
    harness = Harness(conns)
    outcome = harness.run(follow(harness, options=options))
    assert outcome.end is SSEEnd.FALLBACK and "4 consecutive drops" in outcome.reason
    assert outcome.status is not None and outcome.status.state is JobState.PROCESSING
    assert harness.sleeps == [1.0, 1.5, 1.75]
    assert len(harness.requests) == 4 and harness.conns == []
    assert states(harness.emitted) == [("processing", 1)]


def test_news_between_drops_starts_the_count_again() -> None:
    conns: list[Conn | BaseException] = [
        Conn([ev(n, "progress", "processing", n)], end=httpx.ReadError("cut")) for n in range(1, 5)
    ]
    conns.append(Conn([ev(5, "complete", "completed")]))
    harness = Harness(conns)
    outcome = harness.run(follow(harness, options=SSEOptions(max_reconnects=1, retry_delay=0.1)))
    assert outcome.end is SSEEnd.TERMINAL and outcome.reconnects == 4
    assert harness.sleeps == [0.1] * 4  # never a second consecutive drop: no backoff
    assert len(harness.emitted) == 5


def test_no_reconnection_allowed_falls_back_at_the_first_drop() -> None:
    harness = Harness([Conn([ev(1, "status", "pending")])])
    outcome = harness.run(follow(harness, options=SSEOptions(max_reconnects=0)))
    assert outcome.end is SSEEnd.FALLBACK and harness.sleeps == []


# --- refusals: fall back at once ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("conn", "reason"),
    [
        (Conn(status=404, content_type="application/json"), "HTTP 404"),
        (Conn(status=500, content_type="text/event-stream"), "HTTP 500"),
        (Conn(status=204, content_type=""), "204 No Content"),
        (Conn(content_type="application/json"), "application/json, not text/event-stream"),
        (Conn(content_type=""), "no Content-Type"),
    ],
    ids=["404", "500", "204", "json", "no-content-type"],
)
def test_an_answer_that_is_not_an_event_stream_falls_back(conn: Conn, reason: str) -> None:
    last = JobStatus(id="j1", state=JobState.PENDING)
    harness = Harness([conn])
    outcome = harness.run(follow(harness, tracker=Tracker(last)))
    assert outcome.end is SSEEnd.FALLBACK and reason in outcome.reason
    assert outcome.status == last
    assert len(harness.requests) == 1 and harness.closes == 1 and harness.sleeps == []


def test_a_content_type_with_parameters_is_an_event_stream() -> None:
    harness = Harness([Conn(list(HAPPY), content_type="Text/Event-Stream; charset=utf-8")])
    assert harness.run(follow(harness)).end is SSEEnd.TERMINAL


def test_an_event_the_dialect_rejects_falls_back() -> None:
    chunks: list[bytes | Wait] = [ev(1, "status", "processing", 1), b"event: broken\ndata: x\n\n"]
    harness = Harness([Conn(chunks)])
    outcome = harness.run(follow(harness))
    assert outcome.end is SSEEnd.FALLBACK and "bad event data" in outcome.reason
    assert harness.closes == 1 and len(harness.emitted) == 1


def test_a_runaway_stream_falls_back() -> None:
    harness = Harness([Conn([b"data: " + b"x" * 100])])
    outcome = harness.run(follow(harness, options=SSEOptions(max_buffer=50)))
    assert outcome.end is SSEEnd.FALLBACK and "longer than 50" in outcome.reason


# --- the deadline -------------------------------------------------------------------------------


def test_a_silent_stream_ends_at_the_deadline() -> None:
    # The read timeout (the time left) fires: the driver throws it in at the deadline.
    harness = Harness([Conn([Wait(5.0)], end=httpx.ReadTimeout("silence"))], start=100.0)
    outcome = harness.run(follow(harness, deadline=105.0))
    assert outcome.end is SSEEnd.DEADLINE and harness.closes == 1 and harness.sleeps == []


def test_keepalives_do_not_extend_the_deadline() -> None:
    keepalives: list[bytes | Wait] = [Wait(1.0), b": keepalive\n\n"] * 5
    conns: list[Conn | BaseException] = [
        Conn([ev(1, "status", "processing", 1), *keepalives]),
        *(Conn(list(keepalives)) for _ in range(3)),  # reopened closer to the deadline
    ]
    harness = Harness(conns, start=100.0)
    outcome = harness.run(follow(harness, deadline=103.5))
    assert outcome.end is SSEEnd.DEADLINE
    assert harness.clock == 104.0  # stopped at the first read past it
    assert harness.sleeps == [] and harness.closes == len(harness.requests)
    assert outcome.status is not None and outcome.status.state is JobState.PROCESSING


def test_near_the_deadline_the_stream_is_reopened_with_a_tighter_read_timeout() -> None:
    # Opened 60 s before the deadline with a 45 s silence window; news 50 s in leaves 10 s:
    # the stream is reopened at once (resuming) with a 10 s read timeout, not a drop.
    first = Conn([ev(1, "status", "processing", 1), Wait(50.0), ev(2, "progress", "processing", 2)])
    second = Conn([Wait(10.0)], end=httpx.ReadTimeout("silence"))
    harness = Harness([first, second], start=100.0)
    outcome = harness.run(follow(harness, deadline=160.0))
    assert outcome.end is SSEEnd.DEADLINE and harness.clock == 160.0
    assert [r.extensions["timeout"]["read"] for r in harness.requests] == [45.0, 10.0]
    assert harness.requests[1].headers["Last-Event-ID"] == "2"
    assert harness.sleeps == [] and outcome.reconnects == 1
    assert states(harness.emitted) == [("processing", 1), ("processing", 2)]


def test_a_stream_is_not_reopened_for_a_tiny_gain() -> None:
    chunks: list[bytes | Wait] = [ev(1, "status", "processing", 1), Wait(0.2), b": k\n\n"]
    harness = Harness([Conn(chunks, end=httpx.ReadTimeout("silence"))], start=100.0)
    # Read timeout 0.3 s; 0.1 s left after the keep-alive: a gain of 0.2 s is not worth it.
    outcome = harness.run(follow(harness, deadline=100.3))
    assert len(harness.requests) == 1 and outcome.end is SSEEnd.FALLBACK


def test_no_reconnection_wait_past_the_deadline() -> None:
    harness = Harness([Conn([b"retry: 5000\n\n"]), Conn(list(HAPPY))], start=100.0)
    outcome = harness.run(follow(harness, deadline=103.0))
    assert outcome.end is SSEEnd.FALLBACK and "no time left" in outcome.reason
    assert harness.sleeps == [] and len(harness.requests) == 1


def test_a_deadline_already_passed_opens_nothing() -> None:
    harness = Harness([], start=100.0)
    outcome = harness.run(follow(harness, deadline=100.0))
    assert outcome.end is SSEEnd.DEADLINE and harness.commands == []


def test_a_drop_at_the_deadline_is_the_deadline() -> None:
    harness = Harness([Conn([Wait(3.0)], end=httpx.ReadError("cut"))], start=100.0)
    assert harness.run(follow(harness, deadline=103.0)).end is SSEEnd.DEADLINE


# --- closing ------------------------------------------------------------------------------------


def test_closing_the_flow_mid_stream_yields_nothing_more() -> None:
    flow = follow(Harness([]))
    assert isinstance(next(flow), Send)
    response = HttpResponse(200, httpx.Headers({"content-type": "text/event-stream"}), b"", URL)
    assert isinstance(flow.send(response), ReadBytes)
    flow.close()  # a yield here would raise RuntimeError: the driver closes its stream


def test_an_unexpected_error_thrown_in_propagates() -> None:
    flow = follow(Harness([]))
    next(flow)
    response = HttpResponse(200, httpx.Headers({"content-type": "text/event-stream"}), b"", URL)
    flow.send(response)
    with pytest.raises(KeyboardInterrupt):
        flow.throw(KeyboardInterrupt())


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"silence_timeout": 0},
        {"connect_timeout": -1},
        {"max_reconnects": -1},
        {"retry_delay": -0.1},
        {"max_retry_delay": float("nan")},
        {"backoff": -1},
        {"max_backoff": -1},
        {"max_buffer": 0},
    ],
)
def test_options_refuse_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SSEOptions(**kwargs)


def test_reconnect_delay() -> None:
    options = SSEOptions(retry_delay=1.0, max_retry_delay=4.0, backoff=0.5, max_backoff=1.5)
    assert options.reconnect_delay(None, 1) == 1.0
    assert options.reconnect_delay(250, 1) == 0.25
    assert options.reconnect_delay(250, 2) == 0.75
    assert options.reconnect_delay(250, 3) == 1.25
    assert options.reconnect_delay(250, 9) == 1.75
    assert options.reconnect_delay(60_000, 1) == 4.0


def test_options_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SSEOptions().max_reconnects = 9  # type: ignore[misc]
