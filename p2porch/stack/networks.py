"""Compose ``networks`` -> cluster networks of a stack, and a service's ``networks`` -> its attachments
(pure; see docs/stack.md, "Networks").

A top-level network ``front`` of stack ``shop`` becomes the cluster network ``shop_front`` (Swarm's
naming; ``name:`` overrides it), created with the stack and removed with it; ``external`` networks must
exist already and are never created or removed. A service that names no network is on the stack's
``default`` network, created implicitly as Compose does. Keys that cannot apply (``ipam`` subnets,
``driver_opts``, IPv6, a service's fixed addresses) are ignored with one warning per key; ``encrypted``, which
asks Swarm to encrypt the overlay's data path, is named as such (p2porch's VXLAN is not encrypted). A
declared network no service uses is never created, so what would refuse it (a reserved name, a driver
p2porch has no overlay for) is only an error once a service attaches to it, as in Swarm and Compose.
Swarm's predefined node-local networks, the external networks ``host`` and ``bridge``, are ignored with a
warning naming the services attached (like ``network_mode: host``): their tasks stay on the cluster network.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..model.netrefs import HOST_NETWORK, RESERVED_NETWORK_NAMES, check_network_name
from . import keys
from .ports_volumes import port_range
from .problems import Problems
from .values import boolean, err, key_values, list_, mapping, string

DEFAULT_KEY = "default"
_DRIVERS_MAPPED = ("overlay", "default", "bridge")  # bridge: written for docker compose on one host
_IGNORED_TOP = {
    "driver_opts": "driver options of Docker's network drivers do not apply to p2porch's overlay",
    "ipam": "task addresses come from each node's lease of the cluster CIDR (networks are isolated by "
    "policy, not by subnet)",
    "enable_ipv6": "the overlay is IPv4",
    "enable_ipv4": "the overlay is IPv4 (always on)",
}
#: values of the ignored keys that ask for what p2porch does anyway (no warning)
_AS_DONE = {"enable_ipv6": False, "enable_ipv4": True}
_IGNORED_SERVICE = {
    "ipv4_address": "task addresses come from the node's lease",
    "ipv6_address": "the overlay is IPv4",
    "link_local_ips": "not supported",
    "priority": "a task has one address on the overlay",
    "gw_priority": "a task has one address on the overlay",
    "mac_address": "not supported",
    "driver_opts": "not supported",
    "interface_name": "a task has one interface on the overlay",
}


@dataclass(frozen=True)
class StackNetwork:
    """One network a stack uses: its Compose key, its cluster name and how it is created."""

    key: str
    name: str
    external: bool = False
    internal: bool = False
    attachable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "external": self.external,
            "internal": self.internal,
            "attachable": self.attachable,
            "labels": dict(self.labels),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StackNetwork:
        """Checked form of a deploy body's network entry; ConfigError names ``where``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a network", field=where)
        try:
            labels = data.get("labels") or {}
            if not isinstance(labels, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
            ):
                raise ConfigError("labels must map strings to strings", field="labels")
            flags = {k: data.get(k, False) for k in ("external", "internal", "attachable")}
            if not all(isinstance(v, bool) for v in flags.values()):
                raise ConfigError("external, internal and attachable must be true or false", field="external")
            return cls(
                key=string(data.get("key"), "key"),
                name=check_network_name(data.get("name")),
                labels=dict(labels),
                **flags,
            )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}", field=where) from None


#: Swarm's predefined node-local networks a stack may name as external: ``host`` (host networking: a
#: service attached to it alone is on the host network, ``host_networking``) and ``bridge`` (the node's
#: default bridge, without service names); what p2porch does for each beside other networks
NODE_LOCAL_NETWORKS = {
    HOST_NETWORK: "Swarm's external network 'host' beside other networks is not applied: the tasks are on "
    "the others (attached to it alone, a service shares its node's network namespace)",
    "bridge": "the node's default bridge (Swarm's external network 'bridge') is not supported: the tasks "
    "are on the cluster network",
}


def node_local_reason(network: StackNetwork) -> str | None:
    """Why a service's attachment to Swarm's external ``host`` or ``bridge`` network is ignored, else None."""
    return NODE_LOCAL_NETWORKS.get(network.name) if network.external else None


