"""Service spec model and the CLI-style parsers shared by the CLI and the Compose loader (pure).

``ServiceSpec`` owns the validated, normalised description of one service: every value is typed and in
base units (nano CPUs, bytes, seconds). ``ServiceSpec.from_dict`` accepts both the canonical keys written by
``to_dict`` and human forms (``reserve_memory="512M"``, ``delay="5s"``, ``"8080:80/tcp"``); every error is a
``ConfigError`` whose ``field`` names the offending key (``constraints[1]``, ``update.order``). This module
never does I/O and never looks at cluster state.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import ConfigError
from .container_opts import ContainerOptions
from .filerefs import FileRef, parse_file_refs

NANOS_PER_CPU = 1_000_000_000
MODES = ("replicated", "global")
STRATEGIES = ("spread", "binpack")
ROLES = ("voter", "replica")
RESTART_CONDITIONS = ("any", "on-failure", "none")
UPDATE_ORDERS = ("stop-first", "start-first")
FAILURE_ACTIONS = ("pause", "rollback", "continue")
MOUNT_TYPES = ("bind", "volume", "tmpfs")
PROTOCOLS = ("tcp", "udp")
ENDPOINT_MODES = ("vip", "dnsrr")
INGRESS_POLICIES = ("cluster", "local")  # as Kubernetes' externalTrafficPolicy
PUBLISH_MODES = ("ingress", "host")  # ingress: every node serves the port; host: the task's node
#: names that would collide with DNS names the cluster answers (``tasks.web.p2p``, ``n1.node.p2p``)
RESERVED_NAMES = ("tasks", "node")
MAX_REPLICAS = 1_000_000

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$")
_ENV_KEY_RE = re.compile(r"^[^=\s]+$")
_NODE_ATTRS = ("node.id", "node.name", "node.hostname", "node.role")


def _err(fieldname: str, message: str) -> ConfigError:
    return ConfigError(f"{fieldname}: {message}", field=fieldname)


# --------------------------------------------------------------------------------------------- units


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_memory_bytes(value: str | int, *, fieldname: str = "memory") -> int:
    """``512M``, ``1G``, ``1.5GiB``, ``100k``, ``1024`` or an int -> bytes (all units binary, like Docker)."""
    if isinstance(value, bool):
        raise _err(fieldname, "expected a size such as 512M")
    if isinstance(value, int):
        if value < 0:
            raise _err(fieldname, "must not be negative")
        return value
    if not isinstance(value, str):
        raise _err(fieldname, f"expected a size such as 512M, got {type(value).__name__}")
    m = _SIZE_RE.match(value)
    if m is None or m.group(2).lower() not in _SIZE_UNITS:
        raise _err(fieldname, f"invalid size {value!r} (use e.g. 512M, 1G, 1.5GiB or bytes)")
    return int(Decimal(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def format_bytes(n: int) -> str:
    """Short human form used in explanations: 536870912 -> '512MiB', 1536 -> '1.5KiB'."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            text = f"{n / size:.2f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{n}B"


def parse_cpu_nanos(value: str | float | int, *, fieldname: str = "cpu") -> int:
    """CPUs as a decimal (``1.5``, ``"0.25"``) -> nano CPUs (1.5 -> 1_500_000_000)."""
    if isinstance(value, bool):
        raise _err(fieldname, "expected a number of CPUs such as 0.5")
    try:
        dec = Decimal(str(value).strip()) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        dec = None
    if dec is None or not dec.is_finite():
        raise _err(fieldname, f"invalid number of CPUs {value!r}")
    if dec < 0:
        raise _err(fieldname, "must not be negative")
    return int((dec * NANOS_PER_CPU).to_integral_value())


def format_cpus(nanos: int) -> str:
    """1_500_000_000 -> '1.5 CPUs'."""
    text = f"{nanos / NANOS_PER_CPU:.3f}".rstrip("0").rstrip(".")
    return f"{text} CPU" + ("" if text == "1" else "s")


_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration_s(value: str | float | int, *, fieldname: str = "duration") -> float:
    """Go-style durations (``30s``, ``1m30s``, ``500ms``, ``2h``) or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise _err(fieldname, "expected a duration such as 5s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DUR_PART_RE.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _DUR_UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise _err(fieldname, f"invalid duration {value!r} (use e.g. 500ms, 5s, 1m30s)") from None
    else:
        raise _err(fieldname, f"expected a duration such as 5s, got {type(value).__name__}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise _err(fieldname, "duration must be finite")
    if seconds < 0:
        raise _err(fieldname, "must not be negative")
    return seconds


def _parse_int(value: Any, fieldname: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise _err(fieldname, "expected an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _err(fieldname, f"expected an integer, got {value!r}") from None
    if not isinstance(value, int):
        raise _err(fieldname, f"expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise _err(fieldname, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _err(fieldname, f"must be at most {maximum}")
    return value


def _parse_bool(value: Any, fieldname: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", ""):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    raise _err(fieldname, f"expected true or false, got {value!r}")


def _choice(value: Any, choices: Sequence[str], fieldname: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _err(fieldname, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


# ------------------------------------------------------------------------------ placement expressions


def _check_node_attribute(attr: str, fieldname: str) -> None:
    if attr in _NODE_ATTRS:
        return
    if attr.startswith("node.labels."):
        key = attr[len("node.labels.") :]
        if _LABEL_KEY_RE.match(key):
            return
        raise _err(fieldname, f"invalid label key {key!r}")
    raise _err(
        fieldname,
        f"unknown attribute {attr!r} (use node.labels.KEY, node.name, node.id, node.hostname, node.role)",
    )


@dataclass(frozen=True, slots=True)
class Constraint:
    """A hard placement rule on one node attribute: ``node.labels.ssd==true``, ``node.name!=n2``."""

    attribute: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.attribute}{self.op}{self.value}"


def parse_constraint(expr: str, *, fieldname: str = "constraint") -> Constraint:
    """Parse ``ATTR==VALUE`` or ``ATTR!=VALUE`` (ATTR: node.labels.KEY, node.name, node.id, node.hostname,
    node.role with values voter|replica)."""
    if not isinstance(expr, str):
        raise _err(fieldname, f"expected a string such as node.labels.ssd==true, got {type(expr).__name__}")
    for op in ("==", "!="):
        if op in expr:
            attr, _, value = expr.partition(op)
            attr, value = attr.strip(), value.strip()
            break
    else:
        raise _err(fieldname, f"{expr!r} has no == or != operator")
    _check_node_attribute(attr, fieldname)
    if not value or "==" in value or "!=" in value:
        raise _err(fieldname, f"{expr!r} needs one non-empty value")
    if attr == "node.role" and value not in ROLES:
        raise _err(fieldname, f"node.role is voter or replica (got {value!r})")
    return Constraint(attr, op, value)


@dataclass(frozen=True, slots=True)
class PlacementPreference:
    """Spread tasks evenly over the values of one node attribute (``spread=node.labels.zone``)."""

    attribute: str

    def __str__(self) -> str:
        return f"spread={self.attribute}"


def parse_placement_pref(expr: str, *, fieldname: str = "placement_pref") -> PlacementPreference:
    """Parse ``spread=node.labels.KEY`` (or another node attribute)."""
    if not isinstance(expr, str):
        raise _err(fieldname, f"expected spread=node.labels.KEY, got {type(expr).__name__}")
    kind, sep, attr = expr.partition("=")
    if not sep or kind.strip() != "spread":
        raise _err(fieldname, f"{expr!r}: only spread=ATTRIBUTE is supported")
    attr = attr.strip()
    _check_node_attribute(attr, fieldname)
    return PlacementPreference(attr)


@dataclass(frozen=True, slots=True)
class Affinity:
    """Co-location rule against another service's tasks.

    ``affinity=service==db``: only nodes already running a task of ``db``.
    ``anti-affinity=service==web``: only nodes running no task of ``web`` (on itself: one task per node).
    """

    kind: str  # "affinity" | "anti-affinity"
    service: str

    def __str__(self) -> str:
        return f"{self.kind}=service=={self.service}"


def parse_affinity(expr: str, *, fieldname: str = "affinity") -> Affinity:
    """Parse ``affinity=service==NAME`` or ``anti-affinity=service==NAME``."""
    if not isinstance(expr, str):
        raise _err(fieldname, f"expected affinity=service==NAME, got {type(expr).__name__}")
    kind, sep, rest = expr.partition("=")
    kind = kind.strip()
    if not sep or kind not in ("affinity", "anti-affinity"):
        raise _err(fieldname, f"{expr!r}: use affinity=service==NAME or anti-affinity=service==NAME")
    attr, sep, name = rest.partition("==")
    name = name.strip()
    if not sep or attr.strip() != "service":
        raise _err(fieldname, f"{expr!r}: the only affinity attribute is service==NAME")
    if not _NAME_RE.match(name):
        raise _err(fieldname, f"{name!r} is not a valid service name")
    return Affinity(kind, name)


# --------------------------------------------------------------------------------- mounts and ports


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

    def to_dict(self) -> dict[str, Any]:
        """Canonical form; the options added after the first release appear only when set."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in _MOUNT_OPTIONAL:
            if not out[key]:
                del out[key]
        if "volume_options" in out:
            out["volume_options"] = dict(self.volume_options)
        return out


_MOUNT_OPTIONAL = (
    "volume_options",
    "propagation",
    "nocopy",
    "tmpfs_size_bytes",
    "tmpfs_mode",
    "create_host_path",
)
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def _build_mount(data: Mapping[str, Any], fieldname: str) -> Mount:
    mtype = _choice(data.get("type", "volume"), MOUNT_TYPES, f"{fieldname}.type")
    target = data.get("target", "")
    source = data.get("source", "") or ""
    driver = data.get("volume_driver", "") or ""
    if not isinstance(target, str) or not target.startswith("/"):
        raise _err(f"{fieldname}.target", "must be an absolute path")
    if not isinstance(source, str) or not isinstance(driver, str):
        raise _err(fieldname, "source and volume-driver must be strings")
    readonly = _parse_bool(data.get("readonly", False), f"{fieldname}.readonly")
    if mtype == "bind" and not source.startswith("/"):
        raise _err(f"{fieldname}.source", "a bind mount needs an absolute source path")
    if mtype == "volume" and source and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", source):
        raise _err(f"{fieldname}.source", f"invalid volume name {source!r}")
    if mtype == "tmpfs" and source:
        raise _err(f"{fieldname}.source", "a tmpfs mount has no source")
    if driver and mtype != "volume":
        raise _err(f"{fieldname}.volume_driver", "volume-driver only applies to type=volume")
    options = parse_key_values(data.get("volume_options") or {}, fieldname=f"{fieldname}.volume_options")
    propagation = data.get("propagation", "") or ""
    if propagation and (mtype != "bind" or propagation not in _PROPAGATIONS):
        raise _err(f"{fieldname}.propagation", f"bind mounts only, one of {', '.join(_PROPAGATIONS)}")
    nocopy = _parse_bool(data.get("nocopy", False), f"{fieldname}.nocopy")
    size = data.get("tmpfs_size_bytes", 0) or 0
    size = parse_memory_bytes(size, fieldname=f"{fieldname}.tmpfs_size")
    mode = _parse_int(data.get("tmpfs_mode", 0) or 0, f"{fieldname}.tmpfs_mode", maximum=0o7777)
    if (options or nocopy) and mtype != "volume":
        raise _err(f"{fieldname}.volume_options", "volume options only apply to type=volume")
    if (size or mode) and mtype != "tmpfs":
        raise _err(f"{fieldname}.tmpfs_size", "tmpfs options only apply to type=tmpfs")
    create = _parse_bool(data.get("create_host_path", False), f"{fieldname}.create_host_path")
    if create and mtype != "bind":
        raise _err(f"{fieldname}.create_host_path", "only applies to type=bind")
    return Mount(mtype, target, source, readonly, driver, options, propagation, nocopy, size, mode, create)


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
}


