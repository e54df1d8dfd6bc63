"""Retrying safely: a fault run that counts duplicate jobs.

N jobs go through ``AsyncClient.run()`` with default settings against a reference server on
SQLite with fault injection (503 with ``Retry-After``, 500, dropped connections), which is
killed (SIGKILL) and restarted on the same port during the run. The application does what
the guide's recipe says when ``run()`` raises: it waits for ``exc.operation`` when the job is
known, and otherwise calls ``run()`` again with ``idempotency_key=exc.idempotency_key``.
Afterwards the server (restarted without faults) lists its jobs: every job beyond N is a
duplicate, and the run is good when there are none.

Run: ``PYTHONPATH=. python -m benchmarks.fault_run`` (1,000 jobs, three restarts), or
``--quick``. The figures go to ``benchmarks/results/fault_run.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from asyncreply_client import AsyncClient, AsyncReplyError, RetryPolicy, TransportError

from ._harness import add_common_args, free_port, print_table, write_result

__all__ = ["FaultRun", "fault_run", "main"]

_REPO = Path(__file__).resolve().parents[1]
_STARTUP = 30.0


@dataclass
class FaultRun:
    """What a fault run did.

    Attributes:
        jobs: jobs the application asked for (one ``run()`` each, plus its re-calls).
        completed: jobs whose ``run()`` (or re-call) returned their result.
        server_jobs: jobs the server holds at the end.
        duplicates: ``server_jobs - jobs`` (0 when every re-call found its job).
        recalls: re-calls of ``run()`` with ``exc.idempotency_key`` (the submission's
            answer was lost after every retry).
        rewaits: waits for ``exc.operation`` after an error about an existing job.
        errors: the errors ``run()`` raised, by type.
        restarts: server restarts (SIGKILL, then the same port again).
        seconds: wall time of the run.
    """

    jobs: int
    completed: int = 0
    server_jobs: int = 0
    duplicates: int = 0
    recalls: int = 0
    rewaits: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    seconds: float = 0.0


class _Server:
    """``python -m reference_server --store sqlite`` on a fixed port, killable and
    restartable (the same database, the same port)."""

    def __init__(self, port: int, db: Path, flags: Sequence[str]) -> None:
        self.port = port
        self.db = db
        self.flags = list(flags)
        self.proc: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str) -> None:
        cmd = [
            sys.executable, "-m", "reference_server", "--host", "127.0.0.1",
            "--port", str(self.port), "--store", "sqlite", "--sqlite-path", str(self.db),
            "--log-level", "ERROR", *self.flags, *extra,
        ]  # fmt: skip
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
        self.proc = proc
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the reference server did not start: {line!r}")
        stdout = proc.stdout

        def drain() -> None:  # never a full pipe; closed once the process is gone
            with stdout:
                stdout.read()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=_STARTUP)
        if self._drain is not None:
            self._drain.join(timeout=_STARTUP)
        self.proc = self._drain = None


async def _count_jobs(base_url: str) -> int:
    """Jobs the server lists (every page)."""
    total, cursor = 0, None
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/jobs", params=params)).raise_for_status().json()
            total += len(page["jobs"])
            cursor = page.get("nextCursor")
            if not cursor:
                return total


async def _application(
    client: AsyncClient, n: int, job_seconds: float, out: FaultRun, max_calls: int, naive: bool
) -> None:
    """One job, as an application following the guide's recipe runs it (``naive``: one that
    calls ``run()`` again without the key, as the guide used to say)."""
    body = {"type": "sleep", "input": {"seconds": job_seconds + n * 1e-6}}
    key: str | None = None
    operation: Any = None
    for _ in range(max_calls):
        try:
            if operation is not None:
                await operation.result(timeout=120)
            elif key is None:
                await client.run("/jobs", json=body, timeout=120)
            else:
                await client.run("/jobs", json=body, timeout=120, idempotency_key=key)
            out.completed += 1
            return
        except AsyncReplyError as exc:
            out.errors[type(exc).__name__] += 1
            if exc.operation is not None:
                operation = exc.operation  # the job exists: wait for *it* (the recipe)
                out.rewaits += 1
                continue
            if operation is not None or not isinstance(exc, TransportError):
                raise
            if exc.idempotency_key is None:
                raise
            key = None if naive else exc.idempotency_key  # the same job, if the server has it
            out.recalls += 1
    raise RuntimeError(f"job {n}: no result after {max_calls} calls")


async def fault_run(
    *,
    jobs: int,
    concurrency: int,
    restarts: int,
    down: float = 1.5,
    job_seconds: float = 0.2,
    p_503: float = 0.05,
    p_500: float = 0.02,
    p_drop: float = 0.02,
    seed: int = 1,
    retry: RetryPolicy | None = None,
    workers: int = 32,
    naive: bool = False,
) -> FaultRun:
    """Run ``jobs`` jobs (``concurrency`` at a time) through ``run()`` against a faulty
    reference server restarted ``restarts`` times (down ``down`` seconds each); count the
    jobs the server holds afterwards. ``retry``: the client's policy (default: the
    default)."""
    out = FaultRun(jobs=jobs)
    faults = [
        "--fault-p-503", str(p_503), "--fault-retry-after", "1", "--fault-p-500", str(p_500),
        "--fault-p-drop", str(p_drop), "--fault-seed", str(seed),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="asyncreply-fault-run-") as tmp:
        server = _Server(free_port(), Path(tmp) / "jobs.sqlite3", ["--workers", str(workers)])
        server.start(*faults)
        started = time.monotonic()
        try:
            gate = asyncio.Semaphore(concurrency)
            progress = asyncio.Condition()
            async with AsyncClient(server.base_url, retry=retry) as client:

                async def one(n: int) -> None:
                    async with gate:
                        await _application(client, n, job_seconds, out, 20, naive)
                    async with progress:
                        progress.notify_all()

                async def restarter() -> None:
                    for _ in range(restarts):
                        # Spread the restarts over the run, each while jobs are in flight.
                        due = (out.restarts + 1) * jobs // (restarts + 1)
                        async with progress:
                            await progress.wait_for(lambda: out.completed >= due)  # noqa: B023
                        server.kill()
                        await asyncio.sleep(down)
                        await asyncio.to_thread(server.start, *faults)
                        out.restarts += 1

                tasks = [asyncio.create_task(one(n)) for n in range(jobs)]
                restarting = asyncio.create_task(restarter())
                await asyncio.gather(*tasks)
                restarting.cancel()
            out.seconds = time.monotonic() - started
        finally:
            server.kill()
        server.start()  # no faults: count what the store holds
        try:
            out.server_jobs = await _count_jobs(server.base_url)
        finally:
            server.kill()
    out.duplicates = out.server_jobs - jobs
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the fault run from the command line; print and write its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--down", type=float, default=1.5, help="seconds the server is down")
    parser.add_argument(
        "--connect-for",
        type=float,
        default=None,
        help="RetryPolicy(connect_for=...) instead of the default policy (0: refused "
        "connections count as attempts at once, so run() raises more often)",
    )
    parser.add_argument(
        "--naive",
        action="store_true",
        help="re-call run() without the key (what the guide used to say): duplicates",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.restarts = 100, 1
    retry = None if args.connect_for is None else RetryPolicy(connect_for=args.connect_for)
    run = asyncio.run(
        fault_run(
            jobs=args.jobs,
            concurrency=args.concurrency,
            restarts=args.restarts,
            down=args.down,
            retry=retry,
            naive=args.naive,
        )
    )
    rows = [
        ["jobs", run.jobs],
        ["completed", run.completed],
        ["server jobs", run.server_jobs],
        ["duplicates", run.duplicates],
        ["re-calls of run()", run.recalls],
        ["waits for exc.operation", run.rewaits],
        ["restarts", run.restarts],
        ["seconds", run.seconds],
    ]
    policy = "default RetryPolicy" if retry is None else repr(retry)
    app = "naive re-calls" if args.naive else "the guide's recipe"
    table = print_table(f"fault run ({policy}, {app})", ["figure", "value"], rows)
    data = {
        "table": table,
        "args": {k: v for k, v in vars(args).items() if k != "results_dir"},
        "figures": {**{r[0]: r[1] for r in rows}, "errors": dict(run.errors)},
    }
    write_result("fault_run", data, args.results_dir)
    return data


if __name__ == "__main__":
    main()
