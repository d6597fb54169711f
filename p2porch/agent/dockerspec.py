"""Translation between agent values and Docker Engine JSON (pure).

Builds the Engine API's ``POST /containers/create`` body from a ``TaskAssignment`` and reads
``ObservedContainer`` / ``ContainerEvent`` / ``NodeCapacity`` back from the engine's inspect, list, event
and info documents. Only plain dicts and strings: it never does I/O.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..model import TaskHealth
from ..model.netrefs import HOST_NETWORK
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
    MountSpec,
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


def stop_timeout_s(stop_grace_s: float) -> int:
    """The Engine API's stop timeout (whole seconds: ``Config.StopTimeout``, ``POST /containers/{id}/stop``'s
    ``t``) for a grace period: rounded up, so the engine never kills before the grace is over."""
    return max(0, math.ceil(stop_grace_s))


def create_request(assignment: TaskAssignment) -> tuple[str, dict[str, Any]]:
    """(container name, Engine API ``POST /containers/create`` body) of the task's main container; Swarm's
    service templates (``{{.Task.Slot}}``...) are expanded for this task."""
    assignment = with_templates(assignment)
    body = _base_body(
        assignment.image,
        task_labels(assignment),
        task_env(assignment),
        assignment.command,
        assignment.entrypoint,
        assignment.stop_grace_s,
    )
    host = body["HostConfig"]
    host.update(_resources(assignment))
    host.update(_mounts(assignment.mounts))
    if assignment.ports and assignment.network != HOST_NETWORK:  # on the host's: its processes bind them
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in assignment.ports:
            bindings.setdefault(f"{port.target}/{port.protocol}", []).append(
                {"HostIp": port.host_ip or "", "HostPort": str(port.published) if port.published else ""}
            )
        body["ExposedPorts"] = {key: {} for key in sorted(bindings)}
        host["PortBindings"] = bindings
    _add_network(body, assignment)
    _add_process(body, assignment.healthcheck, assignment.user, assignment.workdir)
    config_part, host_part = engine_options(assignment.options)
    body.update(config_part)
    host.update(host_part)
    if "IpcMode" not in host and any(m.share_ipc for m in assignment.sidecars):
        host["IpcMode"] = "shareable"  # a sidecar joins it (the engine's default mode may be private)
    return container_name(assignment), body


def member_create_request(
    assignment: TaskAssignment, member: MemberSpec, main_id: str
) -> tuple[str, dict[str, Any]]:
    """(name, ``POST /containers/create`` body) of one sidecar or init container of a task group.

    Every member gets the task's labels (plus its name and kind), environment and mounts (shared volumes;
    its own mounts replace the task's at their targets).
    A sidecar joins the main container ``main_id``'s network namespace (one address, shared localhost; the
    namespace's owner publishes every port and holds the DNS settings), and its PID and IPC namespaces when
    its spec says so (``pid``/``ipc`` = main); an init container, which runs
    before the main container exists, is attached to the task's network with its own short-lived address.
    """
    assignment = with_templates(assignment)
    context = template_context(assignment)
    labels = task_labels(assignment) | {LABEL_MEMBER: member.name, LABEL_MEMBER_KIND: member.kind}
    env = task_env(assignment) | {k: expand(v, context) for k, v in member.env.items()}
    body = _base_body(member.image, labels, env, member.command, member.entrypoint, assignment.stop_grace_s)
    body["HostConfig"].update(_resources(member))
    own = tuple(replace(m, source=expand(m.source, context)) for m in member.mounts)
    targets = {m.target for m in own}
    body["HostConfig"].update(_mounts((*(m for m in assignment.mounts if m.target not in targets), *own)))
    if member.privileged:  # its own declaration only: the main container's options are not a member's
        body["HostConfig"]["Privileged"] = True
    for key, value in (("CapAdd", member.cap_add), ("CapDrop", member.cap_drop)):  # its own, as privileged
        if value:
            body["HostConfig"][key] = list(value)
    if member.kind == KIND_SIDECAR:
        body["HostConfig"]["NetworkMode"] = f"container:{main_id}"
        if member.share_pid:  # sees the main container's processes (a profiler, a reload signal)
            body["HostConfig"]["PidMode"] = f"container:{main_id}"
        if member.share_ipc:
            body["HostConfig"]["IpcMode"] = f"container:{main_id}"
    else:
        _add_network(body, assignment)
    _add_process(body, member.healthcheck, member.user, member.workdir)
    return member_container_name(assignment, member), body


def _base_body(
    image: str,
    labels: Mapping[str, str],
    env: Mapping[str, str],
    command: tuple[str, ...] | None,
    entrypoint: tuple[str, ...] | None,
    stop_grace_s: float,
) -> dict[str, Any]:
    """Image, labels, environment, command and entrypoint, detached (no stdio attached, no TTY); the
    engine never restarts it (p2porch decides restarts). ``StopTimeout`` is the service's stop grace
    period, so that a ``docker stop`` typed on the node and the engine's own shutdown wait as long as
    the agent's stop does (Docker's default is 10 s)."""
    body: dict[str, Any] = {
        "Image": image,
        "Labels": dict(labels),
        "Env": [f"{key}={value}" for key, value in env.items()],
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Tty": False,
        "StopTimeout": stop_timeout_s(stop_grace_s),
        "HostConfig": {"RestartPolicy": {"Name": "no"}, "NetworkMode": "default"},
    }
    if command:
        body["Cmd"] = list(command)
    if entrypoint is not None:
        body["Entrypoint"] = list(entrypoint) or [""]
    return body


def _add_process(body: dict[str, Any], check: Any, user: str, workdir: str) -> None:
    if check is not None:
        body["Healthcheck"] = _healthcheck(check)
    if user:
        body["User"] = user
    if workdir:
        body["WorkingDir"] = workdir


def _resources(spec: TaskAssignment | MemberSpec) -> dict[str, Any]:
    """HostConfig limits: NanoCpus, Memory, MemoryReservation and CpuShares (from the CPU reservation)."""
    host: dict[str, Any] = {}
    if spec.cpu_limit_nanos:
        host["NanoCpus"] = spec.cpu_limit_nanos
    if spec.memory_limit_bytes:
        host["Memory"] = spec.memory_limit_bytes
    if spec.memory_reservation_bytes:
        host["MemoryReservation"] = spec.memory_reservation_bytes
    if spec.cpu_reservation_nanos:
        shares = spec.cpu_reservation_nanos * CPU_SHARES_PER_CPU // NANOS_PER_S
        host["CpuShares"] = max(MIN_CPU_SHARES, shares)
    return host


def _mounts(all_mounts: Sequence[MountSpec]) -> dict[str, Any]:
    host: dict[str, Any] = {}
    binds = [m for m in all_mounts if m.type == "bind" and m.create_host_path]
    tmpfs = [m for m in all_mounts if m.type == "tmpfs" and m.tmpfs_options]
    mounts = [m for m in all_mounts if m not in binds and m not in tmpfs]
    if mounts:
        host["Mounts"] = [_mount(m) for m in mounts]
    if binds:  # the legacy Binds form: the engine creates a missing source directory (Compose semantics)
        host["Binds"] = [_bind(m) for m in binds]
    if tmpfs:  # HostConfig.Tmpfs, as ``docker run --tmpfs``: Mounts' TmpfsOptions take only size and mode
        host["Tmpfs"] = {m.target: _tmpfs_data(m) for m in tmpfs}
    return host


def _tmpfs_data(mount: MountSpec) -> str:
    """A HostConfig.Tmpfs value: the mount's options, then its size, octal mode and ``ro``."""
    options = list(mount.tmpfs_options)
    if mount.tmpfs_size_bytes:
        options.append(f"size={mount.tmpfs_size_bytes}")
    if mount.tmpfs_mode:
        options.append(f"mode={mount.tmpfs_mode:o}")
    if mount.read_only:
        options.append("ro")
    return ",".join(options)


