"""Plain zone input for the cluster DNS and its compiled, lookup-ready form (pure).

`ZoneData` is what the daemon builds from committed cluster state (a few lines of adaptation);
`compile_zone` turns it into `CompiledZone`, a dict from lower-cased label tuples to the records of
that name. Compiling never raises on odd input: entries whose names cannot be DNS names or whose
addresses are not IPv4 are skipped and listed in `CompiledZone.skipped`. This module does no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from p2porch.errors import ConfigError

Labels = tuple[bytes, ...]

DEFAULT_DOMAIN = "p2p"
DEFAULT_TTL_S = 5
_MAX_LABEL_BYTES = 63
_MAX_NAME_BYTES = 253


@dataclass(frozen=True)
class PortEntry:
    """A port a task publishes or declares; named in SRV as `_<number>._<protocol>.<service>`."""

    number: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class TaskEntry:
    """One task of a service as DNS sees it. Only running and healthy tasks are answered."""

    slot: int | str
    address: str
    healthy: bool = True
    running: bool = True
    ports: tuple[PortEntry, ...] = ()
    site: str = ""  # the region of the node it runs on ("" when unlabelled)

    @property
    def answerable(self) -> bool:
        return self.running and self.healthy


@dataclass(frozen=True)
class ZoneData:
    """Everything the resolver answers from: services and their tasks, nodes and their addresses.

    `version` is the cluster state version (it becomes the SOA serial). `nameservers` are the
    addresses published as `ns.<domain>` A records (the NS target of the apex); may be empty.
    `local_site` is the region of the node this zone answers on (its clients are its containers):
    a service name answers the tasks of that site when it has any, else every task
    (``tasks.<service>`` and slot names always answer every task).
    """

    domain: str = DEFAULT_DOMAIN
    services: Mapping[str, Sequence[TaskEntry]] = field(default_factory=dict)
    nodes: Mapping[str, str] = field(default_factory=dict)
    nameservers: tuple[str, ...] = ()
    version: int = 0
    local_site: str = ""
    #: service name -> its virtual address (endpoint mode vip): the name answers it, tasks.NAME the tasks
    vips: Mapping[str, str] = field(default_factory=dict)
    #: names of ``services`` or ``shared`` with a dot (network aliases such as ``db.internal``) also
    #: answered as asked, without the cluster domain, as Docker's DNS answers a container's aliases
    #: before forwarding
    bare: frozenset[str] = frozenset()
    #: a network alias several services hold (not in ``services``) -> those services (names in
    #: ``services``): the alias answers each one's VIP (a service without one: its near tasks),
    #: ``tasks.<alias>`` all their tasks (`compile_shared`)
    shared: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ZoneData:
        """Build from the JSON form used by zone files (see docs/dns.md); raises ConfigError."""
        try:
            services = {
                str(name): [
                    TaskEntry(
                        slot=t["slot"],
                        address=str(t["address"]),
                        healthy=bool(t.get("healthy", True)),
                        running=bool(t.get("running", True)),
                        site=str(t.get("site", "")),
                        ports=tuple(
                            PortEntry(int(p["number"]), str(p.get("protocol", "tcp")))
                            if isinstance(p, Mapping)
                            else PortEntry(int(p))
                            for p in t.get("ports", ())
                        ),
                    )
                    for t in tasks
                ]
                for name, tasks in dict(raw.get("services", {})).items()
            }
            return cls(
                domain=str(raw.get("domain", DEFAULT_DOMAIN)),
                services=services,
                nodes={str(k): str(v) for k, v in dict(raw.get("nodes", {})).items()},
                nameservers=tuple(str(a) for a in raw.get("nameservers", ())),
                version=int(raw.get("version", 0)),
                local_site=str(raw.get("local_site", "")),
                vips={str(k): str(v) for k, v in dict(raw.get("vips", {})).items()},
                bare=frozenset(str(n) for n in raw.get("bare", ())),
                shared={str(k): tuple(str(h) for h in v) for k, v in dict(raw.get("shared", {})).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"invalid zone data: {exc!r}", field="zone") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "version": self.version,
            "nameservers": list(self.nameservers),
            "local_site": self.local_site,
            "nodes": dict(self.nodes),
            "vips": dict(self.vips),
            "bare": sorted(self.bare),
            "shared": {alias: list(holders) for alias, holders in self.shared.items()},
            "services": {
                name: [
                    {
                        "slot": t.slot,
                        "address": t.address,
                        "healthy": t.healthy,
                        "running": t.running,
                        "site": t.site,
                        "ports": [{"number": p.number, "protocol": p.protocol} for p in t.ports],
                    }
                    for t in tasks
                ]
                for name, tasks in self.services.items()
            },
        }


@dataclass(slots=True)
class NameRecords:
    """The records one owner name holds; an empty one is an empty non-terminal (exists, no data)."""

    a: list[str] = field(default_factory=list)
    srv: list[tuple[int, Labels]] = field(default_factory=list)  # (port, target)
    ptr: list[Labels] = field(default_factory=list)
    rotate: bool = False  # A answers of service names are rotated per query


@dataclass(frozen=True)
class CompiledZone:
    """Lookup-ready zone: `names` for the cluster domain, `reverse` for PTR of task addresses."""

    domain: Labels
    names: Mapping[Labels, NameRecords]
    reverse: Mapping[Labels, NameRecords]
    serial: int
    skipped: tuple[str, ...] = ()
    #: owner names (with the domain) that a query without the domain also gets (``ZoneData.bare``)
    bare: frozenset[Labels] = frozenset()


def to_labels(name: str) -> Labels | None:
    """Lower-cased label tuple of a dotted name, or None if it cannot be a DNS name."""
    text = name.strip().rstrip(".")
    if not text:
        return ()
    try:
        labels = tuple(part.encode("ascii").lower() for part in text.split("."))
    except UnicodeEncodeError:
        return None
    if any(not lab or len(lab) > _MAX_LABEL_BYTES for lab in labels):
        return None
    if sum(len(lab) + 1 for lab in labels) + 1 > _MAX_NAME_BYTES + 2:
        return None
    return labels


def reverse_labels(address: str) -> Labels | None:
    """`d.c.b.a.in-addr.arpa` labels for an IPv4 address, or None if not IPv4."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return None
    return tuple(str(o).encode() for o in reversed(ip.packed)) + (b"in-addr", b"arpa")


