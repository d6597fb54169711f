"""One resolved Compose service -> a canonical ServiceSpec dict, collecting every problem (pure).

Owns the per-key mapping of ``services.<name>`` (docs/stack.md has the table): each key is handled on
its own so one run reports every bad key; ignored keys are reported once through ``ignored``. The spec is
validated by ``ServiceSpec.from_dict`` (the one entry point of the spec model) and its errors are
renamed to the Compose path. ``env_file`` contents come through the caller's ``read_file``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..model import ServiceSpec
from ..model.container_opts import ContainerOptions
from ..model.group import IMAGE_REF_RE
from ..model.spec import check_endpoint_ports
from . import deploy as deploy_keys
from . import keys
from .engine_keys import devices_pids_pull, namespaces
from .env_templates import service_env
from .environment import env_files, environment, label_files
from .groups import ignored_network_mode, network_mode
from .implied import INACTIVE
from .names import RESERVED_LABEL_PREFIX, service_name, stack_labels
from .networks import (
    DEFAULT_KEY,
    HOST_NETWORK_NOTE,
    StackNetwork,
    default_network,
    exposed_on_host,
    host_networking,
    on_host_network,
    service_attachments,
)
from .ports_volumes import TopVolume, ports, tmpfs_mounts, volume
from .problems import Problems
from .resolve import ReadFile
from .values import (
    any_mapping,
    boolean,
    err,
    key_values,
    list_,
    mapping,
    scalar_text,
    string,
    string_list,
    words,
)

# ServiceSpec field (first segment of a ConfigError field) -> where it comes from in a Compose service
_COMPOSE_PATH_OF_FIELD = {
    "autoscale": "x-p2porch-autoscale",
    "image": "image",
    "entrypoint": "entrypoint",
    "command": "command",
    "user": "user",
    "workdir": "working_dir",
    "env": "environment",
    "labels": "labels",
    "mode": "deploy.mode",
    "replicas": "deploy.replicas",
    "constraints": "deploy.placement.constraints",
    "placement_preferences": "deploy.placement.preferences",
    "placement_prefs": "deploy.placement.preferences",
    "max_replicas_per_node": "deploy.placement.max_replicas_per_node",
    "reserve_cpu": "deploy.resources.reservations.cpus",
    "reserve_memory": "deploy.resources.reservations.memory",
    "limit_cpu": "deploy.resources.limits.cpus",
    "limit_memory": "deploy.resources.limits.memory",
    "mounts": "volumes",
    "publish": "ports",
    "health": "healthcheck",
    "restart": "deploy.restart_policy",
    "update": "deploy.update_config",
    "rollback": "deploy.rollback_config",
    "stop_grace_period": "stop_grace_period",
    "stop_grace_period_s": "stop_grace_period",
    "secrets": "secrets",  # the spec keeps the Compose list's order: secrets[i] is the service's i-th
    "configs": "configs",
    "service_labels": "deploy.labels",
    "endpoint_mode": "deploy.endpoint_mode",
    "max_concurrent": "deploy.x-p2porch.max_concurrent",
    "schedule": "deploy.x-p2porch.schedule",
    "sidecars": "x-p2porch-sidecars",
    "init_containers": "x-p2porch-init-containers",
    "on_site_loss": "deploy.x-p2porch.on_site_loss",
}
_CONTAINER_KEYS = {
    "shm_size_bytes": "shm_size",
    "log_driver": "logging.driver",
    "log_opts": "logging.options",
    "dns_options": "dns_opt",
    "groups": "group_add",
    "memswap_limit_bytes": "memswap_limit",
    "pid_mode": "pid",
    "ipc_mode": "ipc",
    "uts_mode": "uts",
}
_EXPOSE_RE = re.compile(r"^[0-9]{1,5}(?:-[0-9]{1,5})?(?:/(?:tcp|udp|sctp))?$")
_DIRECT_CONTAINER_KEYS = (
    "hostname", "init", "cap_add", "cap_drop", "extra_hosts", "ulimits", "shm_size",
    "read_only", "security_opt", "stop_signal", "pids_limit", "memswap_limit", "mem_swappiness", "privileged",
)  # fmt: skip


def compose_field(
    service_path: str, fieldname: str | None, came_from: Mapping[str, str] | None = None
) -> str:
    """Translate a ServiceSpec error field (``update.order``, ``publish[1]``) to a Compose path;
    ``came_from``: fields this service set from another key than the usual one (``mem_limit``)."""
    if not fieldname:
        return service_path
    if fieldname.startswith("services."):
        return fieldname
    if fieldname.startswith("container."):
        rest = fieldname[len("container.") :]
        head, sep, tail = rest.partition(".")
        return f"{service_path}.{_CONTAINER_KEYS.get(head, head)}{sep}{tail}"
    m = re.match(r"^([a-z_]+)(.*)$", fieldname)
    if m is not None and came_from and m.group(1) in came_from:
        return f"{service_path}.{came_from[m.group(1)]}{m.group(2)}"
    if m is None or m.group(1) not in _COMPOSE_PATH_OF_FIELD:
        return service_path
    rest = m.group(2)
    if m.group(1) in ("health", "restart", "update", "rollback") and rest.startswith("."):
        rest = rest.removesuffix("_s")
        if m.group(1) == "health":
            rest = rest.replace(".cmd", ".test")
    return f"{service_path}.{_COMPOSE_PATH_OF_FIELD[m.group(1)]}{rest}"


@dataclass
class StackContext:
    """What every service of a stack is mapped against."""

    stack: str
    volumes: Mapping[str, TopVolume]
    networks: Mapping[str, StackNetwork]
    secrets: set[str]
    configs: set[str]
    services: set[str]  # every service of the model (after profiles)
    skipped: set[str]  # services not deployed: dropped by inactive profiles, provider services
    environ: Mapping[str, str]
    read_file: ReadFile | None
    problems: Problems
    inactive: set[str] = field(default_factory=set)  # services dropped by inactive profiles
    env_files_read: list[str] = field(default_factory=list)
    #: "secrets"|"configs" -> the top-level keys services use
    uses_secrets: dict[str, list[str]] = field(default_factory=dict)
    object_names: dict[str, str] = field(default_factory=dict)  # "secrets:key" -> cluster name
    #: (verb, key, reason) -> services it applies to, for one warning line per key
    notices: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    used_networks: list[str] = field(default_factory=list)  # network keys services attach to, first use first
    #: ``network_mode: service:X``: short name -> X (folded into X's task group by ``groups.fold_groups``)
    shares: dict[str, str] = field(default_factory=dict)
    #: short name -> its ``env_file`` values under its ``environment`` (None: a key the CLI leaves unset),
    #: what ``stack config`` prints in place of both, as ``docker compose config`` does
    environments: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: short name -> its ``label_file`` labels under its ``labels``, what ``stack config`` prints for both
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    refused_networks: set[str] = field(default_factory=set)  # declared, refused (the error already said)

    def network(self, key: str) -> StackNetwork:
        """The cluster network of Compose network ``key`` (``default`` may be implicit)."""
        if key == DEFAULT_KEY:
            return default_network(self.stack, self.networks)
        return self.networks[key]

    def ignored(self, key: str, short: str, reason: str) -> None:
        """``key`` of service ``short`` is accepted and ignored, for ``reason``."""
        users = self.notices.setdefault(("ignoring", key, reason), [])
        if short not in users:
            users.append(short)

    def note(self, key: str, short: str, text: str) -> None:
        """``key`` of service ``short`` is applied with a difference the user should know."""
        users = self.notices.setdefault(("", key, text), [])
        if short not in users:
            users.append(short)

    def flush_notices(self) -> None:
        """One warning line per key, naming the services it concerns."""
        for (verb, key, reason), users in self.notices.items():
            label = "service" if len(users) == 1 else "services"
            head = f"{verb} {key}" if verb else key
            self.problems.warn(f"{head} ({label} {', '.join(users)}): {reason}")
        self.notices.clear()


@dataclass(frozen=True)
class Dependency:
    """``depends_on`` entry of a service."""

    service: str
    condition: str = "service_started"
    required: bool = True


def _labels(value: Any, path: str) -> dict[str, str]:
    labels = key_values(value, path)
    for key in labels:
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise err(f"{path}.{key}", f"label keys starting with {RESERVED_LABEL_PREFIX!r} are reserved")
    return labels


def _depends_on(value: Any, path: str, ctx: StackContext, short: str) -> list[Dependency]:
    entries: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        entries = list(value.items())
    else:
        entries = [(string(n, f"{path}[{i}]"), None) for i, n in enumerate(list_(value, path))]
    out = []
    for name, conf in entries:
        where = f"{path}.{name}"
        conf = {} if conf is None else mapping(conf, where, keys.DEPENDS_KEYS)
        condition = conf.get("condition", "service_started")
        if condition not in keys.DEPENDS_CONDITIONS:
            raise err(f"{where}.condition", f"must be one of {', '.join(keys.DEPENDS_CONDITIONS)}")
        required = boolean(conf.get("required", True), f"{where}.required")
        if "restart" in conf:
            ctx.ignored(
                "depends_on restart", short, "dependents are not restarted when a dependency restarts"
            )
        if name == short:
            raise err(where, "a service cannot depend on itself")
        if name not in ctx.services:
            if name in ctx.inactive and required:  # as Compose's "depends on undefined service"
                raise err(where, f"service {name!r} {INACTIVE}, or set required: false")
            if name in ctx.skipped or not required:
                ctx.problems.warn(
                    f"{path}: {name!r} is not deployed (profile not active, a provider service, or not "
                    "required): not waited for"
                )
                continue
            raise err(where, f"service {name!r} is not defined")
        out.append(Dependency(name, condition, required))
    return out


def _file_refs(value: Any, path: str, declared: set[str], section: str) -> list[tuple[str, dict[str, Any]]]:
    """(top-level key, reference map with the Compose key as source) of each entry."""
    out = []
    for i, item in enumerate(list_(value, path)):
        where = f"{path}[{i}]"
        if isinstance(item, Mapping):
            conf = mapping(item, where, keys.SERVICE_FILE_REF_KEYS)
            if "source" not in conf:
                raise err(f"{where}.source", "is required")
            name = string(conf["source"], f"{where}.source")
            if "target" in conf:
                string(conf["target"], f"{where}.target")
            for key in ("uid", "gid"):
                if key in conf:
                    scalar_text(conf[key], f"{where}.{key}")
            if "mode" in conf and (isinstance(conf["mode"], bool) or not isinstance(conf["mode"], int | str)):
                raise err(f"{where}.mode", "expected a file mode such as 0440")
            ref = dict(conf)
            if isinstance(ref.get("mode"), int):  # YAML 0440 is already a number; "0440" is octal text
                ref["mode"] = oct(ref["mode"])[2:]
        else:
            name = string(item, where)
            ref = {"source": name}
        if name not in declared:
            raise err(where, f"{section[:-1]} {name!r} is not declared in the top-level {section}")
        out.append((name, ref))
    return out


def _expose(value: Any, path: str) -> None:
    for i, item in enumerate(list_(value, path)):
        text = scalar_text(item, f"{path}[{i}]")
        if not _EXPOSE_RE.match(text):
            raise err(f"{path}[{i}]", f"invalid port {text!r} (PORT[-PORT][/PROTO])")


def _logging(value: Any, path: str, container: dict[str, Any]) -> None:
    conf = mapping(value, path, keys.LOGGING_KEYS)
    if conf.get("driver") is not None:
        container["log_driver"] = string(conf["driver"], f"{path}.driver")
    options = conf.get("options")
    if options:
        opts = any_mapping(options, f"{path}.options")
        container["log_opts"] = {  # an option without a value is not set, as in Compose
            k: scalar_text(v, f"{path}.options.{k}") for k, v in opts.items() if v is not None
        }  # without a driver: the node engine's default driver takes them, as in Compose and Swarm


def _entries(conf: Mapping[str, Any], key: str, path: str, problems: Problems) -> list[Any]:
    value = conf.get(key)
    if value is None:
        return []
    with problems.check():
        return list_(value, f"{path}.{key}")
    return []


def map_service(ctx: StackContext, short: str, conf: Any) -> tuple[dict[str, Any] | None, list[Dependency]]:
    """The canonical spec dict of one service (None when it has errors) and its dependencies."""
    path = f"services.{short}"
    problems = ctx.problems
    before = len(problems.errors)
    try:
        name = service_name(ctx.stack, short, fieldname=path)
        conf = mapping(conf if conf is not None else {}, path, (*keys.SERVICE_MAPPED, *keys.SERVICE_IGNORED))
    except ConfigError as exc:
        problems.add(exc)
        return None, []
    for key, reason in keys.SERVICE_IGNORED.items():
        if key in conf:
            ctx.ignored(key, short, reason)
    spec: dict[str, Any] = {"name": name}
    container: dict[str, Any] = {}
    deps: list[Dependency] = []

    def warn(key: str, reason: str) -> None:
        ctx.note(key, short, reason)

    with problems.check():
        if "image" in conf:
            spec["image"] = string(conf["image"], f"{path}.image")
            if not IMAGE_REF_RE.match(spec["image"]):  # Docker would refuse it on every node
                raise err(
                    f"{path}.image",
                    f"{spec['image']!r} is not an image reference (e.g. nginx:1.27, ghcr.io/org/app:tag)",
                )
            if "build" in conf:
                ctx.ignored(
                    "build", short, "images are never built on deploy: the image named in image: is pulled"
                )
        elif "build" in conf:
            raise err(
                f"{path}.build",
                "building images is not supported: build and push the image, then name it in image:",
            )
        else:
            raise err(f"{path}.image", "is required")
    for key in ("command", "entrypoint"):
        if key in conf:
            with problems.check():
                spec[key] = words(conf[key], f"{path}.{key}")
    if conf.get("entrypoint") is not None and not spec.get("entrypoint"):
        spec["entrypoint"] = [""]  # "" or []: the image's ENTRYPOINT is cleared (Docker's --entrypoint "")
    env: dict[str, str | None] = {}
    with problems.check():
        if "env_file" in conf:
            env.update(env_files(conf["env_file"], f"{path}.env_file", ctx))
    with problems.check():
        if "environment" in conf:  # wins over the files; an unset `- KEY` unsets a file's KEY (compose-go)
            env.update(environment(conf["environment"], f"{path}.environment", ctx.environ))
    ctx.environments[short] = env
    spec["env"] = service_env(env, path, problems)
    labels: dict[str, str] = {}
    with problems.check():
        if conf.get("label_file") is not None:  # labels: wins over the files, as in Compose
            labels = _labels(label_files(conf["label_file"], f"{path}.label_file", ctx), f"{path}.label_file")
    with problems.check():
        if conf.get("labels") is not None:
            labels.update(_labels(conf["labels"], f"{path}.labels"))
    ctx.labels[short] = labels
    spec["labels"] = {**labels, **stack_labels(ctx.stack, short)}
    publish: list[dict[str, Any]] = []
    for i, item in enumerate(_entries(conf, "ports", path, problems)):
        with problems.check():
            publish.extend(ports(item, f"{path}.ports[{i}]", warn))
    if publish:
        spec["publish"] = publish
    mounts: list[dict[str, Any]] = []
    for i, item in enumerate(_entries(conf, "volumes", path, problems)):
        with problems.check():
            mounts.append(volume(item, f"{path}.volumes[{i}]", ctx.volumes, warn))
    with problems.check():
        if conf.get("tmpfs"):
            mounts.extend(tmpfs_mounts(conf["tmpfs"], f"{path}.tmpfs"))
    if mounts:
        spec["mounts"] = mounts
    with problems.check():
        if conf.get("healthcheck") is not None:
            health = deploy_keys.healthcheck(conf["healthcheck"], f"{path}.healthcheck", warn)
            if health is not None:
                spec["health"] = health
    host_net = host_networking(conf, ctx.networks)  # the node's network namespace: no stack network
    if host_net:
        with problems.check():  # bound on the node
            spec["publish"] = spec.get("publish", []) + exposed_on_host(conf.get("expose"), f"{path}.expose")
        on_host_network(spec, lambda key, text: ctx.note(key, short, text))
        ctx.note("host network", short, HOST_NETWORK_NOTE)
    with problems.check():
        attachments = (
            []
            if host_net
            else service_attachments(
                conf.get("networks") or [DEFAULT_KEY],
                f"{path}.networks",
                ctx.networks,
                lambda key, reason: ctx.ignored(key, short, reason),
                ctx.refused_networks,
            )
        )
        spec["networks"] = spec.get("networks") or [
            {"target": ctx.network(k).name, "aliases": aliases} for k, aliases in attachments
        ]
        ctx.used_networks.extend(k for k, _ in attachments if k not in ctx.used_networks)
    with problems.check():
        if "user" in conf:
            spec["user"] = scalar_text(conf["user"], f"{path}.user")
    with problems.check():
        if "working_dir" in conf:
            spec["workdir"] = string(conf["working_dir"], f"{path}.working_dir")
    deploy_keys.stop_grace_period(conf, path, spec)
    with problems.check():
        if conf.get("deploy") is not None:
            deploy_keys.deploy(conf["deploy"], f"{path}.deploy", spec, warn)
    if host_net and spec.get("endpoint_mode") == "vip":  # Swarm takes it and allocates no virtual address
        ctx.note("deploy.endpoint_mode", short, "a task on the host network has no virtual address: dnsrr")
        spec["endpoint_mode"] = "dnsrr"
    with problems.check():
        if "restart" in conf and "restart" not in spec:
            spec["restart"] = deploy_keys.restart(conf["restart"], f"{path}.restart")
    with problems.check():
        deploy_keys.distinct_duplicates(conf, path)
    came_from: dict[str, str] = {}  # spec field -> the service-level key it came from (named in errors)
    for key, target in (
        ("cpus", "limit_cpu"),
        ("mem_limit", "limit_memory"),
        ("mem_reservation", "reserve_memory"),
    ):
        if key in conf and target not in spec:
            spec[target] = conf[key]
            came_from[target] = key
    if "scale" in conf and "replicas" not in spec:
        spec["replicas"] = conf["scale"]
        came_from["replicas"] = "scale"
    if conf.get("x-p2porch-autoscale") is not None:  # Compose has no key for it (issue 17)
        spec["autoscale"] = conf["x-p2porch-autoscale"]
    for key, target in (("x-p2porch-sidecars", "sidecars"), ("x-p2porch-init-containers", "init_containers")):
        if conf.get(key) is not None:  # a task group's containers where Compose has no key (issue 21)
            spec[target] = conf[key]
    with problems.check():
        if conf.get("network_mode") is not None:
            shared = network_mode(conf["network_mode"], f"{path}.network_mode")
            if shared and conf.get("networks"):  # compose-go refuses them together (checkConsistency)
                raise err(
                    f"{path}.networks",
                    f"cannot be combined with network_mode: service:{shared} (the service runs in "
                    f"{shared}'s task, on its networks; Compose refuses the two together)",
                )
            if shared:
                ctx.shares[short] = shared
            elif not host_net:
                key, reason = ignored_network_mode(conf["network_mode"])
                ctx.ignored(key, short, reason)
    with problems.check():
        if conf.get("depends_on") is not None:
            deps = _depends_on(conf["depends_on"], f"{path}.depends_on", ctx, short)
    with problems.check():
        if conf.get("logging") is not None:
            _logging(conf["logging"], f"{path}.logging", container)
    with problems.check():
        if conf.get("expose") is not None:
            _expose(conf["expose"], f"{path}.expose")
    with problems.check():
        if conf.get("profiles") is not None:
            string_list(conf["profiles"], f"{path}.profiles")
    if "container_name" in conf and not host_net:  # the host network's note says it has no name there
        ctx.note(
            "container_name",
            short,
            "task containers are named by p2porch; the name resolves to the service (a network "
            "alias), as Docker's DNS answers a Compose container's name",
        )
    for section, declared in (("secrets", ctx.secrets), ("configs", ctx.configs)):
        if conf.get(section):
            with problems.check():
                refs = _file_refs(conf[section], f"{path}.{section}", declared, section)
                spec[section] = [  # the default target is the Compose key, not the cluster name
                    {
                        "target": key if section == "secrets" else "/" + key,
                        **ref,
                        "source": ctx.object_names.get(f"{section}:{key}", key),
                    }
                    for key, ref in refs
                ]
                ctx.uses_secrets.setdefault(section, []).extend(key for key, _ in refs)
    for key in _DIRECT_CONTAINER_KEYS:
        if conf.get(key) is not None:
            container[key] = conf[key]
    if conf.get("sysctls") is not None:  # values as compose-go writes them (1e+06, not 1000000.0)
        container["sysctls"] = key_values(conf["sysctls"], f"{path}.sysctls")
    if conf.get("dns_opt"):  # resolv.conf options beside the cluster DNS (HostConfig.DnsOptions)
        container["dns_options"] = conf["dns_opt"]
    if conf.get("group_add"):  # names or numbers (the schema allows both), as HostConfig.GroupAdd
        groups = conf["group_add"]
        container["groups"] = (
            [str(g) if isinstance(g, int) and not isinstance(g, bool) else g for g in groups]
            if isinstance(groups, list)
            else groups
        )
    with problems.check():
        devices_pids_pull(conf, path, container, lambda key, why: ctx.ignored(key, short, why))
    with problems.check():
        namespaces(conf, path, container, lambda key, why: ctx.ignored(key, short, why))
    if container:
        spec["container"] = container
        try:
            ContainerOptions.from_dict(container)
        except ConfigError as exc:
            problems.error(compose_field(path, exc.field), exc.message.removeprefix(f"{exc.field}: "))
    if len(problems.errors) > before:
        return None, deps
    try:
        result = check_endpoint_ports(ServiceSpec.from_dict(spec)).to_dict()
        on_host = [p for p in result["publish"] if p["published"] is not None and p.get("mode") == "host"]
        if on_host and result["mode"] == "replicated" and result["replicas"] > 1:
            ctx.note(
                "host-mode ports with several replicas",
                short,
                "a mode=host port is bound on the node running each task: at most one task per node can "
                "run, the others stay pending until there are enough nodes (ingress ports have no limit)",
            )
        return result, deps
    except ConfigError as exc:  # from ServiceSpec.from_dict
        where = compose_field(path, exc.field, came_from)
        message = exc.message
        if exc.field and message.startswith(f"{exc.field}: "):
            message = message[len(exc.field) + 2 :]
        problems.error(where, message)
        return None, deps
