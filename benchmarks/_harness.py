"""Shared benchmark plumbing: a reference server in a child process, request counting,
percentiles, tables and JSON results.

The server runs as ``python -m reference_server`` in its own process so that
``time.process_time()`` in the benchmark measures the client alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "RESULTS_DIR",
    "BoundedTransport",
    "KindCounter",
    "PathCounter",
    "ServerProcess",
    "add_common_args",
    "environment",
    "fanout_figures",
    "free_port",
    "max_rss_kib",
    "parse_time",
    "percentile",
    "print_table",
    "raise_fd_limit",
    "request_kind",
    "running_server",
    "server_url",
    "write_result",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_REPO = Path(__file__).resolve().parent.parent
_STARTUP_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A reference server in a child process (``python -m reference_server``).

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        process: the child process.
    """

    base_url: str
    process: subprocess.Popen[str]
    _drain: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period) and reap it."""
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=_STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._drain is not None:
            self._drain.join(timeout=_STOP_TIMEOUT)


@contextmanager
def running_server(*flags: str) -> Iterator[ServerProcess]:
    """Start ``python -m reference_server`` on a free loopback port with ``flags``.

    Yields once the server printed its "listening" line (and answers ``/health``); stops it
    on exit.

    Example:
        >>> with running_server("--workers", "64") as server:  # doctest: +SKIP
        ...     httpx.get(server.base_url + "/health")
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "reference_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "WARNING",
        *flags,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=_REPO,
        env=env,
    )
    server = ServerProcess(base_url=f"http://127.0.0.1:{port}", process=proc)
    try:
        _await_listening(server)
        assert proc.stdout is not None
        stdout = proc.stdout
        # Keep reading the child's stdout so it can never block on a full pipe.
        server._drain = threading.Thread(target=lambda: stdout.read(), daemon=True)
        server._drain.start()
        yield server
    finally:
        server.stop()


@contextmanager
def server_url(url: str | None, *flags: str) -> Iterator[str]:
    """Yield ``url`` when given (a server already running), else the URL of a fresh
    :func:`running_server` started with ``flags``."""
    if url is not None:
        yield url.rstrip("/")
        return
    with running_server(*flags) as server:
        yield server.base_url


