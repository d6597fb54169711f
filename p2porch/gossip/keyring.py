"""Gossip encryption keys (shell side: uses the OS random source for epoch ids).

Owns the AES-256-GCM cluster keys (one primary that seals, previous ones still accepted while a key
rotation propagates) and the per-epoch subkeys actually used on the wire: the sender draws a random
16-byte epoch id, derives ``HKDF-SHA256(key, salt=epoch_id, info="p2porch gossip epoch v2")`` and seals
with a counting nonce (0, 1, 2, ...) under that subkey; after ``EPOCH_MESSAGES`` messages it starts a new
epoch. So no AES-GCM key ever sees a repeated nonce or more than ``EPOCH_MESSAGES`` messages, however
long the cluster key lives (docs/gossip.md, "Encryption"). ``drop_previous`` ends a key switch.
It never touches sockets; a failed open raises AuthError.

Sealed form: ``version(2) || epoch_id(16) || counter(8, big endian) || ciphertext+tag(16)``.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import AuthError

GOSSIP_KEY_INFO = b"p2porch gossip v1"
EPOCH_KEY_INFO = b"p2porch gossip epoch v2"
SEAL_VERSION = 2
EPOCH_ID_BYTES = 16
COUNTER_BYTES = 8
TAG_BYTES = 16
SEAL_OVERHEAD_BYTES = 1 + EPOCH_ID_BYTES + COUNTER_BYTES + TAG_BYTES
EPOCH_MESSAGES = 1 << 24  # messages sealed under one subkey before a new epoch starts
MAX_PREVIOUS_KEYS = 2
MAX_CACHED_SUBKEYS = 256
_COUNTER = struct.Struct(">Q")
_NONCE_PAD = b"\x00" * 4


def derive_gossip_key(secret: bytes) -> bytes:
    """32-byte AES key from a secret (the cluster's gossip secret)."""
    if not secret:
        raise AuthError("the gossip key needs a non-empty secret")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=GOSSIP_KEY_INFO).derive(secret)


def derive_epoch_key(key: bytes, epoch_id: bytes) -> bytes:
    """The subkey that seals one epoch's messages."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epoch_id, info=EPOCH_KEY_INFO).derive(key)


KEY_SWITCH_GRACE_S = 30.0  # how long gossip keeps accepting the previous epoch's key after a key switch


class Keyring:
    """Seal with the primary key (per-epoch subkey, counter nonce); open with the primary or a previous key.

    ``set_keys`` installs a new primary and accepted previous keys at once (cluster key rotation).
    """

    def __init__(self, primary_key: bytes, previous_keys: Iterable[bytes] = ()) -> None:
        self._subkeys: OrderedDict[tuple[bytes, bytes], AESGCM] = OrderedDict()
        self._primary = b""
        self._previous: list[bytes] = []
        self.epochs_started = 0
        self.set_keys(primary_key, previous_keys)

    @classmethod
    def from_secret(cls, secret: bytes, previous_secrets: Iterable[bytes] = ()) -> Keyring:
        return cls(derive_gossip_key(secret), [derive_gossip_key(s) for s in previous_secrets])

    @property
    def keys(self) -> list[bytes]:
        """Primary first, then the previous keys still accepted."""
        return [self._primary, *self._previous]

    def set_keys(self, primary_key: bytes, previous_keys: Iterable[bytes] = ()) -> None:
        """Seal with ``primary_key`` from now on; accept it and up to MAX_PREVIOUS_KEYS ``previous_keys``."""
        if len(primary_key) != 32:
            raise AuthError("a gossip key is 32 bytes")
        self._primary = bytes(primary_key)
        self._previous = [bytes(k) for k in previous_keys if k != primary_key][:MAX_PREVIOUS_KEYS]
        accepted = set(self.keys)
        for cached in [c for c in self._subkeys if c[0] not in accepted]:
            del self._subkeys[cached]
        self._new_epoch()

    def rotate(self, new_secret: bytes) -> None:
        """Make a new secret's key primary; the old primary is still accepted (until rotated out)."""
        self.set_keys(derive_gossip_key(new_secret), self.keys)

    def _new_epoch(self) -> None:
        self._epoch_id = os.urandom(EPOCH_ID_BYTES)
        self._sealer = AESGCM(derive_epoch_key(self._primary, self._epoch_id))
        self._counter = 0
        self.epochs_started += 1

    def drop_previous(self) -> None:
        """End a key switch: only the primary key opens packets from now on."""
        self._previous = []

    @property
    def accepts_previous(self) -> bool:
        return bool(self._previous)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """``version || epoch_id || counter || ciphertext+tag``."""
        if self._counter >= EPOCH_MESSAGES:
            self._new_epoch()
        counter = _COUNTER.pack(self._counter)
        self._counter += 1
        body = self._sealer.encrypt(_NONCE_PAD + counter, plaintext, aad)
        return b"".join((bytes((SEAL_VERSION,)), self._epoch_id, counter, body))

    def open(self, data: bytes | bytearray | memoryview, aad: bytes) -> bytes:
        """Authenticate and decrypt; raises AuthError if no accepted key opens it."""
        if len(data) < SEAL_OVERHEAD_BYTES or data[0] != SEAL_VERSION:
            raise AuthError("not a sealed gossip packet")
        view = memoryview(data)
        epoch_id = bytes(view[1 : 1 + EPOCH_ID_BYTES])
        nonce = _NONCE_PAD + bytes(view[1 + EPOCH_ID_BYTES : 1 + EPOCH_ID_BYTES + COUNTER_BYTES])
        body = view[1 + EPOCH_ID_BYTES + COUNTER_BYTES :]
        for key in self.keys:
            cache_key = (key, epoch_id)
            subkey = self._subkeys.get(cache_key)
            cached = subkey is not None
            if subkey is None:
                subkey = AESGCM(derive_epoch_key(key, epoch_id))
            try:
                plaintext = subkey.decrypt(nonce, body, aad)
            except InvalidTag:
                continue
            if cached:
                self._subkeys.move_to_end(cache_key)
            else:  # only subkeys that opened something are cached: garbage cannot evict them
                self._subkeys[cache_key] = subkey
                if len(self._subkeys) > MAX_CACHED_SUBKEYS:
                    self._subkeys.popitem(last=False)
            return plaintext
        raise AuthError("gossip packet failed authentication")
