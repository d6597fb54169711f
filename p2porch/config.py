"""Frozen, validated daemon configuration (pure).

Precedence, lowest first: built-in defaults < ``p2porch.toml`` < ``P2PORCH_<SECTION>_<KEY>`` environment
variables < CLI flags. Every value is validated while loading; an invalid one raises
:class:`~p2porch.errors.ConfigError` whose ``field`` is the dotted key (``raft.voters``). Each subsystem
receives only its own section. This module reads no files and no environment by itself: callers pass
them in, so loading is deterministic and testable.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError
from .paths import DEFAULT_DATA_DIR, DEFAULT_SOCKET

ENV_PREFIX = "P2PORCH_"
_NODE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN_RE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")


# ----------------------------------------------------------------------------- validators
def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number between 1 and 65535")
    return value


def _port_or_zero(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number between 0 (off) and 65535")
    return value


def _mtu_or_zero(value: int) -> int:
    if value != 0 and not 576 <= value <= 65535:
        raise ValueError("must be 0 (the underlay device's) or an MTU between 576 and 65535")
    return value


def _positive(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value < 0:
        raise ValueError("must not be negative")
    return value


#: the largest ``raft.rtt_ms``: a 2 s heartbeat and 10-24 s elections (farther voters belong to another
#: cluster: multi-site clusters put voters in one region, docs/multi-site.md)
MAX_RTT_MS = 1000.0


def _round_trip_ms(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= MAX_RTT_MS:
        raise ValueError(f"must be a round trip between 0 and {MAX_RTT_MS} ms")
    return value


#: the longest ``scheduler.restart_grace_s``; a leader caps every hold a node announces at the same
#: (leader/restart_hold.py)
MAX_RESTART_GRACE_S = 600.0


def _restart_grace(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= MAX_RESTART_GRACE_S:
        raise ValueError(f"must be between 0 (announce no restart) and {MAX_RESTART_GRACE_S:.0f} seconds")
    return value


def _ipv4_or_empty(value: str) -> str:
    if value:
        ipaddress.IPv4Address(value)
    return value


def _node_name_or_empty(value: str) -> str:
    if value and not _NODE_NAME_RE.match(value):
        raise ValueError("must be lowercase letters, digits and '-', at most 63 characters")
    return value


def _domain(value: str) -> str:
    value = value.strip(".").lower()
    if not _DOMAIN_RE.match(value):
        raise ValueError("must be a DNS domain such as 'p2p' or 'cluster.local'")
    return value


def _cidr(value: str) -> str:
    net = ipaddress.IPv4Network(value, strict=True)
    if net.prefixlen > 24:
        raise ValueError("must be a /24 or larger IPv4 network, e.g. 10.240.0.0/16")
    return str(net)


def _subnet_prefixlen(value: int) -> int:
    if not 16 <= value <= 28:
        raise ValueError("must be between 16 and 28")
    return value


def _voters(value: int) -> int:
    if value not in (1, 3, 5, 7):
        raise ValueError("must be 1, 3, 5 or 7 (an odd number of voters)")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return value

    return check


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, list | tuple):
        value = parse_labels(value, field="node.labels")
    if not isinstance(value, dict):
        raise ValueError("must be a table of key = value strings")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _LABEL_KEY_RE.match(key):
            raise ValueError(f"label key {key!r} must be letters, digits, '.', '_' or '-'")
        out[key] = str(val)
    return dict(sorted(out.items()))


def _upstreams(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of IP[:PORT] strings")
    out = []
    for item in value:
        host, _, port = str(item).strip().partition(":")
        ipaddress.IPv4Address(host)
        if port:
            _port(int(port))
        out.append(str(item).strip())
    return tuple(out)


def _socket_path(value: str) -> str:
    if value.startswith("unix://"):
        value = value[len("unix://") :]
    if not value.startswith("/"):
        raise ValueError("must be an absolute unix socket path (unix:///path/to.sock)")
    if len(value.encode()) > 107:
        raise ValueError("unix socket path is longer than 107 bytes")
    return value


def _host_port_or_empty(value: str) -> str:
    """``HOST:PORT`` (IPv4 address or ``0.0.0.0``) of the TCP API, or "" (off)."""
    if value:
        host, sep, port = value.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit() and len(port) <= 5):
            raise ValueError("must be HOST:PORT, e.g. 10.0.0.1:7949")
        ipaddress.IPv4Address(host)
        _port(int(port))
    return value


def _abs_path_or_empty(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError("must be an absolute path")
    return value


def _seconds_or_never(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value < 0 and value != -1:
        raise ValueError("must be 0 (at start), a number of seconds, or -1 (never: on first need only)")
    return value


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    return value.rstrip("/") or "/"


def _opt(default: Any, check: Callable[[Any], Any] | None = None, *, kind: type | None = None) -> Any:
    return field(default=default, metadata={"check": check, "kind": kind or type(default)})


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class NodeConfig:
    """Identity and placement of this node."""

    name: str = _opt("", _node_name_or_empty)
    advertise_addr: str = _opt("", _ipv4_or_empty)  # where peers reach this node (a NAT's public address)
    listen_addr: str = _opt(
        "", _ipv4_or_empty
    )  # where it binds ("" = advertise_addr if local, see addresses)
    # the public port of each p2porch port behind a NAT's port forwards (0 = the same as the local port)
    advertise_gossip_port: int = _opt(0, _port_or_zero)
    advertise_raft_port: int = _opt(0, _port_or_zero)
    advertise_join_port: int = _opt(0, _port_or_zero)
    advertise_vxlan_port: int = _opt(0, _port_or_zero)
    data_dir: str = _opt(DEFAULT_DATA_DIR, _abs_path)
    docker_host: str = _opt("")
    labels: dict[str, str] = field(default_factory=dict, metadata={"check": _labels, "kind": dict})


@dataclass(frozen=True)
class ApiConfig:
    """The control socket the daemon serves and the CLI talks to; the optional remote API over TLS."""

    socket: str = _opt(DEFAULT_SOCKET, _socket_path)
    addr: str = _opt("", _host_port_or_empty)  # HOST:PORT of the TLS API ("" = off)
    cert: str = _opt("", _abs_path_or_empty)  # operator-supplied server certificate (PEM chain)
    key: str = _opt("", _abs_path_or_empty)  # its private key
    ca: str = _opt(
        "", _abs_path_or_empty
    )  # the CA bundle `cluster ca` hands to clients with an operator cert
    max_connections_per_source: int = _opt(32, _positive, kind=int)  # open TLS API connections per address
    request_timeout_s: float = _opt(60.0, _positive)  # a request body must arrive this soon after its head
    # a stalled reader: a TLS client must take each 64 KiB of an answer or a stream this soon, else closed
    send_timeout_s: float = _opt(300.0, _positive)


@dataclass(frozen=True)
class RaftConfig:
    """Replicated state log settings."""

    port: int = _opt(7947, _port)
    voters: int = _opt(3, _voters)
    voters_large: int = _opt(5, _voters)
    large_cluster_nodes: int = _opt(7, _positive, kind=int)
    commit_timeout_s: float = _opt(5.0, _positive)
    tick_s: float = _opt(0.005, _positive)
    replace_dead_voter_s: float = _opt(5.0, _non_negative)  # autopilot: a voter down this long is replaced
    rtt_ms: float = _opt(0.0, _round_trip_ms)  # round trip between the farthest voters: scales the timeouts


@dataclass(frozen=True)
class SchedulerConfig:
    """Leader-side orchestration settings."""

    down_grace_s: float = _opt(0.5, _non_negative)
    site_grace_s: float = _opt(10.0, _non_negative)  # a down node's region may follow this long (a site cut)
    engine_down_grace_s: float = _opt(10.0, _non_negative)  # engine unreachable this long: tasks move
    rebalance_max_moves: int = _opt(2, _positive, kind=int)  # rebalance moves in flight, cluster-wide
    # a graceful stop (SIGTERM/SIGINT) announces a restart: the node stays ready with its tasks this long
    # without its daemon (leader/restart_hold.py); 0: a stop is a crash, as before
    restart_grace_s: float = _opt(30.0, _restart_grace)


@dataclass(frozen=True)
class AutoscaleConfig:
    """Usage sampling on every node and the leader's autoscaler (docs/autoscale.md)."""

    sample_s: float = _opt(5.0, _positive)  # how often the agent reads its tasks' cgroup counters
    window_s: float = _opt(30.0, _positive)  # usage is averaged over this; a task reports after one window
    sync_s: float = _opt(15.0, _positive)  # how often the leader decides (the Kubernetes HPA's sync period)