def _await_listening(server: ServerProcess) -> None:
    proc = server.process
    assert proc.stdout is not None
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    line = proc.stdout.readline()
    if "listening on" not in line:
        raise RuntimeError(f"reference server did not start (exit {proc.poll()}): {line!r}")
    with httpx.Client() as http:
        while time.monotonic() < deadline:
            try:
                if http.get(server.base_url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
    raise RuntimeError("reference server did not answer /health in time")


class PathCounter:
    """Counts requests per ``(method, path)``; thread-safe. Use ``hook`` as an httpx
    ``request`` event hook (``async_hook`` for ``httpx.AsyncClient``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, method: str, path: str) -> None:
        """Count one request."""
        with self._lock:
            self.counts[(method, path)] += 1

    def hook(self, request: httpx.Request) -> None:
        """httpx ``request`` event hook (sync clients)."""
        self.add(request.method, request.url.path)

    async def async_hook(self, request: httpx.Request) -> None:
        """httpx ``request`` event hook (async clients)."""
        self.add(request.method, request.url.path)

    def status_requests(self, job_id: str) -> int:
        """GETs of the job's status monitor and of its event stream."""
        base = f"/jobs/{job_id}"
        with self._lock:
            return self.counts[("GET", base)] + self.counts[("GET", base + "/events")]

    def total(self) -> int:
        """All requests counted."""
        with self._lock:
            return sum(self.counts.values())

    def by_kind(self) -> dict[str, int]:
        """Totals per kind: ``submit``, ``status``, ``events``, ``result``, ``other``."""
        kinds: Counter[str] = Counter()
        with self._lock:
            items = list(self.counts.items())
        for (method, path), n in items:
            kinds[request_kind(method, path)] += n
        return dict(kinds)


def request_kind(method: str, path: str) -> str:
    """``submit``, ``status``, ``events``, ``result`` or ``other``: what a request to the
    reference server is for."""
    if method == "POST" and path == "/jobs":
        return "submit"
    if method == "GET" and path.endswith("/events"):
        return "events"
    if method == "GET" and path.endswith("/result"):
        return "result"
    if method == "GET" and path.startswith("/jobs/"):
        return "status"
    return "other"


class KindCounter:
    """Counts requests per kind only (:func:`request_kind`), as ``PathCounter.by_kind``
    does, without keeping a key per path: a fan-out's memory measurement then holds nothing
    of the benchmark's per job. Use ``async_hook`` as an ``httpx.AsyncClient`` event hook."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def async_hook(self, request: httpx.Request) -> None:
        """httpx ``request`` event hook (async clients, one event loop)."""
        self.counts[request_kind(request.method, request.url.path)] += 1

    def total(self) -> int:
        """All requests counted."""
        return sum(self.counts.values())

    def by_kind(self) -> dict[str, int]:
        """Totals per kind."""
        return dict(self.counts)


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that calls ``release`` once, when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class BoundedTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncHTTPTransport`` that lets at most ``limit`` requests into the
    connection pool at once; the others wait on a semaphore until a response is closed.

    Why: httpcore 1.0's pool, each time a request enters or leaves it, scans every
    connection for every queued request, so thousands of queued requests make a fan-out
    quadratic (the client spends its CPU in ``_assign_requests_to_connections``). With the
    queue held outside the pool each scan stays short. Every operation is still tracked
    concurrently; only the requests in flight are bounded (as they are by the pool anyway).

    ``keepalive`` (default: ``min(limit, 16)``) is the pool's ``max_keepalive_connections``.
    Keep it small: the same scan walks every connection once for every idle one, so when
    hundreds of event streams end together and leave their connections idle, a large
    keep-alive allowance makes the pool quadratic again.
    """

    def __init__(self, limit: int, *, keepalive: int | None = None, **options: Any) -> None:
        keep = min(limit, 16) if keepalive is None else keepalive
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=keep)
        self._inner = httpx.AsyncHTTPTransport(limits=limits, **options)
        self._slots = asyncio.Semaphore(limit)
        #: Requests (response bodies included) in flight now, and the most ever at once.
        self.in_flight = 0
        self.max_in_flight = 0

    def _release(self) -> None:
        self.in_flight -= 1
        self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, self._release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def parse_time(value: str) -> float:
    """Epoch seconds of an RFC 3339 time (``2026-11-23T09:00:00.123Z``)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) with linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def max_rss_kib() -> int:
    """The process's peak resident set size in KiB (``ru_maxrss``; Linux reports KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss // 1024) if sys.platform == "darwin" else int(rss)


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a plain-text table with right-aligned numbers."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:.3g}" if abs(value) < 0.01 else f"{value:,.2f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row, raw in zip(cells, rows, strict=True):
        parts = []
        for text, width, value in zip(row, widths, raw, strict=True):
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            parts.append(text.rjust(width) if numeric else text.ljust(width))
        lines.append("  ".join(parts))
    table = "\n".join(lines)
    print(table, flush=True)
    return table


def environment() -> dict[str, Any]:
    """A few facts about the machine the figures come from."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "httpx": httpx.__version__,
    }


def write_result(name: str, data: dict[str, Any], results_dir: Path | None = None) -> Path:
    """Write ``data`` (plus the environment and a timestamp) to ``<results_dir>/<name>.json``."""
    directory = results_dir or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    payload = {
        "benchmark": name,
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "environment": environment(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path}", flush=True)
    return path


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--quick``, ``--results-dir`` and ``--server-url``, shared by every benchmark."""
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument(
        "--server-url",
        default=None,
        help="use this running server (loopback; it needs the reference 'sleep' job type and "
        "enough workers) instead of starting a reference server in a child process",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help=f"where the JSON goes (default: {RESULTS_DIR})",
    )


def fanout_figures(
    outcomes: Sequence[object],
    *,
    operations: int,
    cpu: float,
    transport: BoundedTransport,
    counter: PathCounter,
) -> dict[str, Any]:
    """The figures both fan-out benchmarks report: errors by type, the first error, client
    CPU per operation and requests per operation (in all and by kind)."""
    errors = Counter(type(o).__name__ for o in outcomes if isinstance(o, BaseException))
    return {
        "errors": dict(errors),
        "first_error": next((repr(o) for o in outcomes if isinstance(o, BaseException)), None),
        "cpu_s": cpu,
        "cpu_ms_per_op": cpu / operations * 1000.0,
        "max_requests_in_flight": transport.max_in_flight,
        "requests_per_op": counter.total() / operations,
        "requests_by_kind_per_op": {k: n / operations for k, n in counter.by_kind().items()},
    }
