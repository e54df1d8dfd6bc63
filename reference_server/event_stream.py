"""``GET /jobs/{id}/events``: a job's Server-Sent Events stream (docs/protocol.md, "Events").

Events are sent from the job's event log (``Last-Event-ID`` resumes after an id), each change
written as soon as it is logged, with keep-alive comments while nothing happens, bounded by the
write timeout; the stream ends after ``complete``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .job_lookup import job_id_of, lookup
from .result_stream import bounded
from .server_state import state_of

__all__ = ["job_events"]

# ASCII digits only (str.isdigit() also accepts "²", which int() refuses), bounded length.
_DIGITS = re.compile(r"[0-9]{1,18}")


def _sse_event(event_id: int, event: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {payload}\n\n".encode()


async def job_events(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}/events``: Server-Sent Events."""
    state = state_of(request)
    manager = state.manager
    job_id = job_id_of(request)
    job = await lookup(request, job_id)
    last_id: int | None = None
    raw_last = request.headers.get("Last-Event-ID", request.query.get("lastEventId"))
    if raw_last is not None and _DIGITS.fullmatch(raw_last.strip()):
        last_id = int(raw_last.strip())
    # Replay only what the log still holds; otherwise start afresh with the current state.
    if last_id is not None and (
        last_id > job.event_seq or last_id + 1 < manager.first_logged_event(job_id)
    ):
        last_id = None
    cut_after = state.faults.sse_cut_after
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    sent = 0
    write_timeout = state.config.write_timeout

    async def write(data: bytes) -> None:
        # A reader that accepts nothing for write_timeout is cut off: otherwise a stream that
        # is never read stays busy forever in the connection guard.
        await bounded(resp.write(data), request.transport, write_timeout)

    timed = state.config.timing_headers

    async def send(chunk: bytes) -> bool:
        """Write an event; ``False`` when the stream must end (fault cut)."""
        nonlocal sent
        await write(chunk)
        sent += 1
        return cut_after is None or sent < cut_after

    async def stream(last_id: int | None) -> bytes:
        """Write the stream up to its last events, which it returns (``b""`` when none is
        left): they go out with the stream's end, in one write."""
        await write(f"retry: {state.config.sse_retry_ms}\n\n".encode())
        if last_id is None:
            doc = manager.document(job)
            if job.state.is_terminal:
                if await send(_sse_event(max(job.event_seq - 1, 0), "status", doc)):
                    return _sse_event(job.event_seq, "complete", doc)
                return b""
            # The id of the document sent, taken before the write: the job may change while
            # the write waits, and those events must follow this one, not be skipped.
            seq = job.event_seq
            if not await send(_sse_event(seq, "status", doc)):
                return b""
            last_id = seq
        keepalive = state.config.sse_keepalive
        while not manager.closing:
            version = manager.version(job_id)
            events = manager.events_after(job_id, last_id)
            if cut_after is None and len(events) > 1:
                # The events logged since the last write go out in one write: one segment
                # for the client to receive (a last progress step and the completion).
                parts: list[bytes] = []
                for ev in events:
                    last_id = ev.id
                    parts.append(_sse_event(ev.id, ev.event, ev.data))
                    if ev.event == "complete":
                        # The last events, the completion among them: written with the end.
                        return b"".join(parts)
                await write(b"".join(parts))  # no fault cut to count toward here
                continue  # look again, as after any write
            for ev in events:
                last_id = ev.id
                if ev.event == "complete":
                    # Written with the stream's end (and counted toward no cut: it ends anyway).
                    return _sse_event(ev.id, ev.event, ev.data)
                if not await send(_sse_event(ev.id, ev.event, ev.data)):
                    return b""
            if events or manager.version(job_id) != version:
                # Sending waits for the reader: the job may have moved on meanwhile (even to
                # its end), so look again before deciding the stream is over.
                continue
            current = await manager.get(job_id)
            if current is None:
                return b""
            if current.state.is_terminal:
                if current.event_seq > last_id:
                    # Final, but its last events are not in this instance's log yet (a copy
                    # re-read from another instance's commit): wait for them, not end early.
                    await manager.wait_change(job_id, version, keepalive)
                    continue
                return b""
            await manager.wait_change(job_id, version, keepalive)
            if manager.version(job_id) == version and not manager.closing:
                await write(b": keepalive\n\n")
        return b""

    try:
        last = await stream(last_id)
        # The last events and the chunked body's end in one write (one segment): a client
        # that reads the completion finds the response complete, so it can finish it and keep
        # the connection, instead of closing it mid-body and dropping it.
        await bounded(resp.write_eof(last), request.transport, write_timeout)
        if last and timed:
            # The ``complete`` event is on the socket: the job's final answer (timing.py).
            state.answer_times.record(job_id)
    except ConnectionResetError:
        # The client went away (or read nothing for write_timeout); nothing more to send.
        pass
    return resp
