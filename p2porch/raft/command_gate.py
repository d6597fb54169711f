"""The command-version gate of a rolling upgrade: no write uses a body version some node cannot read (pure).

Every node advertises the command body versions it reads above :data:`BASELINE` (gossip meta key
``cv``: ``advertisement()``, a few bytes). A node that advertises nothing (a release from before the
gate, a node down or never seen whose meta this node does not hold, one whose labels left no room for
the key) reads only the baseline. :func:`gate` takes every member's advertisement and gives the version
each command may be written in: the lowest any member reads. :func:`admit` is the writer's check on
encoded bytes (the store calls it for every proposal: the leader's and a follower's before it is
forwarded): a command within the gate passes unchanged; one above it is written as the older body when
the command has one (``Command.older_body``: ``update_node`` without the restart hold is version 1), or
refused with a ``NotAllowedError`` naming the command and the nodes that are behind. The service spec's
fields have a version of their own (``model/spec_fields.py``, advertised as the entry ``spec``):
:func:`admit_spec` is the edges' check (service create/update, stack deploy) that refuses a spec using a
field some member does not read. Nothing here reads a clock, the network or the store (see
docs/raft.md, "Commands: types, codec, versions, compatibility").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgpack

from ..errors import NotAllowedError, WireError
from ..model import ServiceSpec, spec_fields
from .codec import decode
from .commands import COMMANDS, decode_command

SPEC = "spec"  # the advertised entry of the service spec's field version (model/spec_fields.py)
#: what a node that advertises nothing reads: every command the release before the gate knew, at its
#: version then (fixed: a later bump or a new command is above it, so advertised and gated); a tag not
#: here is version 0, read by no such node. ``update_node`` version 2 (the restart hold) came with the
#: gate; the spec's fields of then are spec version 1.
BASELINE: Mapping[str, int] = MappingProxyType(
    {
        SPEC: 1,
        "add_node": 1,
        "claim_leader_epoch": 1,
        "create_network": 1,
        "create_service": 1,
        "init_cluster": 1,
        "lease_subnet": 1,
        "noop": 1,
        "put_access_token": 1,
        "put_secret": 1,
        "put_tasks": 1,
        "release_subnet": 1,
        "remove_access_token": 1,
        "remove_network": 1,
        "remove_node": 1,
        "remove_secret": 1,
        "remove_service": 1,
        "report_task_states": 1,
        "reseal_secret": 1,
        "restore_state": 1,
        "rotate_keys": 1,
        "set_join_token": 1,
        "update_node": 1,
        "update_service": 2,
    }
)
#: entries advertised later than others a release advertised: tag -> (other tag, its version, the
#: version implied). The gate's release (update_node 2) read spec version 2 but advertised no ``spec``.
IMPLIED: Mapping[str, tuple[str, int, int]] = MappingProxyType({SPEC: ("update_node", 2, 2)})
#: every member's advertisement (node id -> its gossip ``cv`` map, None: none), as the store reads them
Readers = Callable[[], Mapping[str, Mapping[str, Any] | None]]
MAX_ADVERTISED = 64  # entries of an advertisement that are looked at (a peer's meta is bounded anyway)
PEEK_BYTES = 128  # the header peek's first try: a command's tag and version, as the encoder writes them


def reads() -> dict[str, int]:
    """The body version of each command this node reads (the newest its decoder accepts), and the spec
    version of the service specs it reads (``spec``)."""
    return {tag: cls.VERSION for tag, cls in COMMANDS.items()} | {SPEC: spec_fields.SPEC_VERSION}


def advertisement(own: Mapping[str, int] | None = None) -> dict[str, int]:
    """What a node reading ``own`` (default: this node) advertises: the commands above the baseline."""
    own = reads() if own is None else own
    return {tag: version for tag, version in sorted(own.items()) if version > BASELINE.get(tag, 0)}


def member_reads(advertised: Mapping[str, Any] | None) -> dict[str, int]:
    """What a member with this advertisement reads (None or ill-typed entries: the baseline)."""
    out = dict(BASELINE)
    if isinstance(advertised, Mapping):
        for tag, version in list(advertised.items())[:MAX_ADVERTISED]:
            if isinstance(tag, str) and type(version) is int and version > out.get(tag, 0):
                out[tag] = version
        for tag, (other, at, implied) in IMPLIED.items():
            if out.get(other, 0) >= at and out.get(tag, 0) < implied:
                out[tag] = implied
    return out


@dataclass(frozen=True)
class CommandGate:
    """The version each command may be written in (``allowed``) and each member's advertisement."""

    allowed: Mapping[str, int]
    advertisements: Mapping[str, Mapping[str, Any] | None]

    def allows(self, tag: str, version: int) -> bool:
        return version <= self.allowed.get(tag, 0)

    def behind(self, tag: str, version: int) -> list[str]:
        """The members that do not read ``tag`` at ``version`` (sorted)."""
        return sorted(
            node for node, adv in self.advertisements.items() if member_reads(adv).get(tag, 0) < version
        )


