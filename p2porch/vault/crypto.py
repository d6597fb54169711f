"""Sealing secret and config values with AES-256-GCM (pure).

The master key is the cluster's secrets key (32 bytes, derived from the cluster key material by
``membership``). Each value gets its own key, HKDF(master, salt=object id, info=kind+version), and a
random 96-bit nonce; the associated data binds kind, id and version, so a ciphertext moved to another
object or version does not open. The digest shown to users is an HMAC under a key derived from the
master key: it tells two versions apart without letting anyone test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import AuthError

NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class SealedValue:
    """Ciphertext of one version of one object (nonce + AES-GCM output); ``repr`` shows only its size."""

    blob: bytes

    def __repr__(self) -> str:
        return f"SealedValue(<{len(self.blob)} bytes>)"


def _value_key(master: bytes, kind: str, object_id: str, version: int) -> bytes:
    if len(master) != 32:
        raise AuthError("the cluster secrets key is missing or malformed")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=object_id.encode(),
        info=f"p2porch {kind} v{version}".encode(),
    ).derive(master)


def _aad(kind: str, object_id: str, version: int) -> bytes:
    return f"{kind}/{object_id}/{version}".encode()


def seal_value(master: bytes, kind: str, object_id: str, version: int, plaintext: bytes) -> SealedValue:
    nonce = os.urandom(NONCE_BYTES)
    key = _value_key(master, kind, object_id, version)
    return SealedValue(nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(kind, object_id, version)))


def open_value(master: bytes, kind: str, object_id: str, version: int, sealed: bytes) -> bytes:
    """The plaintext; AuthError when the key is wrong or the ciphertext was altered or moved."""
    if len(sealed) <= NONCE_BYTES:
        raise AuthError(f"{kind} {object_id} version {version}: ciphertext is truncated")
    key = _value_key(master, kind, object_id, version)
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(kind, object_id, version))
    except InvalidTag:
        raise AuthError(
            f"cannot decrypt {kind} {object_id} version {version}: this node's cluster key does not open it"
        ) from None


def digest_of(master: bytes, plaintext: bytes) -> str:
    """``hmac-sha256:<hex>`` of the value under a key derived from ``master`` (not a plain hash)."""
    key = hashlib.sha256(b"p2porch secret digest v1" + master).digest()
    return "hmac-sha256:" + hmac.new(key, plaintext, hashlib.sha256).hexdigest()