def parse_mount(expr: str | Mapping[str, Any], *, fieldname: str = "mount") -> Mount:
    """``type=bind,source=/x,target=/y,readonly`` or ``type=volume,source=name,target=/y,volume-driver=local``
    (or the same as a dict)."""
    if isinstance(expr, Mapping):
        unknown = sorted(str(k) for k in set(expr) - set(_MOUNT_KEYS))
        if unknown:
            raise _err(f"{fieldname}.{unknown[0]}", "unknown mount option")
        return _build_mount({_MOUNT_KEYS[k]: v for k, v in expr.items()}, fieldname)
    if not isinstance(expr, str) or not expr.strip():
        raise _err(fieldname, "expected type=...,source=...,target=...")
    data: dict[str, Any] = {}
    for part in expr.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise _err(fieldname, f"unknown mount option {key!r}")
        if _MOUNT_KEYS[key] == "volume_options":
            data.setdefault("volume_options", []).append(value.strip())
            continue
        if _MOUNT_KEYS[key] in data:
            raise _err(fieldname, f"mount option {key!r} given twice")
        flag = key in ("readonly", "ro", "nocopy", "volume-nocopy", "bind-create-host-path")
        data[_MOUNT_KEYS[key]] = value.strip() if sep else ("true" if flag else "")
    return _build_mount(data, fieldname)


