"""Shared by the vendor examples: the API's base URL, or a local fake of it.

Each ``examples/<vendor>.py`` runs against the vendor's real API when given its base URL on the
command line, and otherwise against the repository's local fake of that API (``tests/vendors``,
written from the vendor's public documentation) on a free loopback port.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["api"]


@contextlib.contextmanager
def api(argv: list[str], fake: str) -> Iterator[str]:
    """The base URL given on the command line, or the fake named ``fake`` on a free port."""
    if len(argv) > 1:
        yield argv[1]
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.vendors import fakes
    from tests.vendors._base import serving_in_thread

    with serving_in_thread(getattr(fakes, fake)()) as url:
        yield url
