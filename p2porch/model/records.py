"""The committed records of the cluster: nodes, services, tasks, subnet leases, secrets, networks (pure).

One frozen type per record, shared by the Raft state machine, the leader's scheduling round, the
scheduler, the agent adapters and the API views (no copies, no adapters). States are ``StrEnum``
members (text from the wire is validated on construction). ``to_dict``/``from_dict`` give the plain
form kept in Raft snapshots; ``from_dict`` also reads the older snapshot layout (a service's controller
bookkeeping inside its spec map). Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError
from .autoscale_spec import AutoscaleStep
from .committed import committed_spec, stored_spec
from .container import PortPublish, RestartPolicy
from .rollout import Rollout
from .spec import ServiceSpec
from .states import Availability, DesiredState, NodeRole, NodeStatus, TaskHealth, TaskState

_EMPTY: Mapping[str, Any] = MappingProxyType({})

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders runs of digits by value: ``n2`` before ``n10`` (``node ls``)."""
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in _DIGITS.split(name) if part)


#: keys the snapshot layout before typed records kept in a stored service spec beside the user's fields
LEGACY_BOOKKEEPING_KEYS = ("previous_spec", "update_paused", "rebalance_requested")


def frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of ``value`` (shared empty map for nothing)."""
    if not value:
        return _EMPTY
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


def _plain(value: Any) -> Any:
    """Deep-convert read-only mappings and tuples back to dicts and lists for msgpack."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_FIELD_NAMES: dict[type, frozenset[str]] = {}


_POLICIES: dict[tuple[Any, ...], RestartPolicy] = {}


def restart_policy_of(plain: Mapping[str, Any]) -> RestartPolicy:
    """A task's ``restart_policy`` from its plain form, checked (``ConfigError`` naming
    ``restart_policy.*``); one shared record per distinct policy, since every task carries one (a
    snapshot or a round decodes thousands of the same few)."""
    try:  # typed: True and 1, 1 and 1.0 hash alike, and a decision never depends on what came before
        key = tuple((k, type(v), v) for k, v in plain.items())
        cached = _POLICIES.get(key)
    except TypeError:  # an unhashable value: checked below, never cached
        key, cached = (), None
    if cached is not None:
        return cached
    policy = RestartPolicy.from_dict(plain, "restart_policy")
    if key:
        if len(_POLICIES) >= 4096:
            _POLICIES.clear()
        _POLICIES[key] = policy
    return policy


_PLAIN_POLICIES: dict[tuple[Any, ...], dict[str, Any]] = {}


_DEFAULT_POLICY = RestartPolicy().to_dict()


def _plain_policy(policy: RestartPolicy) -> dict[str, Any]:
    """``policy``'s sparse plain form: only the fields that differ from ``RestartPolicy()``'s (every
    task written carries one: the default policy costs a task's record ``{}``, not ~90 bytes), which
    :func:`restart_policy_of` reads back to an equal policy (a left-out ``max_delay_s`` is 300 s, and a
    delay above that always comes with its own maximum). A fresh dict from a kept one, kept by value
    and type (a policy built with ``delay_s=1`` equals one with ``1.0`` but encodes otherwise)."""
    key = (policy, type(policy.delay_s), type(policy.max_delay_s), type(policy.window_s))
    plain = _PLAIN_POLICIES.get(key)
    if plain is None:
        if len(_PLAIN_POLICIES) >= 4096:
            _PLAIN_POLICIES.clear()
        full = policy.to_dict()
        plain = _PLAIN_POLICIES[key] = {k: v for k, v in full.items() if v != _DEFAULT_POLICY[k]}
    return dict(plain)


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = _FIELD_NAMES.get(cls)
    if names is None:  # once per class: a snapshot load calls this once per record
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return {k: v for k, v in data.items() if k in names}


MAX_ENGINE_ERROR = 300  # a node's engine error (``Node.engine_error``) is cut to this length