def _valid_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def _task_order(task: TaskEntry) -> tuple[int, int, str, str]:
    slot = task.slot
    if isinstance(slot, int) and not isinstance(slot, bool):
        return (0, slot, "", task.address)
    return (1, 0, str(slot), task.address)


def near_tasks(tasks: Sequence[TaskEntry], local_site: str) -> list[TaskEntry]:
    """The answerable tasks a service name answers: those in ``local_site`` if it has any, else all
    (topology-aware answers: clients reach a task in their own site, across the WAN only without one)."""
    answerable = [t for t in tasks if t.answerable]
    if local_site:
        local = [t for t in answerable if t.site == local_site]
        if local:
            return local
    return answerable


def compile_zone(zone: ZoneData) -> CompiledZone:
    """Index `zone` by owner name. Never raises on odd entries; skipped ones are listed."""
    skipped: list[str] = []
    domain = to_labels(zone.domain)
    if not domain:
        raise ConfigError(f"invalid DNS domain {zone.domain!r}", field="domain")
    names: dict[Labels, NameRecords] = {}
    reverse: dict[Labels, NameRecords] = {}
    node_at = name_maker(names, domain)
    compile_base(zone, domain, node_at, skipped)
    for service in sorted(zone.services):
        compile_service(zone, service, domain, node_at, reverse, skipped)
    for alias in sorted(zone.shared):
        compile_shared(zone, alias, domain, node_at, skipped)
    return compiled_zone(zone, domain, names, reverse, skipped)


