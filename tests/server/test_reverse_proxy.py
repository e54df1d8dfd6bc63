"""``docs/deploy/nginx.conf`` in front of three instances on one Redis (issue 18.2).

The documented configuration runs as written, with only its ports and paths changed: the
contract checker passes through it, and an event stream passes each event at once (the
first ``progress`` arrives while the job still runs, so nothing buffers the stream).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asyncreply_client.contract import check

from ..contract.conftest import FAST, SLEEP_JOB
from ..redis_server import RedisServer
from .test_instances import servers

pytestmark = pytest.mark.timeout(240)  # four processes

CONF = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "nginx.conf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def nginx(upstreams: list[str], tmp: Path) -> Iterator[str]:
    """The documented nginx, listening on a free port, proxying to ``upstreams``."""
    binary = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    text = CONF.read_text(encoding="utf-8").replace("/tmp/asyncreply-nginx", str(tmp / "nginx"))
    ports = iter(u.rsplit(":", 1)[1] for u in upstreams)
    upstream = r"server 127\.0\.0\.1:808[123];"
    text = re.sub(upstream, lambda _: f"server 127.0.0.1:{next(ports)};", text)
    port = _free_port()
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    if os.geteuid() == 0:  # a root master would run its worker as nobody, locked out of tmp
        text = "user root;\n" + text
    conf = tmp / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    proc = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def proxied(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx in front of three instances, shared by this module's tests (neither assumes an
    empty store), on a database of the session's redis-server of its own, emptied around."""
    import redis

    db = 1  # redis_url's tests use database 0
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=db)
    client.flushdb()
    try:
        with servers(redis_server.url_for(db), count=3) as instances:
            tmp = tmp_path_factory.mktemp("nginx")
            with nginx([i.url for i in instances], tmp) as url:
                yield url
    finally:
        client.flushdb()
        client.close()


def test_the_contract_checker_passes_through_nginx(proxied: str) -> None:
    report = check(proxied + "/jobs", json=SLEEP_JOB, idempotency=True, timeout=10, **FAST)
    assert report.passed, report.render_table()


def test_nginx_passes_each_event_at_once(proxied: str) -> None:
    with httpx.Client(base_url=proxied, timeout=30) as client:
        body = {"type": "sleep", "input": {"seconds": 30, "steps": 300}}
        job_id = client.post("/jobs", json=body).json()["jobId"]
        headers = {"Accept": "text/event-stream"}
        with client.stream("GET", f"/jobs/{job_id}/events", headers=headers) as stream:
            for line in stream.iter_lines():
                if line == "event: progress":
                    break  # arrived while the job has 29 s to go: not buffered
        assert client.get(f"/jobs/{job_id}").json()["status"] == "processing"
        client.delete(f"/jobs/{job_id}")
