"""How a service's containers look and behave: mounts, ports, health check, restart and update policy (pure).

Frozen values validated on construction, each with a ``from_dict``/parser accepting canonical keys and
CLI/Compose forms (``8080:80/tcp``, ``delay: 5s``); errors are ``ConfigError`` naming the field.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .templates import check
from .units import (
    duration_field,
    field_error,
    parse_bool,
    parse_choice,
    parse_int,
    parse_key_values,
    parse_memory_bytes,
    take_fields,
)

RESTART_CONDITIONS = ("any", "on-failure", "none")
UPDATE_ORDERS = ("stop-first", "start-first")
FAILURE_ACTIONS = ("pause", "rollback", "continue")
MOUNT_TYPES = ("bind", "volume", "tmpfs")
PROTOCOLS = ("tcp", "udp")
PUBLISH_MODES = ("ingress", "host")  # ingress: every node serves the port; host: the task's node


@dataclass(frozen=True, slots=True)
class Mount:
    """A bind mount, named (or anonymous) volume or tmpfs in the task's container."""

    type: str
    target: str
    source: str = ""
    readonly: bool = False
    volume_driver: str = ""
    volume_options: tuple[tuple[str, str], ...] = ()  # the volume driver's options (Compose driver_opts)
    propagation: str = ""  # bind mounts: rprivate, shared, slave...
    nocopy: bool = False  # volumes: do not copy the image's files into a new volume
    tmpfs_size_bytes: int = 0  # tmpfs: 0 = unlimited
    tmpfs_mode: int = 0  # tmpfs: file mode, 0 = the engine's default (1777)
    create_host_path: bool = False  # bind: create a missing source directory on the node (Compose)
    volume_labels: tuple[tuple[str, str], ...] = ()  # labels of a volume the engine creates (volume-label)
    tmpfs_options: tuple[str, ...] = ()  # tmpfs: other mount options (noexec, uid=1000), as ``--tmpfs`` takes
    subpath: str = ""  # volumes: mount this directory of the volume (Engine API 1.45+), "" = the whole volume

    def to_dict(self) -> dict[str, Any]:
        """Canonical form; the options added after the first release appear only when set."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in _MOUNT_OPTIONAL:
            if not out[key]:
                del out[key]
        for key in ("volume_options", "volume_labels"):
            if key in out:
                out[key] = dict(getattr(self, key))
        if "tmpfs_options" in out:
            out["tmpfs_options"] = list(self.tmpfs_options)
        return out


_MOUNT_OPTIONAL = (
    "volume_options",
    "propagation",
    "nocopy",
    "tmpfs_size_bytes",
    "tmpfs_mode",
    "create_host_path",
    "volume_labels",
    "tmpfs_options",
    "subpath",
)
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def _volume_name_ok(name: str, driver: str) -> bool:
    """Docker's ``local`` driver takes ``[A-Za-z0-9][A-Za-z0-9_.-]*``; a plugin driver is given the name as
    written (GlusterFS's ``volume/sub/dir``), as the engine passes it on: only control characters and
    ``:`` (which splits a ``--mount``/``-v`` entry) are refused there."""
    if driver in ("", "local"):
        return re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name) is not None
    return name.isprintable() and ":" not in name and not name.startswith("/")


# What a tmpfs takes beside size and mode, as Docker's ``--tmpfs`` passes it to mount(2): the mount flags
# Docker knows (pkg/mount's table, less bind/remount/ro/rw, which ``readonly`` says) and tmpfs's own options.
TMPFS_FLAGS = frozenset(
    (
        *("defaults", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync"),
        *("mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime"),
        *("strictatime", "nostrictatime", "private", "rprivate", "shared", "rshared", "slave", "rslave"),
        *("unbindable", "runbindable", "inode32", "inode64", "noswap"),
    )
)
TMPFS_VALUED = frozenset(("uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"))


def _tmpfs_options(value: Any, fieldname: str) -> tuple[str, ...]:
    """``["noexec", "uid=1000"]`` (or ``"noexec,uid=1000"``) -> the options, checked one by one."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
        raise field_error(fieldname, "expected a list of mount options")
    out = []
    for item in (i.strip() for i in items):
        key, sep, val = item.partition("=")
        valued = bool(sep) and key in TMPFS_VALUED and re.fullmatch(r"[A-Za-z0-9:_./-]+", val) is not None
        if valued or (not sep and key in TMPFS_FLAGS):
            out.append(item)
        elif key in ("size", "mode", "ro", "rw"):
            raise field_error(fieldname, f"{key!r} has its own field (tmpfs_size, tmpfs_mode, readonly)")
        else:
            raise field_error(fieldname, f"unknown tmpfs option {item!r}")
    return tuple(out)


def _build_mount(data: Mapping[str, Any], fieldname: str) -> Mount:
    mtype = parse_choice(data.get("type", "volume"), MOUNT_TYPES, f"{fieldname}.type")
    target = data.get("target", "")
    source = data.get("source", "") or ""
    driver = data.get("volume_driver", "") or ""
    if not isinstance(target, str) or not target.startswith("/"):
        raise field_error(f"{fieldname}.target", "must be an absolute path")
    if not isinstance(source, str) or not isinstance(driver, str):
        raise field_error(fieldname, "source and volume-driver must be strings")
    readonly = parse_bool(data.get("readonly", False), f"{fieldname}.readonly")
    if mtype == "bind" and not check(source, f"{fieldname}.source").startswith("/"):
        raise field_error(f"{fieldname}.source", "a bind mount needs an absolute source path")
    if mtype == "volume" and source and not _volume_name_ok(check(source, f"{fieldname}.source"), driver):
        raise field_error(f"{fieldname}.source", f"invalid volume name {source!r}")
    if mtype == "tmpfs" and source:
        raise field_error(f"{fieldname}.source", "a tmpfs mount has no source")
    if driver and mtype != "volume":
        raise field_error(f"{fieldname}.volume_driver", "volume-driver only applies to type=volume")
    options = parse_key_values(data.get("volume_options") or {}, fieldname=f"{fieldname}.volume_options")
    propagation = data.get("propagation", "") or ""
    if propagation and (mtype != "bind" or propagation not in _PROPAGATIONS):
        raise field_error(f"{fieldname}.propagation", f"bind mounts only, one of {', '.join(_PROPAGATIONS)}")
    nocopy = parse_bool(data.get("nocopy", False), f"{fieldname}.nocopy")
    size = data.get("tmpfs_size_bytes", 0) or 0
    size = parse_memory_bytes(size, fieldname=f"{fieldname}.tmpfs_size")
    mode = parse_int(data.get("tmpfs_mode", 0) or 0, f"{fieldname}.tmpfs_mode", maximum=0o7777)
    labels = parse_key_values(data.get("volume_labels") or {}, fieldname=f"{fieldname}.volume_labels")
    if (options or nocopy or labels) and mtype != "volume":
        raise field_error(f"{fieldname}.volume_options", "volume options only apply to type=volume")
    tmpfs_opts = _tmpfs_options(data.get("tmpfs_options") or (), f"{fieldname}.tmpfs_options")
    if (size or mode or tmpfs_opts) and mtype != "tmpfs":
        raise field_error(f"{fieldname}.tmpfs_size", "tmpfs options only apply to type=tmpfs")
    create = parse_bool(data.get("create_host_path", False), f"{fieldname}.create_host_path")
    if create and mtype != "bind":
        raise field_error(f"{fieldname}.create_host_path", "only applies to type=bind")
    subpath = _subpath(data.get("subpath") or "", mtype, source, f"{fieldname}.subpath")
    return Mount(
        *(mtype, target, source, readonly, driver, options, propagation, nocopy, size, mode, create, labels),
        tmpfs_options=tmpfs_opts,
        subpath=subpath,
    )


def _subpath(value: Any, mtype: str, source: str, fieldname: str) -> str:
    """A named volume's sub-directory to mount (Docker's ``volume-subpath``): a relative path that stays
    inside the volume, as the engine checks it (Go's ``filepath.IsLocal``: ``a/../b`` is ``b``), in its
    clean form; "" = the whole volume. An anonymous volume has none (Docker 26 refuses it at create)."""
    if not isinstance(value, str):
        raise field_error(fieldname, f"expected a string, got {type(value).__name__}")
    if not value:
        return ""
    if mtype != "volume":
        raise field_error(fieldname, "only applies to type=volume")
    clean = posixpath.normpath(value)
    if clean.startswith("/") or clean.split("/")[0] == ".." or any(ord(c) < 32 for c in value):
        raise field_error(fieldname, f"{value!r} must be a relative path inside the volume (no '..')")
    if not source:
        raise field_error(fieldname, "a subpath needs a named volume (an anonymous volume has none)")
    return "" if clean == "." else clean


_MOUNT_KEYS = {
    "type": "type",
    "source": "source",
    "src": "source",
    "target": "target",
    "destination": "target",
    "dst": "target",
    "readonly": "readonly",
    "ro": "readonly",
    "volume-driver": "volume_driver",
    "volume_driver": "volume_driver",
    "volume_options": "volume_options",
    "volume-opt": "volume_options",
    "propagation": "propagation",
    "bind-propagation": "propagation",
    "nocopy": "nocopy",
    "volume-nocopy": "nocopy",
    "tmpfs_size": "tmpfs_size_bytes",
    "tmpfs_size_bytes": "tmpfs_size_bytes",
    "tmpfs-size": "tmpfs_size_bytes",
    "tmpfs_mode": "tmpfs_mode",
    "tmpfs-mode": "tmpfs_mode",
    "create_host_path": "create_host_path",
    "bind-create-host-path": "create_host_path",
    "volume_labels": "volume_labels",
    "volume-label": "volume_labels",
    "tmpfs_options": "tmpfs_options",
    "tmpfs-option": "tmpfs_options",  # repeatable: tmpfs-option=noexec,tmpfs-option=uid=1000
    "subpath": "subpath",
    "volume-subpath": "subpath",
}


def _octal_mode(text: str, fieldname: str) -> int:
    """``tmpfs-mode=700`` as Docker's ``--mount`` reads it: octal digits only."""
    if not text or len(text) > 5 or any(c not in "01234567" for c in text):
        raise field_error(fieldname, f"{text!r} is not an octal file mode (e.g. 1777 or 700)")
    return int(text, 8)


def parse_mount(expr: str | Mapping[str, Any], *, fieldname: str = "mount") -> Mount:
    """``type=bind,source=/x,target=/y,readonly`` or ``type=volume,source=name,target=/y,volume-driver=local``
    (or the same as a dict)."""
    if isinstance(expr, Mapping):
        unknown = sorted(str(k) for k in set(expr) - set(_MOUNT_KEYS))
        if unknown:
            raise field_error(f"{fieldname}.{unknown[0]}", "unknown mount option")
        return _build_mount({_MOUNT_KEYS[k]: v for k, v in expr.items()}, fieldname)
    if not isinstance(expr, str) or not expr.strip():
        raise field_error(fieldname, "expected type=...,source=...,target=...")
    data: dict[str, Any] = {}
    for part in expr.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise field_error(fieldname, f"unknown mount option {key!r}")
        if _MOUNT_KEYS[key] in ("volume_options", "volume_labels", "tmpfs_options"):  # repeatable, one each
            data.setdefault(_MOUNT_KEYS[key], []).append(value.strip().strip('"'))
            continue
        if _MOUNT_KEYS[key] in data:
            raise field_error(fieldname, f"mount option {key!r} given twice")
        flag = key in ("readonly", "ro", "nocopy", "volume-nocopy", "bind-create-host-path")
        data[_MOUNT_KEYS[key]] = value.strip() if sep else ("true" if flag else "")
        if _MOUNT_KEYS[key] == "tmpfs_mode":  # Docker's --mount reads the mode in octal (ParseUint base 8)
            data["tmpfs_mode"] = _octal_mode(data["tmpfs_mode"], f"{fieldname}.tmpfs_mode")
    return _build_mount(data, fieldname)


@dataclass(frozen=True, slots=True)
class PortPublish:
    """A container port, optionally published: in ``ingress`` mode on every node's address (balanced over the
    service's healthy tasks), in ``host`` mode on the node running each task."""

    target: int
    published: int | None = None  # None: ingress assigns one of 30000-32767, host mode a random host port
    protocol: str = "tcp"
    host_ip: str = ""  # "" = every address of the node (host mode only)
    mode: str = "host"  # see default_publish_mode and parse_port for the defaults

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "published": self.published, "protocol": self.protocol}
        if self.host_ip:
            out["host_ip"] = self.host_ip
        if self.mode != default_publish_mode(self.published, self.host_ip):
            out["mode"] = self.mode  # absent when default: older specs keep their template hash
        return out

    @property
    def ingress(self) -> bool:
        return self.mode == "ingress"

    @property
    def dynamic(self) -> bool:
        """An ingress port without a published number: the FSM assigns one (``raft/published_ports.py``)."""
        return self.ingress and self.published is None

    def __str__(self) -> str:
        host = f"{self.published}:" if self.published is not None else ""
        ip = f"{self.host_ip}:" if self.host_ip else ""
        mode = "" if self.mode == default_publish_mode(self.published, self.host_ip) else f" ({self.mode})"
        return f"{ip}{host}{self.target}/{self.protocol}{mode}"


