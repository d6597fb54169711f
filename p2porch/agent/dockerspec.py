"""Translation between agent values and Docker Engine JSON (pure).

Builds the keyword arguments for the docker SDK's ``containers.create`` from a ``TaskAssignment`` and
reads ``ObservedContainer`` / ``ContainerEvent`` / ``NodeCapacity`` back from the engine's inspect, list,
event and info documents. Only plain dicts and strings: it never imports docker and never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import TaskHealth
from ..model.templates import expand
from .model import (
    KIND_SIDECAR,
    LABEL_MANAGED,
    LABEL_MEMBER,
    LABEL_MEMBER_KIND,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_TASK_ID,
    ContainerEvent,
    MemberSpec,
    NodeCapacity,
    ObservedContainer,
    TaskAssignment,
    container_name,
    member_container_name,
    task_env,
    task_labels,
    template_context,
    with_templates,
)

NANOS_PER_S = 1_000_000_000
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2  # the kernel's minimum cpu.shares


def create_kwargs(assignment: TaskAssignment) -> dict[str, Any]:
    """Keyword arguments for ``DockerClient.containers.create`` (image passed separately); Swarm's service
    templates (``{{.Task.Slot}}``...) are expanded for this task."""
    assignment = with_templates(assignment)
    kwargs: dict[str, Any] = {
        "name": container_name(assignment),
        "labels": task_labels(assignment),
        "environment": task_env(assignment),
        "detach": True,
        "restart_policy": {"Name": "no"},  # p2porch decides restarts, never the engine
    }
    if assignment.command:
        kwargs["command"] = list(assignment.command)
    if assignment.entrypoint is not None:
        kwargs["entrypoint"] = list(assignment.entrypoint) or [""]
    kwargs.update(_resources(assignment))
    kwargs.update(_mounts(assignment))
    if assignment.ports:
        bindings: dict[str, list[Any]] = {}
        for port in assignment.ports:
            host: Any = port.published or None
            if port.host_ip:
                host = (port.host_ip, port.published) if port.published else (port.host_ip,)
            bindings.setdefault(f"{port.target}/{port.protocol}", []).append(host)
        ports = {key: values[0] if len(values) == 1 else values for key, values in bindings.items()}
        kwargs["ports"] = ports
    kwargs.update(_network(assignment))
    if assignment.healthcheck is not None:
        kwargs["healthcheck"] = _healthcheck(assignment.healthcheck)
    if assignment.user:
        kwargs["user"] = assignment.user
    if assignment.workdir:
        kwargs["working_dir"] = assignment.workdir
    kwargs.update(engine_options(assignment.options))
    return kwargs


def member_create_kwargs(assignment: TaskAssignment, member: MemberSpec, main_id: str) -> dict[str, Any]:
    """``containers.create`` keyword arguments of one sidecar or init container of a task group.

    Every member gets the task's labels (plus its name and kind), environment and mounts (shared volumes).
    A sidecar joins the main container ``main_id``'s network namespace (one address, shared localhost; the
    namespace's owner publishes every port and holds the DNS settings); an init container, which runs
    before the main container exists, is attached to the task's network with its own short-lived address.
    """
    assignment = with_templates(assignment)
    context = template_context(assignment)
    labels = task_labels(assignment) | {LABEL_MEMBER: member.name, LABEL_MEMBER_KIND: member.kind}
    kwargs: dict[str, Any] = {
        "name": member_container_name(assignment, member),
        "labels": labels,
        "environment": task_env(assignment) | {k: expand(v, context) for k, v in member.env.items()},
        "detach": True,
        "restart_policy": {"Name": "no"},
    }
    if member.command:
        kwargs["command"] = list(member.command)
    if member.entrypoint is not None:
        kwargs["entrypoint"] = list(member.entrypoint) or [""]
    kwargs.update(_resources(member))
    kwargs.update(_mounts(assignment))
    if member.kind == KIND_SIDECAR:
        kwargs["network_mode"] = f"container:{main_id}"
    else:
        kwargs.update(_network(assignment))
    if member.healthcheck is not None:
        kwargs["healthcheck"] = _healthcheck(member.healthcheck)
    if member.user:
        kwargs["user"] = member.user
    if member.workdir:
        kwargs["working_dir"] = member.workdir
    return kwargs


def _resources(spec: TaskAssignment | MemberSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if spec.cpu_limit_nanos:
        kwargs["nano_cpus"] = spec.cpu_limit_nanos
    if spec.memory_limit_bytes:
        kwargs["mem_limit"] = spec.memory_limit_bytes
    if spec.memory_reservation_bytes:
        kwargs["mem_reservation"] = spec.memory_reservation_bytes
    if spec.cpu_reservation_nanos:
        shares = spec.cpu_reservation_nanos * CPU_SHARES_PER_CPU // NANOS_PER_S
        kwargs["cpu_shares"] = max(MIN_CPU_SHARES, shares)
    return kwargs


def _mounts(assignment: TaskAssignment) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    binds = [m for m in assignment.mounts if m.type == "bind" and m.create_host_path]
    mounts = [m for m in assignment.mounts if m not in binds]
    if mounts:
        kwargs["mounts"] = [_mount(m) for m in mounts]
    if binds:  # the legacy Binds form: the engine creates a missing source directory (Compose semantics)
        kwargs["volumes"] = [_bind(m) for m in binds]
    return kwargs


def _network(assignment: TaskAssignment) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if assignment.network:
        kwargs["network"] = assignment.network
    if assignment.dns_servers:
        kwargs["dns"] = list(assignment.dns_servers)
    if assignment.dns_search:
        kwargs["dns_search"] = list(assignment.dns_search)
    return kwargs


def _healthcheck(check: Any) -> dict[str, Any]:
    return {
        "test": list(check.test),
        "interval": int(check.interval_s * NANOS_PER_S),
        "timeout": int(check.timeout_s * NANOS_PER_S),
        "retries": check.retries,
        "start_period": int(check.start_period_s * NANOS_PER_S),
    }


#: ContainerOptions keys that the SDK takes under the same name and shape
_SAME_NAME_OPTIONS = ("hostname", "init", "cap_add", "cap_drop", "read_only", "security_opt", "stop_signal")


def engine_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``ContainerOptions.to_dict()`` -> ``containers.create`` keyword arguments."""
    kwargs: dict[str, Any] = {k: options[k] for k in _SAME_NAME_OPTIONS if k in options}
    for key in ("cap_add", "cap_drop", "security_opt"):
        if key in kwargs:
            kwargs[key] = list(kwargs[key])
    if "extra_hosts" in options:
        hosts: dict[str, Any] = {}
        for entry in options["extra_hosts"]:
            host, _, address = str(entry).partition(":")
            previous = hosts.get(host)
            hosts[host] = (
                address
                if previous is None
                else [*([previous] if isinstance(previous, str) else previous), address]
            )
        kwargs["extra_hosts"] = hosts
    if "log_driver" in options:
        kwargs["log_config"] = {"Type": options["log_driver"], "Config": dict(options.get("log_opts") or {})}
    if "ulimits" in options:
        kwargs["ulimits"] = [
            {"Name": name, "Soft": limit["soft"], "Hard": limit["hard"]}
            for name, limit in options["ulimits"].items()
        ]
    if "sysctls" in options:
        kwargs["sysctls"] = dict(options["sysctls"])
    if "shm_size_bytes" in options:
        kwargs["shm_size"] = options["shm_size_bytes"]
    if "pids_limit" in options:
        kwargs["pids_limit"] = options["pids_limit"]
    if "devices" in options:
        kwargs["devices"] = list(options["devices"])  # HOST:CONTAINER:PERMISSIONS, the SDK's form
    return kwargs


