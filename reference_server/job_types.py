"""Built-in job types for tests and the demo: ``sleep``, ``report``, ``echo`` and ``fail``.

Each validates its input with a pydantic model (the annotation of the handler's second
parameter). Custom handlers passed to ``create_app(handlers=...)`` are merged over these.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .jobs import FileResult, JobContext, JobFailure, JobType

__all__ = [
    "BUILTIN_HANDLERS",
    "EchoInput",
    "FailInput",
    "ReportInput",
    "SleepInput",
    "echo",
    "fail",
    "report",
    "sleep",
]


class SleepInput(BaseModel):
    """Input of ``sleep``: sleep ``seconds`` in ``steps`` equal steps, reporting each."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=1.0, ge=0.0, le=3600.0)
    steps: int = Field(default=1, ge=1, le=10_000)


async def sleep(ctx: JobContext, input: SleepInput) -> dict[str, Any]:
    """Sleep in steps (cancellation-aware), reporting progress after each step.

    Result: ``{"slept": seconds}``.
    """
    await ctx.progress(0, input.steps, f"step 0/{input.steps}")
    step = input.seconds / input.steps
    for i in range(input.steps):
        await ctx.sleep(step)
        await ctx.progress(i + 1, input.steps, f"step {i + 1}/{input.steps}")
    return {"slept": input.seconds}


class ReportInput(BaseModel):
    """Input of ``report``: a CSV file of ``rows`` rows; ``columns`` are names or a count."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(default=10, ge=0, le=100_000)
    columns: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=100)]],
            Field(min_length=1, max_length=100),
        ]
        | Annotated[StrictInt, Field(ge=1, le=100)]
    ) = Field(default_factory=lambda: ["id", "name", "value"])
    delay: float = Field(default=0.0, ge=0.0, le=3600.0)

    def column_names(self) -> list[str]:
        """The header row: the given names, or ``col1..colN`` for a count."""
        if isinstance(self.columns, int):
            return [f"col{i + 1}" for i in range(self.columns)]
        return list(self.columns)


async def report(ctx: JobContext, input: ReportInput) -> FileResult:
    """Produce a CSV report (``text/csv``, ``report.csv``) after ``delay`` seconds."""
    if input.delay:
        await ctx.sleep(input.delay)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = input.column_names()
    writer.writerow(columns)
    for r in range(input.rows):
        writer.writerow([f"{col}-{r + 1}" if c else r + 1 for c, col in enumerate(columns)])
        if input.rows >= 10 and (r + 1) % max(input.rows // 10, 1) == 0:
            await ctx.progress(r + 1, input.rows, f"row {r + 1}/{input.rows}")
    return FileResult(buf.getvalue().encode(), content_type="text/csv", filename="report.csv")


class EchoInput(BaseModel):
    """Input of ``echo``: any JSON object; it is returned unchanged."""

    model_config = ConfigDict(extra="allow")


async def echo(ctx: JobContext, input: EchoInput) -> dict[str, Any]:
    """Return the input immediately."""
    return input.model_dump(mode="json")


class FailInput(BaseModel):
    """Input of ``fail``: fail with ``code``/``message`` (only the first ``fail_attempts``)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(default="failed", min_length=1, max_length=100)
    message: str = Field(default="the job failed as asked", max_length=10_000)
    retryable: bool = False
    fail_attempts: int | None = Field(default=None, ge=0, le=1000)
    delay: float = Field(default=0.0, ge=0.0, le=3600.0)


async def fail(ctx: JobContext, input: FailInput) -> dict[str, Any]:
    """Fail as asked; with ``fail_attempts=n`` succeed from attempt n+1 with ``{"attempt"}``."""
    if input.delay:
        await ctx.sleep(input.delay)
    if input.fail_attempts is not None and ctx.attempt > input.fail_attempts:
        return {"attempt": ctx.attempt}
    raise JobFailure(input.code, input.message, retryable=input.retryable)


#: The built-in job types by name.
BUILTIN_HANDLERS: dict[str, JobType] = {
    "sleep": JobType(run=sleep, model=SleepInput, estimate=lambda i: i.seconds),
    "report": JobType(run=report, model=ReportInput, estimate=lambda i: i.delay),
    "echo": JobType(run=echo, model=EchoInput, estimate=lambda i: 0.0),
    "fail": JobType(run=fail, model=FailInput, estimate=lambda i: i.delay),
}
