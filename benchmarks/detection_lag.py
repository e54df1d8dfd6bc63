"""Detection lag: how long after the server completes a job does each client notice?

For every wait mode and polling policy of the SDK, and beside a naive fixed-interval httpx
loop, an httpx loop that obeys exactly the server's ``Retry-After-Ms`` schedule, and
azure-core's ``LROPoller``, this runs ``sleep`` jobs of known durations on the reference
server (in its own process) and records:

- the lag from the moment the server finished the job to the moment the client's wait
  returned (same machine, same wall clock). The server is started with ``--timing-headers``,
  so its status answer carries ``Job-Finished-At`` (epoch seconds with microseconds) and a
  sub-millisecond lag is measurable; a server given with ``--server-url`` without that flag
  falls back to ``completedAt`` (milliseconds: a lag then includes up to 1 ms of
  truncation), and the JSON says which (``timestamp_precision``);
- the server's part of that lag: from the job's end to the server's clock right after it
  wrote the job's first final answer to the socket (the ``complete`` event of a stream, a
  long poll's or a plain poll's answer), from the ``Job-Answered-At`` header of
  ``--timing-headers``; the rest is the client's (and the loopback's) part;
- the status requests per job (GETs of ``/jobs/{id}`` and ``/jobs/{id}/events``, counted by
  an httpx event hook on a client the benchmark supplies).

The SDK always honours the submission's ``Retry-After`` before its first poll (a ``sleep``
job's is its whole estimated duration), whatever the policy; ``honour_retry_after=False``
changes the later polls only. The server clamps its hint to ``retry_after_min`` (50 ms), so
a client obeying it exactly notices a completion up to ~50 ms late: that is the floor of
every hint-following policy here.

All variants run in the same process, interleaved round by round (the machine is noisy);
the harness's heap, once built, is frozen (``gc.freeze``) so that the collector's full
passes over it do not land in a measured wait.
Within a round each variant runs one job of every duration at once, in threads, so the
completions are spread out. Targets (issue 21; printed beside each figure, never
asserted): SSE and LongPolling lag p50 at most 1.0 ms and p99 at most 2.0 ms, SSE with one
request per job; Adaptive at most 1.5x the server-schedule requests; azure-core's
``LROPoller`` at least 100x the SSE lag (p50 and p99).

Beside them, the floors (``_lag_floors``, target "floor"): a raw socket and raw httpx
waiting by long poll and by SSE, so each SDK mode reads against what the transport itself
allows on this machine.

Run: ``python -m benchmarks.detection_lag [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from asyncreply_client import (
    Client,
    ExponentialBackoff,
    FixedInterval,
    JobState,
    LongPolling,
    PollingPolicy,
)
from asyncreply_client._flow_state import WaitMode

from ._harness import (
    PathCounter,
    add_common_args,
    parse_time,
    percentile,
    print_table,
    server_url,
    write_result,
)
from ._lag_floors import floor_variants

__all__ = ["Variant", "main", "run", "variants"]

NAME = "detection_lag"
FULL_DURATIONS = (0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
QUICK_DURATIONS = (0.2, 0.5, 1.0)
STEPS = 5
NAIVE_INTERVAL = 0.25
#: Targets (issue 21): lag of the pushed modes, in ms.
TARGET_P50_MS = 1.0
TARGET_P99_MS = 2.0
#: Adaptive's status requests at most this many times the server schedule's.
TARGET_ADAPTIVE_REQUESTS = 1.5
#: azure-core's lag at least this many times the SSE lag (p50 and p99).
TARGET_AZURE_BEHIND = 100.0
#: Epoch seconds with microseconds of a job's end (``--timing-headers``).
FINISHED_HEADER = "job-finished-at"
#: Epoch seconds with microseconds of the write of the job's first final answer.
ANSWERED_HEADER = "job-answered-at"
_TERMINAL = {"completed", "failed", "cancelled"}


@dataclass
class Variant:
    """One client under test.

    ``run_job(seconds)`` submits a ``sleep`` job, waits for it and returns its id; the
    harness notes the wall-clock time right after it returns.
    """

    name: str
    note: str
    run_job: Callable[[float], str]
    counter: PathCounter
    close: Callable[[], None]
    lags: list[float] = field(default_factory=list)
    #: The server's part of each lag (job's end to its first final answer's write).
    server_lags: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)


def _body(seconds: float) -> dict[str, Any]:
    return {"type": "sleep", "input": {"seconds": seconds, "steps": STEPS}}


def _timeout(seconds: float) -> float:
    return seconds + 30.0


# --------------------------------------------------------------------------------------------
# The SDK


def _sdk(
    base_url: str, name: str, note: str, *, mode: WaitMode, polling: PollingPolicy | None
) -> Variant:
    counter = PathCounter()
    http = httpx.Client(event_hooks={"request": [counter.hook]})
    client = Client(base_url, http_client=http)

    def run_job(seconds: float) -> str:
        op = client.submit("/jobs", json=_body(seconds))
        status = op.wait(mode=mode, polling=polling, timeout=_timeout(seconds))
        if status.state is not JobState.COMPLETED or op.id is None:
            raise RuntimeError(f"{name}: job ended {status.state}")
        return op.id

    def close() -> None:
        client.close()
        http.close()

    return Variant(name, note, run_job, counter, close)


# --------------------------------------------------------------------------------------------
# Plain httpx loops


def _retry_after_ms(response: httpx.Response) -> float:
    value = response.headers.get("retry-after-ms")
    if value is not None:
        return int(value) / 1000.0
    return float(response.headers.get("retry-after", "1"))


def _httpx_loop(base_url: str, name: str, note: str, *, interval: float | None) -> Variant:
    """``interval`` None: obey the server's ``Retry-After-Ms`` exactly (the server schedule);
    else sleep ``interval`` between polls whatever the server says (a naive loop)."""
    counter = PathCounter()
    http = httpx.Client(base_url=base_url, event_hooks={"request": [counter.hook]})

    def run_job(seconds: float) -> str:
        deadline = time.monotonic() + _timeout(seconds)
        submitted = http.post("/jobs", json=_body(seconds))
        submitted.raise_for_status()
        job_id: str = submitted.json()["jobId"]
        location = submitted.headers["location"]
        response = submitted
        while time.monotonic() < deadline:
            time.sleep(_retry_after_ms(response) if interval is None else interval)
            response = http.get(location)
            if response.status_code == 303:
                return job_id
            response.raise_for_status()
            if response.json()["status"] in _TERMINAL:
                return job_id
        raise RuntimeError(f"{name}: job {job_id} did not finish in time")

    return Variant(name, note, run_job, counter, http.close)


# --------------------------------------------------------------------------------------------
# azure-core


def _azure(base_url: str) -> Variant:
    from azure.core import PipelineClient
    from azure.core.configuration import Configuration
    from azure.core.pipeline import PipelineRequest, PipelineResponse
    from azure.core.pipeline.policies import RedirectPolicy, RetryPolicy, SansIOHTTPPolicy
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LongRunningOperation, LROBasePolling
    from azure.core.rest import HttpRequest

    counter = PathCounter()

    class _Count(SansIOHTTPPolicy):  # type: ignore[type-arg]
        # A per-retry policy sits after the redirect policy: it sees every request sent.
        def on_request(self, request: PipelineRequest[Any]) -> None:
            http_request = request.http_request
            counter.add(http_request.method, urlsplit(http_request.url).path)

    class ReferenceStatusPolling(LongRunningOperation):  # type: ignore[type-arg]
        """The reference dialect for azure-core: ``Location`` is the status monitor, the
        body's ``status`` is the state, and a redirect (the 303 to the result, followed by
        azure-core's RedirectPolicy) means completed. No final GET is needed."""

        def __init__(self) -> None:
            self._url = ""

        def can_poll(self, pipeline_response: PipelineResponse[Any, Any]) -> bool:
            return "location" in pipeline_response.http_response.headers

        def get_polling_url(self) -> str:
            return self._url

        def set_initial_status(self, pipeline_response: PipelineResponse[Any, Any]) -> str:
            response = pipeline_response.http_response
            self._url = urljoin(str(response.request.url), response.headers["location"])
            return "InProgress"

        def get_status(self, pipeline_response: PipelineResponse[Any, Any]) -> str:
            response = pipeline_response.http_response
            if urlsplit(str(response.request.url)).path != urlsplit(self._url).path:
                return "Succeeded"  # redirected away from the monitor: the 303 of completion
            status = response.json().get("status")
            return {"completed": "Succeeded", "failed": "Failed", "cancelled": "Canceled"}.get(
                status, "InProgress"
            )

        def get_final_get_url(self, pipeline_response: PipelineResponse[Any, Any]) -> None:
            return None

    # A bare Configuration has no policies; generated Azure SDKs add these two (and more).
    config: Configuration[Any, Any] = Configuration()
    config.redirect_policy = RedirectPolicy()
    config.retry_policy = RetryPolicy()
    client: PipelineClient[Any, Any] = PipelineClient(
        base_url, config=config, per_retry_policies=[_Count()]
    )

    def run_job(seconds: float) -> str:
        request = HttpRequest("POST", base_url + "/jobs", json=_body(seconds))
        initial: Any = client.send_request(request, _return_pipeline_response=True)
        job_id: str = initial.http_response.json()["jobId"]
        polling: LROBasePolling[Any, Any, Any] = LROBasePolling(
            lro_algorithms=[ReferenceStatusPolling()]
        )
        poller: LROPoller[Any] = LROPoller(client, initial, lambda r: r, polling)
        poller.result(timeout=_timeout(seconds))
        if poller.status() != "Succeeded":
            raise RuntimeError(f"azure-core: job {job_id} ended {poller.status()}")
        return job_id

    note = "LROBasePolling + a 30-line reference-dialect strategy; follows the 303 (+1 GET)"
    return Variant("azure-core LROPoller", note, run_job, counter, client.close)


