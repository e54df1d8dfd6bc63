"""Microsoft, Google and Azure Resource Manager operations, as their public docs show them,
through their explicit dialects and through ``AutoDialect``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncreply_client._errors import NoStatusUrlError, ProtocolError
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobState, Progress
from asyncreply_client.dialects import (
    ArmDialect,
    AutoDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
)

WALL = 1_795_424_400.0


def resp(
    code: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    url: str,
    method: str = "GET",
) -> HttpResponse:
    h = dict(headers or {})
    content = b"" if body is None else json.dumps(body).encode()
    if body is not None:
        h.setdefault("Content-Type", "application/json; charset=utf-8")
    return HttpResponse(code, httpx.Headers(h), content, url, method)


def auto() -> AutoDialect:
    return AutoDialect(wall_clock=lambda: WALL)


# --------------------------------------------------------------------------------------------
# Microsoft REST API guidelines: Operation-Location + an operation status document

MS = "https://api.contoso.com"
MS_OP = f"{MS}/operations/123?api-version=2022-05-01"


def ms_op(status: str, **extra: Any) -> HttpResponse:
    body = {"id": "123", "status": status, "createdDateTime": "2022-05-01T10:00:00Z", **extra}
    return resp(200, body, {"Retry-After": "5"}, url=MS_OP)


@pytest.mark.parametrize(
    "dialect", [MicrosoftDialect(wall_clock=lambda: WALL), auto()], ids=["microsoft", "auto"]
)
def test_microsoft_post_action(dialect: Dialect) -> None:
    submitted = resp(
        202,
        None,
        {"Operation-Location": "/operations/123?api-version=2022-05-01", "Retry-After": "5"},
        url=f"{MS}/documents:analyze?api-version=2022-05-01",
        method="POST",
    )
    sub = dialect.interpret_submit(submitted)
    assert sub.status_url == MS_OP
    assert sub.retry_after == 5.0
    assert sub.final_url is None
    assert sub.status.state is JobState.PENDING

    not_started = dialect.interpret_status(ms_op("NotStarted"), submission=sub)
    assert not_started.state is JobState.PENDING
    running = dialect.interpret_status(ms_op("Running", percentComplete=40), submission=sub)
    assert running.state is JobState.PROCESSING
    assert running.progress == Progress(current=40, total=100)
    assert running.created_at is not None and running.created_at.year == 2022
    assert running.retry_after == 5.0
    done = dialect.interpret_status(
        ms_op("Succeeded", result={"pages": 3}, lastActionDateTime="2022-05-01T10:00:09Z"),
        submission=sub,
    )
    assert done.state is JobState.COMPLETED
    assert done.has_result and done.result == {"pages": 3}
    assert done.updated_at is not None and done.updated_at.second == 9


@pytest.mark.parametrize(
    "dialect", [MicrosoftDialect(wall_clock=lambda: WALL), auto()], ids=["microsoft", "auto"]
)
def test_microsoft_outcomes(dialect: Dialect) -> None:
    failed = dialect.interpret_status(
        ms_op(
            "Failed",
            error={
                "code": "InvalidDocument",
                "message": "The document is corrupt.",
                "innererror": {"code": "Truncated"},
            },
        )
    )
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == (
        "InvalidDocument",
        "The document is corrupt.",
    )
    canceled = dialect.interpret_status(ms_op("Canceled"))
    assert canceled.state is JobState.CANCELLED
    located = dialect.interpret_status(ms_op("Succeeded", resourceLocation="/models/m1"))
    assert located.result_url == f"{MS}/models/m1"
    assert not located.has_result


def test_microsoft_put_create_results_at_the_original_url() -> None:
    url = f"{MS}/models/m1?api-version=2022-05-01"
    for dialect in (MicrosoftDialect(), auto()):
        sub = dialect.interpret_submit(
            resp(
                201,
                {"id": "m1", "status": "NotStarted"},
                {"Operation-Location": MS_OP},
                url=url,
                method="PUT",
            )
        )
        assert sub.status_url == MS_OP
        assert sub.final_url == url
        done = dialect.interpret_status(ms_op("Succeeded"), submission=sub)
        assert done.state is JobState.COMPLETED
        assert done.result_url == url


def test_microsoft_operation_location_with_location_for_the_result() -> None:
    sub = MicrosoftDialect().interpret_submit(
        resp(
            202,
            None,
            {"Operation-Location": MS_OP, "Location": "/results/9"},
            url=f"{MS}/jobs",
            method="POST",
        )
    )
    assert sub.status_url == MS_OP
    assert sub.final_url == f"{MS}/results/9"


def test_microsoft_needs_a_status_field() -> None:
    with pytest.raises(ProtocolError):
        MicrosoftDialect().interpret_status(resp(200, {"id": "123"}, url=MS_OP))


# --------------------------------------------------------------------------------------------
# Google AIP-151: google.longrunning.Operation

VERTEX = "https://us-central1-aiplatform.googleapis.com"
OP_NAME = "projects/123/locations/us-central1/operations/789"
OP_URL = f"{VERTEX}/v1/{OP_NAME}"
METADATA = {
    "@type": "type.googleapis.com/google.cloud.aiplatform.v1.CreateDatasetOperationMetadata",
    "genericMetadata": {
        "createTime": "2024-01-01T00:00:00.000000Z",
        "updateTime": "2024-01-01T00:00:05.000000Z",
    },
}


def operation(**fields: Any) -> dict[str, Any]:
    return {"name": OP_NAME, "metadata": METADATA, **fields}


@pytest.mark.parametrize(
    "dialect", [GoogleDialect(wall_clock=lambda: WALL), auto()], ids=["google", "auto"]
)
def test_google_operation_lifecycle(dialect: Dialect) -> None:
    submitted = resp(
        200,
        operation(),
        url=f"{VERTEX}/v1/projects/123/locations/us-central1/datasets",
        method="POST",
    )
    sub = dialect.interpret_submit(submitted)
    # A 200 with done absent (false) is NOT finished.
    assert sub.status.state is JobState.PENDING
    assert not sub.status.is_terminal
    assert sub.status_url == OP_URL
    assert sub.status.id == OP_NAME
    assert sub.status.created_at is not None and sub.status.created_at.year == 2024

    running = dialect.interpret_status(resp(200, operation(done=False), url=OP_URL), submission=sub)
    assert running.state is JobState.PENDING
    response = {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.Dataset",
        "name": "projects/123/locations/us-central1/datasets/456",
        "displayName": "d",
    }
    done = dialect.interpret_status(
        resp(200, operation(done=True, response=response), url=OP_URL), submission=sub
    )
    assert done.state is JobState.COMPLETED
    assert done.has_result and done.result == response
    assert done.updated_at is not None and done.updated_at.second == 5


@pytest.mark.parametrize(
    "dialect", [GoogleDialect(wall_clock=lambda: WALL), auto()], ids=["google", "auto"]
)
def test_google_errors_and_cancellation(dialect: Dialect) -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": []}]
    failed = dialect.interpret_status(
        resp(
            200,
            operation(done=True, error={"code": 3, "message": "Invalid audio", "details": details}),
            url=OP_URL,
        )
    )
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert (failed.error.code, failed.error.message, failed.error.details) == (
        "3",
        "Invalid audio",
        details,
    )
    cancelled = dialect.interpret_status(
        resp(200, operation(done=True, error={"code": 1, "message": "cancelled"}), url=OP_URL)
    )
    assert cancelled.state is JobState.CANCELLED
    empty = dialect.interpret_status(resp(200, operation(done=True), url=OP_URL))
    assert empty.state is JobState.COMPLETED and empty.has_result and empty.result is None


def test_google_speech_progress_and_custom_template() -> None:
    dialect = GoogleDialect("{origin}/v1/operations/{name}")
    metadata = {
        "@type": "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeMetadata",
        "progressPercent": 42,
        "startTime": "2024-01-01T00:00:00Z",
        "lastUpdateTime": "2024-01-01T00:00:10Z",
    }
    sub = dialect.interpret_submit(
        resp(
            200,
            {"name": "7612202767953098924", "metadata": metadata},
            url="https://speech.googleapis.com/v1/speech:longrunningrecognize",
            method="POST",
        )
    )
    assert sub.status_url == "https://speech.googleapis.com/v1/operations/7612202767953098924"
    assert sub.status.progress == Progress(current=42, total=100)
    assert sub.status.started_at is not None


def test_google_metadata_state_and_odd_names() -> None:
    dialect = GoogleDialect("{origin}/v2/{name}")
    status = dialect.interpret_status(
        resp(
            200,
            {"name": "operations/a b", "metadata": {"state": "RUNNING"}, "done": False},
            url="http://g.test:8443/v2/operations/x",
        )
    )
    assert status.state is JobState.PROCESSING
    assert status.status_url == "http://g.test:8443/v2/operations/a%20b"


def test_google_status_that_is_not_an_operation() -> None:
    with pytest.raises(ProtocolError, match="not an Operation"):
        GoogleDialect().interpret_status(resp(200, {"hello": "world"}, url=OP_URL))


def test_google_submit_not_done_without_a_name() -> None:
    with pytest.raises(ProtocolError, match="no name"):
        GoogleDialect().interpret_submit(
            resp(200, {"done": False}, url="https://g.test/v1/things", method="POST")
        )


def test_google_5xx_is_never_a_job_state() -> None:
    with pytest.raises(ProtocolError):
        GoogleDialect().interpret_status(
            resp(500, {"state": "failed", "error": {"code": 13}}, url=OP_URL)
        )


def test_google_submit_done_at_once() -> None:
    sub = GoogleDialect().interpret_submit(
        resp(
            200,
            operation(done=True, response={"ok": True}),
            url=f"{VERTEX}/v1/x",
            method="POST",
        )
    )
    assert sub.status.state is JobState.COMPLETED
    assert sub.status.result == {"ok": True}


# --------------------------------------------------------------------------------------------
# Azure Resource Manager

ARM = "https://management.azure.com"
SA = (
    f"{ARM}/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.Storage/"
    "storageAccounts/sa1?api-version=2023-01-01"
)
AAO = (
    f"{ARM}/subscriptions/sub1/providers/Microsoft.Storage/locations/eastus/"
    "asyncoperations/op1?api-version=2023-01-01"
)


def resource(state: str) -> dict[str, Any]:
    return {
        "id": "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.Storage/"
        "storageAccounts/sa1",
        "name": "sa1",
        "type": "Microsoft.Storage/storageAccounts",
        "location": "eastus",
        "properties": {"provisioningState": state},
    }


def aao(status: str, **extra: Any) -> HttpResponse:
    body = {"id": AAO, "name": "op1", "status": status, "startTime": "2023-01-01T00:00:00Z"}
    return resp(200, {**body, **extra}, {"Retry-After": "17"}, url=AAO)


@pytest.mark.parametrize(
    "dialect", [ArmDialect(wall_clock=lambda: WALL), auto()], ids=["arm", "auto"]
)
def test_arm_put_with_azure_async_operation(dialect: Dialect) -> None:
    sub = dialect.interpret_submit(
        resp(
            201,
            resource("Creating"),
            {"Azure-AsyncOperation": AAO, "Retry-After": "17"},
            url=SA,
            method="PUT",
        )
    )
    assert sub.status.state is JobState.PROCESSING
    assert sub.status_url == AAO
    assert sub.final_url == SA
    assert sub.retry_after == 17.0

    running = dialect.interpret_status(aao("InProgress"), submission=sub)
    assert running.state is JobState.PROCESSING
    assert running.started_at is not None
    done = dialect.interpret_status(aao("Succeeded"), submission=sub)
    assert done.state is JobState.COMPLETED
    assert done.result_url == SA  # the final GET goes to the original URI
    assert not done.has_result
    failed = dialect.interpret_status(
        aao("Failed", error={"code": "ResourceQuotaExceeded", "message": "quota"}),
        submission=sub,
    )
    assert failed.state is JobState.FAILED
    assert failed.error is not None and failed.error.code == "ResourceQuotaExceeded"
    assert dialect.interpret_status(aao("Canceled"), submission=sub).state is JobState.CANCELLED


@pytest.mark.parametrize(
    "dialect", [ArmDialect(wall_clock=lambda: WALL), auto()], ids=["arm", "auto"]
)
def test_arm_post_action_with_both_headers(dialect: Dialect) -> None:
    restart = f"{ARM}/subscriptions/sub1/.../virtualMachines/vm1/restart?api-version=2023-03-01"
    ops = f"{ARM}/subscriptions/sub1/providers/Microsoft.Compute/locations/eastus/operations"
    location = f"{ops}/op2?monitor=true&api-version=2023-03-01"
    monitor = f"{ops}/op2?api-version=2023-03-01"
    sub = dialect.interpret_submit(
        resp(
            202,
            None,
            {"Azure-AsyncOperation": monitor, "Location": location, "Retry-After": "10"},
            url=restart,
            method="POST",
        )
    )
    assert sub.status_url == monitor
    assert sub.final_url == location
    done = dialect.interpret_status(resp(200, {"status": "Succeeded"}, url=monitor), submission=sub)
    assert done.result_url == location


@pytest.mark.parametrize(
    "dialect", [ArmDialect(wall_clock=lambda: WALL), auto()], ids=["arm", "auto"]
)
def test_arm_location_polling(dialect: Dialect) -> None:
    location = f"{ARM}/subscriptions/sub1/operationresults/op3?api-version=2023-01-01"
    sub = dialect.interpret_submit(
        resp(
            202,
            None,
            {"Location": location, "Retry-After": "15"},
            url=f"{SA}/listKeys",
            method="POST",
        )
    )
    assert sub.status_url == location
    assert sub.final_url is None
    waiting = dialect.interpret_status(resp(202, None, {"Retry-After": "15"}, url=location))
    assert not waiting.is_terminal and waiting.retry_after == 15.0
    keys = {"keys": [{"keyName": "key1", "value": "…"}]}
    done = dialect.interpret_status(resp(200, keys, url=location), submission=sub)
    assert done.state is JobState.COMPLETED
    assert done.has_result and done.result == keys
    deleted = dialect.interpret_status(resp(204, url=location), submission=sub)
    assert deleted.state is JobState.COMPLETED


@pytest.mark.parametrize(
    "dialect", [ArmDialect(wall_clock=lambda: WALL), auto()], ids=["arm", "auto"]
)
def test_arm_provisioning_state_polling_of_the_resource(dialect: Dialect) -> None:
    sub = dialect.interpret_submit(resp(201, resource("Accepted"), url=SA, method="PUT"))
    assert sub.status.state is JobState.PENDING
    assert sub.status_url == SA  # no monitor header: poll the resource itself
    assert sub.final_url == SA
    updating = dialect.interpret_status(resp(200, resource("Updating"), url=SA), submission=sub)
    assert updating.state is JobState.PROCESSING
    done = dialect.interpret_status(resp(200, resource("Succeeded"), url=SA), submission=sub)
    assert done.state is JobState.COMPLETED
    assert done.has_result and done.result == resource("Succeeded")
    failed = dialect.interpret_status(resp(200, resource("Failed"), url=SA), submission=sub)
    assert failed.state is JobState.FAILED and failed.error is not None


def test_arm_put_that_finished_at_once() -> None:
    for dialect in (ArmDialect(), auto()):
        sub = dialect.interpret_submit(resp(200, resource("Succeeded"), url=SA, method="PUT"))
        assert sub.status.state is JobState.COMPLETED
        assert sub.status.result == resource("Succeeded")


def test_arm_delete_with_location() -> None:
    location = f"{ARM}/subscriptions/sub1/operationresults/del1?api-version=2023-01-01"
    for dialect in (ArmDialect(), auto()):
        sub = dialect.interpret_submit(
            resp(202, None, {"Location": location}, url=SA, method="DELETE")
        )
        assert sub.status_url == location
        assert sub.final_url is None
        assert dialect.interpret_status(resp(204, url=location)).state is JobState.COMPLETED


def test_arm_patch_keeps_the_original_uri() -> None:
    sub = ArmDialect().interpret_submit(
        resp(200, resource("Updating"), {"Azure-AsyncOperation": AAO}, url=SA, method="PATCH")
    )
    assert sub.final_url == SA
    assert sub.status_url == AAO


def test_arm_running_post_without_any_monitor_is_an_error() -> None:
    # Nothing to poll, and the resource says it is still being created: never a result.
    with pytest.raises(NoStatusUrlError, match="processing"):
        ArmDialect().interpret_submit(resp(200, resource("Creating"), url=SA, method="POST"))


# --------------------------------------------------------------------------------------------
# Auto: mixed families per answer


def test_auto_mixes_families_per_answer() -> None:
    d = auto()
    # A reference-style submit, then Microsoft-style status documents.
    sub = d.interpret_submit(
        resp(202, {"jobId": "1"}, {"Location": "/ops/1"}, url="http://x.test/jobs", method="POST")
    )
    status = d.interpret_status(
        resp(
            200, {"id": "1", "status": "Running", "percentComplete": 10}, url=sub.status_url or ""
        ),
        submission=sub,
    )
    assert status.state is JobState.PROCESSING
    assert status.progress == Progress(current=10, total=100)
    # ... and a Google operation on the next answer.
    google = d.interpret_status(
        resp(200, {"name": "operations/1", "done": True, "response": 5}, url="http://x.test/ops/1"),
        submission=sub,
    )
    assert google.result == 5


def test_arm_put_with_location_only_keeps_the_original_uri() -> None:
    location = f"{ARM}/subscriptions/sub1/operationresults/put1?api-version=2023-01-01"
    sub = ArmDialect().interpret_submit(
        resp(202, None, {"Location": location}, url=SA, method="PUT")
    )
    assert sub.status_url == location
    assert sub.final_url == SA


@pytest.mark.parametrize(
    ("request_url", "expected"),
    [
        ("https://g.test/v1/projects/p:run", "https://g.test/v1/operations/7"),
        ("https://g.test/v1beta1/projects/p:run", "https://g.test/v1beta1/operations/7"),
        ("https://g.test/api/v2alpha/x", "https://g.test/v2alpha/operations/7"),
        ("https://g.test/things:run", "https://g.test/v1/operations/7"),
    ],
)
def test_google_status_url_follows_the_request_api_version(request_url: str, expected: str) -> None:
    sub = auto().interpret_submit(resp(200, {"name": "operations/7"}, url=request_url))
    assert sub.status_url == expected
