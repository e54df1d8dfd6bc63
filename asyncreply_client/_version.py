"""The installed distribution's version, read once from its metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

#: The distribution's name on the package index (``pip install asyncreply``).
DISTRIBUTION = "asyncreply"


def _installed_version() -> str:
    # A source tree that was never installed (``PYTHONPATH=.``) has no metadata: say so
    # with a PEP 440 local version rather than failing at import.
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


__version__: str = _installed_version()
