"""What a member admits from outside (pure): a joiner's fields, init/join API bodies, published ports.

Every check raises ConfigError naming the field (the CLI exits 2). A joiner's advertise address must be
the address its join connection comes from (unless it says it is behind NAT) and must not be another
live node's; ids, names, capacity and labels have fixed syntax and bounds, so a joiner cannot
black-hole another node's overlay, attract work with absurd capacity, or bloat the replicated state.
This module does no I/O and never touches cluster state.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..config import Config
from ..errors import ConfigError, ConflictError
from ..gossip.messages import META_MAX_BYTES, labels_meta_room
from ..model import Node

NODE_ID_RE = re.compile(r"^[0-9a-f]{16}$")
NODE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$")
DOMAIN_RE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LABELS = 64
MAX_LABEL_VALUE = 256
MAX_CPU_NANOS = 4096 * 1_000_000_000  # 4096 CPUs
MAX_MEMORY_BYTES = 64 << 40  # 64 TiB
MAX_DOMAIN = 253
# p2porch's own default ports: gossip, Raft, join/API, VXLAN, DNS (configured ones are added to these)
DEFAULT_RESERVED_PORTS = {7946: "gossip", 7947: "raft", 7948: "join", 4789: "vxlan", 53: "dns"}


def _bad(field: str, message: str) -> ConfigError:
    return ConfigError(f"{field}: {message}", field=field)


def node_name(value: Any, field: str = "--name") -> str:
    if not isinstance(value, str) or not NODE_NAME_RE.match(value):
        raise _bad(field, "must be lowercase letters, digits and '-', at most 63 characters")
    return value


def ipv4_address(value: Any, field: str = "--advertise-addr") -> str:
    try:
        addr = ipaddress.IPv4Address(value if isinstance(value, str) else "")
    except ValueError as exc:
        raise _bad(field, f"{value!r} is not an IPv4 address") from exc
    if addr.is_unspecified or addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255"):
        raise _bad(field, f"{addr} cannot be a node address")
    return str(addr)


def labels(value: Any, field: str = "--label") -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _bad(field, "labels must be a map of strings")
    if len(value) > MAX_LABELS:
        raise _bad(field, f"at most {MAX_LABELS} labels")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            raise _bad(field, f"label key {str(key)[:64]!r} must be letters, digits, '.', '_', '/' or '-'")
        if not isinstance(val, str) or len(val) > MAX_LABEL_VALUE or not val.isprintable():
            raise _bad(field, f"label {key}: the value must be printable text of at most {MAX_LABEL_VALUE}")
        out[key] = val
    return out


def labels_fit_gossip(
    labels: Mapping[str, str], field: str = "--label", before: Mapping[str, str] | None = None
) -> None:
    """Refuse node labels that do not fit in the node's gossip metadata (they travel in it, beside its
    address, capacity, counters and engine version: ``gossip/messages.labels_meta_room``); with
    ``before`` (the node's labels an update replaces) only when the update takes more room."""
    room = labels_meta_room(labels)
    left = labels_meta_room(before or {})
    if room < 0 and (before is None or room < left):
        raise _bad(
            field,
            f"the node labels would take {-room} bytes more than its gossip metadata has room for "
            f"({max(left, 0)} bytes left for labels, of {META_MAX_BYTES} bytes of metadata in all); "
            "use fewer or shorter labels",
        )


def domain(value: Any, field: str = "--domain") -> str:
    text = value.strip(".").lower() if isinstance(value, str) else ""
    if len(text) > MAX_DOMAIN or not DOMAIN_RE.match(text):
        raise _bad(field, "must be a DNS domain such as 'p2p' or 'cluster.local'")
    return text


def cluster_cidr(value: Any, field: str = "--cluster-cidr") -> str:
    try:
        net = ipaddress.IPv4Network(value if isinstance(value, str) else "", strict=True)
    except ValueError as exc:
        raise _bad(field, f"{value!r} is not an IPv4 network such as 10.240.0.0/16") from exc
    if net.prefixlen > 24:
        raise _bad(field, "must be a /24 or larger IPv4 network")
    return str(net)


def _bounded_int(value: Any, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(field, f"must be an integer within {low}..{high}")
    return value


def check_api_body(body: Mapping[str, Any]) -> None:
    """The node options of an API init/join body (the CLI sends the same names)."""
    checks = {
        "name": ("--name", node_name),
        "advertise_addr": ("--advertise-addr", ipv4_address),
        "listen_addr": ("--listen-addr", ipv4_address),
        "domain": ("--domain", domain),
        "cluster_cidr": ("--cluster-cidr", cluster_cidr),
        "labels": ("--label", labels),
    }
    for key, (flag, check) in checks.items():
        if body.get(key) not in (None, ""):
            check(body[key], flag)


def _labels_in_gossip(value: Any) -> dict[str, str]:
    checked = labels(value)
    labels_fit_gossip(checked)
    return checked


def endpoint_hint(node: Node, name: Any) -> str:
    """What to do about ``node`` advertising the joiner's address and port: a host whose data dir was
    wiped (or reinstalled) joins anew under its old name, and its old record stays (``node rm`` it once
    it is down); another name is another node (behind one NAT: a port of its own)."""
    if name != node.name:
        return " (behind one NAT give each node its own --advertise-*-port)"
    rm = f"run `p2porch node rm {node.name}` on a member, then join again"
    if node.status == "down":
        return f", which is down: if this host was {node.name} and lost its data dir, {rm}"
    return (
        f", which is {node.status}: if this host was {node.name} and lost its data dir, wait until "
        f"{node.name} is down (`p2porch node ls`), then {rm}"
    )


def check_joiner(request: Mapping[str, Any], source_addr: str, live_nodes: Iterable[Node]) -> dict[str, Any]:
    """The fields of a node record from a verified join request, checked against where the request
    came from (``source_addr``) and the live nodes; ``behind_nat: true`` lifts the source check only."""
    node_id = request.get("node_id")
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise _bad("node_id", "must be 16 lowercase hex digits")
    addr = ipv4_address(request.get("addr"))
    if addr != source_addr and request.get("behind_nat") is not True:
        raise _bad(
            "--advertise-addr",
            f"{addr} is not the address this join came from ({source_addr}); pass the right "
            "--advertise-addr, or --behind-nat if the joiner is behind NAT",
        )
    raft_port = _bounded_int(request.get("raft_port"), "raft.port", 1, 65535)
    gossip_port = _bounded_int(request.get("gossip_port"), "gossip.port", 1, 65535)
    join_port = _bounded_int(request.get("join_port", 0), "--advertise-join-port", 0, 65535)
    vxlan_port = _bounded_int(request.get("vxlan_port", 0), "--advertise-vxlan-port", 0, 65535)
    mine = {(addr, p) for p in (raft_port, gossip_port, join_port, vxlan_port) if p}
    for node in live_nodes:
        # behind one NAT several nodes share an address, each with its own forwarded ports
        if node.node_id != node_id and node.status != "left" and node.endpoints() & mine:
            taken = sorted(p for _, p in node.endpoints() & mine)
            why = endpoint_hint(node, request.get("name"))
            raise _bad(
                "--advertise-addr", f"{addr} port {taken[0]} is already advertised by node {node.name}{why}"
            )
    key_pub = request.get("key_pub", "")
    if not isinstance(key_pub, str) or len(key_pub) > 64:
        raise _bad("key_pub", "must be a base64 public key")
    return {
        "node_id": node_id,
        "name": node_name(request.get("name")),
        "addr": addr,
        "raft_port": raft_port,
        "gossip_port": gossip_port,
        "join_port": join_port,
        "vxlan_port": vxlan_port,
        "labels": _labels_in_gossip(request.get("labels", {})),
        "cpu_nanos": _bounded_int(request.get("cpu_nanos"), "cpu_nanos", 0, MAX_CPU_NANOS),
        "memory_bytes": _bounded_int(request.get("memory_bytes"), "memory_bytes", 0, MAX_MEMORY_BYTES),
        "key_pub": key_pub,
    }


def reserved_ports(configured: Mapping[str, int]) -> dict[int, str]:
    """Host ports p2porch itself uses: the defaults plus the configured ones (``name -> port``)."""
    ports = dict(DEFAULT_RESERVED_PORTS)
    ports.update({port: name for name, port in configured.items() if port})
    return ports


def config_reserved_ports(config: Config) -> dict[int, str]:
    """``reserved_ports`` of a daemon configuration (the TLS API's port too when it is on)."""
    ports = {
        "gossip": config.gossip.port,
        "raft": config.raft.port,
        "join": config.join.port,
        "vxlan": config.overlay.vxlan_port,
        "dns": config.dns.port,
    }
    if config.api.addr:
        ports["api"] = int(config.api.addr.rpartition(":")[2])
    return reserved_ports(ports)


def check_published_ports(host_ports: Iterable[tuple[str, int]], reserved: Mapping[int, str]) -> None:
    """A service may not publish a port p2porch listens on (``--publish`` is refused naming it)."""
    for protocol, port in host_ports:
        if port in reserved:
            raise _bad("--publish", f"host port {port}/{protocol} is p2porch's own {reserved[port]} port")


def ingress_ports_in_use(services: Iterable[Any]) -> dict[tuple[str, int], str]:
    """``(protocol, port) -> service name`` of every committed ingress-mode published port (``Service``s),
    chosen or assigned by the FSM."""
    used: dict[tuple[str, int], str] = {}
    for service in sorted(services, key=lambda s: (s.created_at, s.service_id)):
        for port in service.spec.ingress_ports:
            published = service.published_port(port)
            if published is not None:
                used.setdefault((port.protocol, published), service.name)
    return used


def host_mode_ports_in_use(services: Iterable[Any]) -> dict[tuple[str, int], str]:
    """``(protocol, port) -> service name`` of every committed host-mode published port (the oldest
    service's name when several bind it on different nodes)."""
    used: dict[tuple[str, int], str] = {}
    for service in sorted(services, key=lambda s: (s.created_at, s.service_id)):
        for key in service.spec.host_ports:
            used.setdefault(key, service.name)
    return used


def check_ingress_ports_free(
    name: str,
    ports: Iterable[tuple[str, int]],
    used: Mapping[tuple[str, int], str],
    host_ports: Iterable[tuple[str, int]] = (),
    used_on_hosts: Mapping[tuple[str, int], str] | None = None,
) -> None:
    """An ingress port is served by one service cluster-wide (every node answers it), so it is free only
    where no other service publishes it in either mode: on the nodes running the host-mode tasks, the
    ingress NAT rules and Docker's port mapping would both match the port, and whichever comes first
    would take every connection. Host-mode ports of different services may share a number: the
    scheduler keeps them on different nodes."""
    ports, host_ports = tuple(ports), tuple(host_ports)
    for protocol, port in ports:
        owner = used.get((protocol, port))
        if owner is not None and owner != name:
            raise ConflictError(
                f"--publish: ingress port {port}/{protocol} is already published by service {owner}",
                field="--publish",
            )
    for protocol, port in ports:
        owner = (used_on_hosts or {}).get((protocol, port))
        if owner is not None and owner != name:
            raise ConflictError(
                f"--publish: ingress port {port}/{protocol} is published by service {owner} with mode=host "
                "on the nodes running its tasks (an ingress port is served on every node: choose another "
                "port, or mode=host for this service too)",
                field="--publish",
            )
    for protocol, port in host_ports:
        owner = used.get((protocol, port))
        if owner is not None and owner != name:
            raise ConflictError(
                f"--publish: host port {port}/{protocol} is service {owner}'s ingress port, served on every "
                "node (choose another port)",
                field="--publish",
            )
