"""The join handshake: mutual proof of the join token, then an encrypted request and reply (pure).

Messages (maps, carried as wire frames by the shell):

1. joiner -> member ``hello``:     ``{cluster_id, nonce_j[, as: "member", epoch]}`` (``as: member``: a
   member's own request, keyed with the member key of cluster key ``epoch``, which only members
   hold and which a join token rotation does not change; otherwise keyed with the current join token)
2. member -> joiner ``challenge``: ``{nonce_s, proof_s = HMAC(join_key, "member" | nonce_j | nonce_s)}``
   The joiner checks ``proof_s``: the member holds the token, so this is the cluster the token names.
3. joiner -> member ``request``:   ``{proof_j = HMAC(join_key, "joiner" | nonce_j | nonce_s), sealed}``
   The member checks ``proof_j`` before opening ``sealed`` (AES-GCM under a session key derived from
   the join key and both nonces) and acting on it.
4. member -> joiner ``reply``:     ``{sealed}`` (the cluster key and membership), or ``{error}``;
   or, for a streaming request (``service logs``), any number of ``item`` frames, each sealed under
   the session key with a counter nonce, then ``end``.

Nonces are passed in by the caller so that this module does no I/O and no randomness of its own.
Neither side ever sends the secret or the join key; a wrong token fails at step 2 or 3 and nothing is
written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import AuthError, WireError
from ..wire import pack, unpack

NONCE_BYTES = 32
_STREAM_PREFIX = b"strm"  # counter nonces of stream items: "strm" + 8-byte counter


class SessionKey(Protocol):
    """What keys a handshake: a join token (joins) or the cluster keys of one epoch (members)."""

    @property
    def cluster_id(self) -> str: ...

    @property
    def join_key(self) -> bytes: ...


def hello_epoch(msg: Any) -> int:
    """The cluster key epoch a member's hello is keyed with (0 when it names none)."""
    epoch = msg.get("epoch", 0) if isinstance(msg, dict) else 0
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else -1


def _proof(join_key: bytes, role: bytes, nonce_j: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(join_key, role + b"|" + nonce_j + b"|" + nonce_s, hashlib.sha256).digest()


def _session_key(join_key: bytes, nonce_j: bytes, nonce_s: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=nonce_j + nonce_s, info=b"p2porch join session v1"
    ).derive(join_key)


def _seal(key: bytes, iv: bytes, direction: bytes, payload: Any) -> bytes:
    return iv + AESGCM(key).encrypt(iv, pack(payload), direction)


def _open(key: bytes, direction: bytes, sealed: Any) -> Any:
    if not isinstance(sealed, bytes) or len(sealed) < 12 + 16:
        raise AuthError("join message is not a sealed payload")
    try:
        plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], direction)
    except InvalidTag as exc:
        raise AuthError("join message failed authentication") from exc
    try:
        return unpack(plain)
    except WireError as exc:
        raise AuthError(f"join message is malformed: {exc.message}") from exc


def _field(msg: Any, name: str, kind: type, size: int | None = None) -> Any:
    if not isinstance(msg, dict):
        raise AuthError("join message is not a map")
    value: Any = msg.get(name)
    if not isinstance(value, kind):
        raise AuthError(f"join message has no valid {name!r}")
    if size is not None and len(value) != size:  # type: ignore[arg-type]
        raise AuthError(f"join message has no valid {name!r}")
    return value