@dataclass(frozen=True)
class GossipConfig:
    """SWIM membership settings."""

    port: int = _opt(7946, _port)
    preset: str = _opt("fast-lan", _one_of("fast-lan", "lan", "wan", "local"))


@dataclass(frozen=True)
class JoinConfig:
    """Token-authenticated join/API port (0 = closed unless needed)."""

    port: int = _opt(7948, _port_or_zero)


@dataclass(frozen=True)
class OverlayConfig:
    """VXLAN overlay settings."""

    cluster_cidr: str = _opt("10.240.0.0/16", _cidr)
    subnet_prefixlen: int = _opt(24, _subnet_prefixlen)
    vxlan_port: int = _opt(4789, _port)
    vni: int = _opt(4242, _positive, kind=int)
    path_mtu: int = _opt(0, _mtu_or_zero, kind=int)  # smallest MTU towards any peer (a WAN); 0 = the device's
    # a load-balanced task asked to stop runs until every live node's ingress/VIP rules dropped it, then
    # drain_grace_s more (connections picked just before), then until its open TCP connections ended,
    # and at most drain_max_s in all (a hung node, a websocket)
    drain_grace_s: float = _opt(0.25, _non_negative)  # agent/drain_gate.py GRACE_S, MAX_S
    drain_max_s: float = _opt(10.0, _non_negative)
    # a started task of a service with TCP ingress ports enters the backends (is reported running) once
    # it listens on their target ports, at most listen_max_s after its start (0 = at once, as Swarm)
    listen_max_s: float = _opt(10.0, _non_negative)  # member/agent.py LISTEN_MAX_S
    # the node's Docker network (p2porch) made when the overlay starts, for containers attached by hand;
    # default: on the node's first task that needs it (netoverlay/bridge.py)
    bridge_at_start: bool = _opt(False)
    # ...or made by a one-shot warm-up this long after the overlay started (a formation's joins are over by
    # then), unless a task made it first: 0 = at start (as bridge_at_start), -1 = never (first need only)
    bridge_warm_after_s: float = _opt(8.0, _seconds_or_never)


