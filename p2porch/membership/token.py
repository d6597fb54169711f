"""Join tokens and the keys derived from them (pure).

A token is ``P2PT-1-<cluster id: 16 hex>-<secret: 43 chars base64url of 32 bytes>``. The secret never
travels: HKDF-SHA256 derives from it one key per purpose (gossip encryption, the pysyncobj password,
the join handshake), so a leak of one derived key reveals neither the secret nor the others.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import AuthError, ConfigError

TOKEN_PREFIX = "P2PT"
TOKEN_VERSION = "1"
_TOKEN_RE = re.compile(r"^P2PT-(?P<version>[0-9]+)-(?P<cluster>[0-9a-f]{16})-(?P<secret>[A-Za-z0-9_-]{43})$")


class DerivedKeys:
    """The keys HKDF derives from ``secret`` bound to ``cluster_id``, one per purpose: shared by join
    tokens and cluster keys (a key epoch 0 made from an old token derives what the token did). Holds
    no state of its own; the subclass provides both attributes."""

    cluster_id: str
    secret: bytes

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose (``gossip``, ``raft``, ``join``), bound to this cluster id."""
        return derive_key(self.secret, self.cluster_id, purpose, length)

    @property
    def gossip_key(self) -> bytes:
        return self.derive("gossip")

    @property
    def join_key(self) -> bytes:
        """The member key: keys join-port sessions between members (the handshake's ``join_key``)."""
        return self.derive("join")

    def raft_password(self, generation: int = 0) -> str:
        """The pysyncobj password of one Raft generation (a forced recovery starts a new one, so
        stores of the old log cannot talk to the new cluster and must resynchronise)."""
        return base64.b64encode(self.derive(raft_purpose(generation))).decode()


@dataclass(frozen=True)
class JoinToken(DerivedKeys):
    """A parsed join token; ``str(token)`` gives it back in its canonical form."""

    cluster_id: str
    secret: bytes

    def __str__(self) -> str:
        encoded = base64.urlsafe_b64encode(self.secret).rstrip(b"=").decode()
        return f"{TOKEN_PREFIX}-{TOKEN_VERSION}-{self.cluster_id}-{encoded}"

    def __repr__(self) -> str:  # never print the secret by accident
        return f"JoinToken(cluster_id={self.cluster_id!r}, secret=<hidden>)"


def derive_key(secret: bytes, cluster_id: str, purpose: str, length: int = 32) -> bytes:
    """HKDF-SHA256 of ``secret`` for one purpose, bound to the cluster id: the one derivation that join
    tokens and cluster keys share (a key epoch 0 made from an old token must derive what the token did)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=cluster_id.encode(),
        info=f"p2porch {purpose} v1".encode(),
    ).derive(secret)


def raft_purpose(generation: int) -> str:
    """The HKDF purpose of one Raft generation's pysyncobj password."""
    return "raft" if generation == 0 else f"raft generation {generation}"


def new_token(cluster_id: str | None = None) -> JoinToken:
    return JoinToken(cluster_id=cluster_id or secrets.token_hex(8), secret=secrets.token_bytes(32))


def parse_token(text: str) -> JoinToken:
    """Parse a token; a malformed one raises AuthError saying what is wrong (never echoing the secret)."""
    text = (text or "").strip()
    if not text.startswith(TOKEN_PREFIX + "-"):
        raise AuthError(
            "malformed join token: it must start with 'P2PT-' (copy it from `p2porch token`)", field="--token"
        )
    match = _TOKEN_RE.match(text)
    if match is None:
        raise AuthError(
            "malformed join token: expected P2PT-1-<16 hex cluster id>-<43 character secret>", field="--token"
        )
    if match["version"] != TOKEN_VERSION:
        raise AuthError(
            f"join token version {match['version']} is not supported (this node speaks {TOKEN_VERSION})",
            field="--token",
        )
    padded = match["secret"] + "="
    secret = base64.urlsafe_b64decode(padded)
    if len(secret) != 32:
        raise AuthError("malformed join token: the secret must be 32 bytes", field="--token")
    return JoinToken(cluster_id=match["cluster"], secret=secret)


def parse_given_token(text: str) -> JoinToken:
    """A token a user gave (``--token``, ``--token-file``, ``$P2PORCH_TOKEN``): malformed is invalid usage,
    a :class:`ConfigError` naming ``--token`` (exit code 2), whether or not a daemon was already running."""
    try:
        return parse_token(text)
    except AuthError as exc:
        raise ConfigError(exc.message, field=exc.field or "--token") from exc
