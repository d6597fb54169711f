"""The dependencies a Compose service's other keys imply, as compose-go adds them to ``depends_on`` (pure).

Owns the one list both the deploy's start order (``compose.py``) and ``stack config``'s printed
``depends_on`` (``printed.py``) take: each ``links`` target and ``service:X`` of ``network_mode``/
``ipc``/``pid``/``uts``/``cgroup`` (compose-go marks them ``restart: true``), then each ``volumes_from``
service (not ``container:NAME``), in that order, each once; and the references Compose refuses for the
required dependency they imply (a service of an inactive profile, a link to no service). Never validates
an entry's form (the service mapping and ``volumes_from.py`` refuse bad ones, naming them) and never
reads anything but the mapping.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["INACTIVE", "NAMESPACE_KEYS", "implied_dependencies", "refused_references"]

#: why a reference to a service of an inactive profile is refused (docker compose: "service "X" depends
#: on undefined service "Y": invalid compose project", for ``depends_on`` and the dependencies implied)
INACTIVE = "is in no active profile: activate one (--profile)"

#: the keys whose ``service:X`` value makes compose-go add a dependency on X (restart: true)
NAMESPACE_KEYS = ("network_mode", "ipc", "pid", "uts", "cgroup")


def implied_dependencies(short: str, conf: Mapping[str, Any], known: Collection[str]) -> dict[str, bool]:
    """Service name -> compose-go's ``restart`` flag for each dependency ``conf`` (service ``short``'s
    Compose mapping) implies, first entry of a name kept; only names in ``known``, never ``short``."""
    implied: list[tuple[str, bool]] = []
    links = conf.get("links")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, str):
            implied.append((link.partition(":")[0], True))
    for key in NAMESPACE_KEYS:
        value = conf.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            implied.append((value.removeprefix("service:"), True))
    volumes_from = conf.get("volumes_from")
    for item in volumes_from if isinstance(volumes_from, list) else ():
        if isinstance(item, str) and not item.startswith("container:"):
            implied.append((item.partition(":")[0], False))
    out: dict[str, bool] = {}
    for name, restart in implied:
        if name in known and name != short:
            out.setdefault(name, restart)
    return out


def refused_references(
    conf: Mapping[str, Any], inactive: Collection[str], defined: Collection[str]
) -> list[tuple[str, str]]:
    """(key, why) of each ``links`` entry and ``service:X`` namespace naming a service of an inactive
    profile, or a ``links`` entry naming no service of the file: compose-go implies a required dependency
    on it, so Compose refuses the file ("depends on undefined service"), unless, for an inactive one, the
    service's ``depends_on`` says ``required: false`` for it (``volumes_from`` is checked where it is
    read, ``volumes_from.py``; an undefined ``service:X`` where the namespace is read, ``groups.py``)."""
    depends = conf.get("depends_on")
    optional = {
        name
        for name, entry in (depends.items() if isinstance(depends, Mapping) else ())
        if isinstance(entry, Mapping) and entry.get("required") is False
    }
    found: list[tuple[str, str]] = []
    links = conf.get("links")
    for i, link in enumerate(links if isinstance(links, list) else ()):
        if isinstance(link, str):
            found.append((f"links[{i}]", link.partition(":")[0]))
    for key in NAMESPACE_KEYS:
        value = conf.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            found.append((key, value.removeprefix("service:")))
    refused = []
    for key, name in found:
        if name in inactive and name not in optional:
            refused.append((key, f"service {name!r} {INACTIVE}"))
        elif name not in defined and name not in inactive and key.startswith("links"):
            refused.append(
                (key, f"service {name!r} is not defined (a container outside the stack: external_links)")
            )
    return refused
