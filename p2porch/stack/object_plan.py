"""What a stack deploy does with the stack's secrets and configs (pure).

One rule for `stack deploy` (the CLI writes the objects) and its dry run (the daemon plans them): an
external object must exist (refused before anything is written, named by its Compose key); any other
is created when the cluster has none of that name, else updated, which writes a new version only when
its value changed (the daemon compares digests; a dry run never sends values, so it says ``exists``).
Never reads a value and never writes anything.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from ..errors import NotFoundError

CREATED, EXISTS, EXTERNAL = "created", "exists", "external"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A stack's secret or config as a deploy sees it: ``kind`` secret | config, its Compose ``key``, its
    cluster ``name``, and whether it is ``external`` (must exist, never written)."""

    kind: str
    key: str
    name: str
    external: bool

    @property
    def where(self) -> str:
        return f"{self.kind}s.{self.key}"


def object_actions(
    objects: Iterable[ObjectRef], existing: Mapping[str, Collection[str]]
) -> list[tuple[ObjectRef, str]]:
    """Each object with what the deploy does to it (``created`` | ``exists`` | ``external``), given the
    names of the objects of each kind the cluster has; NotFoundError for an external one it lacks."""
    out = []
    for obj in objects:
        present = obj.name in existing.get(obj.kind, ())
        if obj.external and not present:
            raise NotFoundError(
                f"{obj.where}: external {obj.kind} {obj.name!r} not found: create it first", field=obj.where
            )
        out.append((obj, EXTERNAL if obj.external else (EXISTS if present else CREATED)))
    return out
