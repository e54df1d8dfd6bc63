"""Ed25519 verification: Standard Webhooks ``v1a`` public keys and JWKS key sets.

Needs the ``cryptography`` package (``pip install 'asyncreply[asymmetric]'``); without it,
configuring a public key or a key set raises :class:`MissingExtraError`, and nothing else
in the webhooks package needs it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asyncreply_signing import WHPK_PREFIX

from .. import _log
from ._errors import MissingExtraError

if TYPE_CHECKING:
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["JwksKeySet", "load_public_key", "verify_ed25519"]

_EXTRA = "pip install 'asyncreply[asymmetric]'"
JwksDocument = Mapping[str, Any] | str | bytes


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise MissingExtraError(
            f"Ed25519 webhook signatures need the cryptography package: {_EXTRA}",
            extra="asymmetric",
        ) from exc
    return ed25519


def _b64(text: str, *, urlsafe: bool, what: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        if urlsafe:
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {what} is not valid base64") from None


def load_public_key(text: str) -> Ed25519PublicKey:
    """Return the Ed25519 public key of a Standard Webhooks ``whpk_<base64>`` string.

    Raises:
        ValueError: not ``whpk_`` + the base64 of 32 bytes.
        MissingExtraError: the ``cryptography`` package is not installed.
    """
    ed25519 = _ed25519()
    raw = _b64(text[len(WHPK_PREFIX) :], urlsafe=False, what="whpk_ public key")
    if len(raw) != 32:
        raise ValueError("a whpk_ public key holds 32 bytes")
    key: Ed25519PublicKey = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    return key


def verify_ed25519(
    keys: Iterable[Ed25519PublicKey], signatures: Sequence[bytes], message: bytes
) -> bool:
    """Whether any of ``signatures`` over ``message`` verifies under any of ``keys``."""
    from cryptography.exceptions import InvalidSignature

    for key in keys:
        for signature in signatures:
            if len(signature) != 64:
                continue
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
    return False


def _parse_jwks(document: JwksDocument) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWKS document (RFC 7517, RFC 8037 ``OKP``), by ``kid``.

    Keys of other types or curves, and keys marked for encryption, are skipped; a key with
    no ``kid`` is named by its position.
    """
    ed25519 = _ed25519()
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            raise ValueError("the JWKS document is not JSON") from None
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError('a JWKS document is an object with a "keys" list')
    found: dict[str, Ed25519PublicKey] = {}
    for position, jwk in enumerate(keys):
        if not isinstance(jwk, Mapping):
            raise ValueError(f"JWKS key {position} is not an object")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or jwk.get("use") == "enc":
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            raise ValueError(f'JWKS key {position} has no "x" (the public key)')
        raw = _b64(x, urlsafe=True, what=f'"x" of JWKS key {position}')
        if len(raw) != 32:
            raise ValueError(f'the "x" of JWKS key {position} is not 32 bytes')
        kid = jwk.get("kid")
        name = kid if isinstance(kid, str) and kid else f"#{position}"
        found[name] = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    return found


class JwksKeySet:
    """Ed25519 public keys from a JSON Web Key Set, refreshed when the sender rotates them.

    Senders such as fal.ai publish their webhook keys as a JWKS document
    (``{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": ..., "x": <base64url>}]}``) and
    rotate them: a new ``kid`` appears, the old one goes later. With a ``fetch`` function the
    set reloads the document when a signature matches none of its keys (at most once per
    ``min_refresh_interval`` seconds, so forged deliveries cannot make it hammer the key
    server) and when it is older than ``max_age``; the keys it had stay in use if a reload
    fails. Verification is synchronous: a reload blocks the caller for one request.

    Args:
        document: the JWKS document (a mapping or its JSON text); fetched when omitted.
        fetch: returns the current document (for example ``lambda: httpx.get(url).json()``,
            or use :meth:`from_url`).
        max_age: seconds after which the keys are reloaded before use (with ``fetch``).
        min_refresh_interval: the shortest time between two reloads.
        clock: monotonic seconds (inject a fake one in tests).

    Raises:
        ValueError: neither a document nor ``fetch``, or a document that is not a JWKS.
        MissingExtraError: the ``cryptography`` package is not installed.

    Example:
        >>> jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        ...                   "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}
        >>> JwksKeySet(jwks).kids
        ('k1',)
    """

    def __init__(
        self,
        document: JwksDocument | None = None,
        *,
        fetch: Callable[[], JwksDocument] | None = None,
        max_age: float = 24 * 3600.0,
        min_refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the keys (see the class docstring)."""
        if document is None and fetch is None:
            raise ValueError("JwksKeySet needs a JWKS document or a fetch function")
        if not max_age > 0 or not min_refresh_interval >= 0:
            raise ValueError("max_age must be positive and min_refresh_interval non-negative")
        self._fetch = fetch
        self._max_age = max_age
        self._min_interval = min_refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys = _parse_jwks(document if document is not None else self._fetched())
        self._loaded_at = clock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        max_age: float = 24 * 3600.0,
        min_refresh_interval: float = 60.0,
    ) -> JwksKeySet:
        """A key set loaded from ``url`` now and reloaded from it on rotation.

        Args:
            url: the JWKS address (fal.ai: ``https://rest.fal.ai/.well-known/jwks.json``).
            client: the ``httpx.Client`` to use (a new one per reload by default).
            timeout: seconds per request.
            max_age: see the class.
            min_refresh_interval: see the class.
        """
        import httpx

        def fetch() -> JwksDocument:
            if client is not None:
                answer = client.get(url, timeout=timeout)
            else:
                answer = httpx.get(url, timeout=timeout)
            answer.raise_for_status()
            return answer.content

        return cls(fetch=fetch, max_age=max_age, min_refresh_interval=min_refresh_interval)

    def __repr__(self) -> str:
        return f"JwksKeySet(kids={self.kids!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids held now."""
        return tuple(self._keys)

    def keys(self, kid: str | None = None) -> list[Ed25519PublicKey]:
        """The keys to try: the one named ``kid`` when given and known, else all of them."""
        if self._fetch is not None and self._clock() - self._loaded_at >= self._max_age:
            self.refresh()
        keys = self._keys
        if kid is not None and kid in keys:
            return [keys[kid]]
        return list(keys.values())

    def refresh(self) -> bool:
        """Reload the document now, unless a reload happened within ``min_refresh_interval``.

        Returns:
            Whether the keys were reloaded (``False`` without ``fetch``, too soon, or when
            the reload failed: the previous keys then stay).
        """
        if self._fetch is None:
            return False
        with self._lock:
            now = self._clock()
            if now - self._loaded_at < self._min_interval:
                return False
            self._loaded_at = now  # a failed reload also waits for the interval
            try:
                self._keys = _parse_jwks(self._fetched())
            except Exception as exc:  # a key server's fault must not fail the receiver
                if _log.enabled(_log.WEBHOOKS, logging.WARNING):
                    _log.WEBHOOKS.warning(
                        "reloading the JWKS failed (%s); keeping %d key(s)",
                        type(exc).__name__,
                        len(self._keys),
                    )
                return False
            return True

    def _fetched(self) -> JwksDocument:
        if self._fetch is None:  # pragma: no cover - callers check first
            raise ValueError("this JwksKeySet has no fetch function")
        return self._fetch()
