"""A ready progress display for waits: pass a :class:`ProgressBar` as ``on_progress=``.

It draws with rich (the ``asyncreply[cli]`` extra) or tqdm when either is installed, and with
plain text otherwise; on a stream that is not a terminal it prints one line per change instead
of redrawing. It works with :class:`~asyncreply_client.Client` and
:class:`~asyncreply_client.AsyncClient` alike (the callback is a plain function).

Example:
    >>> from asyncreply_client import Client
    >>> from asyncreply_client.progress import ProgressBar
    >>> with Client("http://127.0.0.1:8080") as client, ProgressBar() as bar:  # doctest: +SKIP
    ...     op = client.submit("/jobs", json={"type": "sleep", "input": {"seconds": 2}})
    ...     print(op.result(timeout=30, on_progress=bar))
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any, Literal, Protocol

from ._models import JobState, JobStatus

__all__ = ["Backend", "ProgressBar", "describe", "format_eta", "remaining_seconds"]

#: Which library draws the bar; ``"auto"`` picks rich, then tqdm, then plain text.
Backend = Literal["auto", "rich", "tqdm", "plain"]

_BACKENDS: tuple[str, ...] = ("auto", "rich", "tqdm", "plain")


def describe(status: JobStatus) -> str:
    """The server's progress message, or the state's name when it sent none.

    Example:
        >>> describe(JobStatus(state=JobState.PENDING))
        'pending'
    """
    message = status.progress.message if status.progress is not None else None
    return message or status.state.value


def remaining_seconds(status: JobStatus) -> float | None:
    """Seconds left by the server's estimate, or ``None`` without one.

    ``estimated_remaining`` is measured against the response's own ``Date``, so it does not
    suffer from clock skew between server and client; ``estimated_completion`` against the
    local clock is the fallback.
    """
    if status.estimated_remaining is not None:
        return max(0.0, status.estimated_remaining)
    estimate = status.estimated_completion
    if estimate is None:
        return None
    if estimate.tzinfo is None:
        estimate = estimate.replace(tzinfo=timezone.utc)
    return max(0.0, (estimate - datetime.now(timezone.utc)).total_seconds())


def format_eta(seconds: float | None) -> str:
    """``ETA 1m05s`` / ``ETA 12s`` / ``ETA now``, or ``""`` without an estimate.

    Example:
        >>> format_eta(65), format_eta(12.2), format_eta(0.1), format_eta(None)
        ('ETA 1m05s', 'ETA 12s', 'ETA now', '')
    """
    if seconds is None:
        return ""
    if seconds < 0.5:
        return "ETA now"
    minutes, secs = divmod(round(seconds), 60)
    return f"ETA {minutes}m{secs:02d}s" if minutes else f"ETA {secs}s"


def _fraction(status: JobStatus) -> float | None:
    if status.state is JobState.COMPLETED:
        return 1.0
    return status.progress.fraction if status.progress is not None else None


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class _Display(Protocol):
    def update(self, status: JobStatus) -> None: ...

    def close(self) -> None: ...


class _PlainBar:
    """A one-line text bar redrawn in place (``\\r``) on a terminal."""

    WIDTH = 30

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._shown = False

    def update(self, status: JobStatus) -> None:
        fraction = _fraction(status)
        if fraction is None:
            bar, percent = "[" + "?" * self.WIDTH + "]", "   ?%"
        else:
            filled = round(fraction * self.WIDTH)
            bar = "[" + "#" * filled + "-" * (self.WIDTH - filled) + "]"
            percent = f"{fraction * 100:4.0f}%"
        eta = format_eta(remaining_seconds(status))
        line = f"{bar} {percent} {describe(status)} {eta}".rstrip()
        self._stream.write("\r" + line[:120].ljust(80))
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


class _PlainLines:
    """One line per change, for logs and pipes (no ``\\r``, no escape sequences)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last: tuple[str, float | None, str] | None = None

    def update(self, status: JobStatus) -> None:
        fraction = _fraction(status)
        key = (status.state.value, fraction, describe(status))
        if key == self._last:
            return
        self._last = key
        percent = "" if fraction is None else f"{fraction * 100:.0f}% "
        eta = format_eta(remaining_seconds(status))
        self._stream.write(f"{percent}{describe(status)} {eta}".rstrip() + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Nothing to finish: every line is complete."""


class _RichBar:
    """rich's live bar: the server's message, the bar, the percentage and an ETA that counts
    down from the server's estimate between updates (rich's own estimate without one)."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            Task,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class ServerEta(TimeRemainingColumn):
            def render(self, task: Task) -> Text:
                if task.finished:
                    return Text("done", style="progress.remaining")
                ends_at = task.fields.get("ends_at")
                if isinstance(ends_at, float):
                    left = ends_at - time.monotonic()
                    return Text(format_eta(max(0.0, left)), style="progress.remaining")
                return super().render(task)

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            ServerEta(),
            console=Console(file=stream),
            transient=False,
        )
        self._task = self._progress.add_task("submitted", total=None, ends_at=None)
        self._progress.start()

    def update(self, status: JobStatus) -> None:
        fraction = _fraction(status)
        remaining = remaining_seconds(status)
        self._progress.update(
            self._task,
            description=describe(status),
            total=None if fraction is None else 1.0,
            completed=fraction or 0.0,
            ends_at=None if remaining is None else time.monotonic() + remaining,
            refresh=True,  # a status is news: draw it now, not at the next periodic refresh
        )

    def close(self) -> None:
        self._progress.stop()


