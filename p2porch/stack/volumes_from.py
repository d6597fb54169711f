"""``volumes_from``: a service mounts the volumes of another service of the stack (pure).

Owns turning each ``volumes_from`` entry (``SERVICE[:ro|:rw]`` or ``container:NAME[:ro|:rw]``) into
mounts copied from the named service's spec, as Docker's ``--volumes-from`` copies a container's mount
points: its named volumes and binds (read-only with ``:ro``, otherwise as the source mounts them), and
what it has itself from ``volumes_from`` (resolved first; a cycle is an error). A mount of the service's
own at the same target wins, as the engine's own binds win over volumes-from. An anonymous volume or a
tmpfs belongs to each container and cannot be shared by the tasks of two services (warned, not
copied); a container outside the stack (``container:NAME``) is ignored with a warning. As in Compose,
each named service becomes a dependency (``service_started``: ``implied.py``). Never touches anything
but the specs it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..errors import ConfigError
from .implied import INACTIVE
from .values import err, list_, string

#: ``note(key, short, text)``: one warning line per text, naming the services it concerns
Note = Callable[[str, str, str], None]

KEY = "volumes_from"


def _entries(value: Any, path: str) -> list[tuple[str, str, bool | None, str]]:
    """``(kind, name, read_only, path)`` for each entry; ``kind`` is ``service`` or ``container``,
    ``read_only`` None when the entry names no mode."""
    out = []
    for i, item in enumerate(list_(value, path)):
        where = f"{path}[{i}]"
        parts = string(item, where).split(":")
        kind = "container" if parts[0] == "container" and len(parts) > 1 else "service"
        if kind == "container":
            parts = parts[1:]
        if len(parts) > 2 or not parts[0]:
            raise err(where, f"{item!r}: expected SERVICE[:ro|:rw] or container:NAME[:ro|:rw]")
        mode = parts[1] if len(parts) == 2 else None
        if mode not in (None, "ro", "rw"):
            raise err(where, f"{item!r}: mode {mode!r} is not supported (ro or rw)")
        out.append((kind, parts[0], None if mode is None else mode == "ro", where))
    return out


def _shareable(mount: Mapping[str, Any]) -> bool:
    return mount.get("type") == "bind" or (mount.get("type") == "volume" and bool(mount.get("source")))


def apply_volumes_from(
    specs: Mapping[str, dict[str, Any]],
    confs: Mapping[str, Any],
    skipped: set[str],
    note: Note,
    error: Callable[[ConfigError], None],
    *,
    inactive: Collection[str] = (),
) -> None:
    """Add to ``specs[short]["mounts"]`` what each service's ``volumes_from`` names. ``specs`` are the
    mapped services by short name, ``confs`` their Compose mappings, ``skipped`` the services not
    deployed (provider services, inactive profiles: ignored with a warning), ``inactive`` those inactive
    profiles dropped (refused, as Compose refuses the dependency it implies on them)."""
    done: dict[str, list[dict[str, Any]]] = {}

    def resolve(short: str, chain: tuple[str, ...]) -> list[dict[str, Any]]:
        if short in done:
            return done[short]
        own = list(specs[short].get("mounts") or [])
        conf = confs.get(short)
        value = conf.get(KEY) if isinstance(conf, Mapping) else None
        if not value:
            done[short] = own
            return own
        path = f"services.{short}.{KEY}"
        targets = {m["target"] for m in own}
        added: list[dict[str, Any]] = []
        try:
            entries = _entries(value, path)
        except ConfigError as exc:
            error(exc)
            entries = []
        for kind, name, read_only, where in entries:
            if kind == "container":
                note(KEY, short, f"container:{name}: a container outside the stack is not mounted from")
                continue
            if name not in specs:  # skipped by a profile, undefined, or mapped with errors (reported)
                if name in inactive:
                    error(err(where, f"service {name!r} {INACTIVE}"))
                elif name in skipped:
                    note(KEY, short, f"{name} is not deployed (a provider service): not mounted from")
                elif name not in confs:
                    error(err(where, f"service {name!r} is not defined"))
                continue
            if name in chain or name == short:
                error(err(where, f"a cycle: {' -> '.join((*chain, short, name))}"))
                continue
            for mount in resolve(name, (*chain, short)):
                if mount["target"] in targets:
                    continue
                if not _shareable(mount):
                    note(
                        KEY,
                        short,
                        f"{name}'s {mount.get('type')} at {mount['target']} belongs to each container: "
                        "not shared (name the volume in both services)",
                    )
                    continue
                targets.add(mount["target"])
                added.append(
                    {**mount, "readonly": mount.get("readonly", False) if read_only is None else read_only}
                )
        mounts = own + added
        if mounts:
            specs[short]["mounts"] = mounts
        done[short] = mounts
        return mounts

    for short in specs:
        resolve(short, ())
