"""Where the command line's output goes and how it looks.

Results go to stdout (JSON, compact on a pipe, indented and coloured on a terminal); every
message goes to stderr. Progress is drawn only when stderr is a terminal; when it is not, the
job's URL is announced as one JSON line instead, so a script can resume the wait.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from .. import progress
from .._models import JobStatus
from ._exit import PROG

__all__ = ["NoProgress", "Terminal"]

#: ``ASYNCREPLY_PROGRESS`` values: which library draws the bar on a terminal.
PROGRESS_BACKENDS: dict[str, progress.Backend] = {
    "auto": "auto",
    "rich": "rich",
    "tqdm": "tqdm",
    "plain": "plain",
}


class NoProgress:
    """No display (stderr is not a terminal, or ``--quiet``)."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __call__(self, status: JobStatus) -> None:
        """Ignore the snapshot."""

    def close(self) -> None:
        """Nothing to close."""


@dataclass
class Terminal:
    """Where output goes and how it looks (progress and colours only on a terminal).

    Attributes:
        job_url: the status URL of the job the command works on, once announced (the error
            messages of a timeout or an interruption repeat it).
    """

    stdout: IO[str]
    stderr: IO[str]
    quiet: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    stdout_tty: bool = False
    stderr_tty: bool = False
    job_url: str | None = None

    def __post_init__(self) -> None:
        self.stdout_tty = _isatty(self.stdout)
        self.stderr_tty = _isatty(self.stderr) and not self.quiet

    @property
    def _colour(self) -> bool:
        return progress._rich_available() and not self.environ.get("NO_COLOR")

    def error(self, message: str) -> None:
        """Print a one-line error on stderr."""
        first_line = " ".join(str(message).split())
        print(f"{PROG}: error: {first_line}", file=self.stderr)

    def info(self, message: str) -> None:
        """Print a message on stderr, only on a terminal."""
        if self.stderr_tty:
            print(message, file=self.stderr)

    def announce(self, event: str, summary: Mapping[str, Any]) -> None:
        """Say that a job exists, as soon as it does.

        On a terminal, a human line (``submitted: URL``); otherwise one JSON line on stderr
        (``{"event": "submitted", "id": ..., "statusUrl": ...}``), flushed at once, which a
        script reads to resume after a timeout or an interruption. ``--quiet`` silences both.
        """
        self.job_url = summary.get("statusUrl")
        if self.quiet:
            return
        if self.stderr_tty:
            print(f"{event}: {self.job_url}", file=self.stderr)
        else:
            line = json.dumps({"event": event, **summary}, ensure_ascii=False)
            print(line, file=self.stderr)
        self.stderr.flush()

    def emit_json(self, value: Any) -> None:
        """Print ``value`` as JSON on stdout (pretty, coloured on a terminal)."""
        text = json.dumps(value, indent=2 if self.stdout_tty else None, ensure_ascii=False)
        if self.stdout_tty and self._colour:
            from rich.console import Console

            Console(file=self.stdout).print_json(text)
        else:
            print(text, file=self.stdout)
        self.stdout.flush()

    def emit_text(self, text: str) -> None:
        """Print plain text on stdout."""
        print(text, file=self.stdout)
        self.stdout.flush()

    def emit_bytes(self, data: bytes) -> None:
        """Write raw bytes on stdout (a file result)."""
        self.stdout.flush()
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.stdout.write(data.decode("utf-8", "replace"))

    def progress(self) -> progress.ProgressBar | NoProgress:
        """A progress display for a wait (nothing when stderr is not a terminal).

        ``ASYNCREPLY_PROGRESS`` picks the library (``rich``, ``tqdm``, ``plain``; default
        ``auto``); ``NO_COLOR`` means plain text.
        """
        if not self.stderr_tty:
            return NoProgress()
        wanted = self.environ.get("ASYNCREPLY_PROGRESS", "auto").strip().lower()
        choice = PROGRESS_BACKENDS.get(wanted, "auto")
        if self.environ.get("NO_COLOR") and choice == "auto":
            choice = "plain"
        try:
            return progress.ProgressBar(stream=self.stderr, backend=choice)
        except ImportError:  # asked for a library that is not installed
            return progress.ProgressBar(stream=self.stderr, backend="plain")


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
