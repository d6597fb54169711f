"""Compose ``links`` and ``container_name`` (pure): the other names a service's tasks answer to.

Owns what Compose's legacy links still do on a user-defined network, which files rely on (an
application configured with ``es:9300`` and ``links: [elasticsearch:es]``): the linking service
resolves the alias to the linked one, and only the linking service does (as a Compose link is seen by
the linking container alone): the link goes into the linking service's spec (``links``:
``SERVICE:ALIAS`` with the cluster name of the linked service), which the cluster DNS answers to that
service's tasks only (``dns/scope.py``), so two services may give one alias different targets. A link
without an alias (``db``, ``db:db``) adds nothing: service names resolve already. An alias that names
another service of the stack, that the service already links to another service, or that the two
services have no shared network to resolve on is not added, with a warning naming the service and the
link. A ``container_name`` (``mysql`` for a service
``storage``, which the others reach as ``MYSQL_HOST=mysql``) is answered by Docker's DNS on the
container's networks; p2porch names task containers itself, so the name becomes a network alias of
the service on each of its networks, under the same rules; so does the name of a service named with
dots (``orderer.example.com``), which the cluster DNS answers as asked (docs/dns.md). Never reads
cluster state and never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..errors import ConfigError
from ..model.netrefs import ALIAS_RE as _ALIAS_RE  # the aliases Docker's DNS answers, dotted ones too
from ..model.netrefs import HOST_NETWORK
from .problems import Problems
from .values import list_, string


class _Service(Protocol):
    @property
    def short_name(self) -> str: ...

    @property
    def spec(self) -> dict[str, Any]: ...


def link_aliases(services: Sequence[_Service], confs: Mapping[str, Any], problems: Problems) -> None:
    """Add every service's ``container_name`` to its network entries, and its ``links`` to its spec's
    ``links`` (in place)."""
    specs = {s.short_name: s.spec for s in services}
    shorts = {short.lower() for short in confs}
    owners: dict[tuple[str, str], str] = {}  # (network, alias) -> the service it resolves to
    _dotted_names(services, owners)
    _container_names(services, confs, shorts, owners, problems)
    refused = _refused(confs, problems)
    for short, conf in confs.items():
        if short not in specs and short not in refused and isinstance(conf, Mapping) and conf.get("links"):
            problems.warn(f"ignoring services.{short}.links: {short} runs in another service's task")
    for service in services:
        conf = confs.get(service.short_name)
        raw = conf.get("links") if isinstance(conf, Mapping) else None
        if raw is None:
            continue
        path = f"services.{service.short_name}.links"
        linked: dict[str, str] = {}  # alias -> the service it resolves to, for this service's tasks
        try:
            entries = [string(e, f"{path}[{i}]") for i, e in enumerate(list_(raw, path))]
        except ConfigError as exc:
            problems.add(exc)
            continue
        for i, entry in enumerate(entries):
            target, _, alias = entry.partition(":")
            alias = alias.lower()
            if not alias or alias == target.lower():
                continue
            where = f"{path}[{i}]"
            problem = _why_not(alias, target, service, specs, shorts)
            if problem:
                problems.warn(f"ignoring {where} ({entry}): {problem}")
                continue
            mine = {net["target"] for net in service.spec.get("networks") or ()}
            shared = [net for net in specs[target].get("networks") or () if net["target"] in mine]
            if not shared:
                problems.warn(
                    f"ignoring {where} ({entry}): {service.short_name} and {target} share no network, "
                    f"so {alias!r} cannot resolve"
                )
                continue
            owner = linked.setdefault(alias, target)
            if owner != target:
                problems.warn(f"ignoring {where} ({entry}): {alias!r} already links to {owner}")
            elif f"{specs[target]['name']}:{alias}" not in service.spec.setdefault("links", []):
                service.spec["links"].append(f"{specs[target]['name']}:{alias}")


def _dns_networks(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The networks where the service's names are answered: not the host network (no address there)."""
    return [net for net in spec.get("networks") or () if net["target"] != HOST_NETWORK]


def _dotted_names(services: Sequence[_Service], owners: dict[tuple[str, str], str]) -> None:
    """A Compose service named with dots (``orderer.example.com``, Hyperledger Fabric's test network)
    answers that name as asked on its networks, as Docker's DNS answers it: a network alias (its
    ``<short>.<stack>`` name only answers through the search domains, which a resolver tries for a name
    with dots only after asking it as written, and musl never)."""
    for service in services:
        alias = service.short_name.lower()
        if "." not in alias or not _ALIAS_RE.match(alias):
            continue
        for net in _dns_networks(service.spec):
            owners.setdefault((net["target"], alias), service.short_name)
            if alias not in net["aliases"]:
                net["aliases"].append(alias)


def _container_names(
    services: Sequence[_Service],
    confs: Mapping[str, Any],
    shorts: set[str],
    owners: dict[tuple[str, str], str],
    problems: Problems,
) -> None:
    for service in services:
        conf = confs.get(service.short_name)
        name = conf.get("container_name") if isinstance(conf, Mapping) else None
        if not name or not isinstance(name, str) or name.lower() == service.short_name.lower():
            continue  # empty (an unset variable): nothing to answer; the service's own name: already
        alias, where = name.lower(), f"services.{service.short_name}.container_name"
        if alias in shorts:
            problem = f"{alias!r} is the name of another service of the stack"
        elif not _ALIAS_RE.match(alias):
            problem = f"{alias!r} is not a name the cluster DNS answers"
        else:
            problem = None
        if problem:
            problems.warn(f"ignoring {where} ({name}): {problem}")
            continue
        for net in _dns_networks(service.spec):
            owner = owners.setdefault((net["target"], alias), service.short_name)
            if owner != service.short_name:
                problems.warn(
                    f"ignoring {where} ({name}): {alias!r} already resolves to {owner} on that network"
                )
            elif alias not in net["aliases"]:
                net["aliases"].append(alias)


def _why_not(
    alias: str, target: str, service: _Service, specs: Mapping[str, Any], shorts: set[str]
) -> str | None:
    """Why the alias of a link cannot be added, or None."""
    if target not in specs:
        return f"{target!r} is not a service deployed by this stack, so the alias does not resolve"
    if alias in shorts:
        return f"{alias!r} is the name of another service of the stack"
    if not _ALIAS_RE.match(alias):
        return f"{alias!r} is not a name the cluster DNS answers"
    if service.short_name == target:
        return "a service linking to itself"
    return None


def _refused(confs: Mapping[str, Any], problems: Problems) -> set[str]:
    """The services a problem names: a refused service has no spec either, yet is no group member."""
    fields = [e.field or "" for e in problems.errors]
    return {s for s in confs if any(f == f"services.{s}" or f.startswith(f"services.{s}.") for f in fields)}


__all__ = ["link_aliases"]