class JoinerHandshake:
    """The joining node's side. Owns its nonces and session key; never sends the token."""

    def __init__(self, token: SessionKey, nonce: bytes, iv: bytes, *, member: bool = False) -> None:
        self._token = token
        self._join_key = token.join_key
        self._nonce_j = nonce
        self._iv = iv
        self._member = member
        self._session: bytes | None = None
        self._items_received = 0

    def hello(self) -> dict[str, Any]:
        """``as: member`` asks the peer to key the session with the member key of our key epoch."""
        hello: dict[str, Any] = {"cluster_id": self._token.cluster_id, "nonce_j": self._nonce_j}
        if self._member:
            hello["as"] = "member"
            hello["epoch"] = int(getattr(self._token, "epoch", 0))
        return hello

    def on_challenge(self, msg: Any, request: dict[str, Any]) -> dict[str, Any]:
        """Verify the member's proof, then return the sealed request message."""
        if isinstance(msg, dict) and "error" in msg:
            raise AuthError(f"join refused: {msg['error']}")
        nonce_s = _field(msg, "nonce_s", bytes, NONCE_BYTES)
        proof_s = _field(msg, "proof_s", bytes)
        if not hmac.compare_digest(proof_s, _proof(self._join_key, b"member", self._nonce_j, nonce_s)):
            raise AuthError(
                "wrong join token: the peer could not prove it holds this token (it may have been "
                "replaced by `p2porch token --rotate`: get the current one with `p2porch token` on a member)",
                field="--token",
            )
        self._session = _session_key(self._join_key, self._nonce_j, nonce_s)
        return {
            "proof_j": _proof(self._join_key, b"joiner", self._nonce_j, nonce_s),
            "sealed": _seal(self._session, self._iv, b"request", request),
        }

    def open_reply(self, msg: Any) -> dict[str, Any]:
        if isinstance(msg, dict) and "error" in msg:
            raise AuthError(f"join refused: {msg['error']}")
        if self._session is None:
            raise AuthError("join reply before the challenge")
        reply = _open(self._session, b"reply", _field(msg, "sealed", bytes))
        if not isinstance(reply, dict):
            raise AuthError("join reply is not a map")
        return reply

    def open_item(self, msg: Any) -> Any:
        """Open the next streamed item; items must arrive in order (their nonce is checked)."""
        if self._session is None:
            raise AuthError("stream item before the challenge")
        sealed = _field(msg, "sealed", bytes)
        self._items_received += 1
        if sealed[:12] != _STREAM_PREFIX + self._items_received.to_bytes(8, "big"):
            raise AuthError("stream item out of order")
        return _open(self._session, b"item", sealed)


class MemberHandshake:
    """A cluster member's side of one join attempt. Owns the nonces; acts only after proof_j checks."""

    def __init__(self, token: SessionKey, nonce: bytes, iv: bytes) -> None:
        self._token = token
        self._join_key = token.join_key
        self._nonce_s = nonce
        self._iv = iv
        self._nonce_j: bytes | None = None
        self._session: bytes | None = None
        self._items_sent = 0

    def on_hello(self, msg: Any) -> dict[str, Any]:
        cluster_id = _field(msg, "cluster_id", str)
        if cluster_id != self._token.cluster_id:
            raise AuthError(
                f"the token is for cluster {cluster_id} but this node belongs to cluster "
                f"{self._token.cluster_id}"
            )
        self._nonce_j = _field(msg, "nonce_j", bytes, NONCE_BYTES)
        return {
            "nonce_s": self._nonce_s,
            "proof_s": _proof(self._join_key, b"member", self._nonce_j, self._nonce_s),
        }

    def on_request(self, msg: Any) -> dict[str, Any]:
        """Verify the joiner's proof and return its decrypted request."""
        if self._nonce_j is None:
            raise AuthError("join request before hello")
        proof_j = _field(msg, "proof_j", bytes)
        if not hmac.compare_digest(proof_j, _proof(self._join_key, b"joiner", self._nonce_j, self._nonce_s)):
            raise AuthError("wrong join token")
        self._session = _session_key(self._join_key, self._nonce_j, self._nonce_s)
        request = _open(self._session, b"request", _field(msg, "sealed", bytes))
        if not isinstance(request, dict):
            raise AuthError("join request is not a map")
        return request

    def seal_reply(self, reply: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            raise AuthError("reply before a verified request")
        return {"sealed": _seal(self._session, self._iv, b"reply", reply)}

    def seal_item(self, item: Any) -> dict[str, Any]:
        """One item of a streamed reply; each gets the next counter nonce (never reused in a session)."""
        if self._session is None:
            raise AuthError("stream before a verified request")
        self._items_sent += 1
        iv = _STREAM_PREFIX + self._items_sent.to_bytes(8, "big")
        return {"sealed": _seal(self._session, iv, b"item", item)}
