"""Typed Raft commands and their one codec (pure).

Each command is a frozen dataclass; every command carries ``at`` (proposer wall time, s: never the
applying node's clock, so every replica computes the same state) and an optional ``expected_version``
that makes it conditional on the global state version. On the wire a command is the msgpack map
``{"t": tag, "v": body version, "b": body}`` (the layout of ``wire.py``'s frames); the body holds
``at``, ``expected_version`` and the command's fields in plain form. :func:`decode_command` validates
everything and returns a typed command or raises ``ConfigError``/``WireError`` naming the field; the
FSM only ever sees typed commands. Entries written before typed commands (``{"op": name, "at": ...}``,
body version 0) decode to the same typed commands, so existing journals and snapshots still load.
See docs/raft.md for each command's fields and versions.

The envelope, the ``Command`` base and the result maps live in ``codec.py``, the secret and key
commands in ``commands_secrets.py``, the access-token commands in ``commands_access.py``; this module
holds the rest, the dispatch table and the decoder, and re-exports them so callers import one module.
It builds and reads bytes; it never applies them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError, P2POrchError, WireError
from ..model import (
    Availability,
    Node,
    NodeRole,
    NodeStatus,
    Service,
    ServiceSpec,
)
from ..model.autoscale_spec import AutoscaleStep
from ..model.committed import committed_spec
from ..model.records import LEGACY_BOOKKEEPING_KEYS, MAX_ENGINE_ERROR, JobStatus, optional_spec
from ..model.rollout import Rollout
from . import fields as F
from .codec import COMMAND_VERSION as COMMAND_VERSION  # re-exported: callers use commands only
from .codec import LEGACY_VERSION as LEGACY_VERSION
from .codec import Command as Command
from .codec import decode as decode
from .codec import encode_command as encode_command
from .codec import error as error
from .codec import error_of as error_of
from .codec import error_result as error_result
from .codec import ok as ok
from .codec import raise_for_result as raise_for_result
from .commands_access import PutAccessToken as PutAccessToken
from .commands_access import RemoveAccessToken as RemoveAccessToken
from .commands_networks import CreateNetwork as CreateNetwork
from .commands_networks import RemoveNetwork as RemoveNetwork
from .commands_secrets import PutSecret as PutSecret
from .commands_secrets import RemoveSecret as RemoveSecret
from .commands_secrets import ResealSecret as ResealSecret
from .commands_secrets import RollDone as RollDone
from .commands_secrets import RotateKeys as RotateKeys
from .fields import TaskItem as TaskItem  # re-exported: the items of PutTasks/ReportTaskStates
from .fields import TaskPut as TaskPut
from .fields import TaskRemove as TaskRemove
from .fields import TaskStatusReport as TaskStatusReport
from .state import ClusterState

MAX_BATCH_ITEMS = 10_000


# --- cluster ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InitCluster(Command):
    """First entry of a new cluster (conditional on version 0)."""

    TAG = "init_cluster"
    cluster_id: str
    domain: str = "p2p"
    cluster_cidr: str = "10.240.0.0/16"
    subnet_prefix_len: int = 24
    expected_version: int | None = 0

    def body(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "domain": self.domain,
            "cluster_cidr": self.cluster_cidr,
            "subnet_prefix_len": self.subnet_prefix_len,
        }

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> InitCluster:
        prefix_len = F.get(b, "subnet_prefix_len", int)
        try:
            cidr = ipaddress.IPv4Network(F.text(b, "cluster_cidr"), strict=True)
        except ValueError as exc:
            raise F.invalid(f"bad cluster_cidr: {exc}", "cluster_cidr") from exc
        if not cidr.prefixlen <= prefix_len <= 30:
            raise F.invalid(f"subnet_prefix_len must be within /{cidr.prefixlen}../30", "subnet_prefix_len")
        return cls(
            cluster_id=F.text(b, "cluster_id"),
            domain=F.text(b, "domain"),
            cluster_cidr=str(cidr),
            subnet_prefix_len=prefix_len,
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SetJoinToken(Command):
    """Replace the token new nodes must present (rotation); the cluster's own keys do not change."""

    TAG = "set_join_token"
    join_token: str

    def body(self) -> dict[str, Any]:
        return {"join_token": self.join_token}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> SetJoinToken:
        return cls(join_token=F.text(b, "join_token"), **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreState(Command):
    """Install a whole state as the first entry of a recovered cluster's new log."""

    TAG = "restore_state"
    state: ClusterState
    expected_version: int | None = 0

    def body(self) -> dict[str, Any]:
        return {"state": self.state.to_dict()}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RestoreState:
        data = F.get(b, "state", dict)
        try:
            state = ClusterState.from_dict(data)
        except (TypeError, ValueError, AttributeError, KeyError, ConfigError) as exc:
            raise F.invalid(f"state is malformed: {exc}", "state") from exc
        if not state.initialized:
            raise F.invalid("state has no cluster id", "state")
        return cls(state=state, **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Command):
    """A write that changes nothing but its result; a barrier for tests and the benchmark."""

    TAG = "noop"
    tag: Any = None

    def body(self) -> dict[str, Any]:
        return {"tag": self.tag}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> Noop:
        return cls(tag=b.get("tag"), **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimLeaderEpoch(Command):
    """A new leader's first write: its Raft term becomes the leader epoch. Leader commands carrying an
    older ``leader_epoch`` are refused from then on (fencing a deposed leader's late writes)."""

    TAG = "claim_leader_epoch"
    epoch: int

    def body(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> ClaimLeaderEpoch:
        epoch = F.get(b, "epoch", int)
        if epoch < 1:
            raise F.invalid("epoch must be at least 1", "epoch")
        return cls(epoch=epoch, **common)


# --- nodes and leases ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AddNode(Command):
    """Add a member; ``joined_at`` and ``version`` of ``node`` are set by the FSM."""

    TAG = "add_node"
    node: Node

    def body(self) -> dict[str, Any]:
        return {"node": self.node.to_dict()}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> AddNode:
        return cls(node=F.node_from_wire(b.get("node")), **common)


_NODE_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "labels": F.labels,
    "availability": lambda x, n: F.choice(x, n, Availability),
    "status": lambda x, n: F.choice(x, n, NodeStatus),
    "role": lambda x, n: F.choice(x, n, NodeRole),
    "addr": lambda x, n: F.text({n: x}, n),
    "raft_port": F.port,
    "gossip_port": F.port,
    "join_port": F.port_or_zero,
    "vxlan_port": F.port_or_zero,
    "cpu_nanos": F.non_negative,
    "memory_bytes": F.non_negative,
    "key_pub": F.key_text,
    "engine_down_at": F.non_negative_number,
    "engine_error": lambda x, n: F.bounded_text(x, n, MAX_ENGINE_ERROR),
    "restart_until": F.non_negative_number,
    "restart_incarnation": F.non_negative,
}


#: the graceful-restart hold (leader/restart_hold.py): the fields of ``update_node`` version 2
HOLD_FIELDS = ("restart_until", "restart_incarnation")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateNode(Command):
    """Change some of a node's fields (None = unchanged; ``labels`` replaces the whole map).

    Version 2 is the body with the restart hold (``HOLD_FIELDS``); one without them is written as
    version 1, which every release reads. The release that added the hold wrote it into version-1 bodies:
    those still decode (``hold_in_version_1``) and re-encode as they were, so journals replay alike."""

    TAG = "update_node"
    VERSION = 2
    node_id: str
    node_version: int | None = None
    labels: Mapping[str, str] | None = None
    availability: Availability | None = None
    status: NodeStatus | None = None
    role: NodeRole | None = None
    addr: str | None = None
    raft_port: int | None = None
    gossip_port: int | None = None
    join_port: int | None = None
    vxlan_port: int | None = None
    cpu_nanos: int | None = None
    memory_bytes: int | None = None
    key_pub: str | None = None
    engine_down_at: float | None = None
    engine_error: str | None = None
    restart_until: float | None = None
    restart_incarnation: int | None = None
    hold_in_version_1: bool = False  # read from a version-1 body with the hold (written before version 2)

    def changes(self) -> dict[str, Any]:
        """The fields this command sets."""
        return {n: getattr(self, n) for n in _NODE_FIELDS if getattr(self, n) is not None}

    def holds(self) -> bool:
        """Whether it writes a hold field (the version-2 body)."""
        return self.restart_until is not None or self.restart_incarnation is not None

    def body_version(self) -> int:
        return self.VERSION if self.holds() and not self.hold_in_version_1 else 1

    def older_body(self, version: int) -> Command | None:
        """Version 1: these changes without the hold (None if the hold was all it changed)."""
        if version >= 1 and self.holds():
            older = replace(self, restart_until=None, restart_incarnation=None, hold_in_version_1=False)
            return older if older.changes() else None
        return None

    def body(self) -> dict[str, Any]:
        fields = {k: dict(v) if k == "labels" else v for k, v in self.changes().items()}
        out: dict[str, Any] = {"node_id": self.node_id, "fields": fields}
        if self.node_version is not None:
            out["node_version"] = self.node_version
        return out

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> UpdateNode:
        updates = F.get(b, "fields", dict)
        clean: dict[str, Any] = {}
        for name, value in updates.items():
            check = _NODE_FIELDS.get(name)
            if check is None:
                raise F.invalid(f"node field {name!r} cannot be updated", name)
            clean[name] = check(value, name)
        if not clean:
            raise F.invalid("no fields to update", "fields")
        hold_in_version_1 = version < 2 and any(name in clean for name in HOLD_FIELDS)
        return cls(
            node_id=F.text(b, "node_id"),
            node_version=F.version_or_none(b, "node_version"),
            hold_in_version_1=hold_in_version_1,
            **clean,
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveNode(Command):
    """Delete a member and its subnet lease (its tasks are left for the orchestrator)."""

    TAG = "remove_node"
    node_id: str
    node_version: int | None = None

    def body(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "node_version": self.node_version}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RemoveNode:
        return cls(node_id=F.text(b, "node_id"), node_version=F.version_or_none(b, "node_version"), **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseSubnet(Command):
    """Lease the lowest free subnet of the cluster CIDR to a node (returns the existing one if any)."""

    TAG = "lease_subnet"
    node_id: str

    def body(self) -> dict[str, Any]:
        return {"node_id": self.node_id}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> LeaseSubnet:
        return cls(node_id=F.text(b, "node_id"), **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseSubnet(LeaseSubnet):
    """Give a node's subnet back."""

    TAG = "release_subnet"


# --- services --------------------------------------------------------------------------------------


def _committed_spec(b: Mapping[str, Any], version: int, service_id: str) -> tuple[ServiceSpec, str, Any]:
    """The body's spec, its invalidity reason ("" = valid) and, when invalid, the spec as committed:
    a committed spec is applied even when this version's validator rejects it (``committed_spec``)."""
    data = F.get(b, "spec", dict)
    if version == LEGACY_VERSION:
        data = {k: v for k, v in data.items() if k not in LEGACY_BOOKKEEPING_KEYS}
    spec, invalid = committed_spec(data, service_id)
    return spec, invalid, (data if invalid else None)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateService(Command):
    """Create a service from a validated spec (the service's name is the spec's)."""

    TAG = "create_service"
    service_id: str
    spec: ServiceSpec
    invalid: str = ""  # committed with a spec this version does not accept (see _committed_spec)
    invalid_spec: Any = field(default=None, compare=False)

    def body(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            "spec": self.invalid_spec if self.invalid else self.spec.to_sparse_dict(),
        }

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> CreateService:
        service_id = F.text(b, "service_id")
        spec, invalid, raw = _committed_spec(b, version, service_id)
        if version == LEGACY_VERSION and not invalid and F.text(b, "name") != spec.name:
            raise F.invalid(f"name {b['name']!r} is not the spec's name {spec.name!r}", "name")
        return cls(service_id=service_id, spec=spec, invalid=invalid, invalid_spec=raw, **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateService(Command):
    """Replace a service's spec and controller bookkeeping (every field: the new desired record).

    Version 2 has version 1's body; it says the entry was written once the FSM refused a change of mode
    (``keeps_mode``): an entry of version 0 or 1 was applied whatever its mode, so it replays as then."""

    TAG = "update_service"
    VERSION = 2
    service_id: str
    spec: ServiceSpec
    previous_spec: ServiceSpec | None = None
    update_paused: bool = False
    rebalance_requested: float = 0.0
    rollout: Rollout | None = None
    service_version: int | None = None
    autoscale_last: AutoscaleStep | None = None  # the autoscaler's step (absent from the body when None)
    job: JobStatus = field(default_factory=JobStatus)
    invalid: str = ""  # committed with a spec this version does not accept (see _committed_spec)
    invalid_spec: Any = field(default=None, compare=False)
    keeps_mode: bool = True  # refused if it changes the mode: every entry of version 2, none before

    @classmethod
    def of(cls, service: Service, *, at: float, **changes: Any) -> UpdateService:
        """``service`` with ``changes`` applied, conditional on the version read."""
        new = replace(service, **changes)
        return cls(
            at=at,
            service_id=service.service_id,
            spec=new.spec,
            previous_spec=new.previous_spec,
            update_paused=new.update_paused,
            rebalance_requested=new.rebalance_requested,
            rollout=new.rollout,
            service_version=service.version,
            autoscale_last=new.autoscale_last,
            job=new.job,
        )

    def body_version(self) -> int:
        return self.VERSION if self.keeps_mode else 1  # an older entry re-encoded still applies as then

    def body(self) -> dict[str, Any]:
        body = {
            "service_id": self.service_id,
            "spec": self.invalid_spec if self.invalid else self.spec.to_sparse_dict(),
            "previous_spec": None if self.previous_spec is None else self.previous_spec.to_sparse_dict(),
            "update_paused": self.update_paused,
            "rebalance_requested": self.rebalance_requested,
            "service_version": self.service_version,
            **({} if self.autoscale_last is None else {"autoscale_last": self.autoscale_last.to_dict()}),
            **({"job": self.job.to_dict()} if self.job != JobStatus() else {}),
        }
        if self.rollout is not None:  # an optional key: bodies without it read as before
            body["rollout"] = self.rollout.to_dict()
        return body

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> UpdateService:
        # version 0 kept the bookkeeping inside the spec map; version 1 has it beside the spec
        source = F.get(b, "spec", dict) if version == LEGACY_VERSION else b
        paused = source.get("update_paused", False)
        requested = source.get("rebalance_requested") or 0.0
        service_id = F.text(b, "service_id")
        spec, invalid, raw = _committed_spec(b, version, service_id)
        return cls(
            service_id=service_id,
            spec=spec,
            invalid=invalid,
            invalid_spec=raw,
            previous_spec=optional_spec(source.get("previous_spec")),
            update_paused=bool(paused),
            rebalance_requested=F.number(requested, "rebalance_requested"),
            rollout=Rollout.from_dict(source.get("rollout")),
            service_version=F.version_or_none(b, "service_version"),
            autoscale_last=AutoscaleStep.from_dict(b.get("autoscale_last")),
            job=F.job_status(b.get("job")),
            keeps_mode=version >= 2,
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveService(Command):
    """Delete a service; its tasks are set to shut down in the same commit."""

    TAG = "remove_service"
    service_id: str
    service_version: int | None = None

    def body(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "service_version": self.service_version}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RemoveService:
        return cls(
            service_id=F.text(b, "service_id"),
            service_version=F.version_or_none(b, "service_version"),
            **common,
        )


# --- tasks -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PutTasks(Command):
    """All-or-nothing batch of task writes and removals (the leader's scheduling round)."""

    TAG = "put_tasks"
    items: tuple[TaskItem, ...]

    def body(self) -> dict[str, Any]:
        return {"items": [i.to_wire() for i in self.items]}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> PutTasks:
        raw = F.get(b, "items", list)
        if len(raw) > MAX_BATCH_ITEMS:
            raise F.invalid(f"more than {MAX_BATCH_ITEMS} items", "items")
        items = tuple(F.task_item(item, i) for i, item in enumerate(raw))
        seen: set[str] = set()
        for item in items:
            if item.task_id in seen:
                raise F.invalid(f"task {item.task_id} appears twice in one batch", "task_id")
            seen.add(item.task_id)
        return cls(items=items, **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportTaskStates(Command):
    """An agent's status batch; reports for tasks not assigned to ``node_id`` are skipped, not errors."""

    TAG = "report_task_states"
    node_id: str
    reports: tuple[TaskStatusReport, ...]

    def body(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "reports": [r.to_wire() for r in self.reports]}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> ReportTaskStates:
        raw = F.get(b, "reports", list)
        if len(raw) > MAX_BATCH_ITEMS:
            raise F.invalid(f"more than {MAX_BATCH_ITEMS} reports", "reports")
        reports = tuple(TaskStatusReport.from_wire(r, i) for i, r in enumerate(raw))
        return cls(node_id=F.text(b, "node_id"), reports=reports, **common)


# --- the dispatch table and decoder ----------------------------------------------------------------

COMMANDS: dict[str, Any] = {
    cls.TAG: cls
    for cls in (
        InitCluster,
        AddNode,
        UpdateNode,
        RemoveNode,
        CreateService,
        UpdateService,
        RemoveService,
        PutTasks,
        ReportTaskStates,
        LeaseSubnet,
        ReleaseSubnet,
        SetJoinToken,
        PutSecret,
        RemoveSecret,
        ResealSecret,
        RollDone,
        RotateKeys,
        PutAccessToken,
        RemoveAccessToken,
        CreateNetwork,
        RemoveNetwork,
        RestoreState,
        Noop,
        ClaimLeaderEpoch,
    )
}


def decode_command(data: bytes) -> Command:
    """Bytes -> a validated typed command; raises WireError (bytes) or ConfigError (fields)."""
    return command_from_plain(decode(data))


def command_from_plain(obj: Any) -> Command:
    """A decoded map (either layout) -> a validated typed command."""
    if not isinstance(obj, Mapping):
        raise WireError(f"command is a {type(obj).__name__}, not a map")
    if "t" in obj:
        tag, version, body = obj.get("t"), obj.get("v"), obj.get("b")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= COMMAND_VERSION:
            raise WireError(
                f"unsupported command version {version!r} (this node reads up to {COMMAND_VERSION})"
            )
        if not isinstance(body, Mapping):
            raise WireError(f"command {tag!r} has no body map")
    else:  # before typed commands: {"op": name, "at": ..., fields...}
        tag, version, body = obj.get("op"), LEGACY_VERSION, obj
    cls = COMMANDS.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise F.invalid(f"unknown op {tag!r}", "op")
    if version > cls.VERSION:
        raise WireError(f"unsupported {tag} version {version} (this node reads up to {cls.VERSION})")
    at = F.get(body, "at", (int, float))
    expected = F.get(body, "expected_version", int, optional=True)
    epoch = F.get(body, "leader_epoch", int, optional=True)  # absent before fencing: unfenced
    try:
        command: Command = cls.from_body(
            body, version, at=float(at), expected_version=expected, leader_epoch=epoch
        )
    except P2POrchError:
        raise
    except Exception as exc:  # a body the field checks did not foresee: refused, never a crash
        raise F.invalid(f"malformed {tag} command: {type(exc).__name__}: {exc}", "body") from exc
    return command