_TQDM_FORMAT = "{desc} {percentage:3.0f}%|{bar}| "


class _TqdmBar:
    """tqdm's bar, counting percent; the message is its description, then the ETA."""

    def __init__(self, stream: IO[str]) -> None:
        from tqdm import tqdm

        size = shutil.get_terminal_size()
        self._bar: Any = tqdm(
            total=100,
            file=stream,
            bar_format=_TQDM_FORMAT,
            leave=True,
            # tqdm hides its bar on a terminal that reports a size of 0 x 0 (some ptys, CI
            # runners): ask for the size once, with the usual 80 x 24 fallback.
            ncols=size.columns or 80,
            nrows=size.lines or 24,
        )

    def update(self, status: JobStatus) -> None:
        fraction = _fraction(status)
        self._bar.n = round((fraction or 0.0) * 100, 1)
        self._bar.set_description_str(describe(status), refresh=False)
        # The ETA goes in the format itself: tqdm's postfix would prefix it with ", ".
        self._bar.bar_format = _TQDM_FORMAT + format_eta(remaining_seconds(status))
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


class ProgressBar:
    """A progress display to pass as ``on_progress=`` (sync or async client).

    Nothing is drawn until the first status arrives; :meth:`close` (or leaving a ``with`` /
    ``async with`` block) finishes the display. Calling it after :meth:`close` starts a new
    display.

    Args:
        stream: where to draw (default ``sys.stderr``, so stdout stays clean for results).
        backend: ``"auto"`` (rich, then tqdm, then plain text; plain lines when ``stream``
            is not a terminal), or one of ``"rich"``, ``"tqdm"``, ``"plain"``.

    Raises:
        ValueError: an unknown ``backend``.
        ImportError: ``"rich"`` or ``"tqdm"`` asked for but not installed.

    Attributes:
        backend: what draws: ``"rich"``, ``"tqdm"``, ``"plain"`` (a bar redrawn in place), or
            ``"lines"`` (one line per change, chosen by ``"auto"`` off a terminal).

    Example:
        >>> import io
        >>> from asyncreply_client import JobStatus, JobState, Progress
        >>> out = io.StringIO()
        >>> with ProgressBar(stream=out) as bar:
        ...     bar(JobStatus(state=JobState.PROCESSING, progress=Progress(current=1, total=4)))
        ...     bar(JobStatus(state=JobState.COMPLETED))
        >>> print(out.getvalue(), end="")
        25% processing
        100% completed
    """

    def __init__(self, *, stream: IO[str] | None = None, backend: Backend = "auto") -> None:
        if backend not in _BACKENDS:
            raise ValueError(f"unknown progress backend {backend!r}; expected one of {_BACKENDS}")
        self._stream = stream
        self.backend: str = self._choose(backend)
        self._display: _Display | None = None

    @property
    def stream(self) -> IO[str]:
        """Where the bar is drawn."""
        return self._stream if self._stream is not None else sys.stderr

    def _choose(self, backend: Backend) -> str:
        if backend == "rich" and not _rich_available():
            raise ImportError("the rich progress backend needs `pip install asyncreply[cli]`")
        if backend == "tqdm" and not _tqdm_available():
            raise ImportError("the tqdm progress backend needs `pip install tqdm`")
        if backend != "auto":
            return backend
        if not _isatty(self.stream):
            return "lines"
        if _rich_available():
            return "rich"
        if _tqdm_available():
            return "tqdm"
        return "plain"

    def _open(self) -> _Display:
        stream = self.stream
        if self.backend == "rich":
            return _RichBar(stream)
        if self.backend == "tqdm":
            return _TqdmBar(stream)
        if self.backend == "plain" and _isatty(stream):
            return _PlainBar(stream)
        return _PlainLines(stream)

    def __call__(self, status: JobStatus) -> None:
        """Show a new status snapshot (the ``on_progress`` callback)."""
        if self._display is None:
            self._display = self._open()
        self._display.update(status)

    update = __call__

    def close(self) -> None:
        """Finish the display (a final newline, stop rich's live refresh); idempotent."""
        display, self._display = self._display, None
        if display is not None:
            display.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ProgressBar:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
