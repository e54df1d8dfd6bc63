"""GET /jobs/{id}/events: Server-Sent Events read raw and with ``aiohttp-sse-client``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
from aiohttp.http_writer import StreamWriter
from aiohttp_sse_client import client as sse_client

from .conftest import SSL_CONTEXT, Server, ServerFactory, SseCapture, SseEvent, read_sse

pytestmark = pytest.mark.anyio

STATUS_FIELDS = {"jobId", "type", "status", "attempt", "progress", "createdAt", "statusUrl"}


def progress_of(event: SseEvent) -> float | None:
    progress = event.json().get("progress")
    return None if progress is None else progress["current"]


def assert_well_formed(capture: SseCapture, job_id: str) -> None:
    assert capture.status_code == 200
    assert capture.content_type.startswith("text/event-stream")
    assert capture.events, "no events"
    ids = [int(event.id) for event in capture.events if event.id is not None]
    assert len(ids) == len(capture.events), "every event has an id"
    assert ids == sorted(ids)
    assert len(set(ids[1:])) == len(ids[1:]), "ids increase after the first event"
    for event in capture.events:
        assert event.event in ("status", "progress", "complete")
        doc = event.json()
        assert set(doc) >= STATUS_FIELDS, doc
        assert doc["jobId"] == job_id


def gate_opener(srv: Server, key: str, total: int) -> Any:
    """An ``on_event`` callback that opens the step gate the job is waiting on."""

    async def on_event(event: SseEvent) -> None:
        current = progress_of(event)
        if current is not None and event.event != "complete" and current <= total:
            srv.gates.open(f"{key}-{int(current)}")

    return on_event


@pytest.mark.parametrize("mode", ["async", "thread"])
@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_stream_of_a_running_job(srv: Server) -> None:
    job_id = await srv.submit_ok("steps", {"key": "s", "total": 4})
    capture = await read_sse(srv, job_id, on_event=gate_opener(srv, "s", 4))

    assert_well_formed(capture, job_id)
    assert capture.ended
    assert capture.retries and capture.retries[0] == 20
    assert capture.names[0] == "status"
    assert capture.names[-1] == "complete"
    assert capture.names.count("complete") == 1
    assert set(capture.names[1:-1]) <= {"progress", "status"}
    currents = [c for c in (progress_of(e) for e in capture.events[:-1]) if c is not None]
    assert currents == sorted(currents)
    assert sorted(set(currents)) == [1, 2, 3, 4]
    final = capture.events[-1].json()
    assert final["status"] == "completed"
    assert final["resultUrl"] == f"/jobs/{job_id}/result"


async def test_progress_events_carry_full_status_documents(srv: Server) -> None:
    job_id = await srv.submit_ok("steps", {"key": "d", "total": 3})
    capture = await read_sse(srv, job_id, on_event=gate_opener(srv, "d", 3))
    progress_events = [e for e in capture.events if e.event == "progress"]
    assert progress_events
    for event in progress_events:
        doc = event.json()
        assert doc["status"] == "processing"
        assert doc["progress"]["total"] == 3
        assert doc["progress"]["message"] == f"step {int(doc['progress']['current'])}/3"


async def test_stream_of_a_failed_job_ends_with_the_error(srv: Server) -> None:
    job_id = await srv.submit_ok("fail", {"code": "nope", "message": "m", "retryable": False})
    capture = await read_sse(srv, job_id)
    assert_well_formed(capture, job_id)
    assert capture.ended
    final = capture.events[-1]
    assert final.event == "complete"
    assert final.json()["status"] == "failed"
    assert final.json()["error"]["code"] == "nope"


async def test_stream_of_a_finished_job_is_status_then_complete(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {})
    await srv.wait_terminal(job_id)
    capture = await read_sse(srv, job_id)
    assert_well_formed(capture, job_id)
    assert capture.names == ["status", "complete"]
    assert capture.ended
    newest = int(capture.events[-1].id or 0)
    assert int(capture.events[0].id or 0) == newest - 1
    assert capture.events[0].json() == capture.events[-1].json()
    assert capture.events[-1].json()["status"] == "completed"


@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
async def test_the_completion_and_the_end_of_the_stream_are_one_write(
    srv: Server, finished: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that reads the completion finds the chunked body's end with it (one write,
    # one segment), so it can finish the response, and keep the connection, without
    # waiting for another piece.
    writes: list[bytes] = []
    write, writelines = StreamWriter._write, StreamWriter._writelines

    def record(self: StreamWriter, chunk: Any) -> None:
        writes.append(bytes(chunk))
        write(self, chunk)

    def record_lines(self: StreamWriter, chunks: Any) -> None:
        chunks = [bytes(c) for c in chunks]
        writes.append(b"".join(chunks))
        writelines(self, chunks)

    monkeypatch.setattr(StreamWriter, "_write", record)
    monkeypatch.setattr(StreamWriter, "_writelines", record_lines)
    job_id = await srv.submit_ok("sleep", {"seconds": 0.05, "steps": 2})
    if finished:
        await srv.wait_terminal(job_id)
    capture = await read_sse(srv, job_id)
    assert capture.names[-1] == "complete" and capture.ended
    [last] = [w for w in writes if b"event: complete" in w]
    assert last.endswith(b"}\n\n\r\n0\r\n\r\n")
    assert not [w for w in writes if w == b"0\r\n\r\n"]


async def test_the_event_log_of_a_job(srv: Server) -> None:
    job_id = await srv.submit_ok("sleep", {"seconds": 0.01, "steps": 2})
    await srv.wait_terminal(job_id)
    log = await read_sse(srv, job_id, last_event_id="0")
    assert [int(e.id or 0) for e in log.events] == [1, 2, 3, 4, 5, 6]
    assert log.names == ["status", "status", "progress", "progress", "progress", "complete"]
    docs = [e.json() for e in log.events]
    assert (docs[0]["status"], docs[0]["attempt"]) == ("pending", 0)
    assert (docs[1]["status"], docs[1]["attempt"]) == ("processing", 1)
    assert [d["progress"]["current"] for d in docs[2:5]] == [0, 1, 2]
    assert docs[5]["status"] == "completed"
    assert docs[5]["resultUrl"] == f"/jobs/{job_id}/result"


async def test_server_side_retries_are_logged(make_server: ServerFactory) -> None:
    srv = await make_server(max_attempts=2)
    job_id = await srv.submit_ok(
        "fail", {"code": "c", "message": "m", "retryable": True, "fail_attempts": 1}
    )
    await srv.wait_terminal(job_id)
    log = await read_sse(srv, job_id, last_event_id="0")
    states = [(e.event, e.json()["status"], e.json()["attempt"]) for e in log.events]
    assert states == [
        ("status", "pending", 0),
        ("status", "processing", 1),
        ("status", "pending", 1),
        ("status", "processing", 2),
        ("complete", "completed", 2),
    ]


async def test_fresh_connection_to_a_pending_job(make_server: ServerFactory) -> None:
    srv = await make_server(workers=1)
    await srv.submit_ok("gate", {"key": "hold"})
    await srv.gates.wait_started("hold")
    job_id = await srv.submit_ok("echo", {})

    async def release(event: SseEvent) -> None:
        srv.gates.open("hold")

    capture = await read_sse(srv, job_id, on_event=release)
    assert capture.events[0].id == "1"
    assert capture.events[0].event == "status"
    assert capture.events[0].json()["status"] == "pending"
    assert capture.names[-1] == "complete"
    assert [int(e.id or 0) for e in capture.events] == list(range(1, len(capture.events) + 1))


async def test_last_event_id_as_a_query_parameter(srv: Server) -> None:
    job_id = await srv.submit_ok("echo", {})
    await srv.wait_terminal(job_id)
    async with httpx.AsyncClient(base_url=srv.base_url, verify=SSL_CONTEXT) as client:
        response = await client.get(
            f"/jobs/{job_id}/events",
            params={"lastEventId": "1"},
            headers={"Authorization": "Bearer alice"},
        )
    ids = [
        line.split(":", 1)[1].strip()
        for line in response.text.splitlines()
        if line.startswith("id:")
    ]
    assert ids == ["2", "3"]


@pytest.mark.parametrize("last_event_id", ["abc", "999", "-1"])
async def test_unusable_last_event_id_starts_afresh(srv: Server, last_event_id: str) -> None:
    job_id = await srv.submit_ok("echo", {})
    await srv.wait_terminal(job_id)
    capture = await read_sse(srv, job_id, last_event_id=last_event_id)
    assert capture.names == ["status", "complete"]
    assert [e.id for e in capture.events] == ["2", "3"]


async def test_stream_ends_when_the_job_expires(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "sexp"})
    await srv.gates.wait_started("sexp")

    async def expire_on_first(event: SseEvent) -> None:
        if event.event == "status":
            assert srv.admin.expire(job_id) is True

    capture = await read_sse(srv, job_id, on_event=expire_on_first)
    assert capture.ended
    assert "complete" not in capture.names


async def test_stream_errors_are_json(make_server: ServerFactory) -> None:
    srv = await make_server(tokens={"t": "alice"})
    srv.default_user = "t"
    job_id = await srv.submit_ok("echo", {})
    capture = await read_sse(srv, job_id, user="wrong")
    assert capture.status_code == 401
    assert capture.content_type.startswith("application/json")


async def test_cancelled_job_stream_completes(srv: Server) -> None:
    job_id = await srv.submit_ok("gate", {"key": "sx"})
    await srv.gates.wait_started("sx")

    async def cancel_on_first(event: SseEvent) -> None:
        if event.event == "status":
            assert (await srv.delete(f"/jobs/{job_id}")).status_code == 200

    capture = await read_sse(srv, job_id, on_event=cancel_on_first)
    assert capture.ended
    assert capture.names[-1] == "complete"
    assert capture.events[-1].json()["status"] == "cancelled"


async def test_keepalive_comments(make_server: ServerFactory) -> None:
    srv = await make_server(sse_keepalive=0.02)
    job_id = await srv.submit_ok("gate", {"key": "ka"})
    seen: list[str] = []

    async def on_comment(comment: str) -> bool:
        seen.append(comment)
        return len(seen) >= 2

    capture = await read_sse(srv, job_id, on_comment=on_comment)
    assert not capture.ended
    assert seen[:2] == ["keepalive", "keepalive"]
    srv.gates.open("ka")


async def test_keepalives_do_not_count_towards_the_cut(make_server: ServerFactory) -> None:
    srv = await make_server(sse_keepalive=0.02, faults={"sse_cut_after": 2})
    job_id = await srv.submit_ok("gate", {"key": "kc"})
    await srv.gates.wait_started("kc")
    seen: list[str] = []

    async def on_comment(comment: str) -> bool:
        seen.append(comment)
        return len(seen) >= 3

    capture = await read_sse(srv, job_id, on_comment=on_comment)
    assert not capture.ended
    assert capture.names == ["status"]
    srv.gates.open("kc")


async def test_last_event_id_replays_what_was_missed(srv: Server) -> None:
    job_id = await srv.submit_ok("steps", {"key": "r", "total": 4})
    live = await read_sse(srv, job_id, on_event=gate_opener(srv, "r", 4))
    assert_well_formed(live, job_id)
    assert live.names[-1] == "complete"

    # Reconnect claiming to have seen up to the second event: the rest is replayed.
    resume_from = live.events[1].id
    assert resume_from is not None
    replay = await read_sse(srv, job_id, last_event_id=resume_from)
    assert replay.ended
    expected = [(e.id, e.event) for e in live.events if int(e.id or 0) > int(resume_from)]
    assert [(e.id, e.event) for e in replay.events] == expected
    assert replay.events[-1].json()["status"] == "completed"

    # From the start of the log: everything the job logged, in order.
    full = await read_sse(srv, job_id, last_event_id="0")
    assert [int(e.id or 0) for e in full.events] == list(range(1, len(full.events) + 1))
    assert full.names[-1] == "complete"
    assert full.names.count("complete") == 1


async def test_sse_cut_after_n_and_resume(make_server: ServerFactory) -> None:
    srv = await make_server(faults={"sse_cut_after": 2})
    job_id = await srv.submit_ok("steps", {"key": "cut", "total": 5})
    first = await read_sse(srv, job_id, on_event=gate_opener(srv, "cut", 2))
    assert first.ended
    assert len(first.events) == 2
    assert "complete" not in first.names

    for step in range(3, 6):
        srv.gates.open(f"cut-{step}")
    await srv.wait_terminal(job_id)
    collected = list(first.events)
    for _ in range(20):
        last = collected[-1].id
        assert last is not None
        more = await read_sse(srv, job_id, last_event_id=last)
        assert more.ended
        assert 1 <= len(more.events) <= 2
        collected.extend(more.events)
        if collected[-1].event == "complete":
            break
    ids = [int(e.id or 0) for e in collected]
    assert ids == sorted(ids)
    assert len(set(ids[1:])) == len(ids) - 1
    assert collected[-1].json()["status"] == "completed"
    currents = {progress_of(e) for e in collected} - {None}
    assert {3, 4, 5} <= currents


# ---------------------------------------------------------------------------- aiohttp-sse-client


async def test_aiohttp_sse_client_reads_the_stream(srv: Server) -> None:
    job_id = await srv.submit_ok("steps", {"key": "a", "total": 3})
    events: list[tuple[str, str, dict[str, Any]]] = []
    url = f"{srv.base_url}/jobs/{job_id}/events"
    async with aiohttp.ClientSession() as session:
        with anyio.fail_after(10):
            async with sse_client.EventSource(
                url,
                session=session,
                headers={"Authorization": "Bearer alice"},
                reconnection_time=timedelta(milliseconds=10),
            ) as source:
                async for message in source:
                    doc = SseEvent(message.last_event_id, message.type, message.data).json()
                    events.append((message.type, message.last_event_id, doc))
                    if message.type == "complete":
                        break
                    current = (doc.get("progress") or {}).get("current")
                    if current is not None:
                        srv.gates.open(f"a-{int(current)}")
    assert events[0][0] == "status"
    assert events[-1][0] == "complete"
    assert events[-1][2]["status"] == "completed"
    assert all(last_id for _, last_id, _ in events)


async def test_aiohttp_sse_client_reconnects_with_last_event_id(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(faults={"sse_cut_after": 2}, sse_retry_ms=10)
    job_id = await srv.submit_ok("steps", {"key": "re", "total": 5})
    messages: list[tuple[str, str, dict[str, Any]]] = []
    connections = 0

    def on_open() -> None:
        nonlocal connections
        connections += 1

    url = f"{srv.base_url}/jobs/{job_id}/events"
    async with aiohttp.ClientSession() as session:
        with anyio.fail_after(20):
            async with sse_client.EventSource(
                url,
                session=session,
                headers={"Authorization": "Bearer alice"},
                reconnection_time=timedelta(milliseconds=10),
                on_open=on_open,
            ) as source:
                async for message in source:
                    doc = SseEvent(message.last_event_id, message.type, message.data).json()
                    messages.append((message.type, message.last_event_id, doc))
                    if message.type == "complete":
                        break
                    # Open every gate up to the current step: the job moves on while the
                    # client is disconnected, so the reconnect must replay what it missed.
                    current = (doc.get("progress") or {}).get("current")
                    if current is not None:
                        for step in range(1, int(current) + 1):
                            srv.gates.open(f"re-{step}")

    assert connections >= 2, "the stream was cut, so the client must have reconnected"
    ids = [int(last_id) for _, last_id, _ in messages]
    assert ids == sorted(ids)
    assert len(set(ids[1:])) == len(ids) - 1, "no event twice"
    currents = [doc["progress"]["current"] for kind, _, doc in messages if kind == "progress"]
    assert currents == sorted(currents)
    assert {2, 3, 4, 5} <= set(currents), "every progress event after the first was seen"
    assert messages[-1][0] == "complete"
    assert messages[-1][2]["status"] == "completed"


@pytest.mark.parametrize("dialect", ["status-code"])
async def test_status_code_dialect_streams_reference_documents(srv: Server) -> None:
    job_id = await srv.submit_ok("fail", {"code": "e", "message": "m", "retryable": False})
    capture = await read_sse(srv, job_id)
    assert_well_formed(capture, job_id)
    assert capture.names[-1] == "complete"
    final = capture.events[-1].json()
    assert final["status"] == "failed"
    assert final["error"]["code"] == "e"
