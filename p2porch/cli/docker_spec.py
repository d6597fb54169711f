"""Docker's ``service inspect`` structs a template walks, built from p2porch's service view (pure):
``.Spec.TaskTemplate`` (``ContainerSpec`` with its ``Mounts``, ``Secrets``, ``Configs``,
``Healthcheck``...; ``Resources``, ``RestartPolicy``, ``Placement``, ``Networks``), ``.Spec.UpdateConfig``
and ``.Spec.RollbackConfig``, typed as Docker's Go structs (``%T``: ``*swarm.ContainerSpec``), printed
as Go prints them and encoded as Go's ``encoding/json`` does (``omitempty``), so ``{{range
.Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Source}}:{{.Target}} {{end}}`` and ``{{json
.Spec.TaskTemplate.RestartPolicy}}`` print what Docker's do. Never asks the daemon (docker_paths.py
answers the paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model.gotemplate import GoList
from .docker_types import GoDuration, GoFileMode, GoStruct, GoUint, go_struct, string_map, strings

SECRETS_DIR = "/run/secrets/"


def _mount(m: Mapping[str, Any]) -> GoStruct:
    """A ``mount.Mount``: ``{volume data /data false  <nil> <nil> <nil> <nil>}``."""
    kind = str(m.get("type") or "volume")
    bind = volume = tmpfs = None
    if kind == "bind" and (m.get("propagation") or m.get("create_host_path")):
        bind = go_struct(
            "*mount.BindOptions",
            ("Propagation", "CreateMountpoint"),
            Propagation=m.get("propagation") or "",
            CreateMountpoint=bool(m.get("create_host_path")),
        )
    if kind == "volume" and (m.get("nocopy") or m.get("volume_labels") or m.get("volume_driver")):
        driver = None
        if m.get("volume_driver"):
            options = string_map(dict(m.get("volume_options") or {}))
            driver = go_struct("*mount.Driver", ("Options",), Name=m["volume_driver"], Options=options)
        volume = go_struct(
            "*mount.VolumeOptions",
            ("NoCopy", "Labels", "DriverConfig"),
            NoCopy=bool(m.get("nocopy")),
            Labels=string_map(dict(m.get("volume_labels") or {})),
            DriverConfig=driver,
        )
    if kind == "tmpfs" and (m.get("tmpfs_size_bytes") or m.get("tmpfs_mode")):
        tmpfs = go_struct(
            "*mount.TmpfsOptions",
            ("SizeBytes", "Mode"),
            SizeBytes=int(m.get("tmpfs_size_bytes") or 0),
            Mode=GoFileMode(int(m.get("tmpfs_mode") or 0)),
        )
    return go_struct(
        "mount.Mount",
        ("Source", "Target", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions", "TmpfsOptions"),
        Type=kind,
        Source=m.get("source") or "",
        Target=m.get("target") or "",
        ReadOnly=bool(m.get("readonly")),
        Consistency="",
        BindOptions=bind,
        VolumeOptions=volume,
        TmpfsOptions=tmpfs,
    )


def _file(ref: Mapping[str, Any], go_type: str, relative_to: str = "") -> GoStruct:
    """A reference's file target: its ``Name`` (relative to ``relative_to``, as Docker's secrets'),
    owner and ``Mode`` (``-r--r--r--``)."""
    target = str(ref.get("target") or ref.get("source") or "")
    return go_struct(
        go_type,
        Name=target.removeprefix(relative_to) if relative_to else target,
        UID=str(ref.get("uid", "0")),
        GID=str(ref.get("gid", "0")),
        Mode=GoFileMode(int(ref.get("mode") or 0o444)),
    )


def _secret(ref: Mapping[str, Any]) -> GoStruct:
    """A ``*swarm.SecretReference``: its file (``Name`` as Docker's, relative to /run/secrets/), the
    secret's name (p2porch's secret ids are its names)."""
    source = str(ref.get("source") or "")
    file = _file(ref, "*swarm.SecretReferenceFileTarget", SECRETS_DIR)
    return go_struct("*swarm.SecretReference", File=file, SecretID=source, SecretName=source)


def _config(ref: Mapping[str, Any]) -> GoStruct:
    source = str(ref.get("source") or "")
    file = _file(ref, "*swarm.ConfigReferenceFileTarget")
    return go_struct(
        "*swarm.ConfigReference", ("Runtime",), File=file, Runtime=None, ConfigID=source, ConfigName=source
    )


def _healthcheck(health: Mapping[str, Any] | None) -> GoStruct | None:
    if not health:
        return None
    return go_struct(
        "*container.HealthConfig",
        ("Test", "Interval", "Timeout", "StartPeriod", "Retries"),
        Test=strings(health.get("cmd") or []),
        Interval=GoDuration.of_seconds(health.get("interval_s")),
        Timeout=GoDuration.of_seconds(health.get("timeout_s")),
        StartPeriod=GoDuration.of_seconds(health.get("start_period_s")),
        Retries=int(health.get("retries") or 0),
    )


def container_spec(spec: Mapping[str, Any]) -> GoStruct:
    """Docker's ``*swarm.ContainerSpec`` of the service (p2porch's ``entrypoint`` is its ``Command``,
    ``command`` its ``Args``, as Docker's ``--entrypoint`` and arguments)."""
    options = spec.get("container") or {}
    env = [f"{k}={v}" for k, v in (spec.get("env") or {}).items()]
    fields = {
        "Image": spec.get("image") or "",
        "Labels": string_map(spec.get("labels")),
        "Command": strings(spec.get("entrypoint") or []),
        "Args": strings(spec.get("command") or []),
        "Hostname": options.get("hostname") or "",
        "Env": strings(env),
        "Dir": spec.get("workdir") or "",
        "User": spec.get("user") or "",
        "Groups": strings(options.get("groups") or []),
        "Init": bool(options.get("init")) or None,
        "StopSignal": options.get("stop_signal") or "",
        "TTY": False,
        "ReadOnly": bool(options.get("read_only")),
        "Mounts": GoList("[]mount.Mount", (_mount(m) for m in spec.get("mounts") or [])),
        "StopGracePeriod": GoDuration.of_seconds(spec.get("stop_grace_period_s")),
        "Healthcheck": _healthcheck(spec.get("health")),
        "Hosts": strings(" ".join(reversed(h.split(":", 1))) for h in options.get("extra_hosts") or []),
        "Secrets": GoList("[]*swarm.SecretReference", (_secret(r) for r in spec.get("secrets") or [])),
        "Configs": GoList("[]*swarm.ConfigReference", (_config(r) for r in spec.get("configs") or [])),
        "Sysctls": string_map(options.get("sysctls")),
        "CapabilityAdd": strings(options.get("cap_add") or []),
        "CapabilityDrop": strings(options.get("cap_drop") or []),
    }
    return go_struct("*swarm.ContainerSpec", set(fields) - {"Image"}, **fields)


