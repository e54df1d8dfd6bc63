"""Built-in job types for tests and the demo: ``sleep``, ``report``, ``echo``, ``fail`` and
``digest`` (an upload: multipart files or a raw body, see ``uploads``).

Each validates its input with a pydantic model (the annotation of the handler's second
parameter). Custom handlers passed to ``create_app(handlers=...)`` are merged over these.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import hashlib
import io
import weakref
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from .jobs import FileResult, JobContext, JobFailure, JobType

__all__ = [
    "BUILTIN_HANDLERS",
    "DigestInput",
    "EchoInput",
    "UploadedFile",
    "FailInput",
    "ReportInput",
    "SleepInput",
    "digest",
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


#: Cells (rows x columns) generated per step off the event loop: a step's GIL time stays
#: around ten milliseconds, so the loop is never held up for long.
REPORT_CHUNK_CELLS = 20_000

# One report generator thread per event loop at a time: the loop then competes with a single
# thread for the GIL, however many reports run (each takes its turn, chunk by chunk).
_GENERATING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _generator_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _GENERATING.get(loop)
    if slot is None:
        slot = _GENERATING[loop] = asyncio.Semaphore(1)
    return slot


def _csv_header(columns: list[str]) -> bytes:
    """The header row (at most 100 names: cheap enough for the event loop)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(columns)
    return buf.getvalue().encode()


def _csv_rows(columns: list[str], start: int, stop: int) -> bytes:
    """Rows ``start..stop-1`` of the report as CSV bytes (runs in a worker thread)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for r in range(start, stop):
        writer.writerow([f"{col}-{r + 1}" if c else r + 1 for c, col in enumerate(columns)])
    return buf.getvalue().encode()


def _too_large(limit: int) -> JobFailure:
    message = f"the report exceeds this server's limit of {limit} bytes"
    return JobFailure("result_too_large", message)


async def report(ctx: JobContext, input: ReportInput) -> FileResult:
    """Produce a CSV report (``text/csv``, ``report.csv``) after ``delay`` seconds.

    The rows are generated in a worker thread, a bounded chunk at a time, so a large report
    never stalls the event loop; more rows than ``max_result_rows`` or more bytes than
    ``max_result_bytes`` fail the job with ``result_too_large`` as soon as it is known (the
    size is projected from the first chunk: later rows are never shorter).
    """
    if input.delay:
        await ctx.sleep(input.delay)
    if input.rows > ctx.max_result_rows:
        raise JobFailure(
            "result_too_large",
            f"{input.rows} rows exceed this server's limit of {ctx.max_result_rows} per job",
        )
    loop = asyncio.get_running_loop()
    columns = input.column_names()
    step = max(REPORT_CHUNK_CELLS // len(columns), 1)
    every = max(input.rows // 10, 1) if input.rows >= 10 else 0
    out = bytearray(_csv_header(columns))
    header = len(out)
    start = 0
    while start < input.rows:
        ctx.raise_if_cancelled()
        stop = min(start + step, input.rows)
        if every:
            # End the chunk at the next progress mark, so every 10 % is reported.
            stop = min(stop, (start // every + 1) * every)
        async with _generator_slot():
            out += await loop.run_in_executor(None, _csv_rows, columns, start, stop)
        projected = header + (len(out) - header) * input.rows / stop
        if len(out) > ctx.max_result_bytes or projected > ctx.max_result_bytes:
            raise _too_large(ctx.max_result_bytes)
        if every and stop % every == 0:
            await ctx.progress(stop, input.rows, f"row {stop}/{input.rows}")
        start = stop
    return FileResult(bytes(out), content_type="text/csv", filename="report.csv")


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


class UploadedFile(BaseModel):
    """One uploaded file, as ``uploads`` stores it in a job's input (``data``: base64)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=200)
    filename: str | None = Field(default=None, max_length=1000)
    contentType: str = Field(default="application/octet-stream", max_length=200)
    size: int = Field(ge=0)
    data: str

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data must be standard base64") from None
        return value

    def content(self) -> bytes:
        """The file's bytes."""
        return base64.b64decode(self.data)


class DigestInput(BaseModel):
    """Input of ``digest``: the uploaded ``files`` (a form's file parts, or a raw body) and
    the form's other text fields (kept as given, echoed in the result)."""

    model_config = ConfigDict(extra="allow")

    files: list[UploadedFile] = Field(min_length=1, max_length=100)
    delay: float = Field(default=0.0, ge=0.0, le=3600.0)


async def digest(ctx: JobContext, input: DigestInput) -> dict[str, Any]:
    """Hash each uploaded file (SHA-256), reporting a step per file, after ``delay`` s.

    Result: ``{"files": [{"field", "filename", "contentType", "size", "sha256"}],
    "fields": {...the form's other text fields...}}``.
    """
    total = len(input.files)
    out: list[dict[str, Any]] = []
    for i, file in enumerate(input.files):
        if input.delay:
            await ctx.sleep(input.delay / total)
        data = file.content()
        out.append(
            {
                "field": file.field,
                "filename": file.filename,
                "contentType": file.contentType,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        await ctx.progress(i + 1, total, f"file {i + 1}/{total}")
    return {"files": out, "fields": dict(input.model_extra or {})}


#: The built-in job types by name.
BUILTIN_HANDLERS: dict[str, JobType] = {
    "sleep": JobType(run=sleep, model=SleepInput, estimate=lambda i: i.seconds),
    "report": JobType(run=report, model=ReportInput, estimate=lambda i: i.delay),
    "echo": JobType(run=echo, model=EchoInput, estimate=lambda i: 0.0),
    "fail": JobType(run=fail, model=FailInput, estimate=lambda i: i.delay),
    "digest": JobType(run=digest, model=DigestInput, estimate=lambda i: i.delay),
}
