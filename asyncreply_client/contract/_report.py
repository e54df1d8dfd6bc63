"""The contract checker's report: one result per check, with its evidence, rendered as a
table, JSON or JUnit XML."""

from __future__ import annotations

import enum
import json as jsonlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CHECKS", "CheckResult", "ContractReport", "Evidence", "Outcome", "audit_result"]

#: The checks, in report order: ``(name, what it verifies)``.
CHECKS: tuple[tuple[str, str], ...] = (
    ("submit", "the submission answers 202 Accepted with a resolvable status monitor"),
    ("status_documents", "every status answer is a document the dialect understands"),
    ("retry_after", "Retry-After headers are valid (RFC 9110 §10.2.3) and plausible"),
    ("progress_monotonic", "reported progress never goes backwards"),
    ("terminal_state", "the job reaches a terminal state within the deadline"),
    ("result", "a completed job's result is retrievable (303 / result URL answers 2xx)"),
    (
        "cancellation",
        "cancel answers 2xx and the job becomes cancelled; cancelling again, or cancelling "
        "a finished job, answers 409",
    ),
    (
        "idempotency",
        "a resubmission with the same Idempotency-Key and body replays the same job; a "
        "different body with that key is refused (4xx)",
    ),
    (
        "sse",
        "the event stream is text/event-stream, its events parse, carry ids and end "
        "with a terminal event",
    ),
    ("unknown_id", "an unknown job id answers 404 or 410"),
)
_DESCRIPTIONS = dict(CHECKS)


