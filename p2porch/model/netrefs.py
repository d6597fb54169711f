"""A service's attachments to networks (pure): which networks its tasks are on, and their aliases there.

A spec without attachments is on the cluster's default network (:data:`DEFAULT_NETWORK`, today's
behaviour: every such service reaches every other). Names are checked for shape here; whether a
network exists is checked where the spec is written (control plane and FSM).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError
from .placement import NAME_RE as SERVICE_NAME_RE

#: the network of services that name none (the node's ``p2porch`` Docker network and its leases)
DEFAULT_NETWORK = "p2porch"
#: the node's own network namespace (Docker's ``--network host``): a task on it has no overlay address
HOST_NETWORK = "host"
#: names no user network may take (Docker's built-ins and p2porch's own)
RESERVED_NETWORK_NAMES = frozenset({DEFAULT_NETWORK, "ingress", HOST_NETWORK, "bridge", "none"})
NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: DNS names as Docker's embedded DNS answers them: labels of letters, digits, ``-`` and ``_`` (Compose
#: service names and aliases such as ``pg_cluster`` are answered as written, lowercased)
ALIAS_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
MAX_NETWORKS_PER_SERVICE = 16
MAX_ALIASES = 16
MAX_LINKS = 64


def _err(field: str, message: str) -> ConfigError:
    return ConfigError(f"{field}: {message}", field=field)


def check_network_name(name: Any, field: str = "name") -> str:
    """``name`` if it can name a network: 1-63 letters, digits, ``_``, ``.``, ``-``, starting alphanumeric."""
    if not isinstance(name, str) or not NETWORK_NAME_RE.match(name):
        raise _err(field, f"{name!r} is not a network name (1-63 letters, digits, '_', '.', '-')")
    return name


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """One network a service's tasks are on, and the extra names they answer to there."""

    target: str
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "aliases": list(self.aliases)}


