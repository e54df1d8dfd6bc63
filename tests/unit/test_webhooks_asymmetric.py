"""Ed25519 webhook signatures: Standard Webhooks ``v1a`` (``whpk_`` / ``whsk_`` keys), JWKS key
sets with rotation, fal.ai's scheme, the published vectors, and the optional extra (issue 17.7)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks.webhooks import Webhook

from asyncreply_client._models import JobState
from asyncreply_client.dialects import parse_state
from asyncreply_client.webhooks import (
    InvalidSignatureError,
    JwksKeySet,
    MalformedHeaderError,
    MissingExtraError,
    WebhookVerifier,
    ed25519_public_key,
    sign,
)
from asyncreply_client.webhooks._asymmetric import verify_ed25519
from asyncreply_client.webhooks._parsing import parse_standard_signatures
from tests.unit.webhook_vectors import (
    RFC8032,
    RFC8037_JWK,
    RFC8037_SIGNATURE,
    RFC8037_SIGNING_INPUT,
    SPEC_EXAMPLE_SIGNATURE,
    STANDARD_V1,
    STANDARD_WRONG,
)

NOW = 1_700_000_000
BODY = b'{"type": "job.completed", "jobId": "j1", "data": {"status": "succeeded"}}'


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _whsk(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return "whsk_" + _b64(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def _jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": _b64url(_raw_public(key))}


# --------------------------------------------------------------------------------------------
# Published vectors


@pytest.mark.parametrize("vector", STANDARD_V1, ids=lambda v: v.msg_id)
def test_standard_webhooks_v1_vectors(vector: Any) -> None:
    headers = sign(
        vector.payload,
        vector.secret,
        msg_id=vector.msg_id,
        timestamp=vector.timestamp,
        scheme="standard",
    )
    assert headers["webhook-signature"] == vector.signature
    verifier = WebhookVerifier(vector.secret, clock=lambda: vector.timestamp)
    # The Rust suite's multi-signature header: decoys around the real one.
    headers["webhook-signature"] = " ".join([*STANDARD_WRONG[1:3], vector.signature])
    assert verifier.verify(headers, vector.payload).delivery_id == vector.msg_id
    headers["webhook-signature"] = " ".join(STANDARD_WRONG)
    with pytest.raises(InvalidSignatureError):
        WebhookVerifier(vector.secret, clock=lambda: vector.timestamp).verify(
            headers, vector.payload
        )


def test_the_spec_example_header_holds_one_v1_and_one_v1a_signature() -> None:
    v1, v1a = parse_standard_signatures(SPEC_EXAMPLE_SIGNATURE)
    assert [len(s) for s in v1] == [32] and [len(s) for s in v1a] == [64]


@pytest.mark.parametrize("vector", RFC8032, ids=["test1", "test2"])
def test_whsk_and_whpk_keys_follow_rfc8032(vector: Any) -> None:
    seed, public = bytes.fromhex(vector.seed), bytes.fromhex(vector.public)
    assert ed25519_public_key("whsk_" + _b64(seed)) == "whpk_" + _b64(public)
    # libsodium's 64-byte form (seed, then public key) is accepted too, and checked.
    assert ed25519_public_key("whsk_" + _b64(seed + public)) == "whpk_" + _b64(public)
    with pytest.raises(ValueError, match="public half"):
        ed25519_public_key("whsk_" + _b64(seed + bytes(32)))
    verifier = WebhookVerifier("whpk_" + _b64(public))
    keys = list(verifier._public)
    assert verify_ed25519(keys, [bytes.fromhex(vector.signature)], bytes.fromhex(vector.message))
    assert not verify_ed25519(keys, [bytes.fromhex(vector.signature)], b"other")


def test_a_jwks_key_follows_rfc8037() -> None:
    key_set = JwksKeySet({"keys": [{**RFC8037_JWK, "kid": "rfc"}]})
    signature = base64.urlsafe_b64decode(RFC8037_SIGNATURE + "==")
    assert key_set.kids == ("rfc",)
    assert verify_ed25519(key_set.keys("rfc"), [signature], RFC8037_SIGNING_INPUT)


# --------------------------------------------------------------------------------------------
# Standard Webhooks v1a


def test_v1a_signed_with_whsk_verifies_with_whpk() -> None:
    key = Ed25519PrivateKey.generate()
    headers = sign(BODY, _whsk(key), msg_id="msg_a", timestamp=NOW, scheme="standard")
    assert headers["webhook-signature"].startswith("v1a,")
    verifier = WebhookVerifier(ed25519_public_key(_whsk(key)), clock=lambda: NOW)
    event = verifier.verify(headers, BODY)
    assert (event.delivery_id, event.scheme, event.status) == (
        "msg_a",
        "standard",
        JobState.COMPLETED,
    )
    other = ed25519_public_key(_whsk(Ed25519PrivateKey.generate()))
    with pytest.raises(InvalidSignatureError):
        WebhookVerifier(other, clock=lambda: NOW).verify(headers, BODY)
    tampered = BODY.replace(b"j1", b"j2")
    with pytest.raises(InvalidSignatureError):
        WebhookVerifier(ed25519_public_key(_whsk(key)), clock=lambda: NOW).verify(headers, tampered)


def test_a_hmac_only_verifier_says_a_v1a_delivery_has_no_v1_signature() -> None:
    key = Ed25519PrivateKey.generate()
    headers = sign(BODY, _whsk(key), msg_id="msg_a", timestamp=NOW, scheme="standard")
    with pytest.raises(InvalidSignatureError, match="no v1 signature"):
        WebhookVerifier("whsec_c2VjcmV0", clock=lambda: NOW).verify(headers, BODY)


def test_whsk_signs_only_the_standard_scheme() -> None:
    with pytest.raises(ValueError, match="scheme"):
        sign(BODY, _whsk(Ed25519PrivateKey.generate()), msg_id="m", timestamp=NOW)


def test_v1_and_v1a_side_by_side_interoperate_with_standardwebhooks() -> None:
    # A sender migrating to asymmetric keys sends both; each receiver checks what it knows.
    key = Ed25519PrivateKey.generate()
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    import time

    now = int(time.time())  # standardwebhooks checks against the real clock
    v1 = sign(BODY, secret, msg_id="msg_b", timestamp=now, scheme="standard")
    v1a = sign(BODY, _whsk(key), msg_id="msg_b", timestamp=now, scheme="standard")
    headers = {**v1, "webhook-signature": f"{v1a['webhook-signature']} {v1['webhook-signature']}"}
    assert Webhook(secret).verify(BODY, headers)["jobId"] == "j1"
    # The same call shape as the peer: verify(payload, headers).
    ours = WebhookVerifier(ed25519_public_key(_whsk(key)), clock=lambda: now)
    assert ours.verify(BODY, headers).delivery_id == "msg_b"
    both = WebhookVerifier([secret, ed25519_public_key(_whsk(key))], clock=lambda: now)
    assert both.verify(payload=BODY, headers=headers).job_id == "j1"


@pytest.mark.parametrize(
    "bad", ["whpk_not*base64", "whpk_" + _b64(b"short"), "whpk_"], ids=["b64", "len", "empty"]
)
def test_a_bad_public_key_is_refused_at_construction(bad: str) -> None:
    with pytest.raises(ValueError, match="whpk_"):
        WebhookVerifier(bad)


# --------------------------------------------------------------------------------------------
# JWKS key sets and rotation by kid


class _KeyServer:
    """The sender's JWKS, as its fetch function sees it; counts fetches."""

    def __init__(self, *jwks: dict[str, str]) -> None:
        self.document: dict[str, Any] = {"keys": list(jwks)}
        self.fetches = 0
        self.fail = False

    def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        if self.fail:
            raise ConnectionError("key server down")
        return json.loads(json.dumps(self.document))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_rotated_key_is_fetched_once_and_then_accepted(caplog: pytest.LogCaptureFixture) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    server, clock = _KeyServer(_jwk(old, "k1")), _Clock()
    key_set = JwksKeySet(fetch=server, min_refresh_interval=60, clock=clock)
    verifier = WebhookVerifier(key_set, clock=lambda: NOW, replay_store=None)
    assert server.fetches == 1 and key_set.kids == ("k1",)
    by_old = sign(BODY, _whsk(old), msg_id="m1", timestamp=NOW, scheme="standard")
    assert verifier.verify(by_old, BODY).delivery_id == "m1"
    assert server.fetches == 1  # a known key: no fetch

    server.document["keys"].append(_jwk(new, "k2"))  # the sender rotates
    clock.now = 61
    by_new = sign(BODY, _whsk(new), msg_id="m2", timestamp=NOW, scheme="standard")
    assert verifier.verify(by_new, BODY).delivery_id == "m2"
    assert server.fetches == 2 and key_set.kids == ("k1", "k2")

    # Forgeries cannot make the receiver hammer the key server.
    forged = sign(
        BODY, _whsk(Ed25519PrivateKey.generate()), msg_id="f", timestamp=NOW, scheme="standard"
    )
    for _ in range(3):
        with pytest.raises(InvalidSignatureError):
            verifier.verify(forged, BODY)
    assert server.fetches == 2

    # A failed reload keeps the keys it had, and says so once.
    server.fail, clock.now = True, 200
    with (
        caplog.at_level(logging.WARNING, logger="asyncreply.webhooks"),
        pytest.raises(InvalidSignatureError),
    ):
        verifier.verify(forged, BODY)
    assert server.fetches == 3 and key_set.kids == ("k1", "k2")
    assert [r.getMessage() for r in caplog.records] == [
        "reloading the JWKS failed (ConnectionError); keeping 2 key(s)"
    ]
    assert verifier.verify(by_old, BODY).delivery_id == "m1"