@dataclass(frozen=True)
class DeclaredNetworks:
    """The top-level ``networks``: each as a cluster network, why some cannot be used (``key -> (path,
    message)``) and the keys each one ignores (``key -> warnings``), reported only for the networks a
    service attaches to: the others are never created."""

    networks: dict[str, StackNetwork] = field(default_factory=dict)
    unusable: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    #: declared networks refused with an error (a bad ``name``, key or value): services naming one are
    #: not also told it "is not declared"
    refused: set[str] = field(default_factory=set)

    def report_used(self, used: list[str], problems: Problems) -> None:
        """The warnings of every network in ``used``, and the refusal of those that cannot be used."""
        for key in used:
            for note in self.notes.get(key, ()):
                problems.warn(note)
            if key in self.unusable:
                problems.error(*self.unusable[key])


def top_networks(model: Mapping[str, Any], stack: str, problems: Problems) -> DeclaredNetworks:
    """The top-level ``networks`` of a resolved model as cluster networks (problems recorded, not raised)."""
    declared = model.get("networks")
    result = DeclaredNetworks()
    if declared is None:
        return result
    if not isinstance(declared, Mapping) or not all(isinstance(k, str) for k in declared):
        problems.error("networks", "expected a mapping of names")
        return result
    out = result.networks
    for key, conf in declared.items():
        path = f"networks.{key}"
        result.refused.add(key)  # until it is mapped
        with problems.check():
            conf = mapping(conf if conf is not None else {}, path, keys.TOP_NETWORK_KEYS)
            notes = result.notes.setdefault(key, [])
            opts: Any = conf.get("driver_opts")
            encrypted = isinstance(opts, Mapping) and "encrypted" in opts
            for ignored, reason in _IGNORED_TOP.items():
                value = conf.get(ignored)
                if ignored == "driver_opts" and encrypted:
                    value = {k: v for k, v in opts.items() if k != "encrypted"}  # named on its own below
                if value not in (None, {}, []) and value != _AS_DONE.get(ignored):
                    notes.append(f"ignoring {path}.{ignored}: {reason}")
            if encrypted:  # Swarm: IPsec on the overlay's data path
                notes.append(
                    f"{path}.driver_opts.encrypted: container traffic on this network is NOT encrypted "
                    "(p2porch's VXLAN overlay has no data-path encryption; run it over a network you "
                    "trust, see docs/security.md)"
                )
            external = conf.get("external", False)
            external_name = None
            if isinstance(external, Mapping):  # the legacy form external: {name: X}
                ext = mapping(external, f"{path}.external", ("name",))
                external_name = string(ext["name"], f"{path}.external.name") if "name" in ext else None
                external = True
            else:
                external = boolean(external, f"{path}.external")
            driver = conf.get("driver")
            if driver is not None:
                driver = string(driver, f"{path}.driver")
                if external:  # looked up, never created: Compose and Swarm ignore its driver too
                    notes.append(f"ignoring {path}.driver: an external network already exists")
                elif driver not in _DRIVERS_MAPPED:
                    result.unusable[key] = (
                        f"{path}.driver",
                        f"driver {driver!r} is not supported (p2porch networks are overlays)",
                    )
                elif driver == "bridge":
                    notes.append(
                        f"{path}.driver: bridge becomes a cluster overlay network (as in a Swarm stack)"
                    )
            name = string(conf["name"], f"{path}.name") if "name" in conf else external_name
            if not name:  # unset, or empty as an unset variable leaves it: the default, as Compose and Swarm
                name = external_name or None
            if name is None:
                name = key if external else f"{stack}_{key}"
            check_network_name(name, f"{path}.name")
            reserved_ok = external and (name == "p2porch" or name in NODE_LOCAL_NETWORKS)
            if name in RESERVED_NETWORK_NAMES and not reserved_ok:
                result.unusable[key] = (f"{path}.name", f"network name {name!r} is reserved")
            out[key] = StackNetwork(
                key=key,
                name=name,
                external=external,
                internal=boolean(conf.get("internal", False), f"{path}.internal"),
                attachable=boolean(conf.get("attachable", False), f"{path}.attachable"),
                labels={} if external else key_values(conf.get("labels") or {}, f"{path}.labels"),
            )
            result.refused.discard(key)
    return result


def default_network(stack: str, declared: Mapping[str, StackNetwork]) -> StackNetwork:
    """The stack's ``default`` network: as declared, or ``<stack>_default`` (implicit, as in Compose)."""
    return declared.get(DEFAULT_KEY) or StackNetwork(DEFAULT_KEY, f"{stack}_{DEFAULT_KEY}")


