"""DeclarativeDialect: validation at construction, reading answers by description, the
presets' size, and the rule every dialect keeps: a running job is never a result."""

from __future__ import annotations

import base64
import inspect
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncreply_client import CancelNotSupportedError, DeclarativeDialect, NoStatusUrlError
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobState
from asyncreply_client.dialects import (
    DIALECT_NAMES,
    PRESETS,
    ArmDialect,
    AutoDialect,
    _presets,
    cancel_method_of,
    dialect_from,
    preset,
    result_failure_of,
)
from asyncreply_client.webhooks import WebhookVerifier, sign

API = "https://api.test"


def resp(
    code: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    url: str = f"{API}/jobs/1",
    method: str = "GET",
) -> HttpResponse:
    h = dict(headers or {})
    content = b"" if body is None else json.dumps(body).encode()
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    return HttpResponse(code, httpx.Headers(h), content, url, method)


def post(code: int, body: Any, url: str = f"{API}/jobs", **headers: str) -> HttpResponse:
    return resp(code, body, headers, url=url, method="POST")


# --------------------------------------------------------------------------------------------
# Validation: a ValueError that names the option


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"states": {}}, "states: the vocabulary is empty"),
        ({"states": {"RUN": "running"}}, "'RUN' maps to 'running'"),
        ({"states": {"": "pending"}}, "states: a state word must be a non-empty string"),
        ({"status_url": "/jobs/all"}, "status_url: the URL template '/jobs/all' names no field"),
        ({"cancel_url": "https://h/x"}, "cancel_url: the URL template"),
        ({"result_url": "/files/{id!r}"}, "takes no format or conversion"),
        ({"result_url": "/files/{id"}, "result_url: malformed URL template"),
        ({"status_url": "/a/{{b}}/{id}"}, "status_url: a URL template has no escaped braces"),
        ({"output": "a..b"}, "output: 'a..b' is not a body path"),
        ({"state": ""}, "state: a body path must be a non-empty string"),
        ({"cancel_url": "urls.cancel", "cancel_method": "FETCH"}, "cancel_method: expected"),
        ({"events": {"done": "end"}}, "events: event roles need an events_url"),
        ({"events_url": "urls.stream", "events": {}}, "events: the mapping"),
        ({"events_url": "urls.stream", "events": {"done": "finish"}}, "'done' has role 'finish'"),
        ({"name": " "}, "name: expected a non-empty string"),
    ],
)
def test_invalid_descriptions_say_which_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        DeclarativeDialect.from_mapping({"state": "status", **options})


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValueError, match="unknown dialect option\\(s\\): colour, status_path"):
        DeclarativeDialect.from_mapping({"state": "status", "status_path": "x", "colour": 1})
    with pytest.raises(ValueError, match="is a mapping"):
        DeclarativeDialect.from_mapping(["state"])  # type: ignore[arg-type]


def test_from_file_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(json.dumps({"name": "j", "status_url": "/j/{id}"}))
    (tmp_path / "d.toml").write_text(
        'name = "t"\nstatus_url = "links.self"\ncancel_url = "/t/{id}/stop"\n'
        'cancel_method = "PUT"\n[states]\nWAIT = "pending"\nDONE = "completed"\n'
    )
    assert DeclarativeDialect.from_file(tmp_path / "d.json").name == "j"
    toml = DeclarativeDialect.from_file(str(tmp_path / "d.toml"))
    assert (toml.name, toml.cancel_method) == ("t", "PUT")
    assert toml.describe()["states"] == {"WAIT": "pending", "DONE": "completed"}
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(ValueError, match=r"bad\.toml: not valid TOML"):
        DeclarativeDialect.from_file(tmp_path / "bad.toml")
    (tmp_path / "d.yaml").write_text("name: y")
    with pytest.raises(ValueError, match=r"ends in \.json or \.toml"):
        DeclarativeDialect.from_file(tmp_path / "d.yaml")


# --------------------------------------------------------------------------------------------
# Reading


def jobs(**options: Any) -> DeclarativeDialect:
    return DeclarativeDialect(
        name="jobs",
        state="job.phase",
        states={"WAIT": "pending", "RUN": "processing", "OK": "completed", "KO": "failed"},
        case_sensitive=True,
        id="job.key",
        status_url="/v3/{tenant}/jobs/{job.key}",
        **options,
    )


