"""Plain values the node agent consumes and produces (pure).

``TaskAssignment`` is what the agent needs to run one task (the daemon adapts the committed cluster
state to it); ``TaskReport`` is what the agent tells the cluster about one task; ``ObservedContainer``
is what the executor saw in the engine. Task states, desired states and health values are the model's
enums (``p2porch.model``), the health check is the spec's ``HealthSpec``. This module never does I/O and
imports nothing but ``p2porch.model``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ..model import DesiredState, HealthSpec, TaskHealth, TaskState
from ..model.templates import TemplateContext, TemplateError, expand

# ----- labels every container the agent owns carries
LABEL_MANAGED = "p2porch.managed"
LABEL_TASK_ID = "p2porch.task-id"
LABEL_SERVICE = "p2porch.service"
LABEL_SERVICE_ID = "p2porch.service-id"
LABEL_SLOT = "p2porch.slot"
LABEL_NODE = "p2porch.node"
LABEL_NETWORK = "p2porch.network"
LABEL_SPEC_VERSION = "p2porch.spec-version"
#: a task group's other containers: their name in the group and their kind (sidecar, init); the main
#: container carries neither
LABEL_MEMBER = "p2porch.container"
LABEL_MEMBER_KIND = "p2porch.container-kind"
KIND_SIDECAR = "sidecar"
KIND_INIT = "init"

# ----- environment every task gets
ENV_SERVICE = "P2PORCH_SERVICE"
ENV_SLOT = "P2PORCH_SLOT"
ENV_NODE = "P2PORCH_NODE"
ENV_TASK_ID = "P2PORCH_TASK_ID"

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if value else _EMPTY


@dataclass(frozen=True, slots=True)
class MountSpec:
    """A bind mount (``source`` is a host path) or a named volume (``source`` is the volume name)."""

    type: str  # "bind" | "volume"
    source: str
    target: str
    read_only: bool = False
    volume_driver: str = ""  # volumes only; "" = the engine's default driver ("local")
    volume_options: Mapping[str, str] = field(default_factory=dict)
    propagation: str = ""  # bind mounts; "" = the engine's default
    nocopy: bool = False  # volumes
    tmpfs_size_bytes: int = 0  # tmpfs; 0 = unlimited
    tmpfs_mode: int = 0  # tmpfs; 0 = the engine's default
    create_host_path: bool = False  # bind; a missing source directory is created (Docker's Binds)
    volume_labels: Mapping[str, str] = field(default_factory=dict)  # volumes the engine creates
    tmpfs_options: tuple[str, ...] = ()  # tmpfs; other mount options (noexec, uid=1000): HostConfig.Tmpfs
    subpath: str = ""  # volumes; a directory of the volume (VolumeOptions.Subpath, Engine API 1.45+)

    def __post_init__(self) -> None:
        object.__setattr__(self, "volume_options", _frozen(self.volume_options))
        object.__setattr__(self, "volume_labels", _frozen(self.volume_labels))


@dataclass(frozen=True, slots=True)
class PortSpec:
    """Publish container port ``target`` on host port ``published`` (0 = an ephemeral host port)."""

    target: int
    published: int = 0
    protocol: str = "tcp"  # "tcp" | "udp"
    host_ip: str = ""  # "" = every address of the node


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """One sidecar or init container of a task group as the agent runs it (see ``model.group``): it
    shares the main container's mounts (its own ``mounts`` replace them at their targets) and, for a
    sidecar, its network namespace."""

    name: str
    kind: str  # KIND_SIDECAR | KIND_INIT
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # added to the task's environment (these win)
    user: str = ""
    workdir: str = ""
    cpu_limit_nanos: int = 0
    memory_limit_bytes: int = 0
    cpu_reservation_nanos: int = 0
    memory_reservation_bytes: int = 0
    healthcheck: HealthSpec | None = None
    mounts: tuple[MountSpec, ...] = ()
    privileged: bool = False  # HostConfig.Privileged of this container (the main one's is its options')
    share_pid: bool = False  # a sidecar in the main container's PID namespace (Compose pid: service:X)
    share_ipc: bool = False  # ... and in its IPC namespace (the main container's IPC is then shareable)
    cap_add: tuple[str, ...] = ()  # HostConfig.CapAdd/CapDrop of this container (its own, as privileged)
    cap_drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", _frozen(self.env))
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "mounts", tuple(self.mounts))


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    """Everything the agent needs to run one task on this node.

    ``state`` is the task's last committed state (so a task that already ran is never started
    again after an agent restart); ``desired_state`` is "running" or "shutdown".
    """

    task_id: str
    service_name: str
    service_id: str
    slot: int
    node_name: str
    image: str
    node_id: str = ""  # Swarm's ``{{.Node.ID}}``; "" = the node's name
    #: a global service's task: Swarm's ``{{.Task.Slot}}`` is its node's id (swarmkit's tasks have slot 0)
    global_mode: bool = False
    command: tuple[str, ...] = ()  # () = the image's CMD
    entrypoint: tuple[str, ...] | None = None  # None = the image's ENTRYPOINT
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # the user's container labels
    service_labels: Mapping[str, str] = field(default_factory=dict)  # Swarm's ``{{.Service.Labels}}``
    mounts: tuple[MountSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    cpu_limit_nanos: int = 0  # 0 = unlimited
    memory_limit_bytes: int = 0
    cpu_reservation_nanos: int = 0  # applied as relative CPU shares (1024 per CPU)
    memory_reservation_bytes: int = 0  # applied as Docker's soft memory limit
    network: str = ""  # Docker network name to attach; "" = the engine's default bridge
    dns_servers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    healthcheck: HealthSpec | None = None  # None = the image's HEALTHCHECK, if any
    desired_state: DesiredState = DesiredState.RUNNING
    state: TaskState = TaskState.ASSIGNED
    spec_version: int = 0
    stop_grace_s: float = 10.0
    #: when the cluster recorded the task running (the agent's clock at its first ``running`` report; 0 =
    #: not yet): a live container the engine started later was restarted behind p2porch's back (plan.py)
    started_at: float = 0.0
    #: a load-balanced task (VIP or ingress) asked to stop: the state version of that commit. The agent
    #: stops it once every live node's rules reflect it (agent/drain_gate.py), bounded by the node's
    #: drain settings; 0 = not load-balanced or not asked to stop
    drain_index: int = 0
    #: with ``drain_index``: the TCP target ports whose open connections the drain waits for to end, and
    #: whether every port the task listens on counts too (a VIP balances every port)
    drain_ports: tuple[int, ...] = ()
    drain_listeners: bool = False
    #: the TCP target ports of the service's ingress ports: once started, the task is reported running
    #: (which makes it a backend of every node's ingress and VIP rules) when its namespace listens on each
    #: (agent/listen_wait.py)
    ready_ports: tuple[int, ...] = ()
    user: str = ""  # "" = the image's USER
    workdir: str = ""  # "" = the image's WORKDIR
    #: engine options in ``ContainerOptions.to_dict()`` form (only the ones that differ from Docker's default)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: why this task cannot start here (e.g. its secrets cannot be decrypted): the start fails with it
    start_error: str = ""
    #: a task group's other containers: init containers run in this order before the main container
    #: starts, sidecars start after it in its network namespace (issue 21)
    members: tuple[MemberSpec, ...] = ()

    @property
    def sidecars(self) -> tuple[MemberSpec, ...]:
        return tuple(m for m in self.members if m.kind == KIND_SIDECAR)

    @property
    def init_containers(self) -> tuple[MemberSpec, ...]:
        return tuple(m for m in self.members if m.kind == KIND_INIT)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "env", _frozen(self.env))
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "service_labels", _frozen(self.service_labels))
        object.__setattr__(self, "command", tuple(self.command))
        if self.entrypoint is not None:
            object.__setattr__(self, "entrypoint", tuple(self.entrypoint))
        object.__setattr__(self, "mounts", tuple(self.mounts))
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "drain_ports", tuple(self.drain_ports))
        object.__setattr__(self, "ready_ports", tuple(self.ready_ports))
        object.__setattr__(self, "dns_servers", tuple(self.dns_servers))
        object.__setattr__(self, "dns_search", tuple(self.dns_search))


@dataclass(frozen=True, slots=True)
class TaskReport:
    """What the agent tells the cluster about one task at wall-clock time ``at``.

    ``health`` is meaningful only while ``state`` is "running"; ``exit_code`` is None until the
    container exited (or failed to start, when Docker gives a code).
    """

    task_id: str
    state: TaskState
    at: float
    error: str = ""
    container_id: str = ""
    address: str = ""
    health: TaskHealth = TaskHealth.NONE
    exit_code: int | None = None

    def same_as(self, other: TaskReport | None) -> bool:
        """True when ``other`` says the same thing (ignoring the timestamp)."""
        return other is not None and (
            self.task_id,
            self.state,
            self.error,
            self.container_id,
            self.address,
            self.health,
            self.exit_code,
        ) == (
            other.task_id,
            other.state,
            other.error,
            other.container_id,
            other.address,
            other.health,
            other.exit_code,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "state": self.state,
            "at": self.at,
            "error": self.error,
            "container_id": self.container_id,
            "address": self.address,
            "health": self.health,
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True, slots=True)
class ObservedContainer:
    """One p2porch-managed container as the engine last showed it.

    ``status`` is Docker's: created, running, paused, restarting, removing, exited, dead.
    """

    container_id: str
    name: str
    task_id: str
    node_name: str
    status: str
    exit_code: int | None = None
    error: str = ""
    oom_killed: bool = False
    health: TaskHealth = TaskHealth.NONE
    address: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    pid: int = 0  # the init process on the engine's host (0 = not running): finds the cgroup
    stop_signal: str = ""  # Config.StopSignal: the service's --stop-signal, else the image's STOPSIGNAL
    #: State.StartedAt (seconds since the epoch, on the agent's clock; 0 = never started): changes when the
    #: engine (or someone at the node) starts the container again
    started_at: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))

    @property
    def member(self) -> str:
        """The container's name in its task group; "" for the task's main container."""
        return str(self.labels.get(LABEL_MEMBER, ""))

    @property
    def member_kind(self) -> str:
        """KIND_SIDECAR or KIND_INIT for a group's other containers, "" for the main container."""
        return str(self.labels.get(LABEL_MEMBER_KIND, ""))


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What the node's engine offers: CPUs (in nano-CPUs) and memory, from ``docker info``."""

    cpu_nanos: int
    memory_bytes: int
    engine_version: str = ""
    hostname: str = ""
    architecture: str = ""  # ``docker info``'s Architecture (``uname -m``: x86_64, aarch64)


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    """A Docker event about a managed container (``action`` like start, die, health_status: healthy)."""

    action: str
    container_id: str
    task_id: str
    at: float = 0.0


