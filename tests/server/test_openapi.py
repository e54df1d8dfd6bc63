"""The machine-readable contract: ``GET /openapi.json`` (issue 19 item 8).

The document is valid OpenAPI 3.1 (``openapi-spec-validator``), lists exactly the routes of the
application, and Schemathesis, driven by it against a live reference server (both dialects,
memory and SQLite, with and without a token map), finds no server error and no answer outside
the documented statuses, media types, headers and schemas.

The quick profile runs in the suite (a fixed seed, a few examples per operation and generation
mode). ``make schemathesis`` runs the long one: ``ASYNCREPLY_SCHEMATHESIS_EXAMPLES`` sets the
examples per operation and mode, and the summary is printed per configuration.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode, checks

from reference_server import ServerConfig, ServerThread, create_app
from reference_server.job_types import BUILTIN_HANDLERS
from reference_server.openapi import OPENAPI_KEY, OPENAPI_PATH

from .conftest import FAST_DEFAULTS

EXAMPLES = int(os.environ.get("ASYNCREPLY_SCHEMATHESIS_EXAMPLES", "6"))
SEED = int(os.environ.get("ASYNCREPLY_SCHEMATHESIS_SEED", "20261206"))
TOKENS = {"t-alice": "alice", "t-bob": "bob"}
#: Schemathesis's not_a_server_error is applied by hand (``_server_error``): in the
#: status-code dialect a *failed job* is answered 500 with its status document, by design.
CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _config(dialect: str, store: str, tokens: bool, tmp_path: Path) -> ServerConfig:
    return ServerConfig(
        **{
            **FAST_DEFAULTS,
            "webhook_allow_private": False,  # generated callbacks must not reach anything
            "dialect": dialect,
            "store": store,
            "sqlite_path": str(tmp_path / "jobs.sqlite3"),
            "tokens": TOKENS if tokens else None,
            # Generated submissions must stay cheap: short holds, small reports.
            "max_wait": 0.2,
            "max_result_rows": 500,
            "workers": 2,
        }
    )


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
@pytest.mark.parametrize("tokens", [False, True], ids=["dev", "tokens"])
def test_the_served_document_is_valid_openapi_31(
    dialect: str, tokens: bool, tmp_path: Path
) -> None:
    with ServerThread(_config(dialect, "memory", tokens, tmp_path)) as server:
        answer = httpx.get(server.base_url + OPENAPI_PATH)  # public: no token needed
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    document = answer.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    types = {
        alt["properties"]["type"]["const"]
        for alt in document["components"]["schemas"]["Submission"]["oneOf"]
    }
    assert types == set(BUILTIN_HANDLERS)  # sleep, report, echo, fail, digest


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
def test_every_route_is_documented_and_every_documented_route_exists(dialect: str) -> None:
    app = create_app(ServerConfig(dialect=dialect))  # type: ignore[arg-type]
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    document = app[OPENAPI_KEY]
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes == documented


def _server_error(response: Any) -> bool:
    """Whether a 5xx answer is a server error (not the status-code dialect's failed job)."""
    if response.status_code != 500:
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("status") == "failed" and "error" in body)


def _run_schemathesis(base_url: str, headers: dict[str, str]) -> Counter[str]:
    """Every operation, positive and negative, with the fixed seed; returns what was seen."""
    schema = schemathesis.openapi.from_url(base_url + OPENAPI_PATH)
    seen: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call_and_validate(
                    base_url=base_url, headers=headers, checks=CHECKS, timeout=20
                )
                status = str(response.status_code)
                if response.status_code >= 500:
                    assert not _server_error(response), response.text[:500]
                    status = "500-failed-job"
                seen[f"{case.method} {case.path} {status}"] += 1

            try:
                run()
            except Unsatisfiable:
                # Nothing to get wrong (no parameters, no body): no negative cases exist.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return seen


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("tokens", [False, True], ids=["dev", "tokens"])
def test_schemathesis_finds_nothing_outside_the_document(
    dialect: str, store: str, tokens: bool, tmp_path: Path
) -> None:
    headers = {"Authorization": "Bearer t-alice"} if tokens else {}
    with ServerThread(_config(dialect, store, tokens, tmp_path)) as server:
        seen = _run_schemathesis(server.base_url, headers)
    total = sum(seen.values())
    statuses = Counter(key.rsplit(" ", 1)[1] for key in seen.elements())
    print(f"\nschemathesis {dialect}/{store}/{'tokens' if tokens else 'dev'}: {total} "
          f"requests, statuses {dict(sorted(statuses.items()))}")  # fmt: skip
    assert not [status for status in statuses if status.startswith("5") and "failed" not in status]
    if dialect == "reference":
        assert statuses["500-failed-job"] == 0
    # The run reached every operation and got past validation somewhere.
    assert {key.rsplit(" ", 1)[0] for key in seen} >= {"GET /health", "POST /jobs", "GET /jobs"}
    assert statuses["202"] + statuses["200"] > 0


def test_the_submission_documents_multipart_and_raw_uploads(tmp_path: Path) -> None:
    # The server takes forms and raw bodies (uploads.py); the document says so, and a body of
    # each documented shape is accepted as a digest job.
    with ServerThread(_config("reference", "memory", False, tmp_path)) as server:
        document = httpx.get(server.base_url + OPENAPI_PATH).json()
        post = document["paths"]["/jobs"]["post"]
        content = post["requestBody"]["content"]
        assert set(content) == {
            "application/json",
            "multipart/form-data",
            "application/octet-stream",
        }
        form = document["components"]["schemas"]["UploadForm"]
        assert form["required"] == ["type"]
        assert set(form["properties"]) == {"type", "input", "callback", "notBefore"}
        assert content["multipart/form-data"]["encoding"]["input"]["contentType"] == "text/plain"
        assert content["application/octet-stream"]["schema"]["type"] == "string"
        assert {"name": "type", "in": "query"}.items() <= next(
            p for p in post["parameters"] if p["name"] == "type"
        ).items()
        with httpx.Client(base_url=server.base_url) as client:
            as_form = client.post(
                "/jobs",
                data={"type": "digest", "input": '{"note": "n"}'},
                files={"doc": ("a.txt", b"abc", "text/csv")},
            )
            raw = client.post(
                "/jobs",
                params={"type": "digest"},
                content=b"abc",
                headers={"Content-Type": "application/octet-stream"},
            )
    assert as_form.status_code == 202, as_form.text
    assert raw.status_code == 202, raw.text