def default_publish_mode(published: int | None, host_ip: str) -> str:
    """The mode of a port *record* (a stored spec, an API dict) that names none: ingress (as Swarm) for a
    published port on every address; host for a bound address or no host port (what a target-only record
    meant before the swarm assigned ingress ports: a stored spec keeps its meaning and template hash)."""
    return "ingress" if published is not None and not host_ip else "host"


def written_publish_mode(host_ip: str) -> str:
    """The mode of a port *written* as text or a number (``-p 80``, ``published=8080,target=80``, Compose
    ``"80"``) that names none: ingress (as Swarm; without a published port the swarm assigns one), host
    for a bound address."""
    return "host" if host_ip else "ingress"


_PORT_KEYS = {"target", "published", "protocol", "host_ip", "mode"}


def _long_port(text: str, fieldname: str) -> dict[str, Any]:
    """``published=8080,target=80,protocol=udp,mode=host`` (docker service create's long syntax)."""
    data: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _PORT_KEYS:
            raise field_error(
                f"{fieldname}.{key or part}", "unknown port option (target, published, protocol, mode)"
            )
        if key in data:
            raise field_error(f"{fieldname}.{key}", "given twice")
        data[key] = value.strip()
    return data


def _is_ip_address(text: str) -> bool:
    """A literal IPv4 or IPv6 address (``80:80:80`` must not pass as host address ``80``: the engine
    refuses it at every container start, a task that never runs)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_port(expr: str | int | Mapping[str, Any], *, fieldname: str = "publish") -> PortPublish:
    """``8080:80/tcp``, ``8080:80``, ``53:53/udp``, ``80`` (no host port), an int, the long syntax
    ``published=8080,target=80[,protocol=udp][,mode=host]`` or a dict ``{"published": 8080, "target": 80,
    "protocol": "tcp", "mode": "ingress"}``. A published port is in ingress mode unless ``mode`` says host
    or a host address is given. Without a published port, a written form (text, a number) is ingress (the
    FSM assigns the port), a record (a mapping) is host unless it says ingress (``default_publish_mode``)."""
    written = not isinstance(expr, Mapping)
    if isinstance(expr, bool):
        raise field_error(fieldname, "expected HOST:CONTAINER[/PROTO]")
    if isinstance(expr, int):
        expr = {"target": expr}
    if isinstance(expr, str) and "=" in expr:
        expr = _long_port(expr, fieldname)
    elif isinstance(expr, str):
        text, _, proto = expr.strip().partition("/")
        host, sep, target = text.rpartition(":")
        data: dict[str, Any] = {"target": target, "protocol": proto or "tcp"}
        if sep:
            ip, ip_sep, host = host.rpartition(":")
            data["published"] = host
            if ip_sep:
                data["host_ip"] = ip.strip("[]")
        expr = data
    if not isinstance(expr, Mapping):
        raise field_error(fieldname, "expected HOST:CONTAINER[/PROTO]")
    unknown = sorted(str(k) for k in set(expr) - _PORT_KEYS)
    if unknown:
        raise field_error(f"{fieldname}.{unknown[0]}", "unknown port option")
    target_port = parse_int(expr.get("target"), f"{fieldname}.target", minimum=1, maximum=65535)
    published_raw = expr.get("published")
    published = (
        None
        if published_raw in (None, "")
        else parse_int(published_raw, f"{fieldname}.published", minimum=1, maximum=65535)
    )
    protocol = parse_choice(expr.get("protocol", "tcp"), PROTOCOLS, f"{fieldname}.protocol")
    host_ip = expr.get("host_ip") or ""
    if not isinstance(host_ip, str) or (host_ip and not _is_ip_address(host_ip)):
        raise field_error(
            f"{fieldname}.host_ip", f"invalid address {host_ip!r} (an IPv4 or IPv6 address, e.g. 127.0.0.1)"
        )
    default = written_publish_mode(host_ip) if written else default_publish_mode(published, host_ip)
    mode = parse_choice(expr.get("mode") or default, PUBLISH_MODES, f"{fieldname}.mode")
    if mode == "ingress" and host_ip:
        raise field_error(f"{fieldname}.host_ip", "only with mode=host (ingress serves every node address)")
    return PortPublish(target_port, published, protocol, host_ip, mode)


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """A container health check; ``test`` in Docker form: ``("CMD-SHELL", "curl -f ...")``, ``("NONE",)``."""

    test: tuple[str, ...]
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0
    start_interval_s: float = 0.0  # 0 = the engine's default (5s)

    def __post_init__(self) -> None:
        if not self.test or self.test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise field_error("health.cmd", "must start with CMD, CMD-SHELL or NONE")
        if self.test[0] != "NONE" and len(self.test) < 2:
            raise field_error("health.cmd", "needs a command")
        if self.interval_s <= 0:
            raise field_error("health.interval", "must be positive")
        if self.timeout_s <= 0:
            raise field_error("health.timeout", "must be positive")
        if self.retries < 1:
            raise field_error("health.retries", "must be at least 1")

    @property
    def disabled(self) -> bool:
        return self.test[0] == "NONE"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cmd": list(self.test),
            "interval_s": self.interval_s,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "start_period_s": self.start_period_s,
            **({"start_interval_s": self.start_interval_s} if self.start_interval_s else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "health") -> HealthSpec:
        keys = {
            "cmd": "cmd",
            "test": "cmd",
            "interval": "interval_s",
            "interval_s": "interval_s",
            "timeout": "timeout_s",
            "timeout_s": "timeout_s",
            "retries": "retries",
            "start_period": "start_period_s",
            "start_period_s": "start_period_s",
            "start_interval": "start_interval_s",
            "start_interval_s": "start_interval_s",
        }
        d = take_fields(data, prefix, keys)
        retries = d.get("retries")
        # checked first: a bad value is named by its own field (--health-interval), even without cmd
        interval_s = duration_field(d.get("interval_s"), prefix, 30.0)
        timeout_s = duration_field(d.get("timeout_s"), prefix, 30.0)
        tries = 3 if retries is None else parse_int(retries[1], f"{prefix}.retries", minimum=1)
        start_period_s = duration_field(d.get("start_period_s"), prefix, 0.0)
        start_interval_s = duration_field(d.get("start_interval_s"), prefix, 0.0)
        if "cmd" not in d:
            raise field_error(
                f"{prefix}.cmd",
                "a health check needs cmd (the command to run); interval, timeout, retries and start "
                "period only tune it",
            )
        cmd = d["cmd"][1]
        if isinstance(cmd, str):
            if not cmd.strip():
                raise field_error(f"{prefix}.cmd", "must not be empty")
            test: tuple[str, ...] = ("NONE",) if cmd.strip() == "NONE" else ("CMD-SHELL", cmd)
        elif isinstance(cmd, Sequence) and cmd and all(isinstance(c, str) for c in cmd):
            test = tuple(cmd) if cmd[0] in ("CMD", "CMD-SHELL", "NONE") else ("CMD", *cmd)
        else:
            raise field_error(f"{prefix}.cmd", "expected a shell command string or a list of strings")
        return cls(test, interval_s, timeout_s, tries, start_period_s, start_interval_s)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When the orchestrator replaces a task that ended: condition, back-off delay, attempt limit."""

    condition: str = "any"
    delay_s: float = 5.0
    max_delay_s: float = 300.0
    max_attempts: int = 0  # 0 = unlimited
    window_s: float = 0.0  # 0 = attempts are counted forever

    def __post_init__(self) -> None:
        parse_choice(self.condition, RESTART_CONDITIONS, "restart.condition")
        if self.max_delay_s < self.delay_s:
            raise field_error("restart.max_delay", "must be at least restart.delay")

    def backoff_s(self, previous_attempts: int) -> float:
        """Delay before restart number ``previous_attempts + 1``: delay * 2**n, capped at max_delay."""
        if self.delay_s <= 0:
            return 0.0
        return min(self.max_delay_s, self.delay_s * (2 ** min(previous_attempts, 40)))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "restart") -> RestartPolicy:
        keys = {
            "condition": "condition",
            "delay": "delay_s",
            "delay_s": "delay_s",
            "max_delay": "max_delay_s",
            "max_delay_s": "max_delay_s",
            "max_attempts": "max_attempts",
            "window": "window_s",
            "window_s": "window_s",
        }
        d = take_fields(data, prefix, keys)
        delay = duration_field(d.get("delay_s"), prefix, 5.0)
        attempts = d.get("max_attempts")
        return cls(
            condition=parse_choice(d["condition"][1], RESTART_CONDITIONS, f"{prefix}.condition")
            if "condition" in d
            else "any",
            delay_s=delay,
            max_delay_s=duration_field(d.get("max_delay_s"), prefix, max(300.0, delay)),
            max_attempts=0 if attempts is None else parse_int(attempts[1], f"{prefix}.max_attempts"),
            window_s=duration_field(d.get("window_s"), prefix, 0.0),
        )