def _add_network(body: dict[str, Any], assignment: TaskAssignment) -> None:
    host = body["HostConfig"]
    if assignment.network:
        host["NetworkMode"] = assignment.network
        body["NetworkingConfig"] = {"EndpointsConfig": {assignment.network: {}}}
    if assignment.dns_servers:
        host["Dns"] = list(assignment.dns_servers)
    if assignment.dns_search:
        host["DnsSearch"] = list(assignment.dns_search)


def _healthcheck(check: Any) -> dict[str, Any]:
    return {
        "Test": list(check.test),
        "Interval": int(check.interval_s * NANOS_PER_S),
        "Timeout": int(check.timeout_s * NANOS_PER_S),
        "Retries": check.retries,
        "StartPeriod": int(check.start_period_s * NANOS_PER_S),
    }


#: ContainerOptions keys -> (part of the create body, its Engine API name); "config" is the top level
_DIRECT_OPTIONS = {
    "hostname": ("config", "Hostname"),
    "stop_signal": ("config", "StopSignal"),
    "init": ("host", "Init"),
    "read_only": ("host", "ReadonlyRootfs"),
    "cap_add": ("host", "CapAdd"),
    "cap_drop": ("host", "CapDrop"),
    "security_opt": ("host", "SecurityOpt"),
    "sysctls": ("host", "Sysctls"),
    "shm_size_bytes": ("host", "ShmSize"),
    "pids_limit": ("host", "PidsLimit"),
    "extra_hosts": ("host", "ExtraHosts"),  # HOST:ADDRESS entries, in the spec's order
    "groups": ("host", "GroupAdd"),
    "dns_options": ("host", "DnsOptions"),  # beside Dns/DnsSearch, the cluster DNS the agent sets
    "memswap_limit_bytes": ("host", "MemorySwap"),  # beside Memory (the limit_memory): swap = the rest
    "mem_swappiness": ("host", "MemorySwappiness"),  # the engine discards it, warning, on cgroup v2
    "pid_mode": ("host", "PidMode"),  # host: the node's processes (docker run --pid host)
    "ipc_mode": ("host", "IpcMode"),
    "uts_mode": ("host", "UTSMode"),
    "privileged": ("host", "Privileged"),  # every capability and device: root on the node (docs/security.md)
}