def compiled_zone(
    zone: ZoneData,
    domain: Labels,
    names: dict[Labels, NameRecords],
    reverse: dict[Labels, NameRecords],
    skipped: list[str],
) -> CompiledZone:
    """The ``CompiledZone`` of ``zone`` with these names (its serial and bare names from ``zone``)."""
    return CompiledZone(
        domain=domain,
        names=names,
        reverse=reverse,
        serial=zone.version & 0xFFFFFFFF,
        skipped=tuple(skipped),
        bare=bare_names(zone, domain, names),
    )


def bare_names(zone: ZoneData, domain: Labels, names: Mapping[Labels, NameRecords]) -> frozenset[Labels]:
    """The owner names of ``zone.bare`` that were compiled (a dot in them, a service of the zone)."""
    out: set[Labels] = set()
    for name in zone.bare:
        labels = to_labels(name) if name in zone.services or name in zone.shared else None
        if labels and len(labels) > 1 and labels + domain in names:
            out.add(labels + domain)
    return frozenset(out)


def name_maker(names: dict[Labels, NameRecords], domain: Labels) -> Callable[[Labels], NameRecords]:
    """``node_at(labels)``: the records of a name in ``names``, created with its ancestors if new."""

    def node_at(labels: Labels) -> NameRecords:
        rec = names.get(labels)
        if rec is None:
            rec = names[labels] = NameRecords()
            # Every ancestor up to the apex exists (empty non-terminals answer NODATA, not NXDOMAIN).
            for i in range(1, len(labels) - len(domain)):
                names.setdefault(labels[i:], NameRecords())
        return rec

    return node_at


def compile_base(
    zone: ZoneData, domain: Labels, node_at: Callable[[Labels], NameRecords], skipped: list[str]
) -> None:
    """The apex, the nameservers and the node names of ``zone``."""
    node_at(domain)
    ns = nameserver_records(zone)
    if ns is not None:
        node_at((b"ns",) + domain).a.extend(ns.a)

    for node_name in sorted(zone.nodes):
        address = zone.nodes[node_name]
        owner = node_owner(node_name, address, zone.domain, domain)
        if owner is None:
            skipped.append(f"node {node_name!r}")
            continue
        node_at(owner).a.append(address)


def node_owner(node_name: str, address: str, domain_text: str, domain: Labels) -> Labels | None:
    """The owner name of node ``node_name`` (``<node>.node.<domain>``), or None when it is skipped (a
    name that cannot be a DNS name, an address that is not IPv4)."""
    labels = to_labels(node_name)
    if not labels or not _valid_ipv4(address) or to_labels(f"{node_name}.node.{domain_text}") is None:
        return None
    return labels + (b"node",) + domain


def nameserver_records(zone: ZoneData) -> NameRecords | None:
    """The records of ``ns.<domain>``: the valid addresses of ``zone.nameservers`` (None: no name)."""
    if not zone.nameservers:
        return None
    return NameRecords(a=[a for a in zone.nameservers if _valid_ipv4(a)])


def _service_names(
    zone: ZoneData,
    name: str,
    kind: str,
    domain: Labels,
    node_at: Callable[[Labels], NameRecords],
    skipped: list[str],
) -> tuple[Labels, NameRecords, NameRecords] | None:
    """The owner name of ``name`` (a service's or shared alias's) and the records of it and of
    ``tasks.<name>``, both rotated; None (listed in ``skipped`` as ``kind``) when it is no DNS name."""
    svc = to_labels(name)
    if not svc or to_labels(f"tasks.{name}.{zone.domain}") is None:
        skipped.append(f"{kind} {name!r}")
        return None
    base = svc + domain
    svc_rec = node_at(base)
    tasks_rec = node_at((b"tasks",) + base)
    svc_rec.rotate = tasks_rec.rotate = True
    return base, svc_rec, tasks_rec


def _slot_label(task: TaskEntry) -> Labels | None:
    """The one label of ``task``'s slot name, None when it has no valid slot or address (such a task is
    not answered: `compile_service` lists it as skipped)."""
    slot = to_labels(str(task.slot))
    return slot if slot is not None and len(slot) == 1 and _valid_ipv4(task.address) else None


