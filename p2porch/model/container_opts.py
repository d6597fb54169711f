"""Engine options of a service's containers beyond image/command/env (pure).

``ContainerOptions`` owns the validated runtime options Docker applies to each task's container and that
the scheduler never looks at: hostname, init, capabilities, extra hosts, logging driver, ulimits, sysctls,
read-only root, security options, stop signal, /dev/shm size, pids limit, host devices, supplementary groups,
resolver options, the memory+swap limit, the memory swappiness, the host's PID/IPC/UTS namespaces, the
privileged mode and the image pull policy (the agent's, not the engine's).
It is carried in ``ServiceSpec.container`` and turned into container-create arguments by
the agent (``agent/dockerspec.py``).
``from_dict`` accepts the canonical keys of ``to_dict`` and Docker CLI forms (``nofile=1024:2048``,
``host:ip``, ``64M``, ``/dev/dri``); every error is a ``ConfigError`` naming ``container.<key>``.
No I/O, no cluster state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError
from .templates import check
from .units import SIZE_UNITS

CAP_RE = re.compile(r"^(?:CAP_)?[A-Z_]+$|^ALL$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# A container's own host name: as ``_HOST_RE`` with underscores (``node_exporter``), which Docker has
# taken again since it dropped its hostname check (1.13); it is local to the container, no DNS name.
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?$")
_SIGNAL_RE = re.compile(r"^(?:SIG[A-Z0-9+-]+|[0-9]{1,2}|[A-Z][A-Z0-9]+)$")
_SYSCTL_RE = re.compile(r"^[a-z0-9_][a-z0-9_./-]*$")
_ULIMIT_RE = re.compile(r"^[a-z_]+$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # a group name or a numeric id
_DNS_OPTION_RE = re.compile(r"^[a-z][a-z0-9-]*(?::[0-9]+)?$")  # resolv.conf's: ndots:2, rotate, use-vc
_LOG_DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
_DEVICE_PERMS_RE = re.compile(r"^(?!.*(.).*\1)[rwm]{1,3}$")  # r, w, m, each at most once
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
_SIZE_UNITS = SIZE_UNITS  # the units of every size (512M, 1GiB, 1gb), as Docker reads them
_MAX_SIZE = 2**63  # sizes past an int64 fit neither Docker's API nor a Raft entry


def _err(key: str, message: str, prefix: str) -> ConfigError:
    path = f"{prefix}.{key}" if prefix else key
    return ConfigError(f"{path}: {message}", field=path)


def _strings(value: Any, key: str, prefix: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _err(key, "expected a list of strings", prefix)
    if not all(isinstance(v, str) and v for v in value):
        raise _err(key, "expected a list of non-empty strings", prefix)
    return tuple(value)


def _pairs(value: Any, key: str, prefix: str, separator: str = "=") -> tuple[tuple[str, str], ...]:
    """``{K: V}`` or ``["K=V"]`` -> sorted pairs (values as strings)."""
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or separator not in item:
                raise _err(f"{key}[{i}]", f"expected KEY{separator}VALUE, got {item!r}", prefix)
            k, _, v = item.partition(separator)
            items.append((k, v))
    else:
        raise _err(key, "expected a mapping or a list of KEY=VALUE", prefix)
    for k, v in items:
        if not isinstance(k, str) or not k.strip():
            raise _err(key, f"invalid key {k!r}", prefix)
        if isinstance(v, bool):
            v = "true" if v else "false"
        if not isinstance(v, str | int | float):
            raise _err(f"{key}.{k}", "value must be a string", prefix)
        out[k.strip()] = str(v)
    return tuple(sorted(out.items()))


def _bool(value: Any, key: str, prefix: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _err(key, f"expected true or false, got {value!r}", prefix)


def parse_size(value: Any, key: str, prefix: str = "container") -> int:
    """``64M``, ``1g``, ``1024`` -> bytes (binary units, as Docker)."""
    if isinstance(value, bool):
        raise _err(key, "expected a size such as 64M", prefix)
    if isinstance(value, int):
        if value < 0:
            raise _err(key, "must not be negative", prefix)
        if value >= _MAX_SIZE:
            raise _err(key, f"must be at most {_MAX_SIZE - 1} bytes", prefix)
        return value
    m = _SIZE_RE.match(value) if isinstance(value, str) else None
    if m is None or m.group(2).lower() not in _SIZE_UNITS:
        raise _err(key, f"invalid size {value!r} (use e.g. 64M or 1G)", prefix)
    size = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not size < _MAX_SIZE:  # also inf (a number of 400 digits): int() of it raised OverflowError
        raise _err(key, f"must be at most {_MAX_SIZE - 1} bytes", prefix)
    return int(size)


@dataclass(frozen=True, slots=True)
class Ulimit:
    """One resource limit (``nofile``, ``nproc``...) with its soft and hard values (-1 = unlimited)."""

    name: str
    soft: int
    hard: int


def _ulimit_value(value: Any, key: str, prefix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _err(key, "expected an integer", prefix)
    try:
        number = int(value)
    except ValueError:
        raise _err(key, f"expected an integer, got {value!r}", prefix) from None
    if number < -1:
        raise _err(key, "must be -1 (unlimited) or more", prefix)
    return number


def _ulimits(value: Any, key: str, prefix: str) -> tuple[Ulimit, ...]:
    """``{nofile: {soft, hard}}``, ``{nproc: 65535}`` or ``["nofile=1024:2048"]`` -> sorted Ulimits."""
    entries: list[tuple[str, Any, Any]] = []
    if isinstance(value, Mapping):
        for name, limit in value.items():
            if isinstance(limit, Mapping):
                unknown = sorted(str(k) for k in set(limit) - {"soft", "hard"})
                if unknown or "soft" not in limit or "hard" not in limit:
                    raise _err(f"{key}.{name}", "expected soft and hard (and nothing else)", prefix)
                entries.append((name, limit["soft"], limit["hard"]))
            else:
                entries.append((name, limit, limit))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, item in enumerate(value):
            if not isinstance(item, str) or "=" not in item:
                raise _err(f"{key}[{i}]", "expected NAME=SOFT[:HARD]", prefix)
            name, _, limits = item.partition("=")
            soft, _, hard = limits.partition(":")
            entries.append((name, soft, hard or soft))
    else:
        raise _err(key, "expected a mapping of NAME: {soft, hard} or a list of NAME=SOFT[:HARD]", prefix)
    out: dict[str, Ulimit] = {}
    for name, soft, hard in entries:
        if not isinstance(name, str) or not _ULIMIT_RE.match(name):
            raise _err(key, f"invalid ulimit name {name!r}", prefix)
        limit = Ulimit(
            name, _ulimit_value(soft, f"{key}.{name}", prefix), _ulimit_value(hard, f"{key}.{name}", prefix)
        )
        if limit.hard != -1 and (limit.soft == -1 or limit.soft > limit.hard):
            raise _err(f"{key}.{name}", "the soft limit must not exceed the hard limit", prefix)
        out[name] = limit
    return tuple(out[n] for n in sorted(out))


def _extra_hosts(value: Any, key: str, prefix: str) -> tuple[str, ...]:
    """``["host:ip"]``, ``["host=ip"]`` or ``{host: ip}`` -> ``("host:ip", ...)`` (IPv6 addresses allowed)."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _err(f"{key}[{i}]", "expected HOST:IP", prefix)
            sep = "=" if "=" in item else ":"
            host, found, address = item.partition(sep)
            if not found:
                raise _err(f"{key}[{i}]", f"{item!r}: expected HOST:IP", prefix)
            pairs.append((host, address))
    else:
        raise _err(key, "expected a list of HOST:IP or a mapping", prefix)
    out = []
    for host, address in pairs:
        if not isinstance(host, str) or not _HOST_RE.match(host.strip()):
            raise _err(key, f"invalid host name {host!r}", prefix)
        addresses = [str(a) for a in address] if isinstance(address, list | tuple) else [str(address)]
        for addr in addresses:
            addr = addr.strip().strip("[]")
            if not addr or not re.match(r"^[0-9A-Fa-f:.]+$|^host-gateway$", addr):
                raise _err(key, f"invalid address {addr!r} for {host}", prefix)
            out.append(f"{host.strip()}:{addr}")
    return tuple(out)


