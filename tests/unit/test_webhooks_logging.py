"""The receivers log on the documented ``asyncreply.webhooks`` logger, one record per delivery,
and print nothing in an application that configured no logging (issue 19.14)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from asyncreply_client.webhooks import (
    WebhookCallback,
    WebhookEvent,
    WebhookVerifier,
    handle_webhook,
    sign,
)

NOW = 1_700_000_000
BODY = b'{"type": "job.completed", "jobId": "j1"}'


def _broken(event: WebhookEvent) -> None:
    raise RuntimeError("database down")


def test_an_unconfigured_application_prints_nothing() -> None:
    # Forged, duplicate and failing deliveries: before, each printed a WARNING to stderr
    # through Python's last-resort handler.
    code = textwrap.dedent(
        """
        from asyncreply_client.webhooks import WebhookVerifier, handle_webhook, sign
        body = b'{"type": "job.completed", "jobId": "j1"}'
        verifier = WebhookVerifier("s3cret", clock=lambda: 1_700_000_000)
        good = sign(body, "s3cret", msg_id="m1", timestamp=1_700_000_000)
        forged = sign(body, "other", msg_id="m2", timestamp=1_700_000_000)
        def broken(event):
            raise RuntimeError("database down")
        codes = [
            handle_webhook(verifier, forged, body, {}).status_code,
            handle_webhook(verifier, good, body, {"*": broken}).status_code,
            handle_webhook(verifier, good, body, {}).status_code,
            handle_webhook(verifier, good, body, {}).status_code,
        ]
        print(codes)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[401, 500, 200, 200]"
    assert out.stderr == ""


def test_the_asyncreply_root_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("asyncreply").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


@pytest.mark.parametrize(
    ("case", "level", "message", "status"),
    [
        ("processed", logging.DEBUG, "webhook delivery 'm1' processed", 200),
        ("ignored", logging.DEBUG, "webhook delivery 'm1' ignored", 200),
        ("duplicate", logging.DEBUG, "webhook delivery 'm1' is a duplicate: answered 200", 200),
        ("in progress", logging.INFO, "webhook delivery 'm1' is still being processed", 503),
        ("forged", logging.INFO, "webhook delivery rejected: InvalidSignatureError", 401),
        ("stale", logging.INFO, "webhook delivery rejected: StaleTimestampError", 401),
        ("failed", logging.ERROR, "webhook callback for job.completed (delivery 'm1') failed", 500),
    ],
)
def test_one_record_per_delivery_on_the_documented_logger(
    case: str, level: int, message: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = WebhookVerifier("s3cret", clock=lambda: NOW)
    headers = sign(BODY, "s3cret", msg_id="m1", timestamp=NOW)
    callbacks: dict[str, WebhookCallback] = {"job.completed": lambda event: None}
    if case == "ignored":
        callbacks = {}
    elif case == "duplicate":
        handle_webhook(verifier, headers, BODY, {})
    elif case == "in progress":
        verifier.verify(headers, BODY)  # claimed, not yet processed
    elif case == "forged":
        headers = sign(BODY, "other", msg_id="m1", timestamp=NOW)
    elif case == "stale":
        headers = sign(BODY, "s3cret", msg_id="m1", timestamp=NOW - 3600)
    elif case == "failed":
        callbacks = {"job.completed": _broken}
    with caplog.at_level(logging.DEBUG, logger="asyncreply"):
        answer = handle_webhook(verifier, headers, BODY, callbacks)
    assert answer.status_code == status
    assert [(r.name, r.levelno) for r in caplog.records] == [("asyncreply.webhooks", level)]
    assert caplog.records[0].getMessage().startswith(message)
    assert f"answered {status}" in caplog.records[0].getMessage()
    if case == "duplicate":
        assert "rejected" not in caplog.text
    if case == "failed":
        assert caplog.records[0].exc_info is not None  # the traceback, once


def test_silencing_asyncreply_silences_the_receiver(caplog: pytest.LogCaptureFixture) -> None:
    verifier = WebhookVerifier("s3cret", clock=lambda: NOW)
    forged = sign(BODY, "other", msg_id="m1", timestamp=NOW)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("asyncreply").setLevel(logging.CRITICAL)
    try:
        assert handle_webhook(verifier, forged, BODY, {}).status_code == 401
        assert (
            handle_webhook(
                verifier, sign(BODY, "s3cret", msg_id="m2", timestamp=NOW), BODY, {"*": _broken}
            ).status_code
            == 500
        )
    finally:
        logging.getLogger("asyncreply").setLevel(logging.NOTSET)
    assert [r for r in caplog.records if r.name.startswith("asyncreply")] == []
