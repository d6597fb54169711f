"""Which service spec field came in which spec version, and which of them a spec uses (pure).

A node of an older release reads a committed spec holding a field it does not know (or a value form
its validator refused then) as an invalid service (``model/committed.py``: a placeholder that runs
nothing), so the edges (service create/update, stack deploy) refuse such a spec while some member
reads an older spec version (``raft/command_gate.admit_spec``; the version is advertised beside the
command versions, tag ``spec``). Version 1 is every field of the release before the command-version
gate (``BASELINE_FIELDS``: a literal per model class); each later field or value form is recorded in
``NEWER_FIELDS`` / ``NEWER_FORMS`` with the version that brought it. A field added to a model class
of the spec gets the next version here (tests/unit/model/test_spec_fields.py fails until it is
recorded) and must be left out of the stored form while at its default. No I/O, no cluster state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, fields, is_dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .netrefs import on_host_network

if TYPE_CHECKING:
    from .spec import ServiceSpec

#: the newest spec version this code reads (the highest in NEWER_FIELDS / NEWER_FORMS, 1 without any)
SPEC_VERSION = 7


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: spec version 1: the fields of each model class the release before the gate read (fixed)
BASELINE_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ServiceSpec": _words(
            "name image entrypoint command user workdir env labels mode replicas constraints "
            "placement_preferences strategy affinities max_replicas_per_node reserve_cpu_nanos "
            "reserve_memory_bytes limit_cpu_nanos limit_memory_bytes mounts publish health restart "
            "update stop_grace_period_s rebalance container service_labels endpoint_mode "
            "ingress_policy rollback secrets configs networks links autoscale max_concurrent schedule "
            "sidecars init_containers on_site_loss force_update"
        ),
        "Affinity": ("kind", "service"),
        "AutoscaleSpec": _words(
            "min_replicas max_replicas cpu_percent memory_percent scale_up_delay_s scale_down_delay_s"
        ),
        "Constraint": ("attribute", "op", "value"),
        "ContainerOptions": _words(
            "hostname init cap_add cap_drop extra_hosts log_driver log_opts ulimits sysctls read_only "
            "security_opt stop_signal shm_size_bytes pids_limit devices groups dns_options"
        ),
        "CronSchedule": ("cron", "timezone", "concurrency", "history_limit", "starting_deadline_s"),
        "FileRef": ("source", "target", "uid", "gid", "mode", "version", "pinned"),
        "GroupContainer": _words(
            "name image command entrypoint env user workdir publish health reserve_cpu_nanos "
            "reserve_memory_bytes limit_cpu_nanos limit_memory_bytes mounts"
        ),
        "HealthSpec": ("test", "interval_s", "timeout_s", "retries", "start_period_s", "start_interval_s"),
        "Mount": _words(
            "type target source readonly volume_driver volume_options propagation nocopy "
            "tmpfs_size_bytes tmpfs_mode create_host_path volume_labels tmpfs_options"
        ),
        "NetworkAttachment": ("target", "aliases"),
        "PlacementPreference": ("attribute",),
        "PortPublish": ("target", "published", "protocol", "host_ip", "mode"),
        "RestartPolicy": ("condition", "delay_s", "max_delay_s", "max_attempts", "window_s"),
        "ServiceLink": ("service", "alias"),
        "Ulimit": ("name", "soft", "hard"),
        "UpdateConfig": (
            "parallelism",
            "delay_s",
            "order",
            "failure_action",
            "monitor_s",
            "max_failure_ratio",
        ),
    }
)

#: ``Class.field`` -> (the spec version that brought it, its name as a user writes it)
NEWER_FIELDS: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "ContainerOptions.memswap_limit_bytes": (2, "memswap_limit"),  # Compose memswap_limit (session 48)
        "ContainerOptions.mem_swappiness": (3, "mem_swappiness"),  # Compose mem_swappiness (session 49)
        "ContainerOptions.pull_policy": (3, "pull_policy"),  # Compose pull_policy (session 49)
        "ContainerOptions.pid_mode": (4, "pid"),  # Compose pid: host (session 50)
        "ContainerOptions.ipc_mode": (4, "ipc"),  # Compose ipc (session 50)
        "ContainerOptions.uts_mode": (4, "uts"),  # Compose uts: host (session 50)
        "Mount.subpath": (4, "subpath"),  # Compose volume.subpath (session 50)
        "ContainerOptions.privileged": (5, "privileged"),  # Compose privileged: true (session 50)
        "GroupContainer.privileged": (5, "privileged"),  # a sidecar's own privileged: true (session 50)
        "GroupContainer.pid": (6, "pid"),  # a sidecar in the main container's PID namespace (session 51)
        "GroupContainer.ipc": (6, "ipc"),  # ... and IPC namespace (Compose pid/ipc: service:X)
        "GroupContainer.cap_add": (7, "cap_add"),  # a sidecar's own capabilities (session 52: a profiler
        "GroupContainer.cap_drop": (7, "cap_drop"),  # joining X's PID namespace with SYS_PTRACE)
    }
)


@dataclass(frozen=True)
class SpecForm:
    """A value form an older validator refused, in objects of the model class ``owner``."""

    owner: str
    name: str  # as the refusal names it, after the object's path
    version: int
    used: Callable[[Any], bool]


#: value forms newer than version 1 (the fields are the baseline's, the older validator refused them)
NEWER_FORMS: tuple[SpecForm, ...] = (
    # Compose logging.options without a driver: the engine's default driver takes them (session 48)
    SpecForm(
        "ContainerOptions", "log_opts without log_driver", 2, lambda o: bool(o.log_opts and not o.log_driver)
    ),
    # the built-in host network (network_mode: host): an older FSM refuses it as an unknown network,
    # so a spec using it would apply on newer members only (session 49)
    SpecForm("ServiceSpec", "networks: host", 3, lambda s: on_host_network(s.networks)),
    # Compose's refresh pull policies (daily, weekly, every_<duration>): an older validator refuses them
    SpecForm(
        "ContainerOptions",
        "pull_policy (daily, weekly, every_<duration>)",
        4,
        lambda o: o.pull_policy not in ("always", "missing", "never"),
    ),
)


def used_above(spec: ServiceSpec, version: int) -> dict[str, int]:
    """The fields and value forms ``spec`` uses that came after spec ``version``: their
    path as a user names it (``container.memswap_limit``) -> the version that brought each."""
    out: dict[str, int] = {}
    if version < SPEC_VERSION:
        _walk(spec, "", version, out)
    return out


def _walk(obj: Any, prefix: str, version: int, out: dict[str, int]) -> None:
    owner = type(obj).__name__
    for form in NEWER_FORMS:
        if form.owner == owner and form.version > version and form.used(obj):
            out[prefix + form.name] = form.version
    for f in fields(obj):
        value = getattr(obj, f.name)
        newer = NEWER_FIELDS.get(f"{owner}.{f.name}")
        if newer is not None and newer[0] > version and _set(f, value):
            out[prefix + newer[1]] = newer[0]
        if is_dataclass(value):
            _walk(value, f"{prefix}{f.name}.", version, out)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if is_dataclass(item):
                    _walk(item, f"{prefix}{f.name}[{i}].", version, out)


def _set(f: Field[Any], value: Any) -> bool:
    """The field holds something other than its default (a required field always does)."""
    if f.default is not MISSING:
        return bool(value != f.default)
    if f.default_factory is not MISSING:
        return bool(value != f.default_factory())
    return True