def _devices(value: Any, key: str, prefix: str) -> tuple[str, ...]:
    """``HOST[:CONTAINER[:PERMISSIONS]]`` -> canonical ``HOST:CONTAINER:PERMISSIONS`` (default ``rwm``)."""
    out = []
    for i, entry in enumerate(_strings(value, key, prefix)):
        parts = entry.split(":")
        if len(parts) > 3:
            raise _err(f"{key}[{i}]", f"expected HOST[:CONTAINER[:PERMISSIONS]], got {entry!r}", prefix)
        host = parts[0]
        target = parts[1] if len(parts) > 1 and parts[1] else host
        perms = parts[2] if len(parts) > 2 else "rwm"
        if not host.startswith("/") or not target.startswith("/"):
            raise _err(f"{key}[{i}]", f"device paths must be absolute, got {entry!r}", prefix)
        if not _DEVICE_PERMS_RE.match(perms):
            raise _err(f"{key}[{i}]", f"permissions are letters of rwm, got {perms!r}", prefix)
        out.append(f"{host}:{target}:{perms}")
    return tuple(out)


def _memswap_limit(value: Any, key: str, prefix: str) -> int:
    """Compose's ``memswap_limit``: a size (``4G``, bytes), or -1 for unlimited swap (``--memory-swap``)."""
    if value in (-1, "-1") and not isinstance(value, bool):
        return -1
    return parse_size(value, key, prefix)


