"""The report's forms: JSON, JUnit XML and the plain-text table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from asyncreply_client.contract import (
    CHECKS,
    CheckResult,
    ContractReport,
    Evidence,
    Outcome,
    check,
)

EVIDENCE = Evidence(
    method="GET",
    url="http://h/jobs/1",
    status_code=200,
    header="Retry-After: soon",
    body='{"a": "<&>\x00\x1b"}',
)
REPORT = ContractReport(
    url="http://h/jobs",
    method="POST",
    dialect="reference",
    checks=(
        CheckResult("submit", Outcome.PASS, "202 Accepted", duration=0.25),
        CheckResult("retry_after", Outcome.FAIL, "Retry-After 'soon' is garbage", EVIDENCE),
        CheckResult("sse", Outcome.SKIPPED, "the server offers no event stream"),
    ),
    duration=1.5,
)


def test_passed_counts_and_lookup() -> None:
    assert not REPORT.passed
    assert REPORT.counts() == {"pass": 1, "fail": 1, "skipped": 1}
    assert [c.name for c in REPORT.failures] == ["retry_after"]
    assert REPORT["sse"].outcome is Outcome.SKIPPED
    assert REPORT.get("nope") is None
    with pytest.raises(KeyError, match="no check named 'nope'"):
        REPORT["nope"]


def test_json_form() -> None:
    data = json.loads(REPORT.to_json())

    assert data["passed"] is False
    assert data["counts"] == {"pass": 1, "fail": 1, "skipped": 1}
    assert [c["outcome"] for c in data["checks"]] == ["pass", "fail", "skipped"]
    failed = data["checks"][1]
    assert failed["evidence"] == {
        "method": "GET",
        "url": "http://h/jobs/1",
        "status_code": 200,
        "header": "Retry-After: soon",
        "body": '{"a": "<&>\x00\x1b"}',
    }
    assert "evidence" not in data["checks"][0]
    assert failed["description"] == dict(CHECKS)["retry_after"]


def test_junit_xml_form() -> None:
    root = ET.fromstring(REPORT.to_junit_xml())

    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    assert suite.get("errors") == "0"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["submit", "retry_after", "sse"]
    assert cases[0].get("time") == "0.250"
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "Retry-After 'soon' is garbage"
    assert failure.text is not None
    assert "Retry-After: soon" in failure.text
    assert "HTTP 200" in failure.text and "http://h/jobs/1" in failure.text
    assert "<&>" in failure.text  # escaped in the XML, intact once parsed
    skipped = cases[2].find("skipped")
    assert skipped is not None and skipped.get("message") == "the server offers no event stream"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"url": "http://h/jobs", "method": "POST", "dialect": "reference"}


def test_table_form() -> None:
    lines = REPORT.render_table().splitlines()

    assert lines[0] == "Contract check of POST http://h/jobs (dialect: reference)"
    assert lines[1].split() == ["CHECK", "RESULT", "SUMMARY"]
    assert lines[2].split()[:2] == ["submit", "pass"]
    assert lines[3].split()[:2] == ["retry_after", "FAIL"]
    assert lines[4].strip().startswith("evidence: HTTP 200; GET http://h/jobs/1; Retry-After")
    assert lines[5].split()[:2] == ["sse", "skipped"]
    assert lines[-1] == "FAILED: 1 passed, 1 failed, 1 skipped in 1.50 s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": {}, "content": b"{}"}, "not both"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"dialect": "klingon"}, "unknown dialect 'klingon'"),
        ({"min_poll_interval": 2.0, "max_poll_interval": 1.0}, "poll intervals"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check("http://127.0.0.1:9/jobs", **kwargs)  # type: ignore[arg-type]


def test_a_relative_url_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        check("/jobs", json={})