@dataclass(frozen=True, slots=True)
class Node:
    """One cluster member as committed in Raft; ``version`` is the state version of its last change.

    ``status_at`` is when ``status`` last changed (down since ...). ``engine_down_at`` is when the node's
    agent found its Docker engine unreachable (0: reachable or not known otherwise), ``engine_error`` why;
    the agent writes both only when reachability changes. ``restart_until`` (the leader's clock; 0: none)
    is when the restart the node's daemon announced in gossip (at gossip incarnation
    ``restart_incarnation``) stops holding it ready (leader/restart_hold.py). The scheduler reads
    ``hostname``, ``down_since``, ``engine_down_at``, ``restart_until``, ``schedulable`` and
    ``engine_version`` (set only on the leader's planning view); capacity 0 means unknown.
    """

    node_id: str
    name: str = ""
    addr: str = ""
    raft_port: int = 0
    gossip_port: int = 0
    role: NodeRole = NodeRole.REPLICA
    availability: Availability = Availability.ACTIVE
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu_nanos: int = 0
    memory_bytes: int = 0
    status: NodeStatus = NodeStatus.READY
    joined_at: float = 0.0
    version: int = 0
    status_at: float = 0.0
    key_pub: str = ""  # the node's X25519 public key (base64): key rotations seal the new key to it
    join_port: int = 0  # advertised join port (0 = the cluster default; differs behind a NAT's forwards)
    vxlan_port: int = 0  # advertised VXLAN port (0 = the cluster's)
    engine_down_at: float = 0.0
    engine_error: str = ""
    restart_until: float = 0.0
    restart_incarnation: int = 0
    #: the node's Docker version as its gossip publishes it: never committed ("" in the store); the leader
    #: plans on records that carry it (leader/engine_view.py) for the engine-version placement filter
    engine_version: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_map(self.labels))
        if type(self.role) is not NodeRole:
            object.__setattr__(self, "role", NodeRole(self.role))
        if type(self.availability) is not Availability:
            object.__setattr__(self, "availability", Availability(self.availability))
        if type(self.status) is not NodeStatus:
            object.__setattr__(self, "status", NodeStatus(self.status))

    @property
    def raft_addr(self) -> str:
        return f"{self.addr}:{self.raft_port}"

    @property
    def hostname(self) -> str:
        return self.name or self.node_id

    @property
    def join_target(self) -> str:
        """Where peers reach this node's join port: ``addr``, or ``addr:port`` behind a port forward."""
        return f"{self.addr}:{self.join_port}" if self.join_port else self.addr

    def endpoints(self) -> set[tuple[str, int]]:
        """Every advertised (address, port) of this node; two live nodes never share one."""
        ports = (self.raft_port, self.gossip_port, self.join_port, self.vxlan_port)
        return {(self.addr, port) for port in ports if port}

    @property
    def down_since(self) -> float | None:
        """When a down node went down (None when it is not down or the time is unknown)."""
        return (self.status_at or None) if self.status == NodeStatus.DOWN else None

    @property
    def schedulable(self) -> bool:
        """Ready, active, its engine reachable and its daemon not away restarting: new tasks may go here."""
        ready = self.status == NodeStatus.READY and not self.engine_down_at and not self.restart_until
        return ready and self.availability == Availability.ACTIVE

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        # only nodes behind a NAT's forwards carry the ports, only a node without its engine the engine's,
        # only a node held while its daemon restarts the hold's
        for name in (
            "join_port",
            "vxlan_port",
            "engine_down_at",
            "engine_error",
            "restart_until",
            "restart_incarnation",
            "engine_version",
        ):
            if not out[name]:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        return cls(**_known(cls, data))