def test_template_fields_come_from_the_body_then_the_request_url() -> None:
    sub = jobs().interpret_submit(
        post(202, {"job": {"key": "k 1", "phase": "WAIT"}}, f"{API}/v3/acme/jobs")
    )
    assert sub.status_url == f"{API}/v3/acme/jobs/k%201"
    assert sub.status.id == "k 1" and sub.status.state is JobState.PENDING


def test_vocabulary_exact_words_then_the_shared_ones() -> None:
    d = jobs()
    assert d.interpret_status(resp(200, {"job": {"phase": "RUN"}})).state is JobState.PROCESSING
    # Not one of its words, but the shared vocabulary knows it.
    assert d.interpret_status(resp(200, {"job": {"phase": "queued"}})).state is JobState.PENDING
    with pytest.raises(Exception, match="unknown state word 'ok'"):
        d.interpret_status(resp(200, {"job": {"phase": "ok"}}))  # case-sensitive
    with pytest.raises(Exception, match=r"states no job state at 'job\.phase'"):
        d.interpret_status(resp(200, {"phase": "RUN"}))


def test_output_error_progress_by_path() -> None:
    d = jobs(
        output="job.out",
        error="job.problems",
        error_code="job.code",
        progress_current="job.n",
        progress_total="job.of",
        progress_message="job.log",
    )
    done = d.interpret_status(resp(200, {"job": {"phase": "OK", "out": [1, 2]}}))
    assert (done.has_result, done.result) == (True, [1, 2])
    running = d.interpret_status(
        resp(200, {"job": {"phase": "RUN", "n": 3, "of": 4, "log": "a\nstep 3\n\n"}})
    )
    assert running.progress is not None
    assert (running.progress.fraction, running.progress.message) == (0.75, "step 3")
    failed = d.interpret_status(
        resp(200, {"job": {"phase": "KO", "code": "E7", "problems": [{"message": "disk full"}]}})
    )
    assert failed.error is not None and failed.error.summary == "E7: disk full"


def test_result_url_wins_and_its_failure_answer_is_the_jobs() -> None:
    d = jobs(result_url="/files/{job.file}")
    done = d.interpret_status(resp(200, {"job": {"phase": "OK", "file": "f9"}}))
    assert (done.has_result, done.result_url) == (False, f"{API}/files/f9")
    failure = result_failure_of(
        d, resp(422, {"detail": [{"msg": "too long"}]}, url=f"{API}/files/f9")
    )
    assert failure is not None and failure.error is not None
    assert failure.error.message == "too long" and failure.state is JobState.FAILED
    assert result_failure_of(d, resp(404, {"detail": "gone"})) is None
    assert result_failure_of(AutoDialect(), resp(422, {"detail": "x"})) is None


def test_events_by_role() -> None:
    d = preset("replicate")
    url = f"{API}/stream/1"
    assert d.interpret_event("output", "Hello", url=url).state is JobState.PROCESSING  # type: ignore[union-attr]
    logs = d.interpret_event("logs", "step 2/3", url=url)
    assert logs is not None and logs.progress is not None and logs.progress.message == "step 2/3"
    done = d.interpret_event("done", "{}", url=url)
    assert done is not None and done.state is JobState.COMPLETED and not done.has_result
    cancelled = d.interpret_event("done", '{"reason": "canceled"}', url=url)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    error = d.interpret_event("error", '{"detail": "OOM"}', url=url)
    assert error is not None and error.error is not None and error.error.message == "OOM"
    assert d.interpret_event("ping", "", url=url) is None


def test_cancel_methods() -> None:
    assert cancel_method_of(preset("fal")) == "PUT"
    assert cancel_method_of(preset("assemblyai")) is None
    assert cancel_method_of(AutoDialect()) == "DELETE"
    assert issubclass(CancelNotSupportedError, Exception)


def test_failed_500_is_a_job_state_and_other_4xx_a_rejection() -> None:
    d = preset("runpod")
    failed = d.interpret_status(resp(500, {"id": "1", "status": "FAILED", "error": "boom"}))
    assert failed.state is JobState.FAILED and failed.error is not None
    with pytest.raises(Exception, match="rejected with HTTP 401"):
        d.interpret_status(resp(401, {"error": "bad key"}))


# --------------------------------------------------------------------------------------------
# Presets: data, each under 15 lines, by name


def test_every_preset_is_under_15_lines_of_description() -> None:
    source = inspect.getsource(_presets)
    for name in PRESETS:
        start = source.index(f'name="{name}"')
        block = source[start : source.index(")  # fmt: skip", start)]
        assert block.count("\n") < 15, name
        assert name in DIALECT_NAMES and dialect_from(name).name == name


