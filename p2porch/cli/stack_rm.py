"""``p2porch stack rm A B ...`` as ``docker stack rm`` (shell).

Owns removing each named stack through the daemon (its services and networks: ``control.stack_ops``),
then the secrets and configs ``stack deploy`` created for it that no service uses any more, and saying on
stderr what was kept because other services still use it. Never removes an object it did not create.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import NotFoundError
from ..stack.names import STACK_LABEL
from .util import remove_each


def _remove_objects(client: Any, stack: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The secrets and configs ``stack deploy`` created for ``stack`` (labelled with it) that no service
    uses any more, removed; and those kept because services (of another stack, or made by hand) still
    use them. External ones and objects created otherwise are never touched."""
    removed, kept = [], []
    for kind in ("secret", "config"):
        for obj in client.get(f"/objects/{kind}"):
            if (obj.get("labels") or {}).get(STACK_LABEL) != stack:
                continue
            if obj.get("services"):
                kept.append({"kind": kind, "name": obj["name"], "services": list(obj["services"])})
                continue
            client.delete(f"/objects/{kind}/{obj['name']}")
            removed.append({"kind": kind, "name": obj["name"]})
    return removed, kept


def _say_kept(stack: str, kept: list[dict[str, Any]]) -> None:
    """One stderr line per object of the stack that other services still use (it was kept silently), with
    the follow-up: ``network rm``/``secret rm``/``config rm`` once they leave it (or ``stack rm`` again)."""
    for item in kept:
        users = ", ".join(item["services"])
        print(
            f"warning: {item['kind']} {item['name']} of stack {stack} kept: in use by service(s) {users}; "
            f"remove it with `p2porch {item['kind']} rm {item['name']}` once they leave it",
            file=sys.stderr,
        )


def _users_leaving(kept: list[dict[str, Any]], stacks: Sequence[str]) -> bool:
    """True when every user of the kept objects is a service of one of ``stacks`` (named later in the same
    ``stack rm``): their removal frees them, so the stack is removed again after them."""
    users = [u for item in kept for u in item["services"]]
    return bool(users) and all(any(u.startswith(f"{s}-") for s in stacks) for u in users)


def _remove_stack(client: Any, stack: str, later: Sequence[str] = ()) -> dict[str, Any]:
    try:
        result: dict[str, Any] = client.delete(f"/stacks/{stack}")
    except NotFoundError:  # no service left (an interrupted rm, a refused deploy): its objects still go
        removed, kept = _remove_objects(client, stack)
        _say_kept(stack, kept)
        if not removed and not kept:  # as Docker's: said on stderr, not a failure (exit 0)
            print(f"Nothing found in stack: {stack}", file=sys.stderr)
        return {
            "stack": stack,
            "removed": [],
            "removed_networks": [],
            "removed_objects": removed,
            "kept": kept,
            "found": bool(removed),
        }
    result["removed_objects"], kept = _remove_objects(client, stack)
    result["kept"] = [{"kind": "network", **n} for n in result.pop("kept_networks", [])] + kept
    if _users_leaving(result["kept"], later):
        result["again"] = True  # not said: removed after the stacks using them
    else:
        _say_kept(stack, result["kept"])
    return result


def _removed_text(r: dict[str, Any]) -> str:
    if not r.get("found", True):
        return ""  # nothing printed: "Nothing found in stack" went to stderr
    return "\n".join(
        [f"removed  {name}" for name in r["removed"]]
        + [f"removed  network {name}" for name in r.get("removed_networks", [])]
        + [f"removed  {o['kind']} {o['name']}" for o in r["removed_objects"]]
        + [f"stack {r['stack']} removed"]
    )


def cmd_stack_rm(args: argparse.Namespace) -> int:
    """``stack rm A B ...`` as ``docker stack rm``: each stack in turn, as ``remove_each``, and again at the
    end a stack whose objects only services of stacks named after it still used; --json: one stack's
    result, or a list for several."""
    names = list(args.stacks)

    def remove(client: Any, stack: str) -> dict[str, Any]:
        done.append(stack)
        result = _remove_stack(client, stack, later=names[len(done) :])
        if result.get("again"):  # `stack rm a b`, b using a's network: a's goes after b (Docker's leaves it)
            names.append(stack)
        return result

    done: list[str] = []
    return remove_each(args, names, remove, lambda _, r: _removed_text(r), one_as_object=True)
