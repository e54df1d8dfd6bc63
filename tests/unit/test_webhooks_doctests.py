"""The examples in the webhooks package's docstrings run and say what they show."""

from __future__ import annotations

import doctest

import asyncreply_client.webhooks as webhooks
import asyncreply_signing
from asyncreply_client.webhooks import _headers


def _run(module: object, globs: dict[str, object]) -> doctest.TestResults:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, globs=globs):
        runner.run(test)
    return runner.summarize(verbose=False)


def test_the_public_webhooks_examples_run() -> None:
    # Public names report the package as their home, so the package finds them all.
    outcome = _run(webhooks, dict(vars(webhooks)))
    assert outcome.attempted >= 40 and outcome.failed == 0


def test_the_header_reading_examples_run() -> None:
    outcome = _run(_headers, dict(vars(_headers)))
    assert outcome.attempted > 0 and outcome.failed == 0


def test_the_signing_examples_run() -> None:
    outcome = _run(asyncreply_signing, dict(vars(asyncreply_signing)))
    assert outcome.attempted > 0 and outcome.failed == 0