def compile_service(
    zone: ZoneData,
    service: str,
    domain: Labels,
    node_at: Callable[[Labels], NameRecords],
    reverse: dict[Labels, NameRecords],
    skipped: list[str],
) -> None:
    """Add the names of one service of ``zone`` through ``node_at`` (which creates a name and its
    ancestors) and its PTR names to ``reverse``; odd entries go to ``skipped``."""
    named = _service_names(zone, service, "service", domain, node_at, skipped)
    if named is None:
        return
    base, svc_rec, tasks_rec = named
    vip = zone.vips.get(service, "")
    if vip and _valid_ipv4(vip):  # one stable address, balanced per connection by the kernel
        svc_rec.a.append(vip)
        svc_rec.rotate = False
        rev = reverse_labels(vip)
        if rev is not None:
            reverse.setdefault(rev, NameRecords()).ptr.append(base)
    elif vip:
        skipped.append(f"vip {service!r} {vip!r}")
        vip = ""
    tasks = sorted(zone.services[service], key=_task_order)
    near = {t.address for t in near_tasks(tasks, zone.local_site)}
    srv_targets: dict[tuple[int, bytes], set[Labels]] = {}
    for task in tasks:
        slot = _slot_label(task)
        if slot is None:
            skipped.append(f"task {service!r} slot {task.slot!r}")
            continue
        if not task.answerable:
            continue
        slot_name = slot + base
        if task.address not in tasks_rec.a:
            tasks_rec.a.append(task.address)
            if not vip and task.address in near:
                svc_rec.a.append(task.address)
        slot_rec = node_at(slot_name)
        slot_rec.rotate = True
        if task.address not in slot_rec.a:
            slot_rec.a.append(task.address)
        rev = reverse_labels(task.address)
        if rev is not None:
            reverse.setdefault(rev, NameRecords()).ptr.append(slot_name)
        for port in task.ports:
            proto = port.protocol.lower().encode("ascii", "replace")
            if not 0 < port.number < 65536 or proto not in (b"tcp", b"udp"):
                skipped.append(f"port {service!r} {port.number}/{port.protocol}")
                continue
            srv_targets.setdefault((port.number, proto), set()).add(slot_name)
    for (number, proto), targets in sorted(srv_targets.items()):
        srv_name = (b"_%d" % number, b"_" + proto) + base
        node_at(srv_name).srv.extend((number, t) for t in sorted(targets))


def compile_shared(
    zone: ZoneData, alias: str, domain: Labels, node_at: Callable[[Labels], NameRecords], skipped: list[str]
) -> None:
    """Add the names of ``alias``, a network alias the services ``zone.shared[alias]`` hold, as Docker's
    DNS answers an alias of several services: ``<alias>`` each holder's VIP (a holder without one: its
    near tasks, as its own name answers them), ``tasks.<alias>`` every holder's answerable tasks (those
    ``tasks.<holder>`` answers), both rotated. No slot, SRV or PTR names: those stay with each holder's
    own name. A holder not in ``services`` is passed over."""
    named = _service_names(zone, alias, "alias", domain, node_at, skipped)
    if named is None:
        return
    _, svc_rec, tasks_rec = named
    for holder in zone.shared[alias]:
        entries = zone.services.get(holder)
        if entries is None:
            continue
        vip = zone.vips.get(holder, "")
        vip = vip if vip and _valid_ipv4(vip) else ""
        if vip and vip not in svc_rec.a:
            svc_rec.a.append(vip)
        tasks = sorted(entries, key=_task_order)
        near = {t.address for t in near_tasks(tasks, zone.local_site)}
        for task in tasks:
            if _slot_label(task) is None or not task.answerable:
                continue
            if task.address not in tasks_rec.a:
                tasks_rec.a.append(task.address)
            if not vip and task.address in near and task.address not in svc_rec.a:
                svc_rec.a.append(task.address)
