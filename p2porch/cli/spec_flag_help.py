"""The ``--help`` words of ``service create/update`` flags that their definitions leave bare (shell).

Owns one table, :data:`HELP`: for a flag, its metavar (Docker's value kind: ``N``, ``CPUS``...) and one
line in Docker's words (``docker service create --help``), with p2porch's difference where there is one.
:func:`describe` fills them in on a built parser, for the actions that have none; on ``update`` it also says
of each list flag that it replaces the whole list (:data:`UPDATE_HELP` words one that says it adds one).
It never changes what a flag parses.
"""

from __future__ import annotations

import argparse

from .update_edits import EDIT_FLAGS

__all__ = ["EDITS", "HELP", "UPDATE_HELP", "describe"]

_CHECK = "(ms|s|m|h)"
#: flag -> (metavar or "": keep the defined one, help or "": keep the defined one)
HELP: dict[str, tuple[str, str]] = {
    "--replicas": ("N", "number of tasks"),
    "--placement-pref": ("", "add a placement preference: spread tasks evenly over a label's values"),
    "--strategy": (
        "",
        "spread (default): the node with the fewest of its tasks; binpack: the fullest that fits",
    ),
    "--affinity": ("", "only on nodes running a task of S (affinity) or running none (anti-affinity)"),
    "--reserve-cpu": ("", "reserve CPUs, e.g. 0.5 (a task goes only where they are free)"),
    "--limit-cpu": ("", "limit CPUs, e.g. 1.5"),
    "--limit-memory": ("", "limit memory, e.g. 512M, 1G"),
    "--env": ("", "set an environment variable (repeatable)"),
    "--health-cmd": ("CMD", ""),
    "--health-interval": ("", f"time between running the check {_CHECK}"),
    "--health-timeout": ("", f"maximum time to allow one check to run {_CHECK}"),
    "--health-retries": ("N", "consecutive failures needed to report unhealthy"),
    "--health-start-period": ("", f"start period before failed checks count towards unhealthy {_CHECK}"),
    "--health-start-interval": (
        "",
        "time between checks in the start period: recorded, not yet passed to the engine",
    ),
    "--restart-condition": ("", "restart when the condition is met (default any)"),
    "--restart-delay": ("", "delay between restart attempts (default 5s)"),
    "--restart-max-attempts": ("N", "maximum number of restarts before giving up (0: no limit)"),
    "--restart-window": ("", "window used to evaluate the restart policy (0: unbounded)"),
    "--update-parallelism": ("N", "maximum number of tasks updated at once (0: all at once; default 1)"),
    "--update-delay": ("", "delay between updates"),
    "--update-order": ("", "update order (default stop-first)"),
    "--update-failure-action": ("", "action on update failure (default pause)"),
    "--update-monitor": ("", "duration after each task update to monitor for failure (default 5s)"),
    "--update-max-failure-ratio": ("", "failure rate to tolerate during an update (default 0)"),
    "--rollback-parallelism": ("N", "maximum number of tasks rolled back at once (0: all at once)"),
    "--rollback-delay": ("", "delay between task rollbacks"),
    "--rollback-order": ("", "rollback order (default stop-first)"),
    "--rollback-failure-action": ("", "action on rollback failure (default pause)"),
    "--rollback-monitor": ("", "duration after each task rollback to monitor for failure"),
    "--rollback-max-failure-ratio": ("", "failure rate to tolerate during a rollback (default 0)"),
    "--stop-grace-period": ("", "time to wait before force killing a container (default 10s)"),
    "--ulimit": ("", "ulimit options (repeatable)"),
    "--security-opt": ("", "security options (repeatable)"),
    "--image": ("", "service image tag"),
}
#: update's words for a list flag whose create words add one item (on update it gives the whole list)
UPDATE_HELP = {
    "--placement-pref": "placement preferences: spread tasks evenly over a label's values (repeatable)",
    "--env": "environment variables (repeatable)",
    "--cap-add": "Linux capabilities to add (repeatable)",
    "--cap-drop": "Linux capabilities to drop (repeatable)",
}
#: update's list flags that edit a list (add or remove items) rather than give it whole
EDITS = frozenset(EDIT_FLAGS) | {
    f"{kind}_{op}" for kind in ("secret", "config", "network") for op in ("add", "rm")
}


def describe(parser: argparse.ArgumentParser, *, create: bool) -> None:
    """Give each action of ``parser`` that :data:`HELP` names the metavar and help it was defined without;
    on update (``create`` false), end each list flag's help with what it does to the list."""
    for action in parser._actions:
        for flag in action.option_strings:
            if flag in HELP:
                metavar, text = HELP[flag]
                action.help = text if text and action.help is None else action.help
                action.metavar = metavar if metavar and action.metavar is None else action.metavar
        if not create and isinstance(action, argparse._AppendAction) and action.dest not in EDITS:
            action.help = _replaces(parser, action)


def _replaces(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """``--env``'s update help: its words, then "replaces the whole list (--env-add/--env-rm edit it)"."""
    words = next((UPDATE_HELP[f] for f in action.option_strings if f in UPDATE_HELP), action.help or "")
    flags = parser._option_string_actions
    pairs = [f"{f}-add/{f}-rm" for f in action.option_strings if f"{f}-add" in flags and f"{f}-rm" in flags]
    edit = f" ({pairs[0]} edit it)" if pairs else ""
    return f"{words}; replaces the whole list{edit}"