# --------------------------------------------------------------------------------------------


def variants(base_url: str) -> list[Variant]:
    """Every client under test, against the server at ``base_url``."""
    return [
        _httpx_loop(
            base_url,
            "server schedule",
            "httpx obeying Retry-After-Ms exactly (the reference count)",
            interval=None,
        ),
        _sdk(base_url, "Adaptive", "SDK default policy, mode=poll", mode="poll", polling=None),
        _sdk(
            base_url,
            "FixedInterval(0.25)",
            "honours Retry-After (default)",
            mode="poll",
            polling=FixedInterval(NAIVE_INTERVAL),
        ),
        _sdk(
            base_url,
            "FixedInterval(0.25, no hint)",
            "honour_retry_after=False (the 202's Retry-After still sets the first poll)",
            mode="poll",
            polling=FixedInterval(NAIVE_INTERVAL, honour_retry_after=False),
        ),
        _sdk(
            base_url,
            "ExponentialBackoff()",
            "honours Retry-After (default)",
            mode="poll",
            polling=ExponentialBackoff(),
        ),
        _sdk(
            base_url,
            "ExponentialBackoff(no hint)",
            "0.5 s x2, full jitter, honour_retry_after=False (first poll as above)",
            mode="poll",
            polling=ExponentialBackoff(honour_retry_after=False),
        ),
        _sdk(
            base_url,
            "LongPolling",
            "mode=long-poll (?wait=30)",
            mode="long-poll",
            polling=LongPolling(),
        ),
        _sdk(base_url, "SSE", "mode=sse", mode="sse", polling=None),
        _httpx_loop(
            base_url,
            f"naive httpx {NAIVE_INTERVAL} s",
            "fixed interval, ignores Retry-After",
            interval=NAIVE_INTERVAL,
        ),
        _azure(base_url),
        *(Variant(*floor) for floor in floor_variants(base_url, _body)),
    ]