def test_keys_older_than_max_age_are_reloaded_before_use() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    server, clock = _KeyServer(_jwk(old, "k1")), _Clock()
    key_set = JwksKeySet(fetch=server, max_age=3600, min_refresh_interval=60, clock=clock)
    server.document["keys"] = [_jwk(new, "k2")]  # the old key is withdrawn
    clock.now = 3600
    assert len(key_set.keys()) == 1 and key_set.kids == ("k2",)
    assert server.fetches == 2


def test_a_kid_selects_its_key_and_other_keys_are_skipped() -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    document = {
        "keys": [
            _jwk(first, "a"),
            {"kty": "RSA", "kid": "rsa", "n": "x", "e": "AQAB"},
            {**_jwk(second, "enc"), "use": "enc"},
            {k: v for k, v in _jwk(second, "b").items() if k != "kid"},
        ]
    }
    key_set = JwksKeySet(json.dumps(document))
    assert key_set.kids == ("a", "#3")
    assert len(key_set.keys("a")) == 1 and len(key_set.keys("unknown")) == 2


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ("not json", "not JSON"),
        ({"keys": "nope"}, '"keys" list'),
        ({"keys": [1]}, "not an object"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519"}]}, '"x"'),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}, "32 bytes"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "***"}]}, "base64"),
    ],
)
def test_a_bad_jwks_document_is_refused_with_the_reason(document: Any, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        JwksKeySet(document)
    with pytest.raises(ValueError, match="document or a fetch"):
        JwksKeySet()


@pytest.fixture
def jwks_url() -> Iterator[tuple[str, Ed25519PrivateKey]]:
    key = Ed25519PrivateKey.generate()
    body = json.dumps({"keys": [_jwk(key, "fal-1")]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------------------------
# fal.ai: Ed25519 over "request_id\nuser_id\ntimestamp\nsha256(body)", keys from its JWKS


def _fal_headers(
    key: Ed25519PrivateKey, body: bytes, *, request_id: str = "req-1"
) -> dict[str, str]:
    # What fal's docs ("Verifying your webhook") say the sender does.
    message = "\n".join([request_id, "user-7", str(NOW), hashlib.sha256(body).hexdigest()]).encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-7",
        "X-Fal-Webhook-Timestamp": str(NOW),
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


FAL_OK = (
    b'{"request_id": "req-1", "gateway_request_id": "req-1", "status": "OK", '
    b'"payload": {"images": []}}'
)
FAL_ERROR = (
    b'{"request_id": "req-2", "status": "ERROR", "error": "Invalid status code: 422", '
    b'"payload": null}'
)


def test_a_fal_delivery_verifies_with_keys_fetched_from_its_jwks_url(
    jwks_url: tuple[str, Ed25519PrivateKey],
) -> None:
    url, key = jwks_url
    verifier = WebhookVerifier(
        JwksKeySet.from_url(url), states={"OK": "completed"}, clock=lambda: NOW
    )
    event = verifier.verify(_fal_headers(key, FAL_OK), FAL_OK)
    assert (event.scheme, event.delivery_id, event.job_id, event.status) == (
        "fal",
        "req-1",
        "req-1",
        JobState.COMPLETED,
    )
    failed = verifier.verify(_fal_headers(key, FAL_ERROR, request_id="req-2"), FAL_ERROR)
    assert failed.status is JobState.FAILED


def test_a_tampered_or_malformed_fal_delivery_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = WebhookVerifier(JwksKeySet({"keys": [_jwk(key, "k")]}), clock=lambda: NOW)
    headers = _fal_headers(key, FAL_OK)
    with pytest.raises(InvalidSignatureError):
        verifier.verify(headers, FAL_OK.replace(b"OK", b"KO"))
    with pytest.raises(MalformedHeaderError, match="hex"):
        verifier.verify({**headers, "X-Fal-Webhook-Signature": "zz"}, FAL_OK)
    with pytest.raises(InvalidSignatureError, match="JWKS"):
        WebhookVerifier("whsec_c2VjcmV0", clock=lambda: NOW).verify(headers, FAL_OK)


# --------------------------------------------------------------------------------------------
# The state vocabulary is the dialects' one (or the caller's in front of it)


@pytest.mark.parametrize(
    "word", ["succeeded", "COMPLETED", "canceled", "TIMED_OUT", "processing", "IN_QUEUE", "OK"]
)
def test_event_states_read_through_the_dialects_vocabulary(word: str) -> None:
    body = json.dumps({"type": "job.updated", "jobId": "j", "data": {"status": word}}).encode()
    headers = sign(body, "s3cret", msg_id=f"m-{word}", timestamp=NOW)
    event = WebhookVerifier("s3cret", clock=lambda: NOW).verify(headers, body)
    assert event.status == (parse_state(word) or word)
    assert parse_state("succeeded") is JobState.COMPLETED


def test_a_callers_vocabulary_comes_first() -> None:
    body = b'{"id": "p1", "status": "OK"}'
    headers = sign(body, "s3cret", msg_id="m", timestamp=NOW)
    by_map = WebhookVerifier("s3cret", states={"ok": JobState.COMPLETED}, clock=lambda: NOW)
    event = by_map.verify(headers, body)
    assert (event.job_id, event.status) == ("p1", JobState.COMPLETED)
    by_function = WebhookVerifier("s3cret", states=lambda word: JobState.FAILED, clock=lambda: NOW)
    assert by_function.verify(headers, body).status is JobState.FAILED
    with pytest.raises(ValueError, match="not a JobState"):
        WebhookVerifier("s3cret", states={"OK": "done-ish"})


# --------------------------------------------------------------------------------------------
# The optional extra


def test_without_cryptography_ed25519_keys_raise_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)
    public = "whpk_" + _b64(bytes(32))
    with pytest.raises(MissingExtraError, match=r"asyncreply\[asymmetric\]") as caught:
        WebhookVerifier(public)
    assert caught.value.extra == "asymmetric" and isinstance(caught.value, ImportError)
    with pytest.raises(MissingExtraError):
        JwksKeySet({"keys": []})
    # HMAC verification does not need the extra.
    headers = sign(b"{}", "s3cret", msg_id="m", timestamp=NOW)
    assert WebhookVerifier("s3cret", clock=lambda: NOW).verify(headers, b"{}").delivery_id == "m"


def test_importing_the_webhooks_package_does_not_load_cryptography() -> None:
    code = "import sys, asyncreply_client.webhooks; print('cryptography' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