def engine_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``ContainerOptions.to_dict()`` -> (top-level create-body fields, HostConfig fields)."""
    parts: dict[str, dict[str, Any]] = {"config": {}, "host": {}}
    for key, (part, name) in _DIRECT_OPTIONS.items():
        if key in options:
            value = options[key]
            parts[part][name] = (
                list(value)
                if isinstance(value, list | tuple)
                else dict(value)
                if isinstance(value, Mapping)
                else value
            )
    host = parts["host"]
    if "log_driver" in options or "log_opts" in options:  # Type "": the engine's default driver takes them
        host["LogConfig"] = {
            "Type": options.get("log_driver", ""),
            "Config": dict(options.get("log_opts") or {}),
        }
    if "ulimits" in options:
        host["Ulimits"] = [
            {"Name": name, "Soft": limit["soft"], "Hard": limit["hard"]}
            for name, limit in options["ulimits"].items()
        ]
    if "devices" in options:
        host["Devices"] = [_device(str(entry)) for entry in options["devices"]]
    return parts["config"], host


def _device(entry: str) -> dict[str, str]:
    """``HOST[:CONTAINER[:PERMISSIONS]]`` -> a HostConfig.Devices entry (CONTAINER defaults to HOST,
    PERMISSIONS to rwm, as the docker CLI reads it)."""
    fields = entry.split(":")
    host_path = fields[0]
    return {
        "PathOnHost": host_path,
        "PathInContainer": fields[1] if len(fields) > 1 and fields[1] else host_path,
        "CgroupPermissions": fields[2] if len(fields) > 2 and fields[2] else "rwm",
    }


def _bind(mount: Any) -> str:
    """One HostConfig.Binds entry: ``SOURCE:TARGET:ro|rw[,PROPAGATION]``."""
    mode = "ro" if mount.read_only else "rw"
    return f"{mount.source}:{mount.target}:{mode}" + (f",{mount.propagation}" if mount.propagation else "")


#: the Engine API version that mounts a volume's sub-directory (VolumeOptions.Subpath: Docker 26.0)
SUBPATH_API = (1, 45)


def subpath_error(assignment: TaskAssignment, api_version: tuple[int, int]) -> str:
    """Why a task cannot start on an engine speaking ``api_version``: "" unless it (or a member of its
    group) mounts a volume's sub-directory and the engine is older than API 1.45, which would ignore the
    option and mount the whole volume."""
    if tuple(api_version) >= SUBPATH_API:
        return ""
    mounts = (*assignment.mounts, *(m for member in assignment.members for m in member.mounts))
    used = [m for m in mounts if m.type == "volume" and m.subpath]
    if not used:
        return ""
    return (
        f"volume {used[0].source} mounted at {used[0].target} with subpath {used[0].subpath!r} needs Docker "
        f"Engine API {SUBPATH_API[0]}.{SUBPATH_API[1]} (Docker 26.0) or later; this node's engine speaks "
        f"{api_version[0]}.{api_version[1]}"
    )


def _mount(mount: Any) -> dict[str, Any]:
    """One entry of HostConfig.Mounts in the Engine API's shape."""
    out: dict[str, Any] = {
        "Type": mount.type,
        "Source": mount.source,
        "Target": mount.target,
        "ReadOnly": bool(mount.read_only),
    }
    if mount.type == "volume" and (
        mount.volume_driver or mount.volume_options or mount.nocopy or mount.volume_labels or mount.subpath
    ):
        volume: dict[str, Any] = {}
        if mount.volume_driver or mount.volume_options:
            volume["DriverConfig"] = {
                "Name": mount.volume_driver or "local",
                "Options": dict(mount.volume_options),
            }
        if mount.nocopy:
            volume["NoCopy"] = True
        if mount.volume_labels:
            volume["Labels"] = dict(mount.volume_labels)
        if mount.subpath:  # Engine API 1.45+: the executor refuses it on an older engine (subpath_error)
            volume["Subpath"] = mount.subpath
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
        stop_signal=str(config.get("StopSignal") or ""),
        started_at=engine_time(state.get("StartedAt")),
    )


def clock_offset(info: Mapping[str, Any], before: float) -> float:
    """A lower bound of the agent's clock minus the engine's, from ``/info`` requested at ``before`` (the
    agent's time): dockerd stamps ``SystemTime`` after the request arrived (near the start of its slow
    answer), so the true offset is at least this; a start time moved by it is never later than it was.
    0.0 when the engine gives no ``SystemTime``."""
    engine_now = engine_time(info.get("SystemTime"))
    return before - engine_now if engine_now else 0.0


def engine_time(value: Any) -> float:
    """An Engine API time (RFC 3339 with nanoseconds, ``2026-12-07T02:35:46.123456789Z``) in seconds since
    the epoch; 0.0 for Docker's zero time (``0001-01-01T00:00:00Z``: never), nothing or nonsense."""
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return 0.0
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


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
        architecture=str(info.get("Architecture") or ""),
    )
