"""Packaging: every third-party module the code imports is a declared dependency, development
tools stay out of the published extras (a PEP 735 group instead), the Makefile installs that
group, and ``__version__`` comes from the metadata with a fallback."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("asyncreply_client", "asyncreply_signing", "reference_server")

# Imported but deliberately not declared, with the reason.
UNDECLARED_ON_PURPOSE = {
    "pytest": "imported only by the pytest plugin, which only pytest itself loads",
    "tqdm": "an optional progress backend, used only when the user installed it",
}

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imported_top_level_modules(*folders: str) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    local = {*PACKAGES, "tests", "benchmarks", "examples", "__future__"}
    # A script's sibling module (examples/_vendor_fake.py), imported as scripts import them.
    local |= {path.stem for folder in folders for path in (ROOT / folder).glob("*.py")}
    return found - set(sys.stdlib_module_names) - local


def _declared(*, dev: bool) -> set[str]:
    project = PYPROJECT["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra if not r.startswith("asyncreply")}
    if dev:
        group = PYPROJECT["dependency-groups"]["dev"]
        declared |= {_name(r) for r in group if isinstance(r, str)}
    return declared


def _undeclared(modules: set[str], declared: set[str], allowed: set[str]) -> list[str]:
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(modules - allowed):
        names = {_name(d) for d in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (distribution {', '.join(sorted(names))})")
    return missing


def test_every_third_party_module_the_packages_import_is_declared() -> None:
    modules = _imported_top_level_modules(*PACKAGES)
    missing = _undeclared(modules, _declared(dev=False), set(UNDECLARED_ON_PURPOSE))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_module_the_tests_benchmarks_and_examples_import_is_installed_by_make() -> None:
    modules = _imported_top_level_modules("tests", "benchmarks", "examples")
    missing = _undeclared(modules, _declared(dev=True), set())
    assert not missing, f"imported but not in an extra or the dev group: {missing}"


def test_anyio_is_a_core_dependency() -> None:
    assert "anyio" in {_name(r) for r in PYPROJECT["project"]["dependencies"]}


def test_development_tools_are_a_dependency_group_not_an_extra() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "dev" not in extras
    published = {_name(r) for requirements in extras.values() for r in requirements}
    tools = {"pytest", "pytest-timeout", "hypothesis", "ruff", "mypy"}
    assert not published & tools
    group = {_name(r) for r in PYPROJECT["dependency-groups"]["dev"] if isinstance(r, str)}
    assert tools <= group


def test_the_makefile_installs_the_dev_group_with_a_recent_pip() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert re.search(r"pip install .*--upgrade 'pip>=25\.1'", makefile)
    assert re.search(r"pip install .*-e '\.\[server,cli,testing\]' --group dev", makefile)
    assert ".[dev]" not in makefile


def test_version_falls_back_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncreply_client import _version

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    try:
        assert importlib.reload(_version).__version__ == "0+unknown"
    finally:
        monkeypatch.undo()
        importlib.reload(_version)
    assert _version.__version__ == importlib.metadata.version("asyncreply")
