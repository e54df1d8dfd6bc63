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


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--token", "é"), {}, "--token"),
        (("--token", "a\nb"), {}, "--token"),
        ((), {"ASYNCREPLY_TOKEN": "tok\u00e9n"}, "ASYNCREPLY_TOKEN"),
    ],
    ids=["--token", "--token-newline", "ASYNCREPLY_TOKEN"],
)
def test_a_token_that_cannot_be_sent_is_a_usage_error(
    cli: Cli, args: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    result = cli("status", NOWHERE, *args, env=env)
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asyncreply: error: "), result.stderr
    assert named in lines[0] and "unexpected" not in lines[0], lines[0]
    assert "é" not in lines[0]  # a credential's value is never shown


def test_an_accept_encoding_the_client_cannot_decode_is_a_usage_error(cli: Cli) -> None:
    result = cli("status", NOWHERE, "-H", "Accept-Encoding: br")
    assert result.code == 2, result.stderr
    assert "Accept-Encoding" in result.stderr and "supported: gzip" in result.stderr
