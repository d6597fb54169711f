"""The sealed frames of the Raft port: AES-256-GCM per connection and direction (pure: no sockets, no clock).

pysyncobj seals each message with Fernet (AES-128-CBC, HMAC-SHA256, base64, a timestamp of whole
seconds) and zlib-compresses it first; on a follower that was ~0.3 ms of CPU per heartbeat and its
answer, nearly half its Raft thread (docs/performance.md, "Idle cost"). This module replaces it:

- the *cluster key* is PBKDF2-HMAC-SHA256 of the pysyncobj password (100,000 rounds, as pysyncobj's,
  with our own salt), derived once per password;
- the first frame each side sends on a connection (pysyncobj's handshake: the random 32-byte
  connection keys) is a *hello*, sealed with the cluster key under a random 96-bit nonce;
- every later frame is a *session* frame, sealed with a key of its own connection and direction,
  ``HKDF-SHA256(cluster key, info = label || receiver's key || sender's key)`` (the two random keys
  the handshake exchanged), under the nonce ``0^4 || counter``; the counter starts at 0 and goes up by
  one per frame, and the receiver accepts only the next one: a replayed, reordered, dropped or
  spliced (another connection's) frame fails, and so does a frame sent back to its sender;
- the payload is pysyncobj's pickle, zlib-compressed only from :data:`COMPRESS_MIN` bytes on.

Frame (inside pysyncobj's 4-byte length prefix), the header is the associated data::

    "P2" | version (1 byte, 2) | flags (1 byte: 1 = session, 2 = compressed) | nonce (12) or counter (8)
    | ciphertext + tag (16)

A frame of pysyncobj's own Fernet format (an older p2porch) is refused as :data:`REASON_OLD_FRAMING`.
:class:`FrameChannel` holds one connection's state; it raises :class:`FrameError` naming a reason and
never returns anything it could not authenticate.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

MAGIC = b"P2"
FRAME_VERSION = 2  # 1 was pysyncobj's Fernet framing
FLAG_SESSION = 0x01
FLAG_COMPRESSED = 0x02
KNOWN_FLAGS = FLAG_SESSION | FLAG_COMPRESSED
HEADER_BYTES = 4
NONCE_BYTES = 12
COUNTER_BYTES = 8
TAG_BYTES = 16
HELLO_MIN_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES
SESSION_MIN_BYTES = HEADER_BYTES + COUNTER_BYTES + TAG_BYTES
COMPRESS_MIN = 1024  # smaller payloads (heartbeats, answers, votes) travel uncompressed
COMPRESS_LEVEL = 3  # pysyncobj's
CLUSTER_KEY_SALT = b"p2porch raft frames v2"
SESSION_KEY_INFO = b"p2porch raft session v2"
PBKDF2_ROUNDS = 100_000
FERNET_PREFIX = b"gAAAAA"  # base64 of Fernet's version byte 0x80 and the start of its timestamp

REASON_OLD_FRAMING = "old_framing"  # pysyncobj's Fernet frame: a node of an older p2porch
REASON_UNKNOWN_FORMAT = "unknown_format"  # not "P2", another version, unknown flags
REASON_TRUNCATED = "truncated"
REASON_AUTH = "auth"  # the tag does not verify: wrong password, tampered, or another connection's
REASON_REPLAY = "replay"  # a session counter other than the next one
REASON_OUT_OF_ORDER = "out_of_order"  # a hello after the first frame, a session frame before the keys
REASON_INFLATE = "inflate"  # a compressed payload that is invalid or inflates past the limit

_COUNTER = struct.Struct(">Q")
_NONCE_PAD = b"\x00" * (NONCE_BYTES - COUNTER_BYTES)


class FrameError(ValueError):
    """A received frame that was refused; ``reason`` is one of the ``REASON_*`` names."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


CLUSTER_KEY_BYTES = 32
_KNOWN_KEYS: dict[str, bytes] = {}  # password -> cluster key, handed over by remember_cluster_key
_KNOWN_KEYS_MAX = 8