def finished_at(answer: httpx.Response) -> tuple[float, bool]:
    """When the server finished the job of a status ``answer``, and whether to the
    microsecond (``Job-Finished-At``) rather than the millisecond (``completedAt``)."""
    precise = answer.headers.get(FINISHED_HEADER)
    if precise is not None:
        return float(precise), True
    return parse_time(answer.json()["completedAt"]), False


def _run_round(
    variant: Variant, durations: Sequence[float], checker: httpx.Client, precision: set[bool]
) -> None:
    def one(seconds: float) -> tuple[str, float]:
        job_id = variant.run_job(seconds)
        return job_id, time.time()

    with ThreadPoolExecutor(max_workers=len(durations)) as pool:
        finished = list(pool.map(one, durations))
    for job_id, returned in finished:
        # Uncounted: the server's own record of when the job ended.
        answer = checker.get(f"/jobs/{job_id}")
        ended, precise = finished_at(answer)
        precision.add(precise)
        variant.lags.append(returned - ended)
        answered = answer.headers.get(ANSWERED_HEADER)
        if answered is not None:
            variant.server_lags.append(float(answered) - ended)
        variant.requests.append(variant.counter.status_requests(job_id))


def _target(name: str) -> str:
    if name in ("SSE", "LongPolling"):
        return f"p50<={TARGET_P50_MS:g} p99<={TARGET_P99_MS:g} ms"
    if name == "Adaptive":
        return f"x sched<={TARGET_ADAPTIVE_REQUESTS:g}"
    if name.startswith("azure-core"):
        return f">={TARGET_AZURE_BEHIND:g}x SSE lag"
    if name.startswith("floor:"):
        return "floor"
    return ""