@dataclass(frozen=True, slots=True)
class Task:
    """One replica slot of a service, possibly assigned to a node.

    ``state`` is the observed state last changed at ``state_at`` (or, for a task that may still run,
    when the leader told it to stop: a stop-first replacement's wait counts from it); ``started_at`` when
    it was first observed running (0 = never); ``health`` the health check's last word;
    ``restart_history`` the times its slot was restarted after a task ended (carried to replacements);
    ``move_to``/``move_at`` a rebalance move in flight (a replacement starts there, then this task stops).
    """

    task_id: str
    service_id: str
    slot: int
    node_id: str | None = None
    desired_state: DesiredState = DesiredState.RUNNING
    state: TaskState = TaskState.NEW
    state_at: float = 0.0
    error: str = ""
    container_id: str = ""
    address: str = ""
    message: str = ""
    version: int = 0
    spec_version: int = 0  # service version the task was created for
    template_hash: str = ""  # hash of the container-shaping spec fields; differs -> outdated task
    created_at: float = 0.0
    started_at: float = 0.0
    health: TaskHealth = TaskHealth.NONE
    exit_code: int | None = None
    restart_history: tuple[float, ...] = ()
    stop_grace_s: float = 10.0  # SIGTERM-to-SIGKILL time, kept here so it outlives its service
    move_to: str | None = None
    move_at: float = 0.0
    job_iteration: int = 0  # jobs: the execution (the service's job iteration) this task belongs to
    # the restart policy of the spec it was created with (None: created before tasks carried it), as
    # swarmkit's task carries its spec: an outdated task restarts by its own (scheduler/restart.py)
    restart_policy: RestartPolicy | None = None

    def __post_init__(self) -> None:
        # the Raft thread builds many of these: convert only what is not already the right type
        policy: Any = self.restart_policy  # a plain map from a snapshot's or a command's record
        if policy is not None and type(policy) is not RestartPolicy:
            object.__setattr__(self, "restart_policy", restart_policy_of(policy))
        if type(self.restart_history) is not tuple:
            object.__setattr__(self, "restart_history", tuple(self.restart_history))
        if type(self.desired_state) is not DesiredState:
            object.__setattr__(self, "desired_state", DesiredState(self.desired_state))
        if type(self.state) is not TaskState:
            object.__setattr__(self, "state", TaskState(self.state))
        if type(self.health) is not TaskHealth:
            object.__setattr__(self, "health", TaskHealth(self.health))

    @property
    def healthy(self) -> bool | None:
        """True/False once a health check has spoken; None without a check or while it starts."""
        return _HEALTHY[self.health]  # a full round asks it several times per task

    @property
    def health_starting(self) -> bool:
        """Has a health check that has not passed yet."""
        return self.health == TaskHealth.STARTING

    def to_dict(self) -> dict[str, Any]:
        """Every field in order (``restart_history`` as a list: the only field that is not plain); the
        leader encodes one per task written and snapshots one per task held (issue 19)."""
        out = dict(zip(_TASK_FIELDS, _task_values(self), strict=True))
        out["restart_history"] = list(self.restart_history)
        if not self.job_iteration:  # only a job's tasks carry it: other records keep their plain form
            del out["job_iteration"]
        if self.restart_policy is None:
            del out["restart_policy"]
        else:
            out["restart_policy"] = _plain_policy(self.restart_policy)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(**_known(cls, data))