# --------------------------------------------------------------------------------------------
# Never a running job as a result, in every dialect


def running_answer(name: str) -> HttpResponse:
    """A submission answer stating a running job, with nothing to follow it by."""
    if name == "status-code":
        return post(202, {"state": "inFlight"})
    if name == "google":
        return post(200, {"done": False, "metadata": {"progressPercent": 5}})
    words = {
        "replicate": "starting",
        "fal": "IN_QUEUE",
        "runpod": "IN_QUEUE",
        "openai-batch": "validating",
        "assemblyai": "queued",
    }
    return post(201, {"status": words.get(name, "running")})


@pytest.mark.parametrize("name", DIALECT_NAMES)
def test_a_running_answer_with_nothing_to_follow_is_never_a_result(name: str) -> None:
    with pytest.raises(NoStatusUrlError) as info:
        dialect_from(name).interpret_submit(running_answer(name))
    assert "status" in str(info.value)


def test_a_get_answered_202_without_a_monitor_polls_the_same_url() -> None:
    url = f"{API}/repos/o/r/stats/contributors"
    for name in DIALECT_NAMES:
        if name == "google":
            continue  # an Operation always names itself
        sub = dialect_from(name).interpret_submit(resp(202, {}, url=url, method="GET"))
        assert (sub.status_url, sub.status.state) == (url, JobState.PENDING), name


def test_arm_final_state_rules_decide_before_provisioning_state() -> None:
    # An Azure POST: the monitor's body also carries a resource's provisioningState.
    sub = ArmDialect().interpret_submit(
        post(
            202,
            None,
            url=f"{API}/sa/1/regenerateKey",
            **{"Azure-AsyncOperation": f"{API}/ops/1", "Location": f"{API}/results/1"},
        )
    )
    assert sub.final_url == f"{API}/results/1"
    body = {"status": "Succeeded", "properties": {"provisioningState": "Succeeded"}}
    done = ArmDialect().interpret_status(resp(200, body, url=f"{API}/ops/1"), submission=sub)
    assert done.state is JobState.COMPLETED
    assert (done.has_result, done.result_url) == (False, f"{API}/results/1")


# --------------------------------------------------------------------------------------------
# The auto dialect learns the common vocabularies and status-URL fields


def test_auto_follows_replicate_and_fal_shapes() -> None:
    d = AutoDialect()
    rep = d.interpret_submit(
        post(201, {"id": "p1", "status": "starting", "urls": {"get": f"{API}/v1/predictions/p1"}})
    )
    assert (rep.status.state, rep.status_url) == (JobState.PENDING, f"{API}/v1/predictions/p1")
    fal = d.interpret_submit(
        post(200, {"status": "IN_QUEUE", "request_id": "r", "status_url": f"{API}/r/status"})
    )
    assert (fal.status.state, fal.status_url) == (JobState.PENDING, f"{API}/r/status")
    done = d.interpret_status(
        resp(200, {"status": "COMPLETED", "response_url": f"{API}/r"}, url=f"{API}/r/status"),
        submission=fal,
    )
    assert done.result_url == f"{API}/r"
    for word, state in [
        ("succeeded", JobState.COMPLETED),
        ("IN_PROGRESS", JobState.PROCESSING),
        ("finalizing", JobState.PROCESSING),
        ("cancelling", JobState.PROCESSING),
        ("TIMED_OUT", JobState.FAILED),
        ("expired", JobState.FAILED),
        ("error", JobState.FAILED),
    ]:
        assert d.interpret_status(resp(200, {"status": word})).state is state, word


def test_a_replicate_webhook_verifies_and_reads_as_the_predictions_status() -> None:
    # Replicate signs webhooks the Standard Webhooks way (webhook-id / -timestamp /
    # -signature, a whsec_ secret); the body is the prediction, read by the preset.
    secret = "whsec_" + base64.b64encode(b"replicate-test-secret-0123").decode()
    prediction = {"id": "p1", "status": "succeeded", "output": ["hi"], "logs": "done\n"}
    body = json.dumps(prediction).encode()
    headers = sign(body, secret, msg_id="msg_1", timestamp=int(time.time()), scheme="standard")
    event = WebhookVerifier(secret, scheme="standard").verify(headers, body)
    assert event.delivery_id == "msg_1"
    status = preset("replicate").interpret_status(
        HttpResponse(200, httpx.Headers({"Content-Type": "application/json"}), body, API)
    )
    assert (status.state, status.result, status.id) == (JobState.COMPLETED, ["hi"], "p1")
