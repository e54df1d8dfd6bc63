"""The reference server signs webhooks without loading the client SDK (issue 12).

``asyncreply_signing`` imports only the standard library; the server and the SDK's
``asyncreply_client.webhooks`` share its :func:`sign`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import asyncreply_signing
from asyncreply_client import webhooks


def _modules_after_import(module: str) -> list[str]:
    code = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(out.stdout)
    assert isinstance(loaded, list)
    return loaded


def test_importing_the_server_loads_no_client_module() -> None:
    loaded = _modules_after_import("reference_server.app")
    assert "reference_server.webhooks" in loaded
    assert "asyncreply_signing" in loaded
    assert [
        m for m in loaded if m == "asyncreply_client" or m.startswith("asyncreply_client.")
    ] == []


def test_the_signing_package_imports_only_the_standard_library() -> None:
    loaded = set(_modules_after_import("asyncreply_signing"))
    third_party = {"pydantic", "httpx", "aiohttp", "tenacity", "asyncreply_client"}
    assert not loaded & third_party


def test_client_and_server_share_one_signer() -> None:
    from reference_server import webhooks as server_webhooks

    assert webhooks.sign is asyncreply_signing.sign
    assert server_webhooks.sign is asyncreply_signing.sign
