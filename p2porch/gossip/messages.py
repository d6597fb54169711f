"""SWIM message types and their msgpack codec (pure).

Owns the wire shape of every gossip message, compound UDP packets and push/pull state. Messages are
NamedTuples so they pack as msgpack arrays ``[code, field, ...]``. Decoding only ever raises WireError.
It never touches sockets or crypto (the transport seals the bytes produced here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import wire
from ..errors import WireError

PACKET_TYPE = "g"  # compound UDP packet frame type
PUSHPULL_TYPE = "pp"  # TCP full-state exchange frame type
TCP_PING_TYPE = "tp"  # TCP fallback ping: {"seq": int, "target": name}
TCP_ACK_TYPE = "ta"  # its answer: {"seq": int}
SEAL_OVERHEAD_BYTES = 1 + 16 + 8 + 16  # version, epoch id, counter nonce, tag (keyring.py)
META_MAX_BYTES = 512  # memberlist's MetaMaxSize
RESTART_META_KEY = "r"  # NodeMeta.restart_until on the wire
COMMAND_VERSIONS_META_KEY = "cv"  # NodeMeta.command_versions on the wire
#: keys of NodeMeta that are best-effort: one that would take the meta past META_MAX_BYTES (node labels
#: fill it) is left out (``fit_meta``, first key first) rather than failing the agent's start or the
#: daemon's stop; without ``cv`` a node counts as reading only the baseline command versions. The
#: restart hold ``r`` (what the cluster does while the node restarts) outranks the engine version and
#: architecture (``e``, ``p``: shown by ``node ls`` only)
OPTIONAL_META_KEYS = (COMMAND_VERSIONS_META_KEY, RESTART_META_KEY, "e", "p")
MAX_COMMAND_VERSIONS = 16  # entries of a peer's ``cv`` read (each a command tag above the baseline)
MAX_NAME_BYTES = 128

ALIVE, SUSPECT, DEAD, LEFT = 0, 1, 2, 3
STATE_NAMES = ("alive", "suspect", "dead", "left")


class Ping(NamedTuple):
    """Direct probe of ``target``; answered by an Ack with the same seq."""

    seq: int
    target: str
    source: str


class IndirectPing(NamedTuple):
    """Ask the receiver to ping ``target`` for us and relay the Ack (or a Nack when ``nack`` is set)."""

    seq: int
    target: str
    target_addr: str
    source: str
    nack: bool


class Ack(NamedTuple):
    seq: int


class Nack(NamedTuple):
    """Sent by an indirect prober whose own ping got no answer: proof the path to *us* works."""

    seq: int


class Suspect(NamedTuple):
    incarnation: int
    node: str
    sender: str


class Alive(NamedTuple):
    incarnation: int
    node: str
    addr: str
    meta: Mapping[str, Any]


class Dead(NamedTuple):
    """``sender == node`` means the node left gracefully."""

    incarnation: int
    node: str
    sender: str


Message = Ping | IndirectPing | Ack | Nack | Suspect | Alive | Dead

_CODES: dict[type, int] = {Ping: 1, IndirectPing: 2, Ack: 3, Nack: 4, Suspect: 5, Alive: 6, Dead: 7}
_TYPES: dict[int, type] = {code: t for t, code in _CODES.items()}
# field validators per message type: "i" int >= 0, "s" short str, "b" bool, "m" meta map
_SHAPES: dict[type, str] = {
    Ping: "iss",
    IndirectPing: "isssb",
    Ack: "i",
    Nack: "i",
    Suspect: "iss",
    Alive: "issm",
    Dead: "iss",
}
_MAX_INT = 2**63 - 1


class Packet(NamedTuple):
    """One outgoing UDP datagram: destination ``host:port``, messages, and its plaintext size in bytes."""

    addr: str
    msgs: list[Message]
    size_bytes: int


class MemberEvent(NamedTuple):
    """A membership change seen by this node: kind is joined/updated/suspect/alive/dead/left."""

    kind: str
    name: str
    addr: str
    incarnation: int
    meta: Mapping[str, Any]


class StateEntry(NamedTuple):
    """One member in a push/pull full-state exchange."""

    name: str
    addr: str
    incarnation: int
    state: int
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class NodeMeta:
    """Node metadata carried in Alive messages (at most 512 packed bytes)."""

    advertise_addr: str = ""
    vtep_addr: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Mapping[str, int] = field(default_factory=dict)  # {"cpu_millis": 4000, "memory_bytes": ...}
    generation: int = 0  # the node's Raft generation (bumped by `recover --force-new-cluster`)
    traffic_index: int = 0  # the state version this node's ingress/VIP rules reflect (member/drain_acks.py)
    engine_version: str = ""  # the Docker engine version (``node ls`` ENGINE VERSION; "" not yet known)
    architecture: str = ""  # the engine's ``uname -m`` (``node inspect`` .Description.Platform; "" unknown)
    key_epoch: int = 0  # the cluster key epoch the node runs in (``node ls`` TLSStatus)
    #: a daemon stopping to restart: until when (its own wall clock, whole seconds) it asks the leader to
    #: hold it ready (leader/restart_hold.py); 0 = not restarting. Sent only by a graceful stop.
    restart_until: int = 0
    #: the Raft command body versions the node reads above the baseline (tag -> version:
    #: raft/command_gate.advertisement); writers never use a version some member does not read
    command_versions: Mapping[str, int] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The meta as sent, without the optional keys that do not fit (``fit_meta``)."""
        meta, _skipped = fit_meta(self.wire_fields())
        check_meta(meta)
        return meta

    def wire_fields(self) -> dict[str, Any]:
        """Every field on the wire, the optional ones included even if they do not fit."""
        meta = {
            "a": self.advertise_addr,
            "v": self.vtep_addr,
            "l": dict(self.labels),
            "c": dict(self.capacity),
            "g": self.generation,
            "t": self.traffic_index,
            "k": self.key_epoch,
        }
        if self.engine_version:
            meta["e"] = self.engine_version
        if self.architecture:
            meta["p"] = self.architecture
        if self.restart_until:
            meta[RESTART_META_KEY] = self.restart_until
        if self.command_versions:
            meta[COMMAND_VERSIONS_META_KEY] = dict(self.command_versions)
        return meta

    @classmethod
    def from_wire(cls, meta: Mapping[str, Any]) -> NodeMeta:
        """Lenient: unknown or ill-typed fields are ignored (meta comes from authenticated peers)."""
        labels = meta.get("l")
        capacity = meta.get("c")
        return cls(
            advertise_addr=str(meta.get("a", "")),
            vtep_addr=str(meta.get("v", "")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            capacity=(
                {str(k): v for k, v in capacity.items() if isinstance(v, int)}
                if isinstance(capacity, dict)
                else {}
            ),
            generation=generation if isinstance(generation := meta.get("g", 0), int) else 0,
            traffic_index=index if isinstance(index := meta.get("t", 0), int) else 0,
            engine_version=version if isinstance(version := meta.get("e", ""), str) else "",
            architecture=arch if isinstance(arch := meta.get("p", ""), str) else "",
            key_epoch=epoch if isinstance(epoch := meta.get("k", 0), int) else 0,
            restart_until=restart_hint(meta),
            command_versions=command_versions(meta),
        )


def restart_hint(meta: Mapping[str, Any]) -> int:
    """The restart hold a member's meta announces (unix seconds; 0: none or ill-typed)."""
    until = meta.get(RESTART_META_KEY, 0)
    return until if type(until) is int and until > 0 else 0


def command_versions(meta: Mapping[str, Any]) -> dict[str, int]:
    """The command versions a member's meta advertises (``{}``: none; ill-typed entries are dropped)."""
    found = meta.get(COMMAND_VERSIONS_META_KEY)
    if not isinstance(found, Mapping):
        return {}
    entries = list(found.items())[:MAX_COMMAND_VERSIONS]
    return {k: v for k, v in entries if isinstance(k, str) and type(v) is int and v > 0}


def check_meta(meta: Mapping[str, Any]) -> None:
    """Raise WireError unless meta is a str-keyed map that packs to at most META_MAX_BYTES."""
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
        raise WireError("node meta must be a map with string keys")
    size = len(wire.pack(dict(meta)))
    if size > META_MAX_BYTES:
        raise WireError(f"node meta is {size} bytes, the limit is {META_MAX_BYTES}")


def fit_meta(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``meta`` without the optional keys (``OPTIONAL_META_KEYS``) that would take it past META_MAX_BYTES,
    and those keys; the others are kept as they are (check_meta still refuses them if they alone do not
    fit)."""
    fitted = {k: v for k, v in meta.items() if k not in OPTIONAL_META_KEYS}
    skipped: list[str] = []
    for key in OPTIONAL_META_KEYS:
        if key in meta:
            fitted[key] = meta[key]
            if len(wire.pack(fitted)) > META_MAX_BYTES:
                del fitted[key]
                skipped.append(key)
    return fitted, skipped


#: the biggest values NodeMeta's other keys take (IPv4 addresses, 64-bit counters, an engine version
#: and architecture as Docker reports them, a restart hold): node labels get the rest of the budget
_LARGEST_META: dict[str, Any] = {
    "a": "255.255.255.255",
    "v": "255.255.255.255",
    "c": {"memory_bytes": 2**64 - 1, "cpu_millis": 2**64 - 1},
    "g": 2**64 - 1,
    "t": 2**64 - 1,
    "k": 2**64 - 1,
    "e": "x" * 32,
    "p": "x" * 16,
    RESTART_META_KEY: 2**64 - 1,
    COMMAND_VERSIONS_META_KEY: {"put_secret": 2, "roll_done": 1, "spec": 7, "update_node": 2},  # advertised
}


def labels_meta_room(labels: Mapping[str, str]) -> int:
    """Bytes the gossip meta has left with these node labels at their largest (negative: past it)."""
    return META_MAX_BYTES - len(wire.pack({**_LARGEST_META, "l": dict(labels)}))


# ---------------------------------------------------------------------------------------- encoding


def message_to_wire(msg: Message) -> list[Any]:
    return [_CODES[type(msg)], *msg]


def message_size(msg: Message) -> int:
    """Exact packed size of one message inside a compound packet."""
    return len(wire.pack(message_to_wire(msg)))


PACKET_OVERHEAD_BYTES = len(wire.encode_frame(PACKET_TYPE, [])) + 2  # + array header growth


def encode_packet(msgs: list[Message]) -> bytes:
    """Compound packet: frame ``g`` whose body is the list of messages."""
    return wire.encode_frame(PACKET_TYPE, [message_to_wire(m) for m in msgs])


def _check_field(kind: str, value: Any) -> Any:
    if kind == "i":
        if type(value) is not int or not 0 <= value <= _MAX_INT:
            raise WireError("expected a non-negative integer")
        return value
    if kind == "s":
        if type(value) is not str or len(value) > 4 * MAX_NAME_BYTES:
            raise WireError("expected a short string")
        return value
    if kind == "b":
        if type(value) is not bool:
            raise WireError("expected a bool")
        return value
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise WireError("expected a string-keyed map")
    return value


def message_from_wire(item: Any) -> Message:
    if type(item) is not list or not item or type(item[0]) is not int:
        raise WireError("message is not a [code, ...] array")
    mtype = _TYPES.get(item[0])
    if mtype is None:
        raise WireError(f"unknown message code {item[0]!r}")
    shape = _SHAPES[mtype]
    if len(item) != len(shape) + 1:
        raise WireError(f"message code {item[0]} has {len(item) - 1} fields, want {len(shape)}")
    values = [_check_field(kind, value) for kind, value in zip(shape, item[1:], strict=True)]
    msg: Message = mtype(*values)
    return msg


def decode_packet(data: bytes) -> list[Message]:
    """Decode a compound packet; raises WireError on anything malformed."""
    msg_type, body = wire.decode_frame(data, max_bytes=65536)
    if msg_type != PACKET_TYPE:
        raise WireError(f"expected a gossip packet, got frame type {msg_type!r}")
    if type(body) is not list or not body:
        raise WireError("gossip packet body must be a non-empty list")
    return [message_from_wire(item) for item in body]


def encode_pushpull(join: bool, states: list[StateEntry]) -> bytes:
    return wire.encode_frame(PUSHPULL_TYPE, {"join": join, "states": [list(s) for s in states]})


def decode_pushpull(data: bytes, *, max_bytes: int = 16 * 1024 * 1024) -> tuple[bool, list[StateEntry]]:
    """Decode a push/pull frame into ``(join, states)``; raises WireError on anything malformed."""
    msg_type, body = wire.decode_frame(data, max_bytes=max_bytes)
    if msg_type != PUSHPULL_TYPE:
        raise WireError("not a push/pull frame")
    return decode_pushpull_body(body)


def decode_pushpull_body(body: Any) -> tuple[bool, list[StateEntry]]:
    """Body of a ``pp`` frame -> (join, states); raises WireError."""
    if type(body) is not dict:
        raise WireError("push/pull body must be a map")
    join = body.get("join")
    states = body.get("states")
    if type(join) is not bool or type(states) is not list:
        raise WireError("push/pull frame needs join (bool) and states (list)")
    out: list[StateEntry] = []
    for item in states:
        if type(item) is not list or len(item) != 5:
            raise WireError("push/pull state entry must be [name, addr, incarnation, state, meta]")
        name, addr, inc, state, meta = (_check_field(k, v) for k, v in zip("ssiim", item, strict=True))
        if state not in (ALIVE, SUSPECT, DEAD, LEFT):
            raise WireError(f"unknown member state {state!r}")
        out.append(StateEntry(name, addr, inc, state, meta))
    return join, out


def encode_tcp_ping(seq: int, target: str) -> bytes:
    return wire.encode_frame(TCP_PING_TYPE, {"seq": seq, "target": target})


def encode_tcp_ack(seq: int) -> bytes:
    return wire.encode_frame(TCP_ACK_TYPE, {"seq": seq})


def decode_tcp_ping(body: Any) -> tuple[int, str]:
    """Body of a ``tp`` frame -> (seq, target); raises WireError."""
    if type(body) is not dict:
        raise WireError("tcp ping body must be a map")
    return _check_field("i", body.get("seq")), _check_field("s", body.get("target"))


def decode_tcp_ack(data: bytes) -> int:
    msg_type, body = wire.decode_frame(data, max_bytes=1024)
    if msg_type != TCP_ACK_TYPE or type(body) is not dict:
        raise WireError("not a tcp ack frame")
    seq: int = _check_field("i", body.get("seq"))
    return seq


def retransmit_limit(retransmit_mult: int, num_nodes: int) -> int:
    """memberlist: ``retransmit_mult * ceil(log10(N + 1))``."""
    return retransmit_mult * math.ceil(math.log10(num_nodes + 1))
