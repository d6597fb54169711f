"""Gossip encryption keys (shell side: uses the OS random source for nonces).

Owns the AES-256-GCM gossip keys (derived from the cluster key of each key epoch): one primary key that
seals, plus previous keys still accepted while a key rotation propagates, until ``drop_previous`` once
the switch is over. It never touches sockets; a failed open raises AuthError.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import AuthError

GOSSIP_KEY_INFO = b"p2porch gossip v1"
SEAL_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_PREVIOUS_KEYS = 2


def derive_gossip_key(secret: bytes) -> bytes:
    """32-byte AES key from the join token's secret bytes."""
    if not secret:
        raise AuthError("the gossip key needs a non-empty token secret")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=GOSSIP_KEY_INFO).derive(secret)


class Keyring:
    """Seal with the primary key; open with the primary or any previous key."""

    def __init__(self, primary_key: bytes, previous_keys: Iterable[bytes] = ()) -> None:
        self._primary = AESGCM(primary_key)
        self._previous = [AESGCM(k) for k in list(previous_keys)[:MAX_PREVIOUS_KEYS]]

    @classmethod
    def from_secret(cls, secret: bytes, previous_secrets: Iterable[bytes] = ()) -> Keyring:
        return cls(derive_gossip_key(secret), [derive_gossip_key(s) for s in previous_secrets])

    def rotate(self, new_secret: bytes) -> None:
        """Make a new token's key primary; the old primary is still accepted (until rotated out)."""
        self._previous = [self._primary, *self._previous][:MAX_PREVIOUS_KEYS]
        self._primary = AESGCM(derive_gossip_key(new_secret))

    def drop_previous(self) -> None:
        """End a key switch: only the primary key opens packets from now on."""
        self._previous = []

    @property
    def accepts_previous(self) -> bool:
        return bool(self._previous)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """``version || nonce || ciphertext+tag``."""
        nonce = os.urandom(NONCE_BYTES)
        return bytes([SEAL_VERSION]) + nonce + self._primary.encrypt(nonce, plaintext, aad)

    def open(self, data: bytes, aad: bytes) -> bytes:
        """Authenticate and decrypt; raises AuthError if no key opens it."""
        if len(data) < 1 + NONCE_BYTES + TAG_BYTES or data[0] != SEAL_VERSION:
            raise AuthError("not a sealed gossip packet")
        nonce = data[1 : 1 + NONCE_BYTES]
        body = data[1 + NONCE_BYTES :]
        for key in (self._primary, *self._previous):
            try:
                return key.decrypt(nonce, body, aad)
            except InvalidTag:
                continue
        raise AuthError("gossip packet failed authentication")