def container_name(assignment: TaskAssignment) -> str:
    """``<service>.<slot>.<first 8 chars of the task id>`` (unique per task on the engine)."""
    return f"{assignment.service_name}.{assignment.slot}.{assignment.task_id[:8]}"


def member_container_name(assignment: TaskAssignment, member: MemberSpec) -> str:
    """``<service>.<slot>.<task id prefix>.<member name>``."""
    return f"{container_name(assignment)}.{member.name}"


def task_labels(assignment: TaskAssignment) -> dict[str, str]:
    """The user's labels plus p2porch's own (p2porch's win on a clash)."""
    labels = dict(assignment.labels)
    labels.update(
        {
            LABEL_MANAGED: "true",
            LABEL_TASK_ID: assignment.task_id,
            LABEL_SERVICE: assignment.service_name,
            LABEL_SERVICE_ID: assignment.service_id,
            LABEL_SLOT: str(assignment.slot),
            LABEL_NODE: assignment.node_name,
            LABEL_SPEC_VERSION: str(assignment.spec_version),
        }
    )
    if assignment.network:
        labels[LABEL_NETWORK] = assignment.network
    return labels


def task_env(assignment: TaskAssignment) -> dict[str, str]:
    """The user's environment plus the four P2PORCH_* variables (p2porch's win on a clash)."""
    env = dict(assignment.env)
    env.update(
        {
            ENV_SERVICE: assignment.service_name,
            ENV_SLOT: str(assignment.slot),
            ENV_NODE: assignment.node_name,
            ENV_TASK_ID: assignment.task_id,
        }
    )
    return env