@dataclass(frozen=True, slots=True)
class PortPublish:
    """A container port, optionally published: in ``ingress`` mode on every node's address (balanced over the
    service's healthy tasks), in ``host`` mode on the node running each task."""

    target: int
    published: int | None = None
    protocol: str = "tcp"
    host_ip: str = ""  # "" = every address of the node (host mode only)
    mode: str = "host"  # "ingress" needs a published port; parse_port makes it the default when there is one

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "published": self.published, "protocol": self.protocol}
        if self.host_ip:
            out["host_ip"] = self.host_ip
        if self.published is not None and self.mode != default_publish_mode(self.published, self.host_ip):
            out["mode"] = self.mode  # absent when default: older specs keep their template hash
        return out

    @property
    def ingress(self) -> bool:
        return self.mode == "ingress"

    def __str__(self) -> str:
        host = f"{self.published}:" if self.published is not None else ""
        ip = f"{self.host_ip}:" if self.host_ip else ""
        mode = "" if self.mode == default_publish_mode(self.published, self.host_ip) else f" ({self.mode})"
        return f"{ip}{host}{self.target}/{self.protocol}{mode}"


def default_publish_mode(published: int | None, host_ip: str) -> str:
    """Ingress (as Swarm) for a published port on every address; host for a bound address or no host port."""
    return "ingress" if published is not None and not host_ip else "host"


