"""The validated service spec (pure).

``ServiceSpec`` owns the validated, normalised description of one service: every value is typed and in
base units (nano CPUs, bytes, seconds). ``ServiceSpec.from_dict`` is the one entry point from plain data
(API bodies, Compose services, stored Raft commands): it accepts both the canonical keys written by
``to_dict`` and human forms (``reserve_memory="512M"``, ``delay="5s"``, ``"8080:80/tcp"``); every error is a
``ConfigError`` whose ``field`` names the offending key (``constraints[1]``, ``update.order``). This module
never does I/O and never looks at cluster state.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotAllowedError
from .autoscale_spec import AutoscaleSpec
from .container import HealthSpec, Mount, PortPublish, RestartPolicy, UpdateConfig, parse_mount, parse_port
from .container_opts import ContainerOptions
from .filerefs import FileRef, parse_file_refs
from .group import INIT, SIDECAR, GroupContainer, check_group, group_reservation, parse_group
from .jobspec import JOB_MODES, CronSchedule, check_job_fields, is_job_mode, parse_schedule
from .netrefs import (
    NetworkAttachment,
    ServiceLink,
    check_host_network,
    on_host_network,
    parse_attachments,
    parse_links,
)
from .placement import (
    NAME_RE,
    Affinity,
    Constraint,
    PlacementPreference,
    parse_affinity,
    parse_constraint,
    parse_placement_pref,
)
from .templates import check as check_template
from .units import (
    field_error,
    list_field,
    parse_bool,
    parse_choice,
    parse_cpu_nanos,
    parse_duration_s,
    parse_int,
    parse_key_values,
    parse_memory_bytes,
    str_tuple,
    take_fields,
)

MODES = ("replicated", "global", *JOB_MODES)
ENDPOINT_MODES = ("vip", "dnsrr")
INGRESS_POLICIES = ("cluster", "local")  # as Kubernetes' externalTrafficPolicy
#: what the majority does with the tasks of a site (``region``) it lost all contact with (docs/multi-site.md)
SITE_LOSS_POLICIES = ("keep", "replace")
STRATEGIES = ("spread", "binpack")
#: names that would collide with DNS names the cluster answers (``tasks.web.p2p``, ``n1.node.p2p``)
RESERVED_NAMES = ("tasks", "node")
MAX_REPLICAS = 1_000_000


TEMPLATE_FIELDS = (
    "image",
    "entrypoint",
    "command",
    "user",
    "workdir",
    "env",
    "labels",
    "mounts",
    "publish",
    "reserve_cpu_nanos",
    "reserve_memory_bytes",
    "limit_cpu_nanos",
    "limit_memory_bytes",
    "health",
    "stop_grace_period_s",
)


@dataclass(frozen=True)
class ServiceSpec:
    """What a service should look like; immutable and validated on construction.

    It owns no cluster state (no version, no tasks). ``to_dict`` gives the canonical plain form stored in
    Raft; ``from_dict`` also accepts CLI/Compose-style values. Never mutate: use ``dataclasses.replace``
    (which re-validates).
    """

    name: str
    image: str
    entrypoint: tuple[str, ...] = ()  # overrides the image ENTRYPOINT when non-empty
    command: tuple[str, ...] = ()  # overrides the image CMD when non-empty (``IMAGE [CMD...]``)
    user: str = ""
    workdir: str = ""
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    mode: str = "replicated"
    replicas: int = 1  # ignored in global mode; a replicated-job's completions in all
    constraints: tuple[Constraint, ...] = ()
    placement_preferences: tuple[PlacementPreference, ...] = ()
    strategy: str = "spread"
    affinities: tuple[Affinity, ...] = ()
    max_replicas_per_node: int = 0  # 0 = unlimited
    reserve_cpu_nanos: int = 0
    reserve_memory_bytes: int = 0
    limit_cpu_nanos: int = 0  # 0 = unlimited
    limit_memory_bytes: int = 0  # 0 = unlimited
    mounts: tuple[Mount, ...] = ()
    publish: tuple[PortPublish, ...] = ()
    health: HealthSpec | None = None  # None = the image's HEALTHCHECK
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    stop_grace_period_s: float = 10.0
    rebalance: bool = False  # opt-in: move tasks onto nodes that join or return (issue 7)
    container: ContainerOptions = field(default_factory=ContainerOptions)  # engine options (issue 15)
    service_labels: tuple[tuple[str, str], ...] = ()  # labels of the service itself (Compose deploy.labels)
    endpoint_mode: str = "vip"  # vip: the name resolves to one virtual address; dnsrr: to the task addresses
    ingress_policy: str = "cluster"  # cluster: any task answers; local: the receiving node's (client kept)
    rollback: UpdateConfig = field(default_factory=UpdateConfig)  # how `service rollback` rolls out
    secrets: tuple[FileRef, ...] = ()  # files under /run/secrets (issue 22)
    configs: tuple[FileRef, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()  # none = the default network (not a template field)
    links: tuple[ServiceLink, ...] = ()  # names only its tasks resolve (Compose links; not a template field)
    autoscale: AutoscaleSpec | None = None  # the leader's autoscaler owns `replicas` when set (issue 17)
    max_concurrent: int = 0  # replicated-job: tasks at once (0 = replicas; a create stores replicas)
    schedule: CronSchedule | None = None  # a cron job: one execution per tick (jobs only)
    sidecars: tuple[GroupContainer, ...] = ()  # task group: containers beside the main one (issue 21)
    init_containers: tuple[GroupContainer, ...] = ()  # task group: run to completion, in order, first
    on_site_loss: str = "keep"  # keep: a cut-off region's tasks are left to run there; replace: rescheduled
    force_update: int = 0  # Docker's TaskTemplate.ForceUpdate: `service update --force` adds 1, tasks roll

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            label = (
                self.name.lower().replace("_", "-").replace(".", "-") if isinstance(self.name, str) else ""
            )
            hint = f": use {label!r} (names are DNS names here)" if NAME_RE.match(label) else ""
            raise field_error(
                "name",
                f"{self.name!r} is not a DNS label: 1-63 lowercase letters, digits and '-', starting with a "
                f"letter and not ending with '-'{hint}",
            )
        if self.name in RESERVED_NAMES:
            raise field_error("name", f"{self.name!r} is reserved")
        if not isinstance(self.image, str) or not self.image or any(c.isspace() for c in self.image):
            raise field_error("image", "must be a non-empty image reference without spaces")
        parse_choice(self.mode, MODES, "mode")
        if self.autoscale is not None and self.mode != "replicated":
            raise field_error(
                "autoscale",
                "a global service runs one task per node and cannot autoscale"
                if self.mode == "global"
                else f"a {self.mode} service runs to completion and cannot autoscale",
            )
        parse_choice(self.strategy, STRATEGIES, "strategy")
        parse_choice(self.endpoint_mode, ENDPOINT_MODES, "endpoint_mode")
        parse_choice(self.ingress_policy, INGRESS_POLICIES, "ingress_policy")
        parse_choice(self.on_site_loss, SITE_LOSS_POLICIES, "on_site_loss")
        if not isinstance(self.replicas, int) or not 0 <= self.replicas <= MAX_REPLICAS:
            raise field_error("replicas", f"must be an integer from 0 to {MAX_REPLICAS}")
        for name in (
            "max_replicas_per_node",
            "reserve_cpu_nanos",
            "reserve_memory_bytes",
            "limit_cpu_nanos",
            "limit_memory_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise field_error(
                    name.removesuffix("_nanos").removesuffix("_bytes"), "must be a non-negative integer"
                )
        if self.limit_cpu_nanos and self.limit_cpu_nanos < self.reserve_cpu_nanos:
            raise field_error("limit_cpu", "must not be below reserve_cpu")
        if self.limit_memory_bytes and self.limit_memory_bytes < self.reserve_memory_bytes:
            raise field_error("limit_memory", "must not be below reserve_memory")
        swap = self.container.memswap_limit_bytes  # Docker refuses both at container create
        if swap > 0 and not self.limit_memory_bytes:
            raise field_error("container.memswap_limit", "needs a memory limit: it is memory plus swap")
        if swap > 0 and swap < self.limit_memory_bytes:
            raise field_error(
                "container.memswap_limit", "must not be below the memory limit: it is memory plus swap"
            )
        if self.stop_grace_period_s < 0:
            raise field_error("stop_grace_period", "must not be negative")
        for i, aff in enumerate(self.affinities):
            if aff.kind == "affinity" and aff.service == self.name:
                raise field_error(f"affinities[{i}]", "a service cannot require affinity to itself")
        seen_ports: set[tuple[str, int, str]] = set()
        assigned: set[tuple[str, int]] = set()  # the FSM assigns one port per protocol and target
        for i, port in enumerate(self.publish):
            if port.dynamic and (port.protocol, port.target) in assigned:
                raise field_error(
                    f"publish[{i}]",
                    f"container port {port.target}/{port.protocol} published twice without a published "
                    "port (the cluster assigns one per container port)",
                )
            if port.dynamic:
                assigned.add((port.protocol, port.target))
            if port.published is None:
                continue
            key = (port.protocol, port.published, "" if port.ingress else port.host_ip)
            if key in seen_ports:
                raise field_error(
                    f"publish[{i}]", f"host port {port.published}/{port.protocol} published twice"
                )
            seen_ports.add(key)
        targets: set[str] = set()
        for i, mount in enumerate(self.mounts):
            if mount.target in targets:
                raise field_error(f"mounts[{i}].target", f"{mount.target} mounted twice")
            targets.add(mount.target)
        for i, ref in enumerate((*self.secrets, *self.configs)):
            if ref.target in targets:
                raise field_error(
                    f"secrets/configs[{i}].target", f"{ref.target} is already a mount or file target"
                )
            targets.add(ref.target)
        check_job_fields(self.mode, self.max_concurrent, self.schedule, rebalance=self.rebalance)
        check_group(self.publish, self.sidecars, self.init_containers, self.container.ipc_mode)

    # -- derived views ---------------------------------------------------------------------------

    @property
    def is_job(self) -> bool:
        """Tasks run to completion (replicated-job, global-job) instead of being kept running."""
        return is_job_mode(self.mode)

    @property
    def job_concurrency(self) -> int:
        """Tasks of a replicated-job that may run at once."""
        return min(self.max_concurrent or self.replicas, self.replicas)

    @property
    def is_group(self) -> bool:
        """Each task runs more than one container (sidecars and/or init containers)."""
        return bool(self.sidecars or self.init_containers)

    @property
    def all_publish(self) -> tuple[PortPublish, ...]:
        """The main container's ports and its sidecars' (all served on the task's one address)."""
        return self.publish + tuple(p for s in self.sidecars for p in s.publish)

    @property
    def placement_cpu_nanos(self) -> int:
        """CPU a node must have unreserved for one task: the group's sum (see ``group_reservation``)."""
        return self._reservation[0]

    @property
    def placement_memory_bytes(self) -> int:
        """Memory a node must have unreserved for one task (the group's sum)."""
        return self._reservation[1]

    @property
    def _reservation(self) -> tuple[int, int]:
        return group_reservation(
            self.reserve_cpu_nanos, self.reserve_memory_bytes, self.sidecars, self.init_containers
        )

    @property
    def host_ports(self) -> tuple[tuple[str, int], ...]:
        """``(protocol, port)`` pairs this service binds on its node (host mode; ingress binds none)."""
        return tuple(
            (p.protocol, p.published) for p in self.all_publish if p.published is not None and not p.ingress
        )

    @property
    def ingress_ports(self) -> tuple[PortPublish, ...]:
        """Ports served on every node's address (routing mesh)."""
        return tuple(p for p in self.all_publish if p.ingress)

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def labels_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def template_dict(self) -> dict[str, Any]:
        """The part of ``to_dict`` that shapes a task: its container (see TEMPLATE_FIELDS) and where it
        goes (placement preferences, when any)."""
        full = self.to_dict()
        out = {k: full[k] for k in TEMPLATE_FIELDS}
        if not self.container.is_default:  # absent when default: older specs keep their template hash
            out["container"] = full["container"]
        for key in ("secrets", "configs"):  # the same: absent when unused
            if full[key]:
                out[key] = full[key]
        for key in (SIDECAR, INIT, "force_update"):  # a task group's containers are part of the task
            if key in full:
                out[key] = full[key]
        if self.placement_preferences:  # where the tasks go, as Swarm's Placement in the task spec: a
            out["placement_preferences"] = full["placement_preferences"]  # change rolls them (absent: none)
        if on_host_network(self.networks):  # the container's namespace: joining or leaving it rolls tasks
            out["host_network"] = True  # (other network changes are policy, applied live)
        return out

    def template_hash(self) -> str:
        """Stable hash of the task template: tasks whose hash differs are outdated (rolling update).

        Computed once per spec object (it is immutable): the leader round asks it for every task, which
        was 70 % of a round's time at 100,000 tasks (docs/performance.md)."""
        cached: str | None = self.__dict__.get("_template_hash")
        if cached is None:
            blob = json.dumps(self.template_dict(), sort_keys=True, separators=(",", ":"))
            cached = hashlib.sha256(blob.encode()).hexdigest()[:16]
            object.__setattr__(self, "_template_hash", cached)
        return cached

    # -- plain form ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain data (msgpack/JSON-safe); ``from_dict(to_dict())`` gives an equal spec."""
        return {
            "name": self.name,
            "image": self.image,
            "entrypoint": list(self.entrypoint),
            "command": list(self.command),
            "user": self.user,
            "workdir": self.workdir,
            "env": dict(self.env),
            "labels": dict(self.labels),
            "mode": self.mode,
            "replicas": self.replicas,
            "constraints": [str(c) for c in self.constraints],
            "placement_preferences": [str(p) for p in self.placement_preferences],
            "strategy": self.strategy,
            "affinities": [str(a) for a in self.affinities],
            "max_replicas_per_node": self.max_replicas_per_node,
            "reserve_cpu_nanos": self.reserve_cpu_nanos,
            "reserve_memory_bytes": self.reserve_memory_bytes,
            "limit_cpu_nanos": self.limit_cpu_nanos,
            "limit_memory_bytes": self.limit_memory_bytes,
            "mounts": [m.to_dict() for m in self.mounts],
            "publish": [p.to_dict() for p in self.publish],
            "health": None if self.health is None else self.health.to_dict(),
            "restart": self.restart.to_dict(),
            "update": self.update.to_dict(),
            "stop_grace_period_s": self.stop_grace_period_s,
            "rebalance": self.rebalance,
            "container": self.container.to_dict(),
            "service_labels": dict(self.service_labels),
            "endpoint_mode": self.endpoint_mode,
            # absent when default: the stored form of older specs (and their commands' bytes) stays the same
            **({"ingress_policy": self.ingress_policy} if self.ingress_policy != "cluster" else {}),
            "rollback": self.rollback.to_dict(),
            "secrets": [r.to_dict() for r in self.secrets],
            "configs": [r.to_dict() for r in self.configs],
            **({} if self.autoscale is None else {"autoscale": self.autoscale.to_dict()}),  # absent when off
            **self._job_dict(),
            **({"on_site_loss": self.on_site_loss} if self.on_site_loss != "keep" else {}),  # absent: default
            **({"force_update": self.force_update} if self.force_update else {}),  # absent: default
            **({"links": [str(link) for link in self.links]} if self.links else {}),  # absent: default
        } | ({"networks": [n.to_dict() for n in self.networks]} if self.networks else {})

    def to_sparse_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the fields equal to their defaults (Raft command bodies): ``from_dict``
        restores them, so it gives an equal spec, with ~10x fewer bytes and ~3x less parsing."""
        defaults = _default_plain()
        return {
            k: v
            for k, v in self.to_dict().items()
            if k in ("name", "image") or k not in defaults or v != defaults[k]
        }

    def _job_dict(self) -> dict[str, Any]:
        """The job fields, only when set: a service's stored form (and its Raft bytes) stays as before."""
        out: dict[str, Any] = {}
        if self.max_concurrent:
            out["max_concurrent"] = self.max_concurrent
        if self.schedule is not None:
            out["schedule"] = self.schedule.to_dict()
        if self.sidecars:  # a task group (issue 21), also absent when unused
            out[SIDECAR] = [c.to_dict() for c in self.sidecars]
        if self.init_containers:
            out[INIT] = [c.to_dict() for c in self.init_containers]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSpec:
        """Validate and normalise plain data (canonical keys or aliases); raises ConfigError(field=...)."""
        d = take_fields(data, "", _SPEC_KEYS)
        kw: dict[str, Any] = {}
        for canonical, (key, value) in d.items():
            kw[canonical] = _SPEC_PARSERS[canonical](value, key)
        if "name" not in kw:
            raise field_error("name", "is required")
        if "image" not in kw:
            raise field_error("image", "is required")
        return cls(**kw)


@functools.cache
def _default_plain() -> dict[str, Any]:
    return ServiceSpec(name="x", image="x").to_dict()


def _p_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise field_error(key, f"expected a string, got {type(value).__name__}")
    return value


def _p_cmd(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    return str_tuple(value, key)


def _p_items(parser: Any) -> Any:
    def parse(value: Any, key: str) -> tuple[Any, ...]:
        return tuple(parser(v, fieldname=f"{key}[{i}]") for i, v in enumerate(list_field(value, key)))

    return parse


def _p_health(value: Any, key: str) -> HealthSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        return HealthSpec.from_dict({"cmd": value}, key)
    return HealthSpec.from_dict(value, key)


_SPEC_KEYS: dict[str, str] = {
    "name": "name",
    "image": "image",
    "entrypoint": "entrypoint",
    "command": "command",
    "args": "command",
    "user": "user",
    "workdir": "workdir",
    "env": "env",
    "labels": "labels",
    "mode": "mode",
    "replicas": "replicas",
    "constraints": "constraints",
    "placement_preferences": "placement_preferences",
    "placement_prefs": "placement_preferences",
    "strategy": "strategy",
    "affinities": "affinities",
    "max_replicas_per_node": "max_replicas_per_node",
    "reserve_cpu": "reserve_cpu_nanos",
    "reserve_cpu_nanos": "reserve_cpu_nanos",
    "reserve_memory": "reserve_memory_bytes",
    "reserve_memory_bytes": "reserve_memory_bytes",
    "limit_cpu": "limit_cpu_nanos",
    "limit_cpu_nanos": "limit_cpu_nanos",
    "limit_memory": "limit_memory_bytes",
    "limit_memory_bytes": "limit_memory_bytes",
    "mounts": "mounts",
    "publish": "publish",
    "health": "health",
    "restart": "restart",
    "update": "update",
    "stop_grace_period": "stop_grace_period_s",
    "stop_grace_period_s": "stop_grace_period_s",
    "rebalance": "rebalance",
    "container": "container",
    "service_labels": "service_labels",
    "endpoint_mode": "endpoint_mode",
    "ingress_policy": "ingress_policy",
    "rollback": "rollback",
    "secrets": "secrets",
    "configs": "configs",
    "networks": "networks",
    "links": "links",
    "autoscale": "autoscale",
    "max_concurrent": "max_concurrent",
    "schedule": "schedule",
    "sidecars": "sidecars",
    "init_containers": "init_containers",
    "on_site_loss": "on_site_loss",
    "force_update": "force_update",
}


def _p_cpu(value: Any, key: str) -> int:
    if key.endswith("_nanos"):
        return parse_int(value, key)
    return parse_cpu_nanos(value, fieldname=key)


def _p_mem(value: Any, key: str) -> int:
    if key.endswith("_bytes"):
        return parse_int(value, key)
    return parse_memory_bytes(value, fieldname=key)


def _p_env(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    """The environment; a value with Swarm's templates must expand with stand-in values (as Swarm checks
    a service's spec: an unknown field is refused)."""
    pairs = parse_key_values(value, fieldname=key)
    for name, text in pairs:
        check_template(text, f"{key}.{name}")
    return pairs


_SPEC_PARSERS: dict[str, Any] = {
    "name": _p_str,
    "image": _p_str,
    "entrypoint": _p_cmd,
    "command": _p_cmd,
    "user": _p_str,
    "workdir": _p_str,
    "env": lambda v, k: _p_env(v, k),
    "labels": lambda v, k: parse_key_values(v, fieldname=k),
    "mode": lambda v, k: parse_choice(v, MODES, k),
    "replicas": lambda v, k: parse_int(v, k, maximum=MAX_REPLICAS),
    "constraints": _p_items(parse_constraint),
    "placement_preferences": _p_items(parse_placement_pref),
    "strategy": lambda v, k: parse_choice(v, STRATEGIES, k),
    "affinities": _p_items(parse_affinity),
    "max_replicas_per_node": lambda v, k: parse_int(v, k),
    "reserve_cpu_nanos": _p_cpu,
    "limit_cpu_nanos": _p_cpu,
    "reserve_memory_bytes": _p_mem,
    "limit_memory_bytes": _p_mem,
    "mounts": _p_items(parse_mount),
    "publish": _p_items(parse_port),
    "health": _p_health,
    "restart": lambda v, k: RestartPolicy.from_dict(v, k),
    "update": lambda v, k: UpdateConfig.from_dict(v, k),
    "stop_grace_period_s": lambda v, k: parse_duration_s(v, fieldname=k),
    "rebalance": lambda v, k: parse_bool(v, k),
    "container": lambda v, k: ContainerOptions.from_dict(v, k),
    "service_labels": lambda v, k: parse_key_values(v, fieldname=k),
    "endpoint_mode": lambda v, k: parse_choice(v, ENDPOINT_MODES, k),
    "ingress_policy": lambda v, k: parse_choice(v, INGRESS_POLICIES, k),
    "rollback": lambda v, k: UpdateConfig.from_dict(v, k),
    "secrets": lambda v, k: parse_file_refs(v, k, "secret"),
    "configs": lambda v, k: parse_file_refs(v, k, "config"),
    "networks": parse_attachments,
    "links": parse_links,
    "autoscale": lambda v, k: AutoscaleSpec.from_dict(v, k, parse_duration_s),
    "max_concurrent": lambda v, k: parse_int(v, k, maximum=MAX_REPLICAS),
    "schedule": lambda v, k: parse_schedule(v, k),
    "sidecars": lambda v, k: parse_group(v, k, SIDECAR),
    "init_containers": lambda v, k: parse_group(v, k, INIT),
    "on_site_loss": lambda v, k: parse_choice(v, SITE_LOSS_POLICIES, k),
    "force_update": lambda v, k: parse_int(v, k),
}


def check_endpoint_ports(spec: ServiceSpec) -> ServiceSpec:
    """Swarm's rule at the edges (CLI, API create/update, Compose), not in ``ServiceSpec`` itself: a port
    published in ingress mode cannot be used with endpoint mode dnsrr. A committed spec from before the
    rule still loads (``model/committed.py``): such a service keeps running; its next update must fix it.
    A service on the host network has neither a virtual address nor ingress ports (``check_host_network``).
    A sidecar's ports are bound in the same namespace: on the host network, checked alike."""
    if on_host_network(spec.networks):
        check_host_network(spec.endpoint_mode, spec.publish)
        for j, sidecar in enumerate(spec.sidecars):
            check_host_network(spec.endpoint_mode, sidecar.publish, f"sidecars[{j}].publish")
    if spec.endpoint_mode == "dnsrr":
        for i, port in enumerate(spec.publish):
            if port.ingress:
                raise field_error(
                    f"publish[{i}]",
                    f"port {port} published with ingress mode can't be used with dnsrr mode: publish it "
                    "with mode=host or use endpoint mode vip",
                )
    return spec


def check_mode_kept(name: str, current: ServiceSpec, spec: ServiceSpec | str) -> None:
    """Swarm's rule (controlapi ``errModeChangeNotAllowed``): a service keeps the mode it was created
    with (replicated, global, replicated-job, global-job); NotAllowedError naming ``mode`` otherwise."""
    mode = spec if isinstance(spec, str) else spec.mode  # the new spec, or the mode an update asks for
    if mode != current.mode:
        raise NotAllowedError(
            f"service mode change is not allowed: service {name} is {current.mode}, not {mode} "
            "(remove the service and create it again with the new mode)",
            field="mode",
        )


def check_update_allowed(name: str, current: ServiceSpec, spec: ServiceSpec) -> None:
    """What an update of service ``name`` may not do, as Docker refuses it (NotAllowedError): change its
    mode (:func:`check_mode_kept`), or give a global service another ``replicas`` (Docker's update:
    ``replicas can only be used with replicated or replicated-job mode``; it was silently ignored)."""
    check_mode_kept(name, current, spec)
    if spec.mode.startswith("global") and spec.replicas != current.replicas:
        raise NotAllowedError(
            f"replicas can only be used with replicated or replicated-job mode (service {name} is "
            f"{spec.mode})",
            field="replicas",
        )