def _resources(spec: Mapping[str, Any]) -> GoStruct:
    limit = go_struct(
        "*swarm.Limit",
        ("NanoCPUs", "MemoryBytes", "Pids"),
        NanoCPUs=int(spec.get("limit_cpu_nanos") or 0),
        MemoryBytes=int(spec.get("limit_memory_bytes") or 0),
        Pids=int((spec.get("container") or {}).get("pids_limit") or 0),
    )
    reserve = go_struct(
        "*swarm.Resources",
        ("NanoCPUs", "MemoryBytes", "GenericResources"),
        NanoCPUs=int(spec.get("reserve_cpu_nanos") or 0),
        MemoryBytes=int(spec.get("reserve_memory_bytes") or 0),
        GenericResources=GoList("[]swarm.GenericResource"),
    )
    return go_struct(
        "*swarm.ResourceRequirements", ("Limits", "Reservations"), Limits=limit, Reservations=reserve
    )


def _restart_policy(spec: Mapping[str, Any]) -> GoStruct:
    restart = spec.get("restart") or {}
    return go_struct(
        "*swarm.RestartPolicy",
        ("Window",),  # Docker's CLI sets the others (pointers: 0 is kept)
        Condition=restart.get("condition") or "any",
        Delay=GoDuration.of_seconds(restart.get("delay_s", 5.0)),
        MaxAttempts=GoUint(restart.get("max_attempts") or 0),
        Window=GoDuration.of_seconds(restart.get("window_s")),
    )


