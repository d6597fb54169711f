"""Cluster key material, its epochs and the envelopes that carry a new epoch to each member (pure).

The cluster key of one epoch is 32 random bytes created by ``init`` (epoch 0) or by a key rotation
(epoch + 1); it is never derived from the join token, which only admits joins. From it HKDF-SHA256
derives one key per purpose: the gossip key, the member key (join-port requests between members) and
the pysyncobj password of each Raft generation. A rotation seals the new secret once per member to
that member's X25519 node key (an *envelope*), so only the members the rotation names can open it: a
node removed by ``node rm``, or anyone holding an old key, cannot follow. This module does no I/O;
randomness comes from the OS only where a fresh key or ephemeral key pair is made.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import AuthError
from .token import DerivedKeys
from .x25519 import generate_private, private_from_bytes, public_from_bytes

SECRET_BYTES = 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, size: int, what: str) -> bytes:
    """Decode base64 of exactly ``size`` bytes; anything else raises AuthError naming ``what``."""
    try:
        data = base64.b64decode(text.encode(), validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        data = b""
    if len(data) != size:
        raise AuthError(f"{what} must be base64 of {size} bytes")
    return data


@dataclass(frozen=True)
class ClusterKeys(DerivedKeys):
    """The cluster key of one epoch and what derives from it (``DerivedKeys``: gossip, member and Raft
    keys); the secret never shows in a repr.

    Epoch 0 of a cluster made before keys were separated from the token uses the old token's secret,
    and derives exactly what that token derived, so such a cluster keeps working until it rotates."""

    cluster_id: str
    epoch: int
    secret: bytes = field(repr=False)

    def to_text(self) -> str:
        return b64(self.secret)


def new_cluster_keys(cluster_id: str, epoch: int = 0) -> ClusterKeys:
    return ClusterKeys(cluster_id=cluster_id, epoch=epoch, secret=secrets.token_bytes(SECRET_BYTES))


def keys_from_text(cluster_id: str, epoch: int, text: str) -> ClusterKeys:
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise AuthError("the key epoch must be a non-negative integer")
    return ClusterKeys(cluster_id, epoch, unb64(text, SECRET_BYTES, "the cluster key"))


# ----- node keys (X25519): each member's private key stays in its data dir, the public one is in Raft
# (raw bytes through the keys' own methods: cryptography's `serialization` package would load its SSH, RSA, EC
# and OID modules into every daemon, ~0.9 MB, issue 19; and through x25519.py, not the classmethods that load
# its OpenSSL backend module, ~0.7 MB)
def new_node_key() -> str:
    """A new private node key, base64 of its 32 raw bytes."""
    return b64(generate_private().private_bytes_raw())


@functools.lru_cache(maxsize=4)  # the role watch asks every second (issue 19: ~80 us of X25519 each)
def node_public_key(private_text: str) -> str:
    private = private_from_bytes(unb64(private_text, 32, "the node key"))
    return b64(private.public_key().public_bytes_raw())


def valid_public_key(text: object) -> bool:
    try:
        unb64(text, 32, "key_pub")  # type: ignore[arg-type]
    except AuthError:
        return False
    return True


def _envelope_key(shared: bytes, ephemeral: bytes, recipient: bytes, cluster_id: str, epoch: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient,
        info=f"p2porch key envelope v1 {cluster_id} {epoch}".encode(),
    ).derive(shared)


def _aad(cluster_id: str, epoch: int, node_id: str) -> bytes:
    return f"{cluster_id}|{epoch}|{node_id}".encode()


def seal_envelope(keys: ClusterKeys, node_id: str, public_text: str) -> str:
    """``keys``' secret sealed to one member's public node key (ephemeral X25519 + AES-GCM)."""
    recipient = unb64(public_text, 32, "key_pub")
    ephemeral = generate_private()
    ephemeral_pub = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(public_from_bytes(recipient))
    key = _envelope_key(shared, ephemeral_pub, recipient, keys.cluster_id, keys.epoch)
    # The AES key is fresh for every envelope (new ephemeral key pair), so a fixed nonce is safe.
    sealed = AESGCM(key).encrypt(bytes(12), keys.secret, _aad(keys.cluster_id, keys.epoch, node_id))
    return b64(ephemeral_pub + sealed)


def open_envelope(cluster_id: str, epoch: int, node_id: str, private_text: str, envelope: str) -> ClusterKeys:
    """The cluster keys of ``epoch`` from this member's envelope; AuthError if it is not ours."""
    private = private_from_bytes(unb64(private_text, 32, "the node key"))
    recipient = private.public_key().public_bytes_raw()
    data = unb64(envelope, 32 + SECRET_BYTES + 16, "a key envelope")
    ephemeral_pub, sealed = data[:32], data[32:]
    shared = private.exchange(public_from_bytes(ephemeral_pub))
    key = _envelope_key(shared, ephemeral_pub, recipient, cluster_id, epoch)
    try:
        secret = AESGCM(key).decrypt(bytes(12), sealed, _aad(cluster_id, epoch, node_id))
    except InvalidTag as exc:
        raise AuthError("the key envelope is not sealed to this node's key") from exc
    return ClusterKeys(cluster_id, epoch, secret)


@dataclass(frozen=True)
class Rotation:
    """What a key rotation writes: the new epoch and one envelope per member that may follow it, plus
    the members that cannot (no published node key yet: they must rejoin)."""

    epoch: int
    envelopes: Mapping[str, str]
    left_out: tuple[str, ...]


def plan_rotation(
    new_keys: ClusterKeys, members: Iterable[tuple[str, str]], exclude: Iterable[str] = ()
) -> Rotation:
    """Envelopes of ``new_keys`` for ``members`` (``(node_id, key_pub)``), minus ``exclude`` (e.g. the
    node ``node rm`` removes). A member without a valid public key is left out and named."""
    excluded = set(exclude)
    envelopes: dict[str, str] = {}
    left_out: list[str] = []
    for node_id, key_pub in members:
        if node_id in excluded:
            continue
        if valid_public_key(key_pub):
            envelopes[node_id] = seal_envelope(new_keys, node_id, key_pub)
        else:
            left_out.append(node_id)
    return Rotation(new_keys.epoch, envelopes, tuple(sorted(left_out)))