def run(
    *,
    rounds: int,
    durations: Sequence[float],
    results_dir: Path | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark; print the table, write the JSON and return it."""
    load = os.getloadavg()
    precision: set[bool] = set()
    with server_url(url, "--workers", "64", "--timing-headers") as base_url:
        tested = variants(base_url)
        checker = httpx.Client(base_url=base_url)
        # The harness's own heap (ten clients, azure-core and the rest, ~60,000 objects) is
        # left out of the collector's full passes, which took ~50 ms each: one landing in a
        # measured wait made that job's lag. What the clients make while waiting is
        # collected as usual.
        gc.collect()
        gc.freeze()
        try:
            for r in range(rounds):
                # Rotate the order so no variant always runs first (or last) in a round.
                for i in range(len(tested)):
                    _run_round(tested[(i + r) % len(tested)], durations, checker, precision)
        finally:
            gc.unfreeze()
            checker.close()
            for variant in tested:
                variant.close()

    reference = statistics.fmean(tested[0].requests)
    rows: list[list[Any]] = []
    out_variants: list[dict[str, Any]] = []
    for v in tested:
        lags_ms = [lag * 1000.0 for lag in v.lags]
        server_ms = [lag * 1000.0 for lag in v.server_lags]
        mean_requests = statistics.fmean(v.requests)
        summary: dict[str, Any] = {
            "name": v.name,
            "note": v.note,
            "jobs": len(v.lags),
            "lag_ms": {
                "p50": percentile(lags_ms, 50),
                "p90": percentile(lags_ms, 90),
                "p99": percentile(lags_ms, 99),
                "max": max(lags_ms),
            },
            "server_lag_ms": {
                "p50": percentile(server_ms, 50),
                "p99": percentile(server_ms, 99),
                "jobs": len(server_ms),
            },
            "status_requests_per_job": mean_requests,
            "status_requests_vs_server_schedule": mean_requests / reference,
            "lags_ms": [round(x, 3) for x in lags_ms],
            "requests": v.requests,
        }
        out_variants.append(summary)
        rows.append(
            [
                v.name,
                len(v.lags),
                summary["lag_ms"]["p50"],
                summary["lag_ms"]["p90"],
                summary["lag_ms"]["p99"],
                summary["server_lag_ms"]["p50"],
                summary["server_lag_ms"]["p99"],
                mean_requests,
                mean_requests / reference,
                _target(v.name),
            ]
        )
    by_name = {v["name"]: v for v in out_variants}
    adaptive, long_poll, sse = by_name["Adaptive"], by_name["LongPolling"], by_name["SSE"]
    azure = by_name["azure-core LROPoller"]["lag_ms"]
    azure_behind = {
        q: azure[q] / sse["lag_ms"][q] if sse["lag_ms"][q] > 0 else math.inf for q in ("p50", "p99")
    }
    targets = {
        "sse_p50_le_1ms": sse["lag_ms"]["p50"] <= TARGET_P50_MS,
        "sse_p99_le_2ms": sse["lag_ms"]["p99"] <= TARGET_P99_MS,
        "long_polling_p50_le_1ms": long_poll["lag_ms"]["p50"] <= TARGET_P50_MS,
        "long_polling_p99_le_2ms": long_poll["lag_ms"]["p99"] <= TARGET_P99_MS,
        "sse_one_request_per_job": all(n == 1 for n in sse["requests"]),
        "adaptive_requests_ratio_le_1_5": adaptive["status_requests_vs_server_schedule"]
        <= TARGET_ADAPTIVE_REQUESTS,
        "azure_core_100x_behind_sse": min(azure_behind.values()) >= TARGET_AZURE_BEHIND,
    }
    timestamps = "us" if precision == {True} else "ms"
    title = (
        f"detection lag: {rounds} round(s) x durations {list(durations)} s "
        f"(sleep jobs, {STEPS} steps); lag = client return - server's end of the job, "
        "server = its first final answer written - its end "
        f"(timestamps to the {'microsecond' if timestamps == 'us' else 'millisecond'}; "
        f"load average at start {load[0]:.1f})"
    )
    headers = [
        "client",
        "jobs",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "server p50",
        "server p99",
        "req/job",
        "x sched",
        "target",
    ]
    table = print_table(title, headers, rows)
    behind = (
        f"azure-core lag / SSE lag: p50 {azure_behind['p50']:.0f}x, p99 {azure_behind['p99']:.0f}x"
    )
    print(behind)
    table += "\n" + behind
    legend = "\n".join(f"  {v.name}: {v.note}" for v in tested)
    print("notes:\n" + legend)
    table += "\nnotes:\n" + legend
    print("targets: " + ", ".join(f"{k}={'met' if ok else 'MISSED'}" for k, ok in targets.items()))
    data = {
        "config": {"rounds": rounds, "durations": list(durations), "steps": STEPS},
        "timestamp_precision": timestamps,
        "load_average_at_start": list(load),
        "variants": out_variants,
        "azure_core_lag_vs_sse": azure_behind,
        "targets": targets,
        "table": table,
    }
    write_result(NAME, data, results_dir)
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the results written."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection_lag", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 8; quick 2)")
    parser.add_argument(
        "--durations",
        type=lambda s: tuple(float(x) for x in s.split(",")),
        default=None,
        help="comma-separated job durations in seconds",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 8)
    durations = args.durations or (QUICK_DURATIONS if args.quick else FULL_DURATIONS)
    return run(
        rounds=rounds, durations=durations, results_dir=args.results_dir, url=args.server_url
    )


if __name__ == "__main__":
    main()