def service_attachments(
    value: Any,
    path: str,
    declared: Mapping[str, StackNetwork],
    ignore: Callable[[str, str], None],
    refused: Collection[str] = (),
) -> list[tuple[str, list[str]]]:
    """``(network key, aliases)`` of a service's ``networks`` (list or mapping form); unknown keys raise.
    A ``refused`` network (declared, its own error already recorded) is left out without a second one.
    What is ignored goes to ``ignore(key, reason)`` (``networks.lan.ipv4_address``), so that the stack
    warns once per key, naming every service that writes it."""
    out: list[tuple[str, list[str]]] = []
    if isinstance(value, Mapping):
        for key, conf in value.items():
            where = f"{path}.{key}"
            aliases: list[str] = []
            if conf is not None:
                conf = mapping(conf, where, keys.SERVICE_NETWORK_KEYS)
                for ignored, reason in _IGNORED_SERVICE.items():
                    if conf.get(ignored) is not None:
                        ignore(f"networks.{key}.{ignored}", reason)
                aliases = [
                    string(a, f"{where}.aliases[{i}]")
                    for i, a in enumerate(list_(conf.get("aliases") or [], where))
                ]
            out.append((str(key), aliases))
    else:
        out = [(string(n, f"{path}[{i}]"), []) for i, n in enumerate(list_(value, path))]
    out = [(key, aliases) for key, aliases in out if key not in refused]
    for key, _ in out:
        if key != DEFAULT_KEY and key not in declared:
            raise err(f"{path}.{key}", "network is not declared in the top-level networks")
    kept: list[tuple[str, list[str]]] = []
    for key, aliases in out:
        local = node_local_reason(declared[key]) if key in declared else None
        if local is not None:
            ignore(f"networks.{key}", local)
        else:
            kept.append((key, aliases))
    return kept or [(DEFAULT_KEY, [])]


#: what a service on the host network is, said once per stack
HOST_NETWORK_NOTE = (
    "the tasks share their node's network namespace (docker run --network host): no overlay address, no "
    "virtual address, ports bound on the node; other services' tasks do not resolve its name nor its "
    "container_name (they share no network with it, as in Swarm): they reach it at <node>.node.<domain> and "
    "its port"
)


def host_networking(conf: Mapping[str, Any], declared: Mapping[str, StackNetwork]) -> bool:
    """A service that shares its node's network namespace (``docker run --network host``): Compose's
    ``network_mode: host`` without ``networks`` (a Swarm file writing both keeps its ``networks``, as
    ``docker stack deploy`` ignores ``network_mode``), or Swarm's external ``host`` network alone."""
    attached = conf.get("networks")
    if isinstance(conf.get("network_mode"), str) and conf["network_mode"].strip() == "host":
        return not attached
    names = list(attached) if isinstance(attached, Mapping | list) else []
    local = [declared.get(n) if isinstance(n, str) else None for n in names]
    return bool(local) and all(n is not None and n.external and n.name == HOST_NETWORK for n in local)


def on_host_network(spec: dict[str, Any], note: Callable[[str, str], None]) -> None:
    """``spec`` as Docker runs ``--network host``: on the host network, with no virtual address (endpoint
    mode dnsrr) and each port bound by the task's own processes on its node (mode host, published as the
    container port: Docker discards any other mapping; two entries that become the same port are one)."""
    spec["networks"] = [{"target": HOST_NETWORK, "aliases": []}]
    spec.setdefault("endpoint_mode", "dnsrr")
    if "publish" in spec:
        spec["publish"] = host_ports(spec["publish"], note)


def exposed_on_host(expose: Any, path: str) -> list[dict[str, Any]]:
    """A host-network service's ``expose`` entries (``9100``, ``8000-8002/udp``; their form is checked by
    the mapping) as the ports its tasks bind on their node: declared, so the scheduler places at most one
    task binding each on a node, as it does for its ``ports``. A port out of 1-65535 or a range over 1024
    ports is refused naming ``path[N]``, as ``ports`` refuses it. What a file declares neither way stays
    unknown."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(expose if isinstance(expose, list) else []):
        ports, _, protocol = str(item).partition("/")
        first, _, last = ports.partition("-")
        if protocol in ("", "tcp", "udp") and first.isdigit() and (not last or last.isdigit()):
            span = port_range(ports, f"{path}[{i}]")
            out.extend({"target": p, "published": p, "protocol": protocol or "tcp"} for p in span)
    return out


def host_ports(publish: list[dict[str, Any]], note: Callable[[str, str], None]) -> list[dict[str, Any]]:
    """Canonical port dicts as a task in the node's network namespace binds them: each its container
    port in host mode, a port named twice (``8080:80`` and ``80:80``) once."""
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for port in publish:
        if port.get("published") not in (None, port["target"]):
            note("ports on the host network", "a task binds its container port on the node: published as it")
        port.update(published=port["target"], mode="host")
        kept.setdefault((port["target"], port.get("protocol", "tcp"), port.get("host_ip", "")), port)
    return list(kept.values())
