"""``asyncreply webhook verify``: skipping the timestamp check, and a hint for a body that is
not byte-exact (issue 20.9); non-ASCII header values end in a typed failure (issue 19.9)."""

from __future__ import annotations

import pytest

from asyncreply_client.webhooks import SigningScheme, sign

from .conftest import Cli

# A delivery captured long ago: outside any tolerance.
OLD = 1_600_000_000
BODY = b'{"type": "job.completed", "jobId": "j1", "data": {"status": "succeeded"}}'


def _headers(body: bytes, *, scheme: SigningScheme = "standard") -> list[str]:
    args: list[str] = []
    signed = sign(body, "s3cret", msg_id="msg_old", timestamp=OLD, scheme=scheme)
    for name, value in signed.items():
        args += ["-H", f"{name}: {value}"]
    return args


def test_an_old_delivery_is_stale_by_default(cli: Cli) -> None:
    result = cli("webhook", "verify", "--secret", "s3cret", *_headers(BODY), input=BODY)
    assert result.code == 10
    assert "StaleTimestampError" in result.stderr


@pytest.mark.parametrize("flag", [["--tolerance", "0"], ["--no-timestamp-check"]])
def test_the_timestamp_check_can_be_skipped(cli: Cli, flag: list[str]) -> None:
    result = cli("webhook", "verify", "--secret", "s3cret", *flag, *_headers(BODY), input=BODY)
    assert result.code == 0, result.stderr
    event = result.json()
    assert event["deliveryId"] == "msg_old"
    assert event["status"] == "completed"  # a vendor's word, read through the vocabulary


def test_a_negative_tolerance_is_a_usage_error(cli: Cli) -> None:
    result = cli("webhook", "verify", "--secret", "s3cret", "--tolerance", "-1", input=BODY)
    assert result.code == 2
    assert "--tolerance" in result.stderr


@pytest.mark.parametrize("scheme", ["standard", "hmac-sha256"])
def test_a_trailing_newline_gets_a_byte_exact_hint(cli: Cli, scheme: SigningScheme) -> None:
    args = ["webhook", "verify", "--secret", "s3cret", "--no-timestamp-check"]
    result = cli(*args, *_headers(BODY, scheme=scheme), input=BODY + b"\n")
    assert result.code == 10
    assert "InvalidSignatureError" in result.stderr
    assert "byte-exact" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_tampered_body_gets_no_newline_hint(cli: Cli) -> None:
    args = ["webhook", "verify", "--secret", "s3cret", "--no-timestamp-check"]
    result = cli(*args, *_headers(BODY), input=BODY.replace(b"j1", b"j2") + b"\n")
    assert result.code == 10
    assert "byte-exact" not in result.stderr


def test_a_non_ascii_header_value_is_a_verification_failure(cli: Cli) -> None:
    headers = sign(BODY, "s3cret", msg_id="msg_old", timestamp=OLD, scheme="standard")
    args = ["webhook", "verify", "--secret", "s3cret", "--no-timestamp-check"]
    args += ["-H", "webhook-id: msg_é"]
    args += ["-H", f"webhook-timestamp: {headers['webhook-timestamp']}"]
    args += ["-H", f"webhook-signature: {headers['webhook-signature']}"]
    result = cli(*args, input=BODY)
    assert result.code == 10, result.stderr
    assert "InvalidSignatureError" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
