"""The secrets and configs of a ``stack deploy`` (shell helper of ``cli/stack.py``).

Owns reading each object's value on the CLI's machine, creating the missing ones and giving a new
version (``defer_roll``) to those whose value changed, then rolling the users of those versions
(``roll_to``) once the deploy's services carry them, or when the deploy stops early; a version an
earlier deploy left unrolled (``roll_pending``, it was cut short) is rolled by the next one. Never
reads a value back from the daemon; never prints one.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
from typing import Any

from ..errors import ConfigError, P2POrchError
from ..stack import StackDefinition
from ..stack.compose import StackObject
from ..stack.names import STACK_LABEL
from ..stack.object_plan import EXISTS, ObjectRef, object_actions
from ..vault import MAX_VALUE_BYTES, validate_value
from .localfiles import read_flag_bytes
from .util import UsageError

__all__ = [
    "Rolled",
    "deploy_objects",
    "object_ref",
    "object_values",
    "roll_cut_short",
    "roll_rest",
    "undo_created_objects",
]


def object_values(definition: StackDefinition) -> list[tuple[StackObject, bytes | None]]:
    """Every secret/config value the stack brings, read on this machine (None for external ones); an
    unreadable file, unset variable or over-size value exits 2 before anything is written."""
    out: list[tuple[StackObject, bytes | None]] = []
    for obj in definition.objects:
        where = f"{obj.kind}s.{obj.key}"
        if obj.source == "external":
            out.append((obj, None))
            continue
        if obj.source == "file":
            data = read_flag_bytes(obj.value, where, MAX_VALUE_BYTES)
        elif obj.source == "environment":  # the shell's or the .env's, as Compose reads it
            if obj.value not in definition.object_env:
                raise UsageError(f"{where}: environment variable {obj.value} is not set", field=where)
            data = definition.object_env[obj.value].encode()
        else:
            data = obj.value.encode()
        try:
            out.append((obj, validate_value(data, obj.kind)))
        except ConfigError as exc:
            raise UsageError(f"{where}: {exc.message}", field=where) from exc
    return out


@dataclasses.dataclass(frozen=True)
class Rolled:
    """A secret or config this deploy gave a new version without rolling its services (``defer_roll``):
    the deploy's services carry it in their own update (one rollout each, not one for the version and
    another for the spec), then ``roll_to`` rolls the followers the deploy did not update."""

    kind: str
    name: str
    version: int
    own: bool = True  # labelled with this stack: followed in the services' update (else rolled after)


def deploy_objects(
    client: Any, definition: StackDefinition
) -> tuple[list[str], list[tuple[str, str]], list[Rolled]]:
    """Create or update (only when the value changed) the stack's secrets and configs; external ones
    must exist. Every check runs before the first write. Returns the lines to print, the
    ``(kind, name)`` of each object created (what a refused deploy removes again) and each object given
    a new version (``Rolled``): nothing is rolled yet."""
    values = object_values(definition)
    listed = {kind: client.get(f"/objects/{kind}") for kind in ("secret", "config")}
    existing = {kind: {o["name"] for o in rows} for kind, rows in listed.items()}
    # an external object missing: not found (exit 1, as a missing external network and `service create
    # --secret nosuch`; it was exit 2), nothing written yet
    actions = object_actions([object_ref(obj) for obj, _ in values], existing)
    _check_drivers_kept([obj for obj, _ in values], actions, listed)
    owned = {
        (kind, o["name"]) for kind, rows in listed.items() for o in rows if _stack_of(o) == definition.name
    }
    lines: list[str] = []
    created: list[tuple[str, str]] = []
    rolled: list[Rolled] = []
    try:
        for (obj, data), (_, action) in zip(values, actions, strict=True):
            if data is not None:
                _deploy_object(client, definition, obj, data, (action, owned), (lines, created, rolled))
    except BaseException:  # a later object failed (or Ctrl-C): the versions written still roll
        roll_cut_short(client, rolled)
        raise
    return lines, created, rolled


def _deploy_object(
    client: Any,
    definition: StackDefinition,
    obj: StackObject,
    data: bytes,
    plan: tuple[str, set[tuple[str, str]]],
    out: tuple[list[str], list[tuple[str, str]], list[Rolled]],
) -> None:
    """Create or update one stack object, adding to ``out`` (lines, created, rolled) as
    :func:`deploy_objects` returns them. An unchanged object whose last version a deploy cut short left
    unrolled (``roll_pending``) is rolled by this one."""
    (action, owned), (lines, created, rolled) = plan, out
    own = (obj.kind, obj.name) in owned  # one of this stack's (the daemon follows no other)
    encoded = base64.b64encode(data).decode()
    if action == EXISTS:
        body = {
            "data": encoded,
            "if_changed": True,
            "template_driver": obj.template_driver,
            "defer_roll": True,
        }
        result = client.post(f"/objects/{obj.kind}/{obj.name}/update", body)
        if not result.get("unchanged"):
            users = result.get("services") or []  # its users: those not pinned to a version follow it
            to_roll = f"; to roll: {', '.join(users)}" if users else ""
            lines.append(f"updated {obj.kind} {obj.name} (version {result['version']}{to_roll})")
            rolled.append(Rolled(obj.kind, obj.name, int(result["version"]), own))
        elif result.get("roll_pending"):
            pending = int(result["roll_pending"])
            lines.append(
                f"{obj.kind} {obj.name}: version {pending} is not rolled yet (a deploy was cut short): "
                "its users roll"
            )
            rolled.append(Rolled(obj.kind, obj.name, pending, own))
    else:
        labels = {STACK_LABEL: definition.name}  # stack rm removes it (as docker stack rm does)
        body = {"name": obj.name, "data": encoded, "labels": labels, "template_driver": obj.template_driver}
        client.post(f"/objects/{obj.kind}", body)
        lines.append(f"created {obj.kind} {obj.name}")
        created.append((obj.kind, obj.name))


def _stack_of(row: dict[str, Any]) -> str | None:
    labels = row.get("labels") or {}
    return labels.get(STACK_LABEL) if isinstance(labels, dict) else None


def _check_drivers_kept(
    objects: list[StackObject], actions: list[tuple[ObjectRef, str]], listed: dict[str, Any]
) -> None:
    """An existing object keeps its template driver: a file naming another one exits 2 before any write."""
    drivers = {
        (kind, o["name"]): o.get("template_driver") or "" for kind, rows in listed.items() for o in rows
    }
    for obj, (ref, action) in zip(objects, actions, strict=True):
        had = drivers.get((obj.kind, obj.name), "")
        if action == EXISTS and had != obj.template_driver:
            raise UsageError(
                f"{ref.where}.template_driver: {obj.kind} {obj.name!r} exists with template driver "
                f"{had or 'none'}; a driver is set when the {obj.kind} is created (remove it or give it "
                "another name)",
                field=f"{ref.where}.template_driver",
            )


def roll_rest(client: Any, rolled: list[Rolled]) -> list[str]:
    """Roll the followers of each new version that the deploy did not update (services outside the
    stack, one it keeps with --no-prune, or all of them when the daemon refused the services): the
    names rolled. A failure is said on stderr: the deploy's own outcome is what the user must see."""
    names: list[str] = []
    for obj in rolled:
        try:
            result = client.post(f"/objects/{obj.kind}/{obj.name}/update", {"roll_to": obj.version})
        except P2POrchError as exc:
            print(
                f"warning: could not roll the users of {obj.kind} {obj.name}: {exc.message}", file=sys.stderr
            )
            continue
        names += [n for n in result.get("rolled_services") or () if n not in names]
    return names


