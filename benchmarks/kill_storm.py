"""Kill storm: ``kill -9`` of a SQLite-backed server, again and again, during a webhook run.

Jobs (``echo`` with a callback) are submitted with an ``Idempotency-Key`` by a few concurrent
submitters while a killer sends SIGKILL to the server every ``kill_every`` seconds and starts
a new one on the same database. A submission whose answer was lost is sent again with its key
when the next server is up. At the end every job must be final, and every completed job must
have exactly one delivery record (``job.completed``) whose id is the only ``webhook-id`` its
receiver ever saw. ``tests/server/test_webhooks_atomic.py`` runs a small storm; this module
runs the full one (``python -m benchmarks.kill_storm``: 5,000 jobs; ``--quick``: 300).

With ``--store redis://… --instances 3 --receivers 2`` (issue 18's "done when") one instance
of three is killed at a time, and the deliveries go to two receiver instances behind one port
(``SO_REUSEPORT``), each with the SDK's ``AsyncRedisReplayStore`` on the same Redis: every
delivery id must also be *processed* exactly once over the two receivers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from ._harness import add_common_args, print_table, write_result

__all__ = ["KillStormReport", "main", "run_kill_storm"]

NAME = "kill_storm"

SECRET = "whsec_dGVzdC1zZWNyZXQta2V5LWZvci1hc3luY3JlcGx5LXRlc3Rz"


@dataclass
class KillStormReport:
    """What a storm did and what it found (empty ``problems``: the invariant held)."""

    jobs: int
    kills: int
    completed: int
    deliveries: int
    seconds: float
    problems: list[str] = field(default_factory=list)
    #: With deduping receivers: deliveries processed by each receiver instance.
    processed_by: list[int] = field(default_factory=list)
    #: With deduping receivers: answers other than "processed" (duplicates, in progress).
    not_processed: int = 0


@dataclass
class _Hooks:
    """Webhook ids received per job."""

    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.seen[str(body["jobId"])].add(request.headers["webhook-id"])
        return web.Response(text="ok")


@contextlib.asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[_Hooks, str]]:
    hooks = _Hooks()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield hooks, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


@dataclass
class _DedupingReceivers:
    """Receiver instances that share the SDK's Redis replay store (one port, SO_REUSEPORT)."""

    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    processed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    processed_by: list[int] = field(default_factory=list)
    not_processed: int = 0

    def handler(self, verifier: Any, number: int) -> Any:
        from asyncreply_client.webhooks import WebhookEvent, handle_webhook_async

        async def on_completed(event: WebhookEvent) -> None:
            self.processed[str(event.delivery_id)] += 1
            self.processed_by[number] += 1

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.seen[str(json.loads(body)["jobId"])].add(request.headers["webhook-id"])
            answer = await handle_webhook_async(
                verifier, dict(request.headers), body, {"job.completed": on_completed}
            )
            if answer.json().get("status") != "processed":
                self.not_processed += 1
            return web.Response(status=answer.status_code, body=answer.body, headers=answer.headers)

        return handle


@contextlib.asynccontextmanager
async def _deduping_receivers(
    redis_url: str, count: int
) -> AsyncIterator[tuple[_DedupingReceivers, str]]:
    import redis.asyncio

    from asyncreply_client.webhooks import AsyncRedisReplayStore, WebhookVerifier

    hooks = _DedupingReceivers(processed_by=[0] * count)
    clients: list[Any] = []
    runners: list[web.AppRunner] = []
    port = 0
    try:
        for number in range(count):
            client = redis.asyncio.Redis.from_url(redis_url)
            clients.append(client)
            verifier = WebhookVerifier(SECRET, replay_store=AsyncRedisReplayStore(client))
            app = web.Application()
            app.router.add_post("/hook", hooks.handler(verifier, number))
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
            port = runner.addresses[0][1]
        yield hooks, f"http://127.0.0.1:{port}/hook"
    finally:
        for runner in runners:
            await runner.cleanup()
        for client in clients:
            await client.aclose()