def cluster_key(password: str) -> bytes:
    """The 32-byte key of the hello frames and the root of every session key (slow: ~15 ms, cached),
    or the one :func:`remember_cluster_key` was given for ``password``."""
    if not password:
        raise ValueError("the Raft password must not be empty")
    known = _KNOWN_KEYS.get(password)
    return known if known is not None else _derive_cluster_key(password)


@functools.lru_cache(maxsize=8)
def _derive_cluster_key(password: str) -> bytes:
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=CLUSTER_KEY_BYTES, salt=CLUSTER_KEY_SALT, iterations=PBKDF2_ROUNDS
    )
    return kdf.derive(password.encode())


def remember_cluster_key(password: str, key: bytes) -> None:
    """Take ``cluster_key(password)`` as derived elsewhere (a joiner gets it from the member that
    admitted it, inside the sealed reply, next to the cluster key it derives from): no PBKDF2 on the
    join's critical path. A wrong key only makes this node's Raft connections fail to authenticate;
    :func:`forget_cluster_key` drops it (a join that failed)."""
    if not password or len(key) != CLUSTER_KEY_BYTES:
        raise ValueError("a cluster key is 32 bytes, of a non-empty password")
    if password not in _KNOWN_KEYS and len(_KNOWN_KEYS) >= _KNOWN_KEYS_MAX:
        _KNOWN_KEYS.pop(next(iter(_KNOWN_KEYS)))
    _KNOWN_KEYS[password] = key


def forget_cluster_key(password: str) -> None:
    _KNOWN_KEYS.pop(password, None)


def session_key(key: bytes, receiver_key: bytes, sender_key: bytes) -> bytes:
    """The key of the frames one side sends on one connection (the other side opens with the same):
    ``receiver_key`` and ``sender_key`` are the random keys each side drew for the handshake."""
    info = SESSION_KEY_INFO + receiver_key + sender_key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def _header(flags: int) -> bytes:
    return MAGIC + bytes((FRAME_VERSION, flags))


def pack_payload(plain: bytes) -> tuple[int, bytes]:
    """``(flags, payload)`` of a frame carrying ``plain``: compressed from ``COMPRESS_MIN`` bytes."""
    if len(plain) >= COMPRESS_MIN:
        return FLAG_COMPRESSED, zlib.compress(plain, COMPRESS_LEVEL)
    return 0, plain


def _unpack_payload(flags: int, payload: bytes, max_plain: int) -> bytes:
    if not flags & FLAG_COMPRESSED:
        return payload
    return inflate_bounded(payload, max_plain)


def inflate_bounded(payload: bytes, max_plain: int) -> bytes:
    """``payload`` inflated; FrameError (``inflate``) if it is not zlib or inflates past ``max_plain``
    bytes (a zlib bomb costs at most ``max_plain`` bytes of memory)."""
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(payload, max_plain)
    except zlib.error as exc:
        raise FrameError(REASON_INFLATE, f"invalid compressed payload: {exc}") from exc
    if inflater.unconsumed_tail:
        raise FrameError(REASON_INFLATE, f"payload inflates past {max_plain} bytes")
    return plain


def read_header(frame: bytes) -> int:
    """The flags of a frame of this format; raises FrameError for anything else (checked before any
    decryption, so garbage costs no crypto)."""
    if frame.startswith(FERNET_PREFIX):
        raise FrameError(
            REASON_OLD_FRAMING,
            "a Fernet frame (pysyncobj's framing, p2porch before frame version 2): every node of a "
            "cluster must run the same p2porch version",
        )
    if len(frame) < HEADER_BYTES or frame[:2] != MAGIC:
        raise FrameError(REASON_UNKNOWN_FORMAT, "not a p2porch Raft frame")
    if frame[2] != FRAME_VERSION:
        raise FrameError(
            REASON_UNKNOWN_FORMAT, f"Raft frame version {frame[2]}; this node speaks {FRAME_VERSION}"
        )
    flags = frame[3]
    if flags & ~KNOWN_FLAGS:
        raise FrameError(REASON_UNKNOWN_FORMAT, f"unknown Raft frame flags {flags:#04x}")
    return flags


