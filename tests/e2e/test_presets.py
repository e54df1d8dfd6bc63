"""Each preset end to end against a fake of its vendor (tests/vendors), sync and async:
submit, progress, result = the vendor's output, failure with the vendor's text, cancel with
the vendor's method (AssemblyAI: none, nothing sent), attach by URL, ``run()``, and
Replicate's ``Prefer: wait`` and event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from asyncreply_client import (
    CancelNotSupportedError,
    FixedInterval,
    JobFailedError,
    JobState,
    JobStatus,
    NoStatusUrlError,
    ResultFile,
)
from asyncreply_client.dialects import DIALECT_NAMES
from tests.client.harness import BOTH, open_client
from tests.vendors._base import VendorFake, serving
from tests.vendors.fakes import FAKES, GitHubStats, Unfollowable

pytestmark = pytest.mark.anyio
FAST = FixedInterval(0.001)


@dataclass(frozen=True)
class Vendor:
    name: str
    path: str
    body: dict[str, Any]
    output: Any
    error: str
    cancel: tuple[str, str] | None  # method and path suffix; None: no cancel
    cancelled: JobState = JobState.CANCELLED

    def failing(self) -> dict[str, Any]:
        if "input" in self.body:
            return {**self.body, "input": {**self.body["input"], "fail": True}}
        return {**self.body, "fail": True}


VENDORS = [
    Vendor(
        "replicate",
        "/v1/predictions",
        {"version": "v1", "input": {"prompt": "hi"}},
        ["Hello", ", world"],
        "CUDA out of memory",
        ("POST", "/cancel"),
    ),
    Vendor(
        "fal",
        "/fal-ai/fast-sdxl",
        {"prompt": "a cat"},
        {"images": [{"url": "https://fal.media/files/cat.png"}], "seed": 42},
        "prompt is too long",
        ("PUT", "/cancel"),
    ),
    Vendor(
        "runpod",
        "/v2/ep-abc/run",
        {"input": {"prompt": "hi"}},
        {"answer": 42},
        "handler raised ValueError: bad prompt",
        ("POST", "/v2/ep-abc/cancel/"),
    ),
    Vendor(
        "openai-batch",
        "/v1/batches",
        {
            "input_file_id": "file-in",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        None,  # a JSONL file, checked apart
        "invalid_json_line: Line 1 is not valid JSON",
        ("POST", "/cancel"),
        JobState.PROCESSING,  # "cancelling" at first
    ),
    Vendor(
        "assemblyai",
        "/v2/transcript",
        {"audio_url": "https://example.test/a.mp3"},
        None,  # the transcript document, checked apart
        "Download error, unable to download",
        None,
    ),
]
EACH = pytest.mark.parametrize("vendor", VENDORS, ids=[v.name for v in VENDORS])


@pytest.fixture
async def fake(vendor: Vendor) -> AsyncIterator[VendorFake]:
    served = FAKES[vendor.name]()
    async with serving(served):
        yield served


def check_output(vendor: Vendor, result: Any) -> None:
    if vendor.name == "openai-batch":
        assert isinstance(result, ResultFile)
        assert result.content.count(b'"custom_id"') == 2
    elif vendor.name == "assemblyai":
        assert result["status"] == "completed" and result["text"] == "Hello world."
    else:
        assert result == vendor.output


@BOTH
@EACH
async def test_submit_progress_result(flavor: str, vendor: Vendor, fake: VendorFake) -> None:
    seen: list[JobStatus] = []
    async with open_client(flavor, fake.base_url, dialect=vendor.name, polling=FAST) as (c, call):
        op = await call(c.submit, vendor.path, json=vendor.body)
        assert op.status is not None and not op.status.is_terminal
        result = await call(op.result, timeout=10, mode="poll", on_progress=seen.append)
    check_output(vendor, result)
    states = [s.state for s in seen]
    assert JobState.PROCESSING in states and states[-1] is JobState.COMPLETED
    assert op.id is not None and op.id in fake.jobs
    if vendor.name in ("replicate", "fal", "openai-batch"):
        assert any(s.progress is not None for s in seen)  # logs / request counts


@BOTH
@EACH
async def test_failure_carries_the_vendor_text(
    flavor: str, vendor: Vendor, fake: VendorFake
) -> None:
    async with open_client(flavor, fake.base_url, dialect=vendor.name, polling=FAST) as (c, call):
        op = await call(c.submit, vendor.path, json=vendor.failing())
        with pytest.raises(JobFailedError, match=vendor.error) as info:
            await call(op.result, timeout=10, mode="poll")
    assert info.value.status is not None and info.value.status.state is JobState.FAILED


@BOTH
@EACH
async def test_cancel_uses_the_vendor_method(flavor: str, vendor: Vendor, fake: VendorFake) -> None:
    async with open_client(flavor, fake.base_url, dialect=vendor.name, polling=FAST) as (c, call):
        op = await call(c.submit, vendor.path, json=vendor.body)
        before = len(fake.requests)
        if vendor.cancel is None:
            with pytest.raises(CancelNotSupportedError):
                await call(op.cancel)
            assert fake.requests[before:] == []  # nothing sent: no DELETE of the transcript
            assert op.id in fake.jobs
            return
        status = await call(op.cancel)
    method, suffix = vendor.cancel
    sent = fake.requests[before]
    assert sent[0] == method and suffix in sent[1], fake.requests[before:]
    assert all(m != "DELETE" for m, _ in fake.requests)
    assert status.state is vendor.cancelled


@BOTH
@EACH
async def test_attach_by_url(flavor: str, vendor: Vendor, fake: VendorFake) -> None:
    async with open_client(flavor, fake.base_url, dialect=vendor.name, polling=FAST) as (c, call):
        submitted = await call(c.submit, vendor.path, json=vendor.body)
        assert submitted.status_url is not None
        op = c.operation(submitted.status_url)
        result = await call(op.result, timeout=10, mode="poll")
        check_output(vendor, result)
        if vendor.name in ("replicate", "runpod"):
            # The cancel URL comes from the status answers (Replicate's urls.cancel) or the
            # status URL's own segments (RunPod's endpoint); fal's status answers name none.
            assert vendor.cancel is not None and op.cancel_url is not None
            assert vendor.cancel[1] in op.cancel_url


@BOTH
@EACH
async def test_run_returns_the_output(flavor: str, vendor: Vendor, fake: VendorFake) -> None:
    async with open_client(flavor, fake.base_url, dialect=vendor.name, polling=FAST) as (c, call):
        result = await call(c.run, vendor.path, json=vendor.body, timeout=10, mode="poll")
    check_output(vendor, result)


@BOTH
async def test_replicate_prefer_wait_answers_the_output_in_one_request(flavor: str) -> None:
    fake = FAKES["replicate"]()
    async with serving(fake) as url, open_client(flavor, url, dialect="replicate") as (c, call):
        result = await call(c.run, "/v1/predictions", json={"version": "v1", "input": {}})
    assert result == ["Hello", ", world"]
    assert fake.requests == [("POST", "/v1/predictions")]


@BOTH
@pytest.mark.parametrize("fails", [False, True], ids=["succeeded", "failed"])
async def test_replicate_event_stream(flavor: str, fails: bool) -> None:
    fake = FAKES["replicate"]()
    seen: list[JobStatus] = []
    body = {"version": "v1", "input": {"fail": fails}, "stream": True}
    async with serving(fake) as url, open_client(flavor, url, dialect="replicate") as (c, call):
        op = await call(c.submit, "/v1/predictions", json=body)
        assert op.events_url == f"{url}/stream/{op.id}"
        if fails:
            with pytest.raises(JobFailedError, match="CUDA out of memory"):
                await call(op.result, timeout=10, mode="sse", on_progress=seen.append)
        else:
            result = await call(op.result, timeout=10, mode="sse", on_progress=seen.append)
            # The done event names no output: one status request reads it.
            assert result == ["Hello", ", world"]
            assert ("GET", f"/v1/predictions/{op.id}") in fake.requests
    assert ("GET", f"/stream/{op.id}") in fake.requests
    assert any(s.progress is not None and s.progress.message == "step 1/2" for s in seen)


@BOTH
async def test_github_statistics_202_polls_the_same_url(flavor: str) -> None:
    fake = GitHubStats()
    path = "/repos/octo/hello/stats/contributors"
    async with serving(fake) as url, open_client(flavor, url, polling=FAST) as (c, call):
        result = await call(c.run, path, method="GET", timeout=10)
    assert result == [{"author": {"login": "octocat"}, "total": 135, "weeks": []}]
    assert set(fake.requests) == {("GET", path)} and len(fake.requests) > 2


RUNNING = {
    "status-code": (202, {"state": "inFlight"}),
    "google": (200, {"done": False, "metadata": {}}),
    "replicate": (201, {"id": "p1", "status": "starting"}),
    "fal": (200, {"status": "IN_QUEUE", "request_id": "r1"}),
    "runpod": (200, {"status": "IN_QUEUE"}),
    "openai-batch": (200, {"object": "batch", "status": "validating"}),
    "assemblyai": (200, {"status": "queued"}),
}


@BOTH
@pytest.mark.parametrize("dialect", DIALECT_NAMES)
async def test_a_running_answer_never_becomes_a_result(flavor: str, dialect: str) -> None:
    # A running job's submission answer with nothing to follow it by: run() and result()
    # raise a typed error naming what is missing, in every dialect.
    code, body = RUNNING.get(dialect, (201, {"id": 1, "status": "running"}))
    fake = Unfollowable()
    async with serving(fake) as url, open_client(flavor, url, dialect=dialect) as (c, call):
        with pytest.raises(NoStatusUrlError, match="status"):
            await call(c.run, "/submit", json={"code": code, "body": body}, timeout=10)
        with pytest.raises(NoStatusUrlError):
            await call(c.submit, "/submit", json={"code": code, "body": body})


@BOTH
@pytest.mark.parametrize("name", ["runpod", "replicate"])
async def test_resume_from_a_token(flavor: str, name: str) -> None:
    vendor = next(v for v in VENDORS if v.name == name)
    fake = FAKES[name]()
    async with (
        serving(fake) as url,
        open_client(flavor, url, dialect=name, polling=FAST) as (
            c,
            call,
        ),
    ):
        token = (await call(c.submit, vendor.path, json=vendor.body)).to_token()
        op = c.resume(token)
        assert await call(op.result, timeout=10, mode="poll") == vendor.output


@BOTH
@pytest.mark.parametrize("fails", [False, True], ids=["completed", "failed"])
async def test_fal_status_stream(flavor: str, fails: bool) -> None:
    # fal streams status documents at {status_url}/stream until COMPLETED; the output (or
    # the failure) is then at response_url.
    fake = FAKES["fal"]()
    seen: list[JobStatus] = []
    async with serving(fake) as url, open_client(flavor, url, dialect="fal") as (c, call):
        op = await call(c.submit, "/fal-ai/fast-sdxl", json={"prompt": "a cat", "fail": fails})
        assert op.events_url == f"{op.status_url}/stream"
        if fails:
            with pytest.raises(JobFailedError, match="prompt is too long"):
                await call(op.result, timeout=10, on_progress=seen.append)
        else:
            result = await call(op.result, timeout=10, on_progress=seen.append)
            assert result == VENDORS[1].output
    paths = [p for _, p in fake.requests]
    assert f"/fal-ai/fast-sdxl/requests/{op.id}/status/stream" in paths
    assert f"/fal-ai/fast-sdxl/requests/{op.id}/status" not in paths  # no polling
    # The stream says COMPLETED; a failure is learnt at response_url, and kept.
    assert seen[-1].state is JobState.COMPLETED
    assert op.status.state is (JobState.FAILED if fails else JobState.COMPLETED)
    assert any(s.progress is not None and s.progress.message == "step 2/2" for s in seen)