class _Servers:
    """The current server process; ``up`` is set while one is listening."""

    def __init__(self, store: list[str], log: Path, workers: int, instances: int) -> None:
        self.store, self.log, self.workers, self.instances = store, log, workers, instances
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.up = asyncio.Event()

    def _start(self) -> tuple[subprocess.Popen[str], str]:
        args = [
            sys.executable, "-m", "reference_server", *self.store,
            "--port", "0", "--workers", str(self.workers),
            "--webhook-allow-private", "--webhook-secret", SECRET,
            "--webhook-backoff", "0.05", "--webhook-max-attempts", "20",
            "--log-level", "WARNING", "--instances", str(self.instances), "--job-lease", "1",
        ]  # fmt: skip
        with self.log.open("a") as err:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        self.proc = proc  # stopped by stop() even if the start is abandoned
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on " not in line:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the server did not start: {line!r} (see {self.log})")
        return proc, line.rsplit(" ", 1)[1].strip()

    async def start(self) -> None:
        self.proc, self.base_url = await asyncio.to_thread(self._start)
        self.up.set()

    async def kill(self) -> None:
        self.up.clear()
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    async def kill_one_instance(self) -> bool:
        """SIGKILL one serving child of an ``--instances`` server (its supervisor replaces it).

        Only while at least two children listen (when ``ss`` can tell): one instance of
        several dies at a time and the others serve on; a kill faster than an instance
        starts would otherwise kill the replacements before they listen. Returns whether
        it killed one.
        """
        assert self.proc is not None
        pgrep = ["pgrep", "-P", str(self.proc.pid)]
        found = await asyncio.to_thread(
            subprocess.run, pgrep, capture_output=True, text=True, check=False
        )
        children = [int(pid) for pid in found.stdout.split()]
        serving = await asyncio.to_thread(self._listening, children)
        if serving is not None:
            if len(serving) < 2:
                return False
            children = serving
        if not children:
            return False
        os.kill(random.choice(children), signal.SIGKILL)
        return True

    def _listening(self, pids: list[int]) -> list[int] | None:
        """Which of ``pids`` listen on the server's port (``None``: ``ss`` is missing)."""
        port = self.base_url.rsplit(":", 1)[-1].split("/", 1)[0]
        try:
            found = subprocess.run(
                ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
            )
        except OSError:
            return None
        if found.returncode != 0 or "pid=" not in found.stdout:
            return None  # no ss, or it may not name other users' processes
        return [pid for pid in pids if f"pid={pid}," in found.stdout]

    async def stop(self) -> None:
        if self.proc is not None and self.instances > 1:
            self.proc.terminate()  # the supervisor stops its children
            await asyncio.to_thread(self.proc.wait)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        await self.kill()


def _redis_records(url: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every job's delivery records, read from Redis (any instance's)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return {
            job_id: [
                {"id": k.decode() if isinstance(k, bytes) else k, **json.loads(v)}
                for k, v in client.hgetall(f"ar:{{{job_id}}}:dlv").items()
            ]
            for job_id in ids
        }
    finally:
        client.close()