@dataclass
class FrameChannel:
    """One connection's sealing state: which frames were sent and received, the session keys and
    counters. Built per connection and reset on every (re)connect; owns no socket."""

    key: bytes  # cluster_key(password)
    random_bytes: Callable[[int], bytes] = os.urandom
    sent: int = 0  # frames sealed so far (the first is the hello)
    received: int = 0  # frames opened so far (the first must be the hello)
    _send: AESGCM | None = field(default=None, repr=False)
    _recv: AESGCM | None = field(default=None, repr=False)
    _hello: AESGCM | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._hello = AESGCM(self.key)

    def needs_hello(self) -> bool:
        """The next frame sent is the hello (sealed with the cluster key)."""
        return self.sent == 0

    def start_session(self, own_key: bytes, peer_key: bytes) -> None:
        """The handshake is done: ``own_key`` is the random key this side sent (the peer puts it in its
        frames), ``peer_key`` the one it received. Idempotent for the same keys."""
        if self._send is None:
            self._send = AESGCM(session_key(self.key, receiver_key=peer_key, sender_key=own_key))
            self._recv = AESGCM(session_key(self.key, receiver_key=own_key, sender_key=peer_key))

    @property
    def in_session(self) -> bool:
        return self._send is not None

    def seal(self, plain: bytes) -> bytes:
        """The frame carrying ``plain``: the hello if nothing was sent yet, else a session frame.
        Raises FrameError(out_of_order) for a second frame before the session keys are known."""
        return self.seal_packed(*pack_payload(plain))

    def seal_packed(self, flags: int, payload: bytes) -> bytes:
        """``seal`` of a payload already packed by ``pack_payload`` (one packing for many peers)."""
        if self.sent == 0:
            assert self._hello is not None
            header = _header(flags)
            nonce = self.random_bytes(NONCE_BYTES)
            self.sent = 1
            return header + nonce + self._hello.encrypt(nonce, payload, header)
        if self._send is None:
            raise FrameError(REASON_OUT_OF_ORDER, "no session key yet: the handshake is not finished")
        header = _header(flags | FLAG_SESSION)
        counter = _COUNTER.pack(self.sent - 1)
        self.sent += 1
        return header + counter + self._send.encrypt(_NONCE_PAD + counter, payload, header)

    def open(self, frame: bytes, max_plain: int) -> bytes:
        """The plaintext of the next received frame (at most ``max_plain`` bytes once inflated)."""
        flags = read_header(frame)
        header = frame[:HEADER_BYTES]
        if not flags & FLAG_SESSION:
            if self.received:
                raise FrameError(REASON_OUT_OF_ORDER, "a hello frame after the first frame")
            if len(frame) < HELLO_MIN_BYTES:
                raise FrameError(REASON_TRUNCATED, f"hello frame of {len(frame)} bytes")
            nonce = frame[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
            sealed = frame[HEADER_BYTES + NONCE_BYTES :]
            aead = self._hello
        else:
            if self._recv is None or not self.received:
                raise FrameError(REASON_OUT_OF_ORDER, "a session frame before the handshake")
            if len(frame) < SESSION_MIN_BYTES:
                raise FrameError(REASON_TRUNCATED, f"session frame of {len(frame)} bytes")
            counter = frame[HEADER_BYTES : HEADER_BYTES + COUNTER_BYTES]
            expected = self.received - 1
            if _COUNTER.unpack(counter)[0] != expected:
                raise FrameError(
                    REASON_REPLAY, f"session frame {_COUNTER.unpack(counter)[0]}, expected {expected}"
                )
            nonce = _NONCE_PAD + counter
            sealed = frame[HEADER_BYTES + COUNTER_BYTES :]
            aead = self._recv
        assert aead is not None
        try:
            payload = aead.decrypt(nonce, sealed, header)
        except InvalidTag as exc:
            raise FrameError(
                REASON_AUTH, "the frame does not authenticate (wrong password, tampered)"
            ) from exc
        self.received += 1
        return _unpack_payload(flags, payload, max_plain)