def object_ref(obj: StackObject) -> ObjectRef:
    """What a deploy (and its dry run) needs of a stack object: never its value."""
    return ObjectRef(obj.kind, obj.key, obj.name, obj.source == "external")


def undo_created_objects(client: Any, created: list[tuple[str, str]]) -> None:
    """After the daemon refused the services: remove the objects this deploy created that no service
    uses (a refused deploy leaves nothing behind). An object it updated keeps its new value (values are
    never readable, so the old one cannot be put back); one a created service uses stays with it."""
    for kind in sorted({k for k, _ in created}):
        try:
            in_use = {o["name"] for o in client.get(f"/objects/{kind}") if o.get("services")}
        except P2POrchError as exc:
            print(f"warning: could not check the {kind}s this deploy created: {exc.message}", file=sys.stderr)
            continue
        for name in (n for k, n in created if k == kind and n not in in_use):
            try:
                client.delete(f"/objects/{kind}/{name}")
            except P2POrchError as exc:  # the refusal is what the user must see: say this and go on
                print(f"warning: could not remove {kind} {name}: {exc.message}", file=sys.stderr)
                continue
            print(f"removed {kind} {name} (the deploy was refused)", file=sys.stderr)


def roll_cut_short(client: Any, rolled: list[Rolled]) -> None:
    """Roll the users of each new version of a deploy cut short (refused, a wait timed out, Ctrl-C), then
    empty ``rolled`` (never rolled twice). Said first; a Ctrl-C during it stops it and lets the deploy's
    own error through (the caller re-raises it): the version stays pending, the next deploy rolls it."""
    if not rolled:
        return
    names = ", ".join(f"{obj.kind} {obj.name}" for obj in rolled)
    print(f"rolling the new versions of {names} to their users", file=sys.stderr)
    try:
        roll_rest(client, rolled)
    except KeyboardInterrupt:
        print(
            f"interrupted: the users of {names} may not all be rolled (the next deploy rolls them)",
            file=sys.stderr,
        )
    finally:
        rolled.clear()
