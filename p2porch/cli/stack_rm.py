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
from . import util
from .util import Failures, each_name, print_removed_json, wants_json


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


def _user_stacks(client: Any, kept: list[dict[str, Any]]) -> dict[str, str]:
    """The stack (its label, not its name's prefix) of each user of the kept objects: the daemon says it
    for networks (``stacks``); secrets and configs name only their users, looked up in the services."""
    stacks: dict[str, str] = {}
    for item in kept:
        stacks.update(item.get("stacks") or {})
    if any(u not in stacks for item in kept if item["kind"] != "network" for u in item["services"]):
        for view in client.get("/services"):
            stack = ((view.get("spec") or {}).get("labels") or {}).get(STACK_LABEL)
            if isinstance(stack, str) and stack:
                stacks[view["name"]] = stack
    return stacks


def _users_leaving(client: Any, kept: list[dict[str, Any]], stacks: Sequence[str]) -> bool:
    """True when every user of the kept objects is a service of one of ``stacks`` (named later in the same
    ``stack rm``, by its stack label): their removal frees them, so the stack is removed again after
    them. A service made by hand (no label) keeps them, whatever its name."""
    users = [u for item in kept for u in item["services"]]
    if not users or not stacks:
        return False
    of = _user_stacks(client, kept)
    return all(of.get(u) in stacks for u in users)


def _remove_stack(
    client: Any, stack: str, later: Sequence[str] = (), *, rerun: bool = False
) -> dict[str, Any]:
    try:
        result: dict[str, Any] = client.delete(f"/stacks/{stack}")
    except NotFoundError:  # no service left (an interrupted rm, a refused deploy): its objects still go
        removed, kept = _remove_objects(client, stack)
        _say_kept(stack, kept)
        if not removed and not kept and not rerun:  # as Docker's: said on stderr, not a failure (exit 0)
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
    if _users_leaving(client, result["kept"], [s for s in later if s != stack]):
        result["again"] = True  # not said: removed after the stacks using them
    else:
        _say_kept(stack, result["kept"])
    return result


def _removed_lines(r: dict[str, Any]) -> list[str]:
    return (
        [f"removed  {name}" for name in r["removed"]]
        + [f"removed  network {name}" for name in r.get("removed_networks", [])]
        + [f"removed  {o['kind']} {o['name']}" for o in r["removed_objects"]]
    )


def _removed_text(r: dict[str, Any]) -> str:
    """The stdout of one stack's removal: nothing when nothing was found ("Nothing found in stack" went to
    stderr) or when nothing was removed (what is kept went to stderr: not "stack a removed")."""
    lines = _removed_lines(r)
    if not r.get("found", True) or not lines:
        return ""
    return "\n".join([*lines, f"stack {r['stack']} removed"])


def _merge(first: dict[str, Any], again: dict[str, Any]) -> None:
    """The second pass of a stack folded into its first result: what it removed added, what is kept now."""
    for key in ("removed", "removed_networks", "removed_objects"):
        first[key] = [*first.get(key, []), *again.get(key, [])]
    first["kept"] = again.get("kept", [])
    first["found"] = first.get("found", True) or again.get("found", True)
    first.pop("again", None)


def cmd_stack_rm(args: argparse.Namespace) -> int:
    """``stack rm A B ...`` as ``docker stack rm``: each stack in turn, as ``remove_each``, and again at the
    end (once, its result merged into the first) a stack whose objects only services of stacks named after
    it still used; --json: one stack's result, or a list of one per name given."""
    names = list(args.stacks)
    queue = list(names)  # the names given, then each stack to remove again (at most once)
    requeued: set[str] = set()
    calls: list[str] = []

    def remove(stack: str) -> dict[str, Any]:
        calls.append(stack)
        position = len(calls) - 1
        if position >= len(names):  # a second pass: never re-added (no `later`)
            return {**_remove_stack(client, stack, rerun=True), "rerun": True}
        result = _remove_stack(client, stack, later=names[position + 1 :])
        if result.get("again") and stack not in requeued:  # `stack rm a b`, b on a's network: a's after b
            requeued.add(stack)
            queue.append(stack)
        return result

    client = util.client_for(args)  # util's, as tests replace it
    failures, results = Failures(), []
    first: dict[str, dict[str, Any]] = {}  # each stack's first result, for its second pass
    for stack, result in each_name(queue, remove, failures):
        if result.pop("rerun", False) and stack in first:
            _merge(first[stack], result)
            text = "\n".join(_removed_lines(result))
        else:
            results.append(result)
            first.setdefault(stack, result)
            text = _removed_text(result)
        if text and not wants_json(args):
            print(text, flush=True)
    print_removed_json(args, results, alone=len(names) == 1)
    return failures.report()
