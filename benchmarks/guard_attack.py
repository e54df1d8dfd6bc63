"""The connection-guard attack: idle sockets at the cap, ``/health`` answering throughout.

Issue 19 item 1: against ``--max-connections 100``, 100 sockets that sent only ``\\r\\n\\r\\n``
(which the HTTP parser skips) or that finished one request and sat idle on keep-alive counted
as busy forever, so every new client got ``503`` for 71 s; the attacker simply reopens.

The attacker here keeps ``cap`` sockets open for ``duration`` seconds, half of each kind, and
reopens every one the server closes. A prober asks ``GET /health`` on a new connection every
``probe_every`` seconds. Reported: probes, ``200`` answers, other answers (``503``), unanswered
probes, ``/health`` latency (median, p99, max), and how many attacker sockets the server
closed (evicted or timed out) and the attacker reopened. The benchmark fails (exit 1) unless
every probe got ``200``.

Run: ``python -m benchmarks.guard_attack [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._harness import add_common_args, percentile, print_table, running_server, write_result

__all__ = ["AttackFigures", "attack", "main"]

_KEEPALIVE_REQUEST = b"GET /health HTTP/1.1\r\nHost: attacker\r\n\r\n"
_PROBE = b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"


@dataclass
class AttackFigures:
    """What one attack run measured."""

    cap: int
    duration: float
    probes: int = 0
    ok: int = 0
    refused: int = 0
    unanswered: int = 0
    latencies: list[float] = field(default_factory=list)
    opened: int = 0
    closed_by_server: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values (latencies summed up in milliseconds)."""
        return {
            "cap": self.cap,
            "duration_s": self.duration,
            "probes": self.probes,
            "ok_200": self.ok,
            "other_status": self.refused,
            "unanswered": self.unanswered,
            "median_ms": percentile(self.latencies, 50) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "max_ms": max(self.latencies, default=float("nan")) * 1000,
            "attacker_sockets_opened": self.opened,
            "attacker_sockets_closed_by_server": self.closed_by_server,
        }


async def _probe(host: str, port: int, figures: AttackFigures) -> None:
    figures.probes += 1
    start = time.perf_counter()

    async def ask() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(_PROBE)
            return await reader.read(1024)
        finally:
            writer.close()

    try:
        answer = await asyncio.wait_for(ask(), 5.0)
    except (OSError, asyncio.TimeoutError):
        figures.unanswered += 1
        return
    if answer.startswith(b"HTTP/1.1 200"):
        figures.ok += 1
        figures.latencies.append(time.perf_counter() - start)
    else:
        figures.refused += 1


async def _hold_one(host: str, port: int, kind: str, figures: AttackFigures) -> None:
    """Open one attacker socket of ``kind`` and hold it until the server closes it."""
    reader, writer = await asyncio.open_connection(host, port)
    figures.opened += 1
    try:
        if kind == "crlf":
            writer.write(b"\r\n\r\n")
        else:
            writer.write(_KEEPALIVE_REQUEST)
            await reader.readuntil(b"\r\n\r\n")  # the answer's head ...
            await reader.read(1024)  # ... and its (small) body; then sit idle
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        figures.closed_by_server += 1
    finally:
        writer.close()


async def _attacker(
    host: str, port: int, kind: str, stop: asyncio.Event, figures: AttackFigures
) -> None:
    """Keep one attacker socket open until ``stop``: reopen it whenever it is closed."""
    while not stop.is_set():
        task = asyncio.ensure_future(_hold_one(host, port, kind, figures))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError, asyncio.IncompleteReadError):
            await task


async def attack(
    host: str, port: int, *, cap: int, duration: float, probe_every: float = 0.05
) -> AttackFigures:
    """Hold ``cap`` idle attacker sockets (CRLF-only and idle keep-alive) for ``duration``
    seconds while probing ``/health``; return the figures."""
    figures = AttackFigures(cap=cap, duration=duration)
    stop = asyncio.Event()
    attackers = [
        asyncio.ensure_future(
            _attacker(host, port, "crlf" if i % 2 else "keepalive", stop, figures)
        )
        for i in range(cap)
    ]
    # Let the crowd reach the cap before the first probe.
    while figures.opened < cap:  # noqa: ASYNC110 - counts updated by the attacker tasks
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        await _probe(host, port, figures)
        await asyncio.sleep(probe_every)
    stop.set()
    await asyncio.gather(*attackers, return_exceptions=True)
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the attack against a reference server in a child process; return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--cap", type=int, default=100, help="--max-connections of the server")
    parser.add_argument("--duration", type=float, default=None, help="seconds of attack")
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="--header-timeout of the server"
    )
    args = parser.parse_args(argv)
    duration = args.duration if args.duration is not None else (5.0 if args.quick else 30.0)
    flags = ("--max-connections", str(args.cap), "--header-timeout", str(args.header_timeout))
    with running_server(*flags) as server:
        host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
        figures = asyncio.run(attack(host, int(port), cap=args.cap, duration=duration))
    results = figures.as_dict()
    results["header_timeout_s"] = args.header_timeout
    results["table"] = print_table(
        f"/health during {duration:g} s with {args.cap} idle sockets (CRLF-only and idle "
        f"keep-alive, reopened when closed) against --max-connections {args.cap}",
        ["probes", "200", "other", "unanswered", "median ms", "p99 ms", "max ms", "reopened"],
        [[results[k] for k in ("probes", "ok_200", "other_status", "unanswered", "median_ms",
                               "p99_ms", "max_ms", "attacker_sockets_closed_by_server")]],
    )  # fmt: skip
    results["met"] = figures.probes > 0 and figures.ok == figures.probes
    write_result("guard_attack", results, args.results_dir)
    if not results["met"]:
        print("FAILED: a /health probe was not answered 200 during the attack")
    return results


if __name__ == "__main__":
    raise SystemExit(0 if main()["met"] else 1)
