"""The examples' and the documentation blocks' programs run as forks of one zygote
(``tests/forked.py``) that imported the SDK and the reference server once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.forked import ROOT, Zygote


def program_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``PYTEST_*`` and ``ASYNCREPLY_*``, the repository
    first on ``PYTHONPATH``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ASYNCREPLY_"))}
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    """Programs run as forks of this process, which imported the SDK once."""
    preload = ["asyncreply_client", "asyncreply_client.webhooks", "reference_server"]
    started = Zygote(preload, program_env())
    try:
        yield started
    finally:
        started.close()