_HEALTHY: dict[TaskHealth, bool | None] = {
    TaskHealth.NONE: None,
    TaskHealth.STARTING: None,
    TaskHealth.HEALTHY: True,
    TaskHealth.UNHEALTHY: False,
}
_TASK_FIELDS = tuple(f.name for f in fields(Task))
_task_values = attrgetter(*_TASK_FIELDS)


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's executions, kept by the controllers beside its spec (docs/scheduler.md, "Jobs").

    ``iteration`` is the current execution (None: never written: a plain job then runs execution 1, a
    cron job none yet), ``started_at`` when it started; for a cron job ``cron_last_tick`` is the last
    tick handled (run, skipped or missed; 0 = none, ticks count from the service's creation), committed
    before that tick's execution starts, and ``cron_missed``/``cron_skipped`` count ticks not run.
    """

    iteration: int | None = None
    started_at: float = 0.0
    cron_last_tick: float = 0.0
    cron_missed: int = 0
    cron_skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> JobStatus:
        return cls(**_known(cls, data or {}))


@dataclass(frozen=True, slots=True)
class Service:
    """A service: its validated spec plus the controller's bookkeeping, each a real field.

    ``previous_spec`` is what `service rollback` (and a failed update's rollback) returns to;
    ``update_paused`` is set when a rolling update failed with failure action pause (a new update clears
    it); ``rebalance_requested`` is when an operator asked for `service rebalance` (0 = not asked; the
    leader clears it once the service is balanced). The name is the spec's.
    """

    service_id: str
    spec: ServiceSpec
    version: int = 0
    update_paused: bool = False
    previous_spec: ServiceSpec | None = None
    rebalance_requested: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    rollout: Rollout | None = None  # the last template change (update or rollback) and its state
    autoscale_last: AutoscaleStep | None = None  # the autoscaler's last step (kept across user updates)
    job: JobStatus = field(default_factory=JobStatus)
    # set when the committed spec does not validate here (``committed.py``): why, and the spec as stored
    invalid: str = ""
    invalid_spec: Any = field(default=None, compare=False, hash=False)
    vip: str = ""  # endpoint_mode vip: the service's virtual address, allocated by the FSM (raft/vips.py)
    # (protocol, target, published) of each ingress port the spec publishes without a number, assigned
    # by the FSM from 30000-32767 (raft/published_ports.py)
    assigned_ports: tuple[tuple[str, int, int], ...] = ()
    #: the state version of the last write that changed the spec other than by the cluster's own moves (an
    #: autoscale step, a secret/config roll: ``update_sequence.user_version``), set by the FSM; None: not
    #: known (a record stored before session 52, until such a write)
    user_version: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def job_iteration(self) -> int:
        """The current execution of a job (0: none yet, a cron job before its first tick; 0 for a
        service)."""
        if not self.spec.is_job:
            return 0
        if self.job.iteration is not None:
            return self.job.iteration
        return 0 if self.spec.schedule is not None else 1

    @property
    def cron_last_tick(self) -> float:
        """The last cron tick handled (the creation time before the first one)."""
        return self.job.cron_last_tick or self.created_at

    def published_port(self, port: PortPublish) -> int | None:
        """The port's published number: the spec's, or the one assigned to it (None: none, host mode)."""
        if port.published is not None or not port.dynamic:
            return port.published
        key = (port.protocol, port.target)
        return next((n for protocol, target, n in self.assigned_ports if (protocol, target) == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            "name": self.name,
            # the form a Raft command carries (from_dict fills the defaults): a node restored from a snapshot
            # holds a spec it cannot read as the nodes that replayed the log do (update_sequence.user_version)
            "spec": self.invalid_spec if self.invalid else self.spec.to_sparse_dict(),
            **({"invalid": self.invalid} if self.invalid else {}),
            "version": self.version,
            "update_paused": self.update_paused,
            "previous_spec": None if self.previous_spec is None else self.previous_spec.to_dict(),
            "rebalance_requested": self.rebalance_requested,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **({"rollout": self.rollout.to_dict()} if self.rollout is not None else {}),
            **({} if self.autoscale_last is None else {"autoscale_last": self.autoscale_last.to_dict()}),
            **({"job": self.job.to_dict()} if self.job != JobStatus() else {}),
            **({"vip": self.vip} if self.vip else {}),
            **({"assigned_ports": [list(a) for a in self.assigned_ports]} if self.assigned_ports else {}),
            **({} if self.user_version is None else {"user_version": self.user_version}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Service:
        """Read a snapshot record, either layout; a spec that does not validate is recorded as invalid
        (``committed_spec``): a snapshot always loads."""
        stored = data.get("spec") or {}
        raw = dict(stored) if isinstance(stored, Mapping) else {}
        bookkeeping = {k: raw.pop(k) for k in LEGACY_BOOKKEEPING_KEYS if k in raw}  # older layout
        bookkeeping.update({k: data[k] for k in LEGACY_BOOKKEEPING_KEYS if data.get(k) is not None})
        previous = bookkeeping.get("previous_spec")
        service_id = str(data["service_id"])
        committed = raw if isinstance(stored, Mapping) else stored
        spec, invalid = committed_spec(committed, service_id)
        return cls(
            service_id=service_id,
            spec=spec,
            invalid=invalid,
            invalid_spec=committed if invalid else None,
            version=int(data.get("version", 0)),
            update_paused=bool(bookkeeping.get("update_paused", False)),
            previous_spec=optional_spec(previous),
            rebalance_requested=float(bookkeeping.get("rebalance_requested") or 0.0),
            created_at=float(data.get("created_at", 0.0)),
            updated_at=float(data.get("updated_at", 0.0)),
            rollout=Rollout.from_dict(data.get("rollout")),
            autoscale_last=AutoscaleStep.from_dict(data.get("autoscale_last")),
            job=JobStatus.from_dict(data.get("job")),
            vip=str(data.get("vip") or ""),
            assigned_ports=tuple(
                (str(protocol), int(target), int(number))
                for protocol, target, number in data.get("assigned_ports") or ()
            ),
            user_version=None if data.get("user_version") is None else int(data["user_version"]),
        )


def optional_spec(data: Any) -> ServiceSpec | None:
    """A stored previous spec, or None when there is none or it no longer validates (no rollback then)."""
    if not isinstance(data, Mapping) or not data:
        return None
    try:
        return ServiceSpec.from_dict(
            stored_spec({k: v for k, v in data.items() if k not in LEGACY_BOOKKEEPING_KEYS})
        )
    except ConfigError:
        return None


@dataclass(frozen=True, slots=True)
class SubnetLease:
    """The overlay subnet (CIDR text) leased to one node."""

    node_id: str
    subnet: str
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "subnet": self.subnet, "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubnetLease:
        return cls(**_known(cls, data))


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A secret or config and its sealed versions (ciphertext only: ``vault`` seals, nodes open).

    ``versions`` holds maps ``{version, sealed, digest, size, created_at, key_epoch}``, oldest first;
    the last one is current. ``key`` in the state map is ``"<kind>:<name>"``. ``template_driver``
    ("" or ``golang``) says whether each task gets the value rendered as a template
    (``model/payload_template.py``) or as written; it is the object's, set when it is created."""

    kind: str
    name: str
    object_id: str
    versions: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0  # state version of its last change
    template_driver: str = ""
    roll_pending: int = 0  # a version a stack deploy wrote whose users are not rolled yet (0: none)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_map(self.labels))
        object.__setattr__(self, "versions", tuple(frozen_map(v) for v in self.versions))

    @property
    def key(self) -> str:
        return secret_key(self.kind, self.name)

    @property
    def current(self) -> int:
        return int(self.versions[-1]["version"]) if self.versions else 0

    def sealed_version(self, version: int) -> Mapping[str, Any] | None:
        return next((v for v in self.versions if v["version"] == version), None)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        if not self.template_driver:  # absent when none: older snapshots read and compare the same
            del out["template_driver"]
        if not self.roll_pending:
            del out["roll_pending"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecretRecord:
        return cls(**_known(cls, data))


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    """A user-defined overlay network: tasks of services on it reach each other and resolve each other's
    names; tasks sharing no network cannot (``docs/overlay.md``, "Networks"). Keyed by ``network_id``."""

    network_id: str
    name: str
    driver: str = "overlay"
    internal: bool = False  # tasks only on internal networks get no traffic out of the cluster
    attachable: bool = False  # recorded for Docker compatibility (p2porch runs no standalone containers)
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    version: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_map(self.labels))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkRecord:
        return cls(**_known(cls, data))


def secret_key(kind: str, name: str) -> str:
    """The state map key of a secret or config."""
    return f"{kind}:{name}"


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """A named access token of the remote API: its role and the digest of its secret (never the secret)."""

    name: str
    token_id: str
    role: str  # read | operate | admin
    digest: str  # vault.access digest of the token's secret
    created_at: float = 0.0
    version: int = 0  # state version of its last change

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccessTokenRecord:
        return cls(**_known(cls, data))