def gate(advertisements: Mapping[str, Mapping[str, Any] | None]) -> CommandGate:
    """Members (node id -> advertisement, None: none) -> the versions every one of them reads; with no
    member at all (a cluster not initialised yet) this node's own. O(members x the commands this node
    reads above the baseline): the baseline holds for every member without looking."""
    allowed = reads()
    above = [tag for tag, version in allowed.items() if version > BASELINE.get(tag, 0)]
    for adv in advertisements.values():
        if not above:
            break
        read = member_reads(adv) if adv else BASELINE
        for tag in list(above):
            allowed[tag] = min(allowed[tag], read.get(tag, 0))
            if allowed[tag] <= BASELINE.get(tag, 0):
                above.remove(tag)  # at the floor: no member can take it lower
    return CommandGate(allowed, advertisements)


def header(data: bytes) -> tuple[str, int]:
    """``(tag, body version)`` of an encoded command, reading only its first keys as the encoder writes
    them (``("", 0)`` for the op-map layout of version 0, which every node reads); raises WireError for
    bytes that are no command map. Only the first ``PEEK_BYTES`` are read unless the keys run past them."""
    first = None
    if len(data) > PEEK_BYTES:
        with contextlib.suppress(Exception):  # cut inside the first keys (or not a map): read it all
            first = _first_keys(memoryview(data)[:PEEK_BYTES])
    if first is None:
        try:
            first = _first_keys(data)
        except Exception as exc:  # msgpack raises many types
            raise WireError(f"not an encoded command: {type(exc).__name__}: {exc}") from exc
    found: Mapping[Any, Any] = first
    if "t" not in found:  # the op-map layout (version 0), or a map the encoder did not write: read whole
        whole = decode(data)
        found = whole if isinstance(whole, Mapping) and "t" in whole else {"t": "", "v": 0}
    tag, version = found.get("t"), found.get("v")
    if not isinstance(tag, str) or type(version) is not int:
        raise WireError("an encoded command starts with its tag and version")
    return tag, version


def _first_keys(data: bytes | memoryview) -> dict[Any, Any]:
    """The first two keys and values of the msgpack map ``data`` starts with (the encoder writes "t",
    then "v", then "b"); raises what msgpack raises, OutOfData when ``data`` ends inside them."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data) or 1)
    unpacker.feed(data)
    pairs = unpacker.read_map_header()
    first: dict[Any, Any] = {}
    for _ in range(min(pairs, 2)):
        key = unpacker.unpack()
        first[key] = unpacker.unpack()
    return first


def admit(data: bytes, members: Readers) -> bytes:
    """The bytes to propose for the encoded command ``data``: ``data`` itself within the gate, else its
    older body; ``members`` (read only for a command above the baseline) gives every member's
    advertisement. Raises NotAllowedError when no member-readable body exists."""
    tag, version = header(data)
    if tag == SPEC:  # an entry of the advertisement, not a command
        raise WireError(f"{SPEC!r} is not a command tag")
    if version <= BASELINE.get(tag, 0):
        return data
    current = gate(members())
    if current.allows(tag, version):
        return data
    allowed = current.allowed.get(tag, 0)
    older = decode_command(data).older_body(allowed) if allowed > 0 else None
    if older is not None:
        return older.encode()
    behind = current.behind(tag, version)
    shown = ", ".join(behind[:10]) + (f" and {len(behind) - 10} more" if len(behind) > 10 else "")
    raise NotAllowedError(
        f"{tag} version {version} is not read by every node yet: {shown} read up to version {allowed}; "
        "upgrade them first",
        field="command",
    )


def admit_spec(spec: ServiceSpec, current: ServiceSpec | None, members: Readers | None) -> None:
    """Refuse (NotAllowedError naming the fields and the members behind) a spec written by a user that
    uses a field or value form some member does not read yet (``model/spec_fields.py``); ``current``,
    the service's spec before an update, keeps the ones it already uses (every member has them
    already, as they are). ``members`` None (no gate) or read only when the spec uses a newer field."""
    used = spec_fields.used_above(spec, BASELINE[SPEC])
    if members is None or not used:
        return
    current_gate = gate(members())
    allowed = current_gate.allowed.get(SPEC, 0)
    kept = spec_fields.used_above(current, allowed) if current is not None else {}
    unread = {name: v for name, v in used.items() if v > allowed and name not in kept}
    if not unread:
        return
    behind = current_gate.behind(SPEC, min(unread.values()))
    shown = ", ".join(behind[:10]) + (f" and {len(behind) - 10} more" if len(behind) > 10 else "")
    names = ", ".join(f"{name} (spec version {v})" for name, v in sorted(unread.items()))
    one = len(unread) == 1
    raise NotAllowedError(
        f"{names} {'is' if one else 'are'} not read by every node yet: {shown} read spec fields up to "
        f"version {allowed}; upgrade them first, or leave {'it' if one else 'them'} out",
        field=min(unread),
    )


def spec_refusal(spec: ServiceSpec, current: ServiceSpec | None, members: Readers | None) -> str | None:
    """:func:`admit_spec`'s refusal as a message (the leader's automatic rollback pauses with it), None
    when every member reads ``spec``."""
    try:
        admit_spec(spec, current, members)
    except NotAllowedError as exc:
        return exc.message
    return None