@dataclass(frozen=True, slots=True)
class UpdateConfig:
    """How a changed task template rolls out: batch size, pause between batches, order, failure action."""

    parallelism: int = 1  # 0 = all at once
    delay_s: float = 0.0
    order: str = "stop-first"
    failure_action: str = "pause"
    monitor_s: float = 5.0
    max_failure_ratio: float = 0.0  # share of tasks that may fail during an update before failure_action

    def __post_init__(self) -> None:
        parse_choice(self.order, UPDATE_ORDERS, "update.order")
        parse_choice(self.failure_action, FAILURE_ACTIONS, "update.failure_action")
        if self.parallelism < 0:
            raise field_error("update.parallelism", "must not be negative")
        if not 0.0 <= self.max_failure_ratio <= 1.0:
            raise field_error("update.max_failure_ratio", "must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "update") -> UpdateConfig:
        keys = {
            "parallelism": "parallelism",
            "delay": "delay_s",
            "delay_s": "delay_s",
            "order": "order",
            "failure_action": "failure_action",
            "monitor": "monitor_s",
            "monitor_s": "monitor_s",
            "max_failure_ratio": "max_failure_ratio",
        }
        d = take_fields(data, prefix, keys)
        par = d.get("parallelism")
        ratio = d.get("max_failure_ratio")
        return cls(
            parallelism=1 if par is None else parse_int(par[1], f"{prefix}.parallelism"),
            delay_s=duration_field(d.get("delay_s"), prefix, 0.0),
            order=parse_choice(d["order"][1], UPDATE_ORDERS, f"{prefix}.order")
            if "order" in d
            else "stop-first",
            failure_action=parse_choice(d["failure_action"][1], FAILURE_ACTIONS, f"{prefix}.failure_action")
            if "failure_action" in d
            else "pause",
            monitor_s=duration_field(d.get("monitor_s"), prefix, 5.0),
            max_failure_ratio=0.0 if ratio is None else _parse_ratio(ratio[1], f"{prefix}.max_failure_ratio"),
        )


def _parse_ratio(value: Any, fieldname: str) -> float:
    if isinstance(value, bool):
        raise field_error(fieldname, "expected a number between 0 and 1")
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise field_error(fieldname, f"expected a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise field_error(fieldname, "must be between 0 and 1")
    return ratio