async def _records(
    servers: _Servers, client: httpx.AsyncClient, store: str, ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """``job id -> [{"id", "event", "status"}]`` once no delivery is pending (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        if store == "sqlite":
            by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for item in (await _get(servers, client, "/webhooks/deliveries"))["deliveries"]:
                by_job[item["jobId"]].append(item)
        else:
            by_job = await asyncio.to_thread(_redis_records, store, ids)
        items = [d for records in by_job.values() for d in records]
        if all(d["status"] != "pending" for d in items) or time.monotonic() > deadline:
            return by_job
        await asyncio.sleep(0.1)


class _Budget:
    """How many jobs may be acknowledged before the next kill (``jobs_between_kills``): the
    submitters pause at the limit until the killer has killed and raised it, so a storm makes
    its kills however fast the machine is (no limit when ``step`` is 0)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.limit = step
        self.raised = asyncio.Event()

    async def take(self, ids: list[str]) -> None:
        while self.step and len(ids) >= self.limit:
            self.raised.clear()
            await self.raised.wait()

    def reached(self, ids: list[str]) -> bool:
        return not self.step or len(ids) >= self.limit

    def raise_limit(self) -> None:
        self.limit += self.step
        self.raised.set()


async def _submit_all(
    servers: _Servers,
    client: httpx.AsyncClient,
    hook_url: str,
    count: int,
    ids: list[str],
    budget: _Budget,
) -> None:
    """Submit ``count`` jobs; a lost answer is retried with the same key on the next server."""
    body = {"type": "echo", "input": {}, "callback": {"url": hook_url}}
    for _ in range(count):
        await budget.take(ids)
        key = uuid.uuid4().hex
        while True:
            await servers.up.wait()
            try:
                answer = await client.post(
                    f"{servers.base_url}/jobs", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                await asyncio.sleep(0.01)
                continue
            if answer.status_code == 202:
                ids.append(answer.json()["jobId"])
                break
            await asyncio.sleep(0.01)  # a server that was dying as it answered


async def _get(servers: _Servers, client: httpx.AsyncClient, path: str) -> Any:
    while True:
        await servers.up.wait()
        try:
            answer = await client.get(f"{servers.base_url}{path}")
        except httpx.TransportError:
            await asyncio.sleep(0.01)
            continue
        if answer.status_code not in (200, 202, 303):  # 303: a completed job's status
            raise AssertionError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
        return answer.json()


async def run_kill_storm(
    tmp: Path,
    *,
    jobs: int,
    kill_every: float,
    jobs_between_kills: int = 0,
    store: str = "sqlite",
    instances: int = 1,
    submitters: int = 8,
    workers: int = 8,
    receivers: int = 1,
) -> KillStormReport:
    """Run a storm of ``jobs`` jobs, killing the server every ``kill_every`` seconds.

    Args:
        tmp: a directory for the SQLite file and the servers' log.
        jobs: how many jobs to submit.
        kill_every: seconds between two kills.
        jobs_between_kills: also wait until this many more jobs were acknowledged before
            each kill (the tests: a fixed number of kills however slow the machine is).
        store: ``"sqlite"``, or a ``redis://`` URL (an empty database).
        instances: ``--instances`` of the server (more than one: Redis only; each kill is
            then of one instance, which the server replaces, while the others serve on).
        submitters: concurrent submitters.
        workers: the server's worker pool.
        receivers: more than one: that many receiver instances on one port sharing the
            SDK's ``AsyncRedisReplayStore`` on ``store`` (a ``redis://`` URL); each delivery
            id must then be processed exactly once over all of them.
    """
    started = time.monotonic()
    flags = ["--store", store]
    if store == "sqlite":
        flags += ["--sqlite-path", str(tmp / "storm.sqlite3")]
    servers = _Servers(flags, tmp / "storm-server.log", workers, instances)
    ids: list[str] = []
    kills = 0
    deduping: _DedupingReceivers | None = None
    receiving: Any = _receiver()
    if receivers > 1:
        if store == "sqlite":
            raise ValueError("receivers > 1 share a Redis replay store: store must be redis://")
        receiving = _deduping_receivers(store, receivers)
    async with receiving as (hooks, hook_url), httpx.AsyncClient(timeout=30) as client:
        if isinstance(hooks, _DedupingReceivers):
            deduping = hooks
        await servers.start()
        try:
            share = [jobs // submitters + (i < jobs % submitters) for i in range(submitters)]
            budget = _Budget(jobs_between_kills)
            submitting = asyncio.gather(
                *(_submit_all(servers, client, hook_url, n, ids, budget) for n in share)
            )
            while not submitting.done():
                await asyncio.wait([submitting], timeout=kill_every)
                while not submitting.done() and not budget.reached(ids):
                    await asyncio.wait([submitting], timeout=0.05)
                if not submitting.done() and instances > 1:
                    kills += await servers.kill_one_instance()
                elif not submitting.done():
                    await servers.kill()
                    kills += 1
                    await servers.start()
                budget.raise_limit()
            await submitting
            completed, problems = 0, []
            for job_id in ids:  # wait until every job is final
                while True:
                    doc = await _get(servers, client, f"/jobs/{job_id}?wait=5")
                    if doc["status"] in ("completed", "failed", "cancelled"):
                        break
                completed += doc["status"] == "completed"
            by_job = await _records(servers, client, store, ids)
            listed = [d for records in by_job.values() for d in records]
            for job_id in ids:
                records = [d for d in by_job.get(job_id, []) if d["event"] == "job.completed"]
                if len(records) != 1:
                    problems.append(f"job {job_id}: {len(records)} job.completed deliveries")
                elif hooks.seen[job_id] != {records[0]["id"]}:
                    problems.append(
                        f"job {job_id}: delivery {records[0]['id']}, received {hooks.seen[job_id]}"
                    )
            if len(set(ids)) != len(ids):
                problems.append(f"{len(ids) - len(set(ids))} duplicate job ids")
            if deduping is not None:
                problems += _processing_problems(deduping, by_job, ids)
        finally:
            await servers.stop()
    return KillStormReport(
        jobs=len(ids),
        kills=kills,
        completed=completed,
        deliveries=len(listed),
        seconds=round(time.monotonic() - started, 2),
        problems=problems,
        processed_by=list(deduping.processed_by) if deduping is not None else [],
        not_processed=deduping.not_processed if deduping is not None else 0,
    )


def _processing_problems(
    hooks: _DedupingReceivers, by_job: dict[str, list[dict[str, Any]]], ids: list[str]
) -> list[str]:
    """Delivery ids of completed jobs not processed exactly once over the receivers."""
    expected = {
        d["id"]
        for job_id in ids
        for d in by_job.get(job_id, [])
        if d["event"] == "job.completed" and d["status"] == "delivered"
    }
    problems = [
        f"delivery {delivery_id}: processed {hooks.processed.get(delivery_id, 0)} times"
        for delivery_id in sorted(expected)
        if hooks.processed.get(delivery_id, 0) != 1
    ]
    problems += [
        f"delivery {delivery_id}: processed but not on record"
        for delivery_id in sorted(set(hooks.processed) - expected)
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kill_storm", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--jobs", type=int, default=None, help="jobs (default 5000; quick 300)")
    parser.add_argument(
        "--kill-every", type=float, default=1.0, help="seconds between kills (default 1.0)"
    )
    parser.add_argument(
        "--store", default="sqlite", help="sqlite (default) or an empty redis:// database"
    )
    parser.add_argument(
        "--instances", type=int, default=1, help="server instances (more than 1: redis only)"
    )
    parser.add_argument(
        "--receivers",
        type=int,
        default=1,
        help="receiver instances sharing the SDK's Redis replay store (more than 1: redis only)",
    )
    args = parser.parse_args(argv)
    if args.server_url is not None:
        parser.error("kill_storm starts (and kills) its own servers; --server-url is unused")
    jobs = args.jobs or (300 if args.quick else 5000)
    with tempfile.TemporaryDirectory(prefix="kill-storm-") as tmp:
        report = asyncio.run(
            run_kill_storm(
                Path(tmp),
                jobs=jobs,
                kill_every=args.kill_every,
                store=args.store,
                instances=args.instances,
                receivers=args.receivers,
            )
        )
    rows: list[list[Any]] = [
        [
            report.jobs,
            report.kills,
            report.completed,
            report.deliveries,
            len(report.problems),
            report.seconds,
        ]
    ]
    headers = ["jobs", "kills", "completed", "deliveries", "problems", "seconds"]
    if args.receivers > 1:
        rows[0] += ["/".join(map(str, report.processed_by)), report.not_processed]
        headers += ["processed per receiver", "duplicates answered"]
    table = print_table(
        f"kill storm: kill -9 every {args.kill_every} s ({args.store} x{args.instances}, webhooks)",
        headers,
        rows,
    )
    for problem in report.problems[:20]:
        print(problem)
    data = {
        "config": {
            "jobs": jobs,
            "kill_every": args.kill_every,
            "store": args.store,
            "instances": args.instances,
            "receivers": args.receivers,
        },
        "report": {
            "jobs": report.jobs,
            "kills": report.kills,
            "completed": report.completed,
            "deliveries": report.deliveries,
            "seconds": report.seconds,
            "problems": report.problems[:100],
            "processed_by": report.processed_by,
            "not_processed": report.not_processed,
        },
        "table": table,
    }
    # The several-instance storm with deduping receivers (issue 18) is its own result file.
    write_result(NAME if args.receivers <= 1 else f"{NAME}_instances", data, args.results_dir)
    return data


if __name__ == "__main__":
    main()