_PORT_KEYS = {"target", "published", "protocol", "host_ip", "mode"}


def _long_port(text: str, fieldname: str) -> dict[str, Any]:
    """``published=8080,target=80,protocol=udp,mode=host`` (docker service create's long syntax)."""
    data: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _PORT_KEYS:
            raise _err(
                f"{fieldname}.{key or part}", "unknown port option (target, published, protocol, mode)"
            )
        if key in data:
            raise _err(f"{fieldname}.{key}", "given twice")
        data[key] = value.strip()
    return data


def parse_port(expr: str | int | Mapping[str, Any], *, fieldname: str = "publish") -> PortPublish:
    """``8080:80/tcp``, ``8080:80``, ``53:53/udp``, ``80`` (no host port), an int, the long syntax
    ``published=8080,target=80[,protocol=udp][,mode=host]`` or a dict ``{"published": 8080, "target": 80,
    "protocol": "tcp", "mode": "ingress"}``. A published port is in ingress mode unless ``mode`` says host
    or a host address is given."""
    if isinstance(expr, bool):
        raise _err(fieldname, "expected HOST:CONTAINER[/PROTO]")
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
        raise _err(fieldname, "expected HOST:CONTAINER[/PROTO]")
    unknown = sorted(str(k) for k in set(expr) - _PORT_KEYS)
    if unknown:
        raise _err(f"{fieldname}.{unknown[0]}", "unknown port option")
    target_port = _parse_int(expr.get("target"), f"{fieldname}.target", minimum=1, maximum=65535)
    published_raw = expr.get("published")
    published = (
        None
        if published_raw in (None, "")
        else _parse_int(published_raw, f"{fieldname}.published", minimum=1, maximum=65535)
    )
    protocol = _choice(expr.get("protocol", "tcp"), PROTOCOLS, f"{fieldname}.protocol")
    host_ip = expr.get("host_ip") or ""
    if not isinstance(host_ip, str) or (host_ip and not re.match(r"^[0-9A-Fa-f:.]+$", host_ip)):
        raise _err(f"{fieldname}.host_ip", f"invalid address {host_ip!r}")
    if host_ip and published is None:
        raise _err(f"{fieldname}.host_ip", "needs a published port")
    mode_raw = expr.get("mode") or default_publish_mode(published, host_ip)
    mode = _choice(mode_raw, PUBLISH_MODES, f"{fieldname}.mode")
    if mode == "ingress" and published is None:
        raise _err(f"{fieldname}.published", "mode=ingress needs a published port")
    if mode == "ingress" and host_ip:
        raise _err(f"{fieldname}.host_ip", "only with mode=host (ingress serves every node address)")
    return PortPublish(target_port, published, protocol, host_ip, mode)