class Outcome(str, enum.Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a failed check saw: the request, the answer, the offending header or body.

    Attributes:
        method: the request's method.
        url: the request's URL.
        status_code: the answer's HTTP status (``None`` when there was no answer).
        header: the offending header, as ``"Name: value"``.
        body: an excerpt of the answer's body (or of the offending event).
        note: anything else worth knowing (a transport error, the previous value).
    """

    method: str | None = None
    url: str | None = None
    status_code: int | None = None
    header: str | None = None
    body: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as a JSON-ready dict."""
        fields = {
            "method": self.method,
            "url": self.url,
            "status_code": self.status_code,
            "header": self.header,
            "body": self.body,
            "note": self.note,
        }
        return {k: v for k, v in fields.items() if v is not None}

    def __str__(self) -> str:
        parts: list[str] = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.url is not None:
            parts.append(f"{self.method or 'GET'} {self.url}")
        if self.header is not None:
            parts.append(self.header)
        if self.note is not None:
            parts.append(self.note)
        if self.body:
            parts.append(f"body: {self.body!r}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check's name (one of :data:`CHECKS`).
        outcome: pass, fail or skipped.
        summary: one line: what was seen, or why it failed or was skipped.
        evidence: for a failure, what the server answered.
        duration: seconds spent on the check's own requests (0 for checks that audit the
            answers of others).
    """

    name: str
    outcome: Outcome
    summary: str
    evidence: Evidence | None = None
    duration: float = 0.0

    @property
    def description(self) -> str:
        """What the check verifies."""
        return _DESCRIPTIONS.get(self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        data: dict[str, Any] = {
            "name": self.name,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "description": self.description,
            "duration": round(self.duration, 6),
        }
        if self.evidence is not None:
            data["evidence"] = self.evidence.to_dict()
        return data


@dataclass(frozen=True, slots=True)
class ContractReport:
    """Every check's outcome for one server.

    Attributes:
        url: the submission URL.
        method: the submission method.
        dialect: the name of the dialect that interpreted the answers.
        checks: one result per check, in :data:`CHECKS` order.
        duration: seconds the whole run took.

    Example:
        >>> report = ContractReport("http://x/jobs", "POST", "reference", (
        ...     CheckResult("submit", Outcome.PASS, "202 Accepted"),))
        >>> report.passed
        True
    """

    url: str
    method: str
    dialect: str
    checks: tuple[CheckResult, ...]
    duration: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether no check failed (skipped checks do not count against the server)."""
        return not any(c.outcome is Outcome.FAIL for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks."""
        return [c for c in self.checks if c.outcome is Outcome.FAIL]

    def get(self, name: str) -> CheckResult | None:
        """The result of the check called ``name``, or ``None``."""
        return next((c for c in self.checks if c.name == name), None)

    def __getitem__(self, name: str) -> CheckResult:
        result = self.get(name)
        if result is None:
            raise KeyError(f"no check named {name!r}; known: {', '.join(n for n, _ in CHECKS)}")
        return result

    def counts(self) -> dict[str, int]:
        """How many checks passed, failed and were skipped."""
        return {o.value: sum(c.outcome is o for c in self.checks) for o in Outcome}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "url": self.url,
            "method": self.method,
            "dialect": self.dialect,
            "passed": self.passed,
            "duration": round(self.duration, 6),
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict` for the shape)."""
        return jsonlib.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_junit_xml(self, *, suite_name: str = "asyncreply.contract") -> str:
        """The report as JUnit XML: one ``testcase`` per check, ``failure`` elements carrying
        the evidence, ``skipped`` elements carrying the reason."""
        counts = self.counts()
        totals = {
            "name": suite_name,
            "tests": str(len(self.checks)),
            "failures": str(counts["fail"]),
            "errors": "0",
            "skipped": str(counts["skipped"]),
            "time": f"{self.duration:.3f}",
        }
        root = ET.Element("testsuites", totals)
        suite = ET.SubElement(root, "testsuite", totals)
        properties = ET.SubElement(suite, "properties")
        for key, value in (("url", self.url), ("method", self.method), ("dialect", self.dialect)):
            ET.SubElement(properties, "property", name=key, value=value)
        for result in self.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=suite_name,
                name=result.name,
                time=f"{result.duration:.3f}",
            )
            if result.outcome is Outcome.FAIL:
                failure = ET.SubElement(
                    case, "failure", message=result.summary, type="ContractViolation"
                )
                lines = [result.summary, f"check: {result.description}"]
                if result.evidence is not None:
                    lines.append(f"evidence: {result.evidence}")
                failure.text = _xml_safe("\n".join(lines))
            elif result.outcome is Outcome.SKIPPED:
                ET.SubElement(case, "skipped", message=result.summary)
            else:
                ET.SubElement(case, "system-out").text = _xml_safe(result.summary)
        ET.indent(root)
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

    def render_table(self) -> str:
        """The report as a plain-text table, one row per check, evidence under failures."""
        width = max(len(n) for n, _ in CHECKS)
        lines = [
            f"Contract check of {self.method} {self.url} (dialect: {self.dialect})",
            f"{'CHECK':<{width}}  {'RESULT':<7}  SUMMARY",
        ]
        for result in self.checks:
            label = (
                result.outcome.value.upper()
                if result.outcome is Outcome.FAIL
                else (result.outcome.value)
            )
            lines.append(f"{result.name:<{width}}  {label:<7}  {result.summary}")
            if result.evidence is not None and result.outcome is Outcome.FAIL:
                lines.append(f"{'':<{width}}  {'':<7}  evidence: {result.evidence}")
        counts = self.counts()
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skipped']} skipped in {self.duration:.2f} s"
        )
        return "\n".join(lines)


def _xml_safe(text: str) -> str:
    # XML 1.0 forbids most control characters even escaped; a server's body may hold them.
    return "".join(
        ch
        if ch in "\t\n\r"
        or (" " <= ch <= "\ud7ff")
        or ("\ue000" <= ch <= "\ufffd")
        or (ch >= "\U00010000")
        else "\ufffd"
        for ch in text
    )


def audit_result(
    name: str,
    failure: tuple[str, Evidence] | None,
    seen: int,
    *,
    nothing: str,
    passed: Callable[[], str],
) -> CheckResult:
    """The result of a check that audits answers: its first failure; else skipped with
    ``nothing`` when it saw nothing to audit; else passed with ``passed()``."""
    if failure is not None:
        return CheckResult(name, Outcome.FAIL, failure[0], failure[1])
    if not seen:
        return CheckResult(name, Outcome.SKIPPED, nothing)
    return CheckResult(name, Outcome.PASS, passed())