def _swappiness(value: Any, key: str, prefix: str) -> int:
    """Compose's ``mem_swappiness``: 0..100, how eagerly the kernel swaps the container's anonymous pages
    (Docker's ``--memory-swappiness``; -1 = the engine's default, the host's value)."""
    digits = value.strip().removeprefix("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 3:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 100:
        raise _err(key, f"expected a number from 0 to 100 (-1: the host's), got {value!r}", prefix)
    return value


#: when a node pulls a task's image (Compose's ``pull_policy``; ``if_not_present`` is read as ``missing``)
PULL_POLICIES = ("always", "missing", "never")
#: Compose's refresh policies: ``daily``, ``weekly`` and ``every_<duration>`` (``every_12h``, ``every_1w2d``)
_REFRESH_RE = re.compile(r"^(?:daily|weekly|every_(?:[0-9]+(?:w|d|h|m|s|ms|us|ns))+)$")
_DURATION_PART_RE = re.compile(r"([0-9]+)(w|d|h|ms|us|ns|m|s)")
_DURATION_UNITS_S = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_MAX_REFRESH_S = 100 * 365 * 86400.0  # a century: past it, a duration is a typo (and no float overflows)


def refresh_interval_s(policy: str) -> float | None:
    """How old the image a node has may be before a refresh policy pulls it again (Compose's
    ``GetPullPolicy``: ``daily`` 24 h, ``weekly`` 7 days, ``every_<duration>`` with str2duration's units
    w, d, h, m, s, ms, us, ns); None for a policy that is no refresh policy."""
    if policy == "daily":
        return 86400.0
    if policy == "weekly":
        return 604800.0
    if not _REFRESH_RE.match(policy):
        return None
    return sum(
        int(n) * _DURATION_UNITS_S.get(unit, 1e-9) for n, unit in _DURATION_PART_RE.findall(policy[6:])
    )


def refresh_due(policy: str, pulled_at: float, now: float) -> bool:
    """Whether a refresh ``policy`` pulls an image the node has, last pulled (tagged) at ``pulled_at`` (0.0:
    unknown), at ``now`` on the same clock: when it is older than the interval, as Compose compares the
    image's ``LastTagTime`` (an unknown time is old). False for a policy that is no refresh policy."""
    interval = refresh_interval_s(policy)
    return interval is not None and (not pulled_at or now - pulled_at > interval)


def _pull_policy(value: Any, key: str, prefix: str) -> str:
    """``always`` (pull before each task's container is created), ``never`` (run only an image the node
    has), ``missing`` (pull when the node lacks it, the default), and the refresh policies ``daily``,
    ``weekly``, ``every_<duration>`` (pull when the node's image was pulled longer ago than that)."""
    if not isinstance(value, str):
        raise _err(key, f"expected a string, got {type(value).__name__}", prefix)
    policy = "missing" if value == "if_not_present" else value
    interval = refresh_interval_s(policy)
    if interval is not None and not 0 < interval <= _MAX_REFRESH_S:
        raise _err(key, f"{value!r}: the refresh interval must be more than 0 and at most 100 years", prefix)
    if policy not in PULL_POLICIES and interval is None:
        raise _err(
            key, f"expected always, missing, never, daily, weekly or every_<duration>, got {value!r}", prefix
        )
    return policy


#: the host's namespaces a task's container may share (Docker's PidMode, IpcMode, UtsMode: ``--pid host``)
NAMESPACE_MODES = {
    "pid_mode": ("host",),
    "ipc_mode": ("host", "private", "shareable", "none"),
    "uts_mode": ("host",),
}


def _namespace(value: Any, key: str, prefix: str) -> str:
    """A PID, IPC or UTS namespace mode: ``host`` (the node's own, as ``docker run --pid host``), for IPC
    also Docker's ``private``, ``shareable`` and ``none``; "" is the container's own (Docker's default)."""
    name = _ALIASES.get(key, key)
    if not isinstance(value, str) or (value and value not in NAMESPACE_MODES[name]):
        allowed = ", ".join(NAMESPACE_MODES[name])
        raise _err(key, f"expected {allowed} (or nothing: the container's own), got {value!r}", prefix)
    return value


def _pids_limit(value: Any, key: str, prefix: str) -> int:
    digits = value.strip().removeprefix("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:  # not ² (int refuses it) nor 5000 digits
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value < _MAX_SIZE:
        raise _err(key, f"expected a number of processes, or -1 for no limit, got {value!r}", prefix)
    return value


@dataclass(frozen=True, slots=True)
class ContainerOptions:
    """Per-container engine options of a service (see the module docstring); all default to Docker's."""

    hostname: str = ""
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # "host:ip"
    log_driver: str = ""  # "" = the engine's default
    log_opts: tuple[tuple[str, str], ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    read_only: bool = False
    security_opt: tuple[str, ...] = ()
    stop_signal: str = ""  # "" = the image's STOPSIGNAL (SIGTERM)
    shm_size_bytes: int = 0  # 0 = the engine's default (64M)
    pids_limit: int = 0  # 0 = the engine's default (no limit); -1 = no limit
    devices: tuple[str, ...] = ()  # "HOST:CONTAINER:PERMISSIONS"
    groups: tuple[str, ...] = ()  # supplementary groups of the container's process (Docker's --group)
    dns_options: tuple[str, ...] = ()  # resolv.conf options beside the cluster DNS (--dns-option)
    memswap_limit_bytes: int = 0  # memory + swap (memswap_limit): 0 = the engine's default; -1 = unlimited
    mem_swappiness: int = -1  # 0..100 (mem_swappiness); -1 = the engine's default (the host's)
    pull_policy: str = "missing"  # always | missing | never | daily | weekly | every_<duration> (the node's)
    pid_mode: str = ""  # "" = the container's own PID namespace; "host" = the node's (docker run --pid host)
    ipc_mode: str = ""  # "" = the engine's default; host | private | shareable | none
    uts_mode: str = ""  # "" = the container's own host name namespace; "host" = the node's
    privileged: bool = False  # every capability and device, no seccomp/AppArmor (docker run --privileged)

    def __post_init__(self) -> None:
        # Swarm's templates (``{{.Node.Hostname}}``) are expanded with stand-in values first
        if self.hostname and not _HOSTNAME_RE.match(check(self.hostname, "container.hostname")):
            raise _err("hostname", f"{self.hostname!r} is not a valid host name", "container")
        for key in ("cap_add", "cap_drop"):
            for cap in getattr(self, key):
                if not CAP_RE.match(cap):
                    raise _err(key, f"invalid capability {cap!r} (e.g. NET_ADMIN or ALL)", "container")
        if self.log_driver and not _LOG_DRIVER_RE.match(self.log_driver):
            raise _err("log_driver", f"invalid log driver {self.log_driver!r}", "container")
        for name, _ in self.sysctls:
            if not _SYSCTL_RE.match(name):
                raise _err("sysctls", f"invalid sysctl name {name!r}", "container")
        for group in self.groups:
            if not _GROUP_RE.match(group):
                raise _err("groups", f"invalid group {group!r} (a name or a number)", "container")
        for option in self.dns_options:
            if not _DNS_OPTION_RE.match(option):
                raise _err("dns_options", f"invalid resolver option {option!r} (e.g. ndots:2)", "container")
        if self.stop_signal and not _SIGNAL_RE.match(self.stop_signal):
            raise _err("stop_signal", f"invalid signal {self.stop_signal!r} (e.g. SIGQUIT)", "container")
        if self.shm_size_bytes < 0:
            raise _err("shm_size", "must not be negative", "container")
        if self.uts_mode == "host" and self.hostname:  # Docker's create refuses the two together
            raise _err(
                "hostname", "a container in the host's UTS namespace has the node's host name", "container"
            )

    @property
    def is_default(self) -> bool:
        return self == ContainerOptions()

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain form; only options that differ from the default are present."""
        out: dict[str, Any] = {}
        default = ContainerOptions()
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            if f.name == "ulimits":
                out[f.name] = {u.name: {"soft": u.soft, "hard": u.hard} for u in value}
            elif f.name in ("log_opts", "sysctls"):
                out[f.name] = dict(value)
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, prefix: str = "container") -> ContainerOptions:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{prefix}: expected a mapping", field=prefix)
        kw: dict[str, Any] = {}
        for key, value in data.items():
            name = _ALIASES.get(key, key)
            if name not in _PARSERS:
                raise _err(str(key), "unknown container option", prefix)
            kw[name] = _PARSERS[name](value, str(key), prefix)
        try:
            return cls(**kw)
        except ConfigError as exc:
            if prefix == "container" or not exc.field:
                raise
            field = prefix + exc.field.removeprefix("container")
            raise ConfigError(exc.message.replace(exc.field, field, 1), field=field) from None


def _string(value: Any, key: str, prefix: str) -> str:
    if not isinstance(value, str):
        raise _err(key, f"expected a string, got {type(value).__name__}", prefix)
    return value


_ALIASES = {
    "shm_size": "shm_size_bytes",
    "log_opt": "log_opts",
    "hosts": "extra_hosts",
    "device": "devices",
    "group": "groups",
    "dns_option": "dns_options",
    "memswap_limit": "memswap_limit_bytes",
    "memory_swap": "memswap_limit_bytes",
    "memory_swappiness": "mem_swappiness",
    "pid": "pid_mode",
    "ipc": "ipc_mode",
    "uts": "uts_mode",
}
_PARSERS: dict[str, Any] = {
    "hostname": _string,
    "init": _bool,
    "cap_add": lambda v, k, p: tuple(c.upper() for c in _strings(v, k, p)),
    "cap_drop": lambda v, k, p: tuple(c.upper() for c in _strings(v, k, p)),
    "extra_hosts": _extra_hosts,
    "log_driver": _string,
    "log_opts": _pairs,
    "ulimits": _ulimits,
    "sysctls": _pairs,
    "read_only": _bool,
    "security_opt": _strings,
    "stop_signal": lambda v, k, p: _string(v, k, p).upper() if isinstance(v, str) else str(v),
    "shm_size_bytes": parse_size,
    "pids_limit": _pids_limit,
    "devices": _devices,
    "groups": _strings,
    "dns_options": _strings,
    "memswap_limit_bytes": _memswap_limit,
    "mem_swappiness": _swappiness,
    "pull_policy": _pull_policy,
    "pid_mode": _namespace,
    "ipc_mode": _namespace,
    "uts_mode": _namespace,
    "privileged": _bool,
}