def parse_key_values(
    items: Mapping[str, Any] | Iterable[str], *, fieldname: str
) -> tuple[tuple[str, str], ...]:
    """``["K=V", ...]`` or ``{"K": "V"}`` -> sorted ``((K, V), ...)``; duplicate or empty keys are errors."""
    out: dict[str, str] = {}
    if isinstance(items, Mapping):
        pairs = [(str(k), v, f"{fieldname}.{k}") for k, v in items.items()]
    elif isinstance(items, str) or not isinstance(items, Iterable):
        raise _err(fieldname, "expected a list of KEY=VALUE or a mapping")
    else:
        pairs = []
        for i, item in enumerate(items):
            if not isinstance(item, str) or "=" not in item:
                raise _err(f"{fieldname}[{i}]", f"expected KEY=VALUE, got {item!r}")
            key, _, value = item.partition("=")
            pairs.append((key, value, f"{fieldname}[{i}]"))
    for key, value, where in pairs:
        if not _ENV_KEY_RE.match(key):
            raise _err(where, f"invalid key {key!r}")
        if key in out:
            raise _err(where, f"key {key!r} given twice")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _err(where, "value must be a string")
        out[key] = str(value)
    return tuple(sorted(out.items()))


# ------------------------------------------------------------------------------ sub-configurations