def _bind(mount: Any) -> str:
    """One HostConfig.Binds entry: ``SOURCE:TARGET:ro|rw[,PROPAGATION]``."""
    mode = "ro" if mount.read_only else "rw"
    return f"{mount.source}:{mount.target}:{mode}" + (f",{mount.propagation}" if mount.propagation else "")


def _mount(mount: Any) -> dict[str, Any]:
    """One entry of HostConfig.Mounts in the Engine API's shape."""
    out: dict[str, Any] = {
        "Type": mount.type,
        "Source": mount.source,
        "Target": mount.target,
        "ReadOnly": bool(mount.read_only),
    }
    if mount.type == "volume" and (mount.volume_driver or mount.volume_options or mount.nocopy):
        volume: dict[str, Any] = {}
        if mount.volume_driver or mount.volume_options:
            volume["DriverConfig"] = {
                "Name": mount.volume_driver or "local",
                "Options": dict(mount.volume_options),
            }
        if mount.nocopy:
            volume["NoCopy"] = True
        out["VolumeOptions"] = volume
    if mount.type == "bind" and mount.propagation:
        out["BindOptions"] = {"Propagation": mount.propagation}
    if mount.type == "tmpfs" and (mount.tmpfs_size_bytes or mount.tmpfs_mode):
        tmpfs: dict[str, Any] = {}
        if mount.tmpfs_size_bytes:
            tmpfs["SizeBytes"] = mount.tmpfs_size_bytes
        if mount.tmpfs_mode:
            tmpfs["Mode"] = mount.tmpfs_mode
        out["TmpfsOptions"] = tmpfs
    return out