def _placement(spec: Mapping[str, Any]) -> GoStruct:
    preferences = []
    for text in spec.get("placement_preferences") or []:
        strategy, _, descriptor = str(text).partition("=")
        spread = go_struct("*swarm.SpreadOver", SpreadDescriptor=descriptor)
        preferences.append(
            go_struct("swarm.PlacementPreference", Spread=spread if strategy == "spread" else None)
        )
    return go_struct(
        "*swarm.Placement",
        ("Constraints", "Preferences", "MaxReplicas", "Platforms"),
        Constraints=strings(spec.get("constraints") or []),
        Preferences=GoList("[]swarm.PlacementPreference", preferences),
        MaxReplicas=GoUint(spec.get("max_replicas_per_node") or 0),
        Platforms=GoList("[]swarm.Platform"),
    )


def _networks(spec: Mapping[str, Any]) -> GoList:
    """``[]swarm.NetworkAttachmentConfig``: ``Target`` the network's name (p2porch's networks are named
    where Docker's are by id)."""
    return GoList(
        "[]swarm.NetworkAttachmentConfig",
        (
            go_struct(
                "swarm.NetworkAttachmentConfig",
                ("Aliases", "DriverOpts"),
                Target=str(n.get("target") or ""),
                Aliases=strings(n.get("aliases") or []),
                DriverOpts=string_map({}),
            )
            for n in spec.get("networks") or []
        ),
    )


def task_template(view: Mapping[str, Any]) -> GoStruct:
    """Docker's ``.Spec.TaskTemplate`` (``swarm.TaskSpec``) of the service ``view``."""
    spec = view["spec"]
    options = spec.get("container") or {}
    log = None
    if options.get("log_driver") or options.get("log_opts"):
        log = go_struct("*swarm.Driver", ("Options",), Name=options.get("log_driver", ""),
                        Options=string_map(dict(options.get("log_opts") or {})))  # fmt: skip
    return go_struct(
        "swarm.TaskSpec",
        ("ContainerSpec", "Resources", "RestartPolicy", "Placement", "Networks", "LogDriver", "Runtime"),
        ContainerSpec=container_spec(spec),
        Resources=_resources(spec),
        RestartPolicy=_restart_policy(spec),
        Placement=_placement(spec),
        Networks=_networks(spec),
        LogDriver=log,
        ForceUpdate=GoUint(view.get("force_update") or 0),
        Runtime="container",
    )


def update_config(view: Mapping[str, Any], key: str = "update") -> GoStruct:
    """Docker's ``.Spec.UpdateConfig`` (``key`` ``rollback``: ``.Spec.RollbackConfig``)."""
    update = view["spec"].get(key) or {}
    return go_struct(
        "*swarm.UpdateConfig",
        ("Delay", "FailureAction", "Monitor"),
        Parallelism=GoUint(update.get("parallelism", 1)),
        Delay=GoDuration.of_seconds(update.get("delay_s")),
        FailureAction=update.get("failure_action") or "pause",
        Monitor=GoDuration.of_seconds(update.get("monitor_s", 5.0)),
        MaxFailureRatio=float(update.get("max_failure_ratio") or 0),
        Order=update.get("order") or "stop-first",
    )
