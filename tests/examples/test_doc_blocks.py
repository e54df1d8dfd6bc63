"""Every ```python block of README.md and docs/guide.md runs, as a reader would run it, against
a real reference server, so the docs cannot rot.

Convention (docs/guide.md, "Code in this guide"): a block addresses the server as
``http://127.0.0.1:8080`` (rewritten here to the live server's URL); each block is
self-contained (its own imports; async code inside ``asyncio.run(main())``); a block that cannot
run stand-alone is preceded by a line ``<!-- doc-test: skip (reason) -->``. Each block runs in
a process of its own (a fork of one that imported the SDK, ``tests/forked.py``), so logging
set-ups and event loops do not leak from one into the next.
A block that talks to a vendor (the "Using it with ..." recipes) runs against that vendor's
local fake (``tests/vendors``): its base URL is rewritten to the fake's and its API key set.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.forked import Zygote

from .conftest import program_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "docs" / "guide.md")
DOC_URL = "http://127.0.0.1:8080"
BLOCK_TIMEOUT = 50

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")
_SKIP = re.compile(r"^\s*<!-- doc-test: skip \((?P<reason>.*\S.*)\) -->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced python block: where it is, its code, and why it is skipped (if it is)."""

    path: Path
    line: int
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks_of(path: Path) -> Iterator[Block]:
    """The ```python blocks of a Markdown file (indented ones, inside lists, too)."""
    lines = path.read_text("utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        indent = fence.group("indent")
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{path.name}:{index + 1}: unclosed ```python block"
        before = next((text for text in reversed(lines[:index]) if text.strip()), "")
        skip = _SKIP.match(before)
        body = [text.removeprefix(indent) for text in lines[index + 1 : end]]
        yield Block(
            path,
            index + 1,
            textwrap.dedent("\n".join(body)) + "\n",
            skip.group("reason") if skip else None,
        )
        index = end + 1


ALL_BLOCKS = [block for path in DOCS for block in blocks_of(path)]

# Vendor base URL -> (the fake's class name in tests.vendors.fakes, the API key's variable).
VENDORS = {
    "https://api.replicate.com": ("Replicate", "REPLICATE_API_TOKEN"),
    "https://queue.fal.run": ("Fal", "FAL_KEY"),
    "https://rest.fal.ai": ("Fal", "FAL_KEY"),  # fal's webhook keys (JWKS)
    "https://api.runpod.ai": ("RunPod", "RUNPOD_API_KEY"),
    "https://api.openai.com": ("OpenAIBatch", "OPENAI_API_KEY"),
    "https://api.assemblyai.com": ("AssemblyAI", "ASSEMBLYAI_API_KEY"),
}


@contextlib.contextmanager
def vendor_fake(code: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The block's code with a vendor's URLs (its base URL, or a URL under it) pointed at its
    local fake, and the variables the block reads; the code unchanged when it names no
    vendor."""
    found = [(url, vendor) for url, vendor in VENDORS.items() if f'"{url}' in code]
    if not found:
        yield code, {}
        return
    (url, (name, variable)), *_ = found
    from tests.vendors import fakes
    from tests.vendors._base import serving_in_thread

    with serving_in_thread(getattr(fakes, name)()) as fake_url:
        yield code.replace(f'"{url}', f'"{fake_url}'), {variable: "test-key"}


@dataclass(frozen=True)
class Ran:
    """How a block's process ended."""

    returncode: int
    stdout: str
    stderr: str


def run_block(
    zygote: Zygote,
    code: str,
    base_url: str,
    cwd: Path,
    variables: dict[str, str] | None = None,
) -> Ran:
    """Run ``code`` in a process of its own, with the server's URL in place of the docs' one."""
    code = code.replace(DOC_URL, base_url)
    env = program_env(variables)
    status, out, err = zygote.run_code(code, env=env, cwd=cwd, timeout=BLOCK_TIMEOUT)
    return Ran(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    from reference_server import ServerConfig, ServerThread

    with ServerThread(ServerConfig(port=0, workers=8)) as running:
        yield running.base_url


def test_the_docs_have_blocks_and_few_are_skipped() -> None:
    by_file = {path.name: [b for b in ALL_BLOCKS if b.path == path] for path in DOCS}
    assert all(by_file.values()), {name: len(found) for name, found in by_file.items()}
    skipped = [b.id for b in ALL_BLOCKS if b.skip is not None]
    assert len(skipped) * 4 <= len(ALL_BLOCKS), f"too many skipped blocks: {skipped}"


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_block_runs(block: Block, server_url: str, tmp_path: Path, zygote: Zygote) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    with vendor_fake(block.code) as (code, variables):
        done = run_block(zygote, code, server_url, tmp_path, variables)
    assert done.returncode == 0, f"{block.id} failed:\n{block.code}\n--- stderr:\n{done.stderr}"


def test_the_readme_prints_states_and_progress_as_words(
    server_url: str, tmp_path: Path, zygote: Zygote
) -> None:
    # `print(status.state, status.progress)`: `processing 2/4 (50%) step 2/4`, not an enum
    # repr and floats (`JobState.PROCESSING current=2.0 total=4.0 ...`).
    first = next(b for b in ALL_BLOCKS if b.path.name == "README.md" and "watch(" in b.code)
    done = run_block(zygote, first.code, server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "JobState" not in done.stdout and "current=" not in done.stdout, done.stdout
    assert re.search(r"^processing ([1-4])/4 \(\d+%\) step \1/4$", done.stdout, re.M), done.stdout
    assert re.search(r"^completed 4/4 \(100%\) step 4/4$", done.stdout, re.M), done.stdout


def test_a_skip_marker_needs_a_reason(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- doc-test: skip (needs a vendor account) -->\n\n```python\nx = 1\n```\n\n"
        "- a list item:\n\n  ```python\n  y = 2\n  ```\n\n<!-- doc-test: skip () -->\n"
        "```python\nz = 3\n```\n"
    )
    found = list(blocks_of(doc))
    assert [(b.line, b.code, b.skip) for b in found] == [
        (3, "x = 1\n", "needs a vendor account"),
        (9, "y = 2\n", None),
        (14, "z = 3\n", None),
    ]


def test_the_logging_recipe_logs_each_request_once_and_no_secret(
    server_url: str, tmp_path: Path, zygote: Zygote
) -> None:
    # The guide's §11 snippet, then a job whose URL carries a secret: the asyncreply loggers
    # show each request once, redacted; httpx's own logger (full URLs) stays silent.
    recipe = next(
        b for b in ALL_BLOCKS if b.path.name == "guide.md" and 'getLogger("asyncreply")' in b.code
    )
    program = recipe.code + textwrap.dedent(
        """
        from asyncreply_client import Client

        with Client("http://127.0.0.1:8080") as client:
            client.run("/jobs?api_key=s3cr3t-k3y", json={"type": "echo", "input": {}}, timeout=30)
        """
    )
    done = run_block(zygote, program, server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "s3cr3t-k3y" not in done.stderr, done.stderr
    posts = [line for line in done.stderr.splitlines() if "POST " in line]
    assert len(posts) == 1, done.stderr
    assert posts[0].startswith("asyncreply.client"), posts
    assert not [line for line in done.stderr.splitlines() if line.startswith("httpx")]