def health_from_status_text(status: str) -> str:
    """Health from ``docker ps``'s Status column, e.g. "Up 3 seconds (healthy)"."""
    if "(healthy)" in status:
        return TaskHealth.HEALTHY
    if "(unhealthy)" in status:
        return TaskHealth.UNHEALTHY
    if "(health: starting)" in status:
        return TaskHealth.STARTING
    return TaskHealth.NONE


def list_key(summary: Mapping[str, Any]) -> tuple[str, str, str]:
    """What must change in a ``docker ps`` entry before the container is worth inspecting again."""
    return (
        str(summary.get("Id", "")),
        str(summary.get("State", "")),
        health_from_status_text(str(summary.get("Status", ""))),
    )


def is_managed(labels: Mapping[str, str] | None) -> bool:
    """True for labels of a container p2porch owns."""
    if not labels:
        return False
    return labels.get(LABEL_MANAGED) == "true" and bool(labels.get(LABEL_TASK_ID))


def observed_from_inspect(attrs: Mapping[str, Any]) -> ObservedContainer | None:
    """An ``ObservedContainer`` from ``docker inspect`` output; None if p2porch does not own it."""
    config = attrs.get("Config") or {}
    labels: Mapping[str, str] = config.get("Labels") or {}
    if not is_managed(labels):
        return None
    state = attrs.get("State") or {}
    status = str(state.get("Status", ""))
    try:  # Docker says starting|healthy|unhealthy, or "none"/nothing without a check
        health = TaskHealth(str(((state.get("Health") or {}).get("Status")) or ""))
    except ValueError:
        health = TaskHealth.NONE
    exit_code: int | None = state.get("ExitCode")
    if status in ("running", "created", "paused", "restarting") and not state.get("Error"):
        exit_code = None
    return ObservedContainer(
        container_id=str(attrs.get("Id", "")),
        name=str(attrs.get("Name", "")).lstrip("/"),
        task_id=labels[LABEL_TASK_ID],
        node_name=labels.get(LABEL_NODE, ""),
        status=status,
        exit_code=exit_code,
        error=str(state.get("Error") or ""),
        oom_killed=bool(state.get("OOMKilled")),
        health=health,
        address=address_from_networks(
            ((attrs.get("NetworkSettings") or {}).get("Networks")) or {}, labels.get(LABEL_NETWORK, "")
        ),
        labels=labels,
        pid=pid if isinstance(pid := state.get("Pid"), int) and pid > 0 else 0,
    )


def address_from_networks(networks: Mapping[str, Any], preferred: str) -> str:
    """The container's IPv4 address on ``preferred`` if attached there, else on its first network."""
    if preferred and (networks.get(preferred) or {}).get("IPAddress"):
        return str(networks[preferred]["IPAddress"])
    for name in sorted(networks):
        address = (networks[name] or {}).get("IPAddress")
        if address:
            return str(address)
    return ""


def event_from_docker(event: Mapping[str, Any]) -> ContainerEvent | None:
    """A ``ContainerEvent`` from one decoded ``/events`` document; None unless about a managed container."""
    if event.get("Type") != "container":
        return None
    actor = event.get("Actor") or {}
    attributes: Mapping[str, str] = actor.get("Attributes") or {}
    task_id = attributes.get(LABEL_TASK_ID, "")
    if not task_id:
        return None
    at = event.get("timeNano")
    return ContainerEvent(
        action=str(event.get("Action") or event.get("status") or ""),
        container_id=str(actor.get("ID") or event.get("id") or ""),
        task_id=task_id,
        at=at / NANOS_PER_S if isinstance(at, int) else float(event.get("time") or 0),
    )


def capacity_from_info(info: Mapping[str, Any]) -> NodeCapacity:
    """``NodeCapacity`` from ``docker info``: NCPU and MemTotal."""
    return NodeCapacity(
        cpu_nanos=int(info.get("NCPU") or 0) * NANOS_PER_S,
        memory_bytes=int(info.get("MemTotal") or 0),
        engine_version=str(info.get("ServerVersion") or ""),
        hostname=str(info.get("Name") or ""),
    )