def _take(data: Mapping[str, Any], prefix: str, keys: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """Map accepted keys (canonical and human aliases) to canonical names; unknown/duplicate -> error."""
    if not isinstance(data, Mapping):
        raise _err(prefix, "expected a mapping")
    out: dict[str, tuple[str, Any]] = {}
    for key, value in data.items():
        if key not in keys:
            raise _err(f"{prefix}.{key}" if prefix else str(key), "unknown field")
        canonical = keys[key]
        if canonical in out:
            raise _err(f"{prefix}.{key}" if prefix else str(key), f"given twice (as {out[canonical][0]})")
        out[canonical] = (key, value)
    return out


def _dur(entry: tuple[str, Any] | None, prefix: str, default: float) -> float:
    if entry is None:
        return default
    key, value = entry
    return parse_duration_s(value, fieldname=f"{prefix}.{key}" if prefix else key)


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
            raise _err("health.cmd", "must start with CMD, CMD-SHELL or NONE")
        if self.test[0] != "NONE" and len(self.test) < 2:
            raise _err("health.cmd", "needs a command")
        if self.interval_s <= 0:
            raise _err("health.interval", "must be positive")
        if self.timeout_s <= 0:
            raise _err("health.timeout", "must be positive")
        if self.retries < 1:
            raise _err("health.retries", "must be at least 1")

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
        d = _take(data, prefix, keys)
        if "cmd" not in d:
            raise _err(f"{prefix}.cmd", "a health check needs cmd")
        cmd = d["cmd"][1]
        if isinstance(cmd, str):
            if not cmd.strip():
                raise _err(f"{prefix}.cmd", "must not be empty")
            test: tuple[str, ...] = ("NONE",) if cmd.strip() == "NONE" else ("CMD-SHELL", cmd)
        elif isinstance(cmd, Sequence) and cmd and all(isinstance(c, str) for c in cmd):
            test = tuple(cmd) if cmd[0] in ("CMD", "CMD-SHELL", "NONE") else ("CMD", *cmd)
        else:
            raise _err(f"{prefix}.cmd", "expected a shell command string or a list of strings")
        retries = d.get("retries")
        return cls(
            test=test,
            interval_s=_dur(d.get("interval_s"), prefix, 30.0),
            timeout_s=_dur(d.get("timeout_s"), prefix, 30.0),
            retries=3 if retries is None else _parse_int(retries[1], f"{prefix}.retries", minimum=1),
            start_period_s=_dur(d.get("start_period_s"), prefix, 0.0),
            start_interval_s=_dur(d.get("start_interval_s"), prefix, 0.0),
        )


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When the orchestrator replaces a task that ended: condition, back-off delay, attempt limit."""

    condition: str = "any"
    delay_s: float = 5.0
    max_delay_s: float = 300.0
    max_attempts: int = 0  # 0 = unlimited
    window_s: float = 0.0  # 0 = attempts are counted forever

    def __post_init__(self) -> None:
        _choice(self.condition, RESTART_CONDITIONS, "restart.condition")
        if self.max_delay_s < self.delay_s:
            raise _err("restart.max_delay", "must be at least restart.delay")

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
        d = _take(data, prefix, keys)
        delay = _dur(d.get("delay_s"), prefix, 5.0)
        attempts = d.get("max_attempts")
        return cls(
            condition=_choice(d["condition"][1], RESTART_CONDITIONS, f"{prefix}.condition")
            if "condition" in d
            else "any",
            delay_s=delay,
            max_delay_s=_dur(d.get("max_delay_s"), prefix, max(300.0, delay)),
            max_attempts=0 if attempts is None else _parse_int(attempts[1], f"{prefix}.max_attempts"),
            window_s=_dur(d.get("window_s"), prefix, 0.0),
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
        _choice(self.order, UPDATE_ORDERS, "update.order")
        _choice(self.failure_action, FAILURE_ACTIONS, "update.failure_action")
        if self.parallelism < 0:
            raise _err("update.parallelism", "must not be negative")
        if not 0.0 <= self.max_failure_ratio <= 1.0:
            raise _err("update.max_failure_ratio", "must be between 0 and 1")

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
        d = _take(data, prefix, keys)
        par = d.get("parallelism")
        ratio = d.get("max_failure_ratio")
        return cls(
            parallelism=1 if par is None else _parse_int(par[1], f"{prefix}.parallelism"),
            delay_s=_dur(d.get("delay_s"), prefix, 0.0),
            order=_choice(d["order"][1], UPDATE_ORDERS, f"{prefix}.order") if "order" in d else "stop-first",
            failure_action=_choice(d["failure_action"][1], FAILURE_ACTIONS, f"{prefix}.failure_action")
            if "failure_action" in d
            else "pause",
            monitor_s=_dur(d.get("monitor_s"), prefix, 5.0),
            max_failure_ratio=0.0 if ratio is None else _parse_ratio(ratio[1], f"{prefix}.max_failure_ratio"),
        )


def _parse_ratio(value: Any, fieldname: str) -> float:
    if isinstance(value, bool):
        raise _err(fieldname, "expected a number between 0 and 1")
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise _err(fieldname, f"expected a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise _err(fieldname, "must be between 0 and 1")
    return ratio


# ------------------------------------------------------------------------------------ service spec


def _str_tuple(value: Any, fieldname: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise _err(fieldname, "expected a list of strings")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise _err(fieldname, "expected a list of strings")
    return tuple(value)


def _list(value: Any, fieldname: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _err(fieldname, "expected a list")
    return list(value)


#: fields of ServiceSpec that shape the container: a change there needs new tasks (a rolling update)
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
    replicas: int = 1  # ignored in global mode
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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise _err(
                "name",
                f"{self.name!r} is not a DNS label: 1-63 lowercase letters, digits and '-', starting with a "
                "letter and not ending with '-'",
            )
        if self.name in RESERVED_NAMES:
            raise _err("name", f"{self.name!r} is reserved")
        if not isinstance(self.image, str) or not self.image or any(c.isspace() for c in self.image):
            raise _err("image", "must be a non-empty image reference without spaces")
        _choice(self.mode, MODES, "mode")
        _choice(self.strategy, STRATEGIES, "strategy")
        _choice(self.endpoint_mode, ENDPOINT_MODES, "endpoint_mode")
        _choice(self.ingress_policy, INGRESS_POLICIES, "ingress_policy")
        if not isinstance(self.replicas, int) or not 0 <= self.replicas <= MAX_REPLICAS:
            raise _err("replicas", f"must be an integer from 0 to {MAX_REPLICAS}")
        for name in (
            "max_replicas_per_node",
            "reserve_cpu_nanos",
            "reserve_memory_bytes",
            "limit_cpu_nanos",
            "limit_memory_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _err(
                    name.removesuffix("_nanos").removesuffix("_bytes"), "must be a non-negative integer"
                )
        if self.limit_cpu_nanos and self.limit_cpu_nanos < self.reserve_cpu_nanos:
            raise _err("limit_cpu", "must not be below reserve_cpu")
        if self.limit_memory_bytes and self.limit_memory_bytes < self.reserve_memory_bytes:
            raise _err("limit_memory", "must not be below reserve_memory")
        if self.stop_grace_period_s < 0:
            raise _err("stop_grace_period", "must not be negative")
        for i, aff in enumerate(self.affinities):
            if aff.kind == "affinity" and aff.service == self.name:
                raise _err(f"affinities[{i}]", "a service cannot require affinity to itself")
        seen_ports: set[tuple[str, int, str]] = set()
        for i, port in enumerate(self.publish):
            if port.published is None:
                continue
            key = (port.protocol, port.published, "" if port.ingress else port.host_ip)
            if key in seen_ports:
                raise _err(f"publish[{i}]", f"host port {port.published}/{port.protocol} published twice")
            seen_ports.add(key)
        targets: set[str] = set()
        for i, mount in enumerate(self.mounts):
            if mount.target in targets:
                raise _err(f"mounts[{i}].target", f"{mount.target} mounted twice")
            targets.add(mount.target)
        for i, ref in enumerate((*self.secrets, *self.configs)):
            if ref.target in targets:
                raise _err(f"secrets/configs[{i}].target", f"{ref.target} is already a mount or file target")
            targets.add(ref.target)

    # -- derived views ---------------------------------------------------------------------------

    @property
    def host_ports(self) -> tuple[tuple[str, int], ...]:
        """``(protocol, port)`` pairs this service binds on its node (host mode; ingress binds none)."""
        return tuple(
            (p.protocol, p.published) for p in self.publish if p.published is not None and not p.ingress
        )

    @property
    def ingress_ports(self) -> tuple[PortPublish, ...]:
        """Ports served on every node's address (routing mesh)."""
        return tuple(p for p in self.publish if p.ingress)

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def labels_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def template_dict(self) -> dict[str, Any]:
        """The part of ``to_dict`` that shapes a task's container (see TEMPLATE_FIELDS)."""
        full = self.to_dict()
        out = {k: full[k] for k in TEMPLATE_FIELDS}
        if not self.container.is_default:  # absent when default: older specs keep their template hash
            out["container"] = full["container"]
        for key in ("secrets", "configs"):  # the same: absent when unused
            if full[key]:
                out[key] = full[key]
        return out

    def template_hash(self) -> str:
        """Stable hash of the task template: tasks whose hash differs are outdated (rolling update)."""
        blob = json.dumps(self.template_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

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
            "ingress_policy": self.ingress_policy,
            "rollback": self.rollback.to_dict(),
            "secrets": [r.to_dict() for r in self.secrets],
            "configs": [r.to_dict() for r in self.configs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSpec:
        """Validate and normalise plain data (canonical keys or aliases); raises ConfigError(field=...)."""
        d = _take(data, "", _SPEC_KEYS)
        kw: dict[str, Any] = {}
        for canonical, (key, value) in d.items():
            kw[canonical] = _SPEC_PARSERS[canonical](value, key)
        if "name" not in kw:
            raise _err("name", "is required")
        if "image" not in kw:
            raise _err("image", "is required")
        return cls(**kw)


def _p_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _err(key, f"expected a string, got {type(value).__name__}")
    return value


def _p_cmd(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    return _str_tuple(value, key)


def _p_items(parser: Any) -> Any:
    def parse(value: Any, key: str) -> tuple[Any, ...]:
        return tuple(parser(v, fieldname=f"{key}[{i}]") for i, v in enumerate(_list(value, key)))

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
}


def _p_cpu(value: Any, key: str) -> int:
    if key.endswith("_nanos"):
        return _parse_int(value, key)
    return parse_cpu_nanos(value, fieldname=key)


def _p_mem(value: Any, key: str) -> int:
    if key.endswith("_bytes"):
        return _parse_int(value, key)
    return parse_memory_bytes(value, fieldname=key)


_SPEC_PARSERS: dict[str, Any] = {
    "name": _p_str,
    "image": _p_str,
    "entrypoint": _p_cmd,
    "command": _p_cmd,
    "user": _p_str,
    "workdir": _p_str,
    "env": lambda v, k: parse_key_values(v, fieldname=k),
    "labels": lambda v, k: parse_key_values(v, fieldname=k),
    "mode": lambda v, k: _choice(v, MODES, k),
    "replicas": lambda v, k: _parse_int(v, k, maximum=MAX_REPLICAS),
    "constraints": _p_items(parse_constraint),
    "placement_preferences": _p_items(parse_placement_pref),
    "strategy": lambda v, k: _choice(v, STRATEGIES, k),
    "affinities": _p_items(parse_affinity),
    "max_replicas_per_node": lambda v, k: _parse_int(v, k),
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
    "rebalance": lambda v, k: _parse_bool(v, k),
    "container": lambda v, k: ContainerOptions.from_dict(v, k),
    "service_labels": lambda v, k: parse_key_values(v, fieldname=k),
    "endpoint_mode": lambda v, k: _choice(v, ENDPOINT_MODES, k),
    "ingress_policy": lambda v, k: _choice(v, INGRESS_POLICIES, k),
    "rollback": lambda v, k: UpdateConfig.from_dict(v, k),
    "secrets": lambda v, k: parse_file_refs(v, k, "secret"),
    "configs": lambda v, k: parse_file_refs(v, k, "config"),
}
