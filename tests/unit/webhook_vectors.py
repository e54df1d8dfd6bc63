"""Published test vectors for webhook signatures (data only, no code).

Standard Webhooks: from the test suites of https://github.com/standard-webhooks/standard-webhooks
(``libraries/python/tests/test_webhooks.py`` ``test_sign_function``, ``libraries/rust/src/lib.rs``
``test_sign`` / ``test_no_verify`` / ``test_verify_with_multiple_signatures``) and the example
headers of ``spec/standard-webhooks.md`` ("Webhook headers"); MIT License, Copyright (c) the
Standard Webhooks authors. The specification publishes no ``v1a`` (Ed25519) vector with its
key, so Ed25519 is checked against RFC 8032 §7.1 and RFC 8037 Appendix A instead.
"""

from __future__ import annotations

from typing import NamedTuple


class SignVector(NamedTuple):
    secret: str
    msg_id: str
    timestamp: int
    payload: bytes
    signature: str


STANDARD_V1 = [
    SignVector(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
    SignVector(
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1649367553,
        b'{"email":"test@example.com","username":"test_user"}',
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    ),
]

#: Signatures that match no key of the vectors (the Rust suite's "no verify" and decoys).
STANDARD_WRONG = [
    "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
    "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
    "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
    "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
]

#: The specification's example ``webhook-signature``: one v1 and one v1a signature.
SPEC_EXAMPLE_SIGNATURE = (
    "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= "
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
)


class Ed25519Vector(NamedTuple):
    seed: str  # hex
    public: str  # hex
    message: str  # hex
    signature: str  # hex


#: RFC 8032 §7.1, TEST 1 and TEST 2.
RFC8032 = [
    Ed25519Vector(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    Ed25519Vector(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]

#: RFC 8037 Appendix A.2 (the public JWK of RFC 8032 TEST 1) and A.4 (a JWS it signed).
RFC8037_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
