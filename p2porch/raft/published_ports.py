"""Assigned ingress ports: which published port an ingress port without one gets (pure, deterministic).

``--publish 80`` / Compose ``"80"`` publish container port 80 in ingress mode on a port the swarm picks
from ``DYNAMIC_PORTS`` (Swarm's 30000-32767). The FSM decides it when it applies the service's create or
update, so every replica of the log computes the same number: the lowest port of the range that no other
service publishes (in either mode, chosen or assigned) and this service does not publish itself. An update
keeps a container port's assignment while the spec still publishes that port without a number; ``rm``
frees it with the service. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ConflictError
from ..model import Service, ServiceSpec

DYNAMIC_PORTS = range(30000, 32768)  # Swarm's dynamic range, 30000-32767 inclusive

#: ``(protocol, target port, published port)`` of each assigned port, by protocol and target
Assignment = tuple[tuple[str, int, int], ...]


def dynamic_keys(spec: ServiceSpec) -> list[tuple[str, int]]:
    """``(protocol, target)`` of every ingress port the spec publishes without a number, in spec order."""
    keys: list[tuple[str, int]] = []
    for port in spec.all_publish:
        if port.dynamic and (port.protocol, port.target) not in keys:
            keys.append((port.protocol, port.target))
    return keys


def assign_ports(
    keys: Iterable[tuple[str, int]],
    current: Mapping[tuple[str, int], int],
    taken: Iterable[tuple[str, int]],
    ports: range = DYNAMIC_PORTS,
) -> Assignment:
    """Each key's kept port (``current``, when it is not taken) or the lowest free port of ``ports`` for
    its protocol; raises ConflictError (field ``publish``) when the range has none left."""
    used = set(taken)
    out: list[tuple[str, int, int]] = []
    fresh: list[tuple[str, int]] = []
    for protocol, target in keys:
        kept = current.get((protocol, target))
        if kept is not None and (protocol, kept) not in used:
            used.add((protocol, kept))
            out.append((protocol, target, kept))
        else:
            fresh.append((protocol, target))
    for protocol, target in fresh:
        number = next((p for p in ports if (protocol, p) not in used), None)
        if number is None:
            raise ConflictError(
                f"--publish: no free port left in {ports.start}-{ports.stop - 1} to assign to container "
                f"port {target}/{protocol} (every one is published: give a published port, "
                f"e.g. --publish 8080:{target})",
                field="--publish",
            )
        used.add((protocol, number))
        out.append((protocol, target, number))
    return tuple(sorted(out, key=lambda a: (a[0], a[1])))


def ports_taken(services: Iterable[Service], service_id: str, spec: ServiceSpec) -> set[tuple[str, int]]:
    """``(protocol, port)`` published by every other service (chosen in either mode, or assigned) and
    chosen by ``spec`` itself: an assigned port must collide with none."""
    taken = {(p.protocol, p.published) for p in spec.all_publish if p.published is not None}
    for other in services:
        if other.service_id == service_id:
            continue
        taken.update((p.protocol, p.published) for p in other.spec.all_publish if p.published is not None)
        taken.update((protocol, number) for protocol, _, number in other.assigned_ports)
    return taken


def service_ports(
    services: Iterable[Service], service_id: str, spec: ServiceSpec, current: Assignment = ()
) -> Assignment:
    """The assignment the FSM stores for ``spec`` (``current``: the service's before this write). When
    every port keeps its number and the spec chooses none of them, no other service is read (the leader
    updates services often; no other service can have taken an assigned port: ``check_chosen_ports``)."""
    keys = dynamic_keys(spec)
    if not keys:
        return ()
    kept = {(protocol, target): number for protocol, target, number in current}
    chosen = {(p.protocol, p.published) for p in spec.all_publish if p.published is not None}
    if all(k in kept and (k[0], kept[k]) not in chosen for k in keys):
        return tuple(sorted((protocol, target, kept[protocol, target]) for protocol, target in keys))
    return assign_ports(keys, kept, ports_taken(services, service_id, spec))


def _chosen_ingress(spec: ServiceSpec | None) -> list[tuple[str, int]]:
    if spec is None:
        return []
    return [(p.protocol, p.published) for p in spec.ingress_ports if p.published is not None]


def check_chosen_ports(
    services: Iterable[Service], service_id: str, spec: ServiceSpec, before: ServiceSpec | None = None
) -> None:
    """Refuse a chosen ingress port that another service was assigned (Swarm: "port '30000' is already in
    use by service 'web' (ID) as an ingress port"): the API checks it first, this closes the race of two
    writes in flight. Ports ``before`` (the service's spec until this write) chose too were checked when
    they were written: with none new, no other service is read."""
    chosen = _chosen_ingress(spec)
    if not set(chosen) - set(_chosen_ingress(before)):
        return
    assigned = {
        (protocol, number): other
        for other in services
        if other.service_id != service_id
        for protocol, _, number in other.assigned_ports
    }
    for protocol, number in chosen:
        other = assigned.get((protocol, number))
        if other is not None:
            raise ConflictError(assigned_port_in_use(number, protocol, other), field="--publish")


def assigned_port_in_use(number: int, protocol: str, owner: Service) -> str:
    """Docker's refusal of a chosen port that another service holds, with the protocol and where it came
    from."""
    return (
        f"--publish: port '{number}' ({protocol}) is already in use by service '{owner.name}' "
        f"({owner.service_id}) as an ingress port (assigned to it from {DYNAMIC_PORTS.start}-"
        f"{DYNAMIC_PORTS.stop - 1}: choose another port)"
    )


def endpoint_ports(service: Service) -> list[dict[str, object]]:
    """The service's ports as they are served (Docker's ``Endpoint.Ports``): the spec's, with each assigned
    port's number filled in and marked ``assigned``; a host-mode port without a number stays ``None`` (the
    engine picks one per task)."""
    out: list[dict[str, object]] = []
    for port in service.spec.all_publish:
        view: dict[str, object] = {**port.to_dict(), "mode": port.mode}
        if port.dynamic:
            view["published"] = service.published_port(port)
            view["assigned"] = True
        out.append(view)
    return out