def _aliases(value: Any, field: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or len(items) > MAX_ALIASES:
        raise _err(field, f"must be a list of at most {MAX_ALIASES} names")
    out: list[str] = []
    for i, alias in enumerate(items):
        if not isinstance(alias, str) or not ALIAS_RE.match(alias.lower()):
            raise _err(f"{field}[{i}]", f"{alias!r} is not a DNS name")
        if alias.lower() not in out:
            out.append(alias.lower())
    return tuple(out)


def parse_attachment(value: Any, field: str) -> NetworkAttachment:
    """``NAME``, ``name=NAME,alias=A[,alias=B]`` (Docker's ``--network``) or ``{"target", "aliases"}``."""
    if isinstance(value, str) and "=" in value:
        target = ""
        aliases: list[str] = []
        for part in value.split(","):
            key, sep, val = part.partition("=")
            key = key.strip().lower()
            if not sep or not val:
                raise _err(field, f"{part!r} is not key=value")
            if key in ("name", "target"):
                target = val
            elif key == "alias":
                aliases.append(val)
            else:
                raise _err(field, f"unknown option {key!r} (use name=NETWORK,alias=NAME)")
        return NetworkAttachment(
            check_network_name(target, f"{field}.name"), _aliases(aliases, f"{field}.alias")
        )
    if isinstance(value, str):
        return NetworkAttachment(check_network_name(value, field))
    if isinstance(value, Mapping):
        unknown = set(value) - {"target", "name", "aliases"}
        if unknown:
            raise _err(field, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        target = value.get("target", value.get("name"))
        return NetworkAttachment(
            check_network_name(target, f"{field}.target"),
            _aliases(value.get("aliases") or [], f"{field}.aliases"),
        )
    raise _err(field, f"expected a network name or a map, got {type(value).__name__}")


def parse_attachments(value: Any, field: str = "networks") -> tuple[NetworkAttachment, ...]:
    """A whole ``networks`` list; the same network twice is refused."""
    if value is None:
        return ()
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        value = [value]
    if len(value) > MAX_NETWORKS_PER_SERVICE:
        raise _err(field, f"at most {MAX_NETWORKS_PER_SERVICE} networks")
    out: list[NetworkAttachment] = []
    for i, item in enumerate(value):
        attachment = parse_attachment(item, f"{field}[{i}]")
        if any(a.target == attachment.target for a in out):
            raise _err(f"{field}[{i}]", f"network {attachment.target!r} is named twice")
        out.append(attachment)
    host = [a for a in out if a.target == HOST_NETWORK]
    if host and (len(out) > 1 or host[0].aliases):
        raise _err(
            field,
            f"the {HOST_NETWORK} network is a task's only network and has no aliases: the task shares its "
            "node's network namespace",
        )
    return tuple(out)


def on_host_network(attachments: Sequence[NetworkAttachment]) -> bool:
    """True for a service whose tasks share their node's network namespace (``--network host``)."""
    return any(a.target == HOST_NETWORK for a in attachments)


def check_host_network(endpoint_mode: str, publish: Sequence[Any], field: str = "publish") -> None:
    """What a service on the host network must say, as Docker runs it (ConfigError naming the field): no
    virtual address (endpoint mode dnsrr) and its ports (``field``: its own or a sidecar's) in host mode,
    each published as its own number (the task's processes bind the node's ports themselves)."""
    if endpoint_mode != "dnsrr":
        raise _err(
            "endpoint_mode", f"a service on the {HOST_NETWORK} network has no virtual address: use dnsrr"
        )
    for i, port in enumerate(publish):
        if port.ingress or port.published != port.target:
            raise _err(
                f"{field}[{i}]",
                f"a service on the {HOST_NETWORK} network binds its ports on the node itself: publish "
                f"{port.target}:{port.target} with mode=host",
            )


def host_network_defaults(spec: Any, endpoint_given: bool) -> Any:
    """What ``docker service create --network host`` leaves unsaid, as Swarm takes it: endpoint mode dnsrr
    (a task on the host network has no virtual address; Swarm allocates none) unless ``endpoint_given``,
    and a host-mode port without a published number published as its own (the task binds it on its
    node). ``spec`` (a ServiceSpec) unchanged off the host network."""
    if not on_host_network(spec.networks):
        return spec
    ports = tuple(
        replace(p, published=p.target) if not p.ingress and p.published is None else p for p in spec.publish
    )
    return replace(spec, publish=ports, endpoint_mode=spec.endpoint_mode if endpoint_given else "dnsrr")


def attached_networks(attachments: Sequence[NetworkAttachment]) -> tuple[str, ...]:
    """The networks a service's tasks are on: the named ones, or the default network."""
    return tuple(a.target for a in attachments) or (DEFAULT_NETWORK,)


@dataclass(frozen=True, order=True, slots=True)
class ServiceLink:
    """A Compose link: ``alias`` answers, to this service's tasks only, with the tasks of ``service``."""

    service: str
    alias: str

    def __str__(self) -> str:
        return f"{self.service}:{self.alias}"


def parse_links(value: Any, field: str = "links") -> tuple[ServiceLink, ...]:
    """``["SERVICE:ALIAS", ...]`` (Docker's ``HostConfig.Links`` form, with cluster service names); an alias
    named twice is refused (it would answer with two services)."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) > MAX_LINKS:
        raise _err(field, f"must be a list of at most {MAX_LINKS} SERVICE:ALIAS strings")
    out: list[ServiceLink] = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        service, sep, alias = item.partition(":") if isinstance(item, str) else ("", "", "")
        if not sep or not SERVICE_NAME_RE.match(service):
            raise _err(where, f"{item!r} is not SERVICE:ALIAS with a service name")
        if not ALIAS_RE.match(alias.lower()):
            raise _err(where, f"{alias!r} is not a DNS name")
        link = ServiceLink(service, alias.lower())
        if any(other.alias == link.alias for other in out):
            raise _err(where, f"alias {link.alias!r} is named twice")
        out.append(link)
    return tuple(out)