@dataclass(frozen=True)
class DnsConfig:
    """Embedded DNS server settings."""

    domain: str = _opt("p2p", _domain)
    port: int = _opt(53, _port)
    ttl_s: int = _opt(5, _positive, kind=int)
    upstreams: tuple[str, ...] = _opt((), _upstreams, kind=tuple)
    forward_timeout_s: float = _opt(2.0, _positive)
    # a running task asked to stop leaves every node's zone first; its node waits this long before
    # SIGTERM so that clients that resolved it just before, and requests in flight, finish
    drain_s: float = _opt(1.0, _non_negative)


@dataclass(frozen=True)
class LogConfig:
    """How the daemon logs."""

    format: str = _opt("human", _one_of("human", "json"))
    level: str = _opt("info", _one_of("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration; hand each subsystem only its own section."""

    node: NodeConfig = field(default_factory=NodeConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    raft: RaftConfig = field(default_factory=RaftConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    autoscale: AutoscaleConfig = field(default_factory=AutoscaleConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    join: JoinConfig = field(default_factory=JoinConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    log: LogConfig = field(default_factory=LogConfig)


# ----------------------------------------------------------------------------- loading
def load_config(
    *,
    toml_text: str | None = None,
    toml_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Merge defaults < TOML < environment < overrides (``{"raft.voters": 5}``) into a valid Config."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if toml_text is not None:
        source = toml_path or "p2porch.toml"
        try:
            layers.append((source, _flatten_toml(tomllib.loads(toml_text), source)))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}", field=None) from exc
    if env is not None:
        layers.append(("environment", _from_env(env)))
    if overrides:
        layers.append(("command line", {k: v for k, v in overrides.items() if v is not None}))

    merged: dict[str, tuple[str, Any]] = {}
    for source, values in layers:
        for key, value in values.items():
            merged[key] = (source, value)

    sections: dict[str, Any] = {}
    for section_name, section_cls in _section_classes().items():
        kwargs = {}
        for f in fields(section_cls):
            key = f"{section_name}.{f.name}"
            if key not in merged:
                continue
            source, raw = merged[key]
            kwargs[f.name] = _coerce_and_check(key, raw, f.metadata, source)
        sections[section_name] = section_cls(**kwargs)
    return Config(**sections)


def with_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with some dotted keys replaced (validated)."""
    by_section: dict[str, dict[str, Any]] = {}
    for key, raw in overrides.items():
        if raw is None:
            continue
        section_name, f = _field_for(key, "overrides")
        by_section.setdefault(section_name, {})[f.name] = _coerce_and_check(
            key, raw, f.metadata, "command line"
        )
    return replace(config, **{s: replace(getattr(config, s), **kw) for s, kw in by_section.items()})


def parse_labels(items: list[str] | tuple[str, ...], *, field: str) -> dict[str, str]:
    """Parse ``k=v`` strings (CLI ``--label``) into a dict; a malformed item names ``field``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{field}: {item!r} is not of the form key=value", field=field)
        out[key.strip()] = value.strip()
    return out


def config_to_dict(config: Config) -> dict[str, dict[str, Any]]:
    return {
        name: {f.name: getattr(getattr(config, name), f.name) for f in fields(getattr(config, name))}
        for name in _section_classes()
    }


def _section_classes() -> dict[str, type]:
    return {f.name: type(getattr(Config(), f.name)) for f in fields(Config)}


def _field_for(key: str, source: str) -> tuple[str, Any]:
    section_name, _, name = key.partition(".")
    section_cls = _section_classes().get(section_name)
    if section_cls is None:
        raise ConfigError(f"{source}: unknown section {section_name!r} in key {key!r}", field=key)
    for f in fields(section_cls):
        if f.name == name:
            return section_name, f
    raise ConfigError(f"{source}: unknown key {key!r}", field=key)


def _flatten_toml(data: dict[str, Any], source: str) -> dict[str, Any]:
    out = {}
    for section_name, body in data.items():
        if not isinstance(body, dict):
            raise ConfigError(
                f"{source}: top-level key {section_name!r} must be a [section]", field=section_name
            )
        for name, value in body.items():
            key = f"{section_name}.{name}"
            _field_for(key, source)
            out[key] = value
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    known = {
        f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}": f"{section}.{f.name}"
        for section, cls in _section_classes().items()
        for f in fields(cls)
    }
    for name, value in env.items():
        if name in known:
            out[known[name]] = value
    return out


def _coerce_and_check(key: str, raw: Any, metadata: Mapping[str, Any], source: str) -> Any:
    kind = metadata.get("kind", str)
    check = metadata.get("check")
    try:
        value = _coerce(raw, kind)
        if check is not None:
            value = check(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid value {raw!r} for {key} (from {source}): {exc}", field=key) from exc
    return value


def _coerce(raw: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("1", "true", "yes", "on"):
            return True
        if str(raw).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError("must be an integer")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
            return int(raw)
        raise ValueError("must be an integer")
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        return float(raw)
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        return raw.strip()
    if kind is dict:
        if isinstance(raw, str):
            return parse_labels([p for p in raw.split(",") if p.strip()], field="node.labels")
        return raw
    return raw