#: this host's platform as Docker's engine reports it (``docker info``'s OSType and Architecture: the
#: kernel's name and ``uname -m``), Swarm's ``.Node.Platform.OS|Architecture``: the agent expands a
#: task's templates on the node that runs it
HOST_OS, HOST_ARCH = os.uname().sysname.lower(), os.uname().machine


def template_context(assignment: TaskAssignment) -> TemplateContext:
    """The facts Swarm's service templates name, for this task (``.Node.ID`` the node's id,
    ``.Node.Hostname`` its name, ``.Node.Platform`` this host's)."""
    return TemplateContext(
        service_id=assignment.service_id,
        service_name=assignment.service_name,
        node_id=assignment.node_id or assignment.node_name,
        node_hostname=assignment.node_name,
        task_id=assignment.task_id,
        task_slot=assignment.slot,
        platform_os=HOST_OS,
        platform_arch=HOST_ARCH,
        service_labels=assignment.service_labels,
        global_mode=assignment.global_mode,
    )


def template_error(assignment: TaskAssignment) -> str:
    """ "" when Swarm's templates of ``assignment`` (its and its members' environment values, host name
    and mount sources) expand for this task, else why not, as Swarm words it (``expanding env failed:
    ...``): the task fails to start."""
    context = template_context(assignment)
    parts = [
        ("env", [*assignment.env.values(), *(v for m in assignment.members for v in m.env.values())]),
        (
            "mounts",
            [m.source for m in (*assignment.mounts, *(x for m in assignment.members for x in m.mounts))],
        ),
        ("hostname", [h] if isinstance(h := assignment.options.get("hostname"), str) else []),
    ]
    for what, texts in parts:
        for text in texts:
            try:
                expand(text, context)
            except TemplateError as exc:
                return f"expanding {what} failed: {exc}"
    return ""


def with_templates(assignment: TaskAssignment) -> TaskAssignment:
    """``assignment`` with Swarm's ``{{.Node.Hostname}}``-style templates expanded in its environment
    values, host name and mount sources, as ``docker service create`` does for each task."""
    context = template_context(assignment)
    env = {key: expand(value, context) for key, value in assignment.env.items()}
    mounts = tuple(
        replace(m, source=expand(m.source, context)) if "{{" in m.source else m for m in assignment.mounts
    )
    options = dict(assignment.options)
    if isinstance(options.get("hostname"), str):
        options["hostname"] = expand(options["hostname"], context)
    return replace(assignment, env=env, mounts=mounts, options=options)
