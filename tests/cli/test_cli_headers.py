"""The command line's ``-H`` headers that cannot be sent are usage errors (exit 2, one line
naming the header), not a ``UnicodeEncodeError`` (issue 19 item 9); ``webhook verify``'s are
headers as received, judged by the verifier (exit 10)."""

from __future__ import annotations

import pytest

from .conftest import Cli

# Nothing listens on port 9 (discard): no request may be sent anyway.
NOWHERE = "http://127.0.0.1:9/jobs/1"


@pytest.mark.parametrize("header", ["X-Trace: café", "X-Tracé: 1"])
@pytest.mark.parametrize(
    ("command", "code"),
    [(("status", NOWHERE), 2), (("webhook", "verify", "--secret", "s3cret"), 10)],
    ids=["status", "webhook-verify"],
)
def test_a_header_that_cannot_be_sent_is_a_usage_error(
    cli: Cli, command: tuple[str, ...], code: int, header: str
) -> None:
    result = cli(*command, "-H", header, input=b"{}")
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr and "UnicodeEncodeError" not in result.stderr
    # status names the header it cannot send; verify judges the delivery (unsigned here).
    assert ("X-Trac" if code == 2 else "MissingHeaderError") in result.stderr


def test_an_environment_header_that_cannot_be_sent_is_a_usage_error(cli: Cli) -> None:
    result = cli("status", NOWHERE, env={"ASYNCREPLY_HEADERS": '{"X-Trace": "caf\\u00e9"}'})
    assert result.code == 2, result.stderr
    assert "'X-Trace'" in result.stderr and "Traceback" not in result.stderr
