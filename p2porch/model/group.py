"""Task groups (pods): the sidecars and init containers that run beside a task's main container (pure).

A ``GroupContainer`` is one extra container of every task of a service: a *sidecar* runs for the task's whole
life in the main container's network namespace (one address, localhost shared); an *init container* runs to
completion, in order, before the main container starts. ``parse_group_container`` accepts the CLI's CSV form
(``name=log,image=busybox,command="sh -c 'tail -F /x'"``) and plain mappings (API, spec files, Compose);
``check_group`` validates a whole group against its main container. Every error is a ``ConfigError`` naming
the field (``sidecars[0].publish[1]``). This module never does I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .container import HealthSpec, Mount, PortPublish, parse_mount, parse_port
from .container_opts import CAP_RE
from .placement import NAME_RE
from .units import (
    field_error,
    list_field,
    parse_bool,
    parse_cpu_nanos,
    parse_int,
    parse_key_values,
    parse_memory_bytes,
    str_tuple,
)

SIDECAR = "sidecars"
INIT = "init_containers"
#: the name `service logs --container` and `service ps` give the service's own container
MAIN_NAME = "main"
MAX_GROUP_CONTAINERS = 16

# An image reference as Docker's distribution/reference grammar has it (registry[:port]/path[:tag][@digest]).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"  # a name or [IPv6]
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
IMAGE_REF_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    rf"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@{_DIGEST})?$"
)


@dataclass(frozen=True, slots=True)
class GroupContainer:
    """One sidecar or init container of a task group; validated on construction (see the module docstring).

    It owns its command, environment and resources; it shares the task's mounts (its own ``mounts`` replace
    the task's at their targets), secrets, configs, network namespace and DNS settings and never publishes
    ports of its own (a sidecar's ``publish`` is served on the task's address, which the main container's
    namespace owns)."""

    name: str
    image: str
    command: tuple[str, ...] = ()  # () = the image's CMD
    entrypoint: tuple[str, ...] = ()  # () = the image's ENTRYPOINT
    env: tuple[tuple[str, str], ...] = ()  # added to the service's environment (these win)
    user: str = ""
    workdir: str = ""
    publish: tuple[PortPublish, ...] = ()  # sidecars only: ports served on the task's address
    health: HealthSpec | None = None  # sidecars only; None = the image's HEALTHCHECK
    reserve_cpu_nanos: int = 0
    reserve_memory_bytes: int = 0
    limit_cpu_nanos: int = 0
    limit_memory_bytes: int = 0
    #: this container's own mounts: each replaces the task's mount at its target (as two Compose services
    #: sharing one network namespace mount their own volumes at one path)
    mounts: tuple[Mount, ...] = ()
    privileged: bool = False  # this container's own privileged mode (Compose's privileged: root on the node)
    #: "main": a sidecar joins the main container's PID / IPC namespace (Compose's ``pid: service:X``), ""
    #: its own; the main container's IPC is made shareable for it
    pid: str = ""
    ipc: str = ""
    #: this container's own capabilities (Compose's cap_add/cap_drop: a profiler's SYS_PTRACE), added to or
    #: dropped from the engine's default set as the main container's ``container.cap_add`` are
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise field_error("name", f"{self.name!r} is not a DNS label (lowercase letters, digits, '-')")
        if self.name == MAIN_NAME:
            raise field_error("name", f"{MAIN_NAME!r} names the service's own container")
        if not isinstance(self.image, str) or not IMAGE_REF_RE.match(self.image):
            raise field_error("image", f"{self.image!r} is not an image reference (e.g. busybox:1.36)")
        if self.limit_cpu_nanos and self.limit_cpu_nanos < self.reserve_cpu_nanos:
            raise field_error("limit_cpu", "must not be below reserve_cpu")
        if self.limit_memory_bytes and self.limit_memory_bytes < self.reserve_memory_bytes:
            raise field_error("limit_memory", "must not be below reserve_memory")
        for key in ("pid", "ipc"):
            if getattr(self, key) not in ("", MAIN_NAME):
                raise field_error(key, f"expected {MAIN_NAME!r} (the main container's namespace) or nothing")
        for key in ("cap_add", "cap_drop"):
            for i, cap in enumerate(getattr(self, key)):
                if not isinstance(cap, str) or not CAP_RE.match(cap):
                    raise field_error(f"{key}[{i}]", f"invalid capability {cap!r} (e.g. NET_ADMIN or ALL)")
        targets: set[str] = set()
        for i, mount in enumerate(self.mounts):
            if mount.target in targets:
                raise field_error(f"mounts[{i}].target", f"{mount.target} mounted twice")
            targets.add(mount.target)

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain form; fields at their default are left out (short Raft bytes, stable hashes)."""
        out: dict[str, Any] = {"name": self.name, "image": self.image}
        if self.command:
            out["command"] = list(self.command)
        if self.entrypoint:
            out["entrypoint"] = list(self.entrypoint)
        if self.env:
            out["env"] = dict(self.env)
        for key in ("user", "workdir", "reserve_cpu_nanos", "reserve_memory_bytes"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ("limit_cpu_nanos", "limit_memory_bytes"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.publish:
            out["publish"] = [p.to_dict() for p in self.publish]
        if self.health is not None:
            out["health"] = self.health.to_dict()
        if self.mounts:  # absent when unused: specs without them keep their template hash
            out["mounts"] = [m.to_dict() for m in self.mounts]
        if self.privileged:  # absent when unused, as mounts
            out["privileged"] = True
        for key in ("pid", "ipc"):  # absent when unused, as mounts
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ("cap_add", "cap_drop"):  # absent when unused, as mounts
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        return out


_KEYS = {
    "name": "name",
    "image": "image",
    "command": "command",
    "args": "command",
    "entrypoint": "entrypoint",
    "env": "env",
    "environment": "env",
    "user": "user",
    "workdir": "workdir",
    "working_dir": "workdir",
    "publish": "publish",
    "ports": "publish",
    "health": "health",
    "health-cmd": "health",
    "health_cmd": "health",
    "reserve-cpu": "reserve_cpu_nanos",
    "reserve_cpu": "reserve_cpu_nanos",
    "reserve_cpu_nanos": "reserve_cpu_nanos",
    "reserve-memory": "reserve_memory_bytes",
    "reserve_memory": "reserve_memory_bytes",
    "reserve_memory_bytes": "reserve_memory_bytes",
    "limit-cpu": "limit_cpu_nanos",
    "limit_cpu": "limit_cpu_nanos",
    "limit_cpu_nanos": "limit_cpu_nanos",
    "limit-memory": "limit_memory_bytes",
    "limit_memory": "limit_memory_bytes",
    "limit_memory_bytes": "limit_memory_bytes",
    "mounts": "mounts",
    "privileged": "privileged",
    "pid": "pid",
    "ipc": "ipc",
    "cap_add": "cap_add",
    "cap-add": "cap_add",
    "cap_drop": "cap_drop",
    "cap-drop": "cap_drop",
}
_REPEATED = ("env", "publish", "cap_add", "cap_drop")  # CSV keys that may be given more than once


def _split_fields(expr: str, fieldname: str) -> list[str]:
    """Split on the commas outside single or double quotes; a value wholly in double quotes loses them."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in expr:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote:
        raise field_error(fieldname, f"unclosed {quote}")  # the value itself may hold a secret
    parts.append("".join(current))
    out = []
    for part in parts:
        key, sep, value = part.strip().partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out.append(f"{key}{sep}{value}")
    return out


def _split_csv(expr: str, fieldname: str) -> dict[str, Any]:
    """``name=log,image=busybox,env=A=1,env=B=2,command="sh -c 'x, y'"`` -> a mapping (commas inside
    quotes do not split; ``command``/``entrypoint`` are then split into words as a shell would)."""
    data: dict[str, Any] = {}
    for part in _split_fields(expr, fieldname):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _KEYS:
            raise field_error(
                f"{fieldname}.{key or part}",
                "unknown field (name, image, command, entrypoint, env, user, workdir, publish, health-cmd, "
                "reserve-/limit-cpu/memory, privileged, pid, ipc, cap-add, cap-drop)",
            )
        if _KEYS[key] in _REPEATED:
            data.setdefault(key, []).append(value)
        elif key in data:
            raise field_error(f"{fieldname}.{key}", "given twice")
        else:
            data[key] = value
    return data


def _words(value: Any, fieldname: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise field_error(fieldname, f"cannot split {value!r} into words: {exc}") from None
    return str_tuple(value, fieldname)


def _health(value: Any, fieldname: str) -> HealthSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        return HealthSpec.from_dict({"cmd": value}, fieldname)
    return HealthSpec.from_dict(value, fieldname)


def parse_group_container(expr: str | Mapping[str, Any], *, fieldname: str, kind: str) -> GroupContainer:
    """One sidecar (``kind`` = SIDECAR) or init container (INIT) from the CSV form or a mapping."""
    data = _split_csv(expr, fieldname) if isinstance(expr, str) else expr
    if not isinstance(data, Mapping):
        raise field_error(fieldname, "expected name=...,image=... or a mapping")
    kw: dict[str, Any] = {}
    for key, value in data.items():
        canonical = _KEYS.get(str(key))
        where = f"{fieldname}.{key}"
        if canonical is None:
            raise field_error(where, "unknown field")
        if canonical in kw:
            raise field_error(where, "given twice")
        if canonical in ("name", "image", "user", "workdir", "pid", "ipc"):
            if not isinstance(value, str):
                raise field_error(where, "expected a string")
            kw[canonical] = value.strip()
        elif canonical in ("command", "entrypoint"):
            kw[canonical] = _words(value, where)
        elif canonical == "env":
            kw[canonical] = parse_key_values(value, fieldname=where)
        elif canonical == "publish":
            ports = list_field(value, where)
            kw[canonical] = tuple(parse_port(p, fieldname=f"{where}[{i}]") for i, p in enumerate(ports))
        elif canonical == "health":
            kw[canonical] = _health(value, where)
        elif canonical == "mounts":
            items = list_field(value, where)
            kw[canonical] = tuple(parse_mount(m, fieldname=f"{where}[{i}]") for i, m in enumerate(items))
        elif canonical == "privileged":
            kw[canonical] = parse_bool(value, where)
        elif canonical in ("cap_add", "cap_drop"):  # as container.cap_add: upper case, NET_ADMIN or ALL
            kw[canonical] = tuple(c.upper() for c in str_tuple(value, where))
        elif canonical.endswith("_cpu_nanos"):
            kw[canonical] = (
                parse_int(value, where) if key.endswith("_nanos") else parse_cpu_nanos(value, fieldname=where)
            )
        else:
            kw[canonical] = (
                parse_int(value, where)
                if key.endswith("_bytes")
                else parse_memory_bytes(value, fieldname=where)
            )
    for required in ("name", "image"):
        if not kw.get(required):
            raise field_error(f"{fieldname}.{required}", "is required")
    if kind == INIT and (kw.get("publish") or kw.get("health")):
        extra = "publish" if kw.get("publish") else "health"
        raise field_error(f"{fieldname}.{extra}", "an init container runs to completion: no ports, no health")
    if kind == INIT and (kw.get("pid") or kw.get("ipc")):
        extra = "pid" if kw.get("pid") else "ipc"
        raise field_error(f"{fieldname}.{extra}", "an init container runs before the main container exists")
    try:
        return GroupContainer(**kw)
    except Exception as exc:  # re-raised with the container's position in the field name
        field = getattr(exc, "field", None)
        if field is None:
            raise
        message = str(getattr(exc, "message", exc)).removeprefix(f"{field}: ")
        raise field_error(f"{fieldname}.{field}", message) from None


def parse_group(value: Any, key: str, kind: str) -> tuple[GroupContainer, ...]:
    """A list of sidecars or init containers (each a CSV string or a mapping)."""
    if value is None:
        return ()
    items = list_field(value, key)
    if len(items) > MAX_GROUP_CONTAINERS:
        raise field_error(key, f"at most {MAX_GROUP_CONTAINERS} containers")
    return tuple(parse_group_container(v, fieldname=f"{key}[{i}]", kind=kind) for i, v in enumerate(items))


def check_group(
    main_publish: Sequence[PortPublish],
    sidecars: Sequence[GroupContainer],
    init_containers: Sequence[GroupContainer],
    main_ipc: str = "",
) -> None:
    """A group's containers have distinct names, no two long-running containers claim the same port
    (one network namespace: one listener per port, one owner per published port), and none joins an IPC
    namespace the main container (IPC mode ``main_ipc``) does not share."""
    names: dict[str, str] = {}
    for kind, members in ((SIDECAR, sidecars), (INIT, init_containers)):
        for i, member in enumerate(members):
            if member.name in names:
                raise field_error(
                    f"{kind}[{i}].name", f"{member.name!r} is already the name of {names[member.name]}"
                )
            names[member.name] = f"{kind}[{i}]"
            if kind == INIT and (member.publish or member.health is not None):
                raise field_error(f"{kind}[{i}].publish", "an init container runs to completion: no ports")
            if kind == INIT and (member.pid or member.ipc):
                raise field_error(
                    f"{kind}[{i}].pid", "an init container runs before the main container exists"
                )
            if member.ipc and main_ipc in ("private", "none"):
                raise field_error(
                    f"{kind}[{i}].ipc",
                    f"the main container's IPC namespace is not shareable (ipc {main_ipc})",
                )
    owners: dict[tuple[str, int], str] = {}
    published: dict[tuple[str, int], str] = {}
    claims: Iterable[tuple[str, Sequence[PortPublish]]] = [
        ("the main container", main_publish),
        *((f"sidecar {s.name!r}", s.publish) for s in sidecars),
    ]
    for index, (owner, ports) in enumerate(claims):
        for j, port in enumerate(ports):
            where = f"{SIDECAR}[{index - 1}].publish[{j}]"
            target = (port.protocol, port.target)
            if target in owners and owners[target] != owner:
                raise field_error(
                    where,
                    f"container port {port.target}/{port.protocol} is already {owners[target]}'s"
                    " (one network namespace)",
                )
            owners.setdefault(target, owner)
            if port.published is None:
                continue
            host = (port.protocol, port.published)
            if host in published and index > 0:
                raise field_error(
                    where, f"port {port.published}/{port.protocol} is already published by {published[host]}"
                )
            published.setdefault(host, owner)


def group_reservation(
    main_cpu: int,
    main_memory: int,
    sidecars: Sequence[GroupContainer],
    init_containers: Sequence[GroupContainer],
) -> tuple[int, int]:
    """``(cpu_nanos, memory_bytes)`` a node must have free for one task: the long-running containers run
    together (their reservations add up); init containers run one at a time before them (the largest counts),
    as Kubernetes computes a pod's effective request."""
    cpu = main_cpu + sum(s.reserve_cpu_nanos for s in sidecars)
    memory = main_memory + sum(s.reserve_memory_bytes for s in sidecars)
    cpu = max([cpu, *(i.reserve_cpu_nanos for i in init_containers)])
    memory = max([memory, *(i.reserve_memory_bytes for i in init_containers)])
    return cpu, memory
