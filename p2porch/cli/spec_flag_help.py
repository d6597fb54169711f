"""The ``--help`` words of ``service create/update`` flags that their definitions leave bare (shell).

Owns one table, :data:`HELP`: for a flag, its metavar (Docker's value kind: ``N``, ``CPUS``...) and one
line in Docker's words (``docker service create --help``), with p2porch's difference where there is one.
:func:`describe` fills them in on a built parser, for the actions that have none; it never changes what a
flag parses or a help text already written where the flag is defined.
"""

from __future__ import annotations

import argparse

__all__ = ["HELP", "describe"]

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


def describe(parser: argparse.ArgumentParser) -> None:
    """Give each action of ``parser`` that :data:`HELP` names the metavar and help it was defined without."""
    for action in parser._actions:
        for flag in action.option_strings:
            if flag in HELP:
                metavar, text = HELP[flag]
                action.help = text if text and action.help is None else action.help
                action.metavar = metavar if metavar and action.metavar is None else action.metavar
