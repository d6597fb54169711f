"""``p2porch service autoscale S --min N --max N --cpu-percent P | --off`` and the autoscale flags of
``service create/update`` (shell; the policy is validated by ``model.AutoscaleSpec``, docs/autoscale.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ..model import AutoscaleSpec
from ..model.units import parse_duration_s
from .util import EXIT_OK, UsageError, client_for, duration_arg, emit

__all__ = ["add_autoscale_flags", "autoscale_changes", "autoscale_flag", "cmd_service_autoscale"]


def autoscale_flag(field: str) -> str:
    """The flag of an ``autoscale.<key>`` error field (``--autoscale-min``, ``--cpu-percent``, ...)."""
    key = field.split(".", 1)[1] if "." in field else "min"
    key = {"min_replicas": "min", "max_replicas": "max"}.get(key, key).removesuffix("_s")
    return f"--autoscale-{key}" if key in ("min", "max") else "--" + key.replace("_", "-")


AUTOSCALE_FLAGS = {
    "autoscale_min": "min",
    "autoscale_max": "max",
    "cpu_percent": "cpu_percent",
    "memory_percent": "memory_percent",
    "scale_up_delay": "scale_up_delay",
    "scale_down_delay": "scale_down_delay",
}


def add_autoscale_flags(p: argparse.ArgumentParser, *, default: Any, prefix: str = "--autoscale-") -> None:
    """The autoscale flags: ``--autoscale-min/--autoscale-max`` on create/update, ``--min/--max`` on
    ``service autoscale``; the targets and delays are spelled the same everywhere."""
    p.add_argument(
        f"{prefix}min", dest="autoscale_min", type=int, default=default, metavar="N", help="fewest replicas"
    )
    p.add_argument(
        f"{prefix}max", dest="autoscale_max", type=int, default=default, metavar="N", help="most replicas"
    )
    p.add_argument("--cpu-percent", type=float, default=default, metavar="P", help="target CPU %% of limit")
    p.add_argument("--memory-percent", type=float, default=default, metavar="P", help="target memory %%")
    held = "only as far as usage held over this window, and no sooner"
    for flag, default_text in (
        ("--scale-up-delay", f"scale up {held} (default 0s)"),
        ("--scale-down-delay", f"scale down {held} (default 5m)"),
    ):
        p.add_argument(flag, default=default, metavar="DURATION", type=duration_arg, help=default_text)


def autoscale_changes(given: dict[str, Any]) -> dict[str, Any] | None:
    """The ``autoscale`` section from the given flags, or None when none was given."""
    values = {key: given[flag] for flag, key in AUTOSCALE_FLAGS.items() if given.get(flag) is not None}
    return values or None


def cmd_service_autoscale(args: argparse.Namespace) -> int:
    given = vars(args)
    changes = autoscale_changes(given)
    if args.off:
        if changes:
            raise UsageError("service autoscale: --off takes no other autoscale flag", field="--off")
        autoscale = None
    elif changes is None:
        raise UsageError("service autoscale: give --min, --max and --cpu-percent (or --off)", field="--min")
    else:
        autoscale = changes
        try:
            AutoscaleSpec.from_dict(autoscale, "autoscale", parse_duration_s)
        except ConfigError as exc:
            flag = autoscale_flag(exc.field or "autoscale").replace("--autoscale-", "--")
            raise UsageError(f"{flag}: {exc.message}", field=flag) from exc
    service = client_for(args).post(f"/services/{args.service}/update", {"autoscale": autoscale})
    emit(args, service, lambda s: f"{s['name']}: autoscale {'off' if autoscale is None else 'on'}")
    return EXIT_OK


def autoscale_summary(autoscale: dict[str, Any]) -> str:
    """The ``Autoscale:`` line of ``service inspect``: bounds, targets and delays of the spec's section."""
    targets = ", ".join(
        f"{metric} {autoscale[f'{metric}_percent']:g} %"
        for metric in ("cpu", "memory")
        if autoscale.get(f"{metric}_percent") is not None
    )
    return (
        f"Autoscale: {autoscale['min_replicas']}..{autoscale['max_replicas']} replicas, "
        f"target {targets} of limit, scale-up delay {autoscale['scale_up_delay_s']:g} s, "
        f"scale-down delay {autoscale['scale_down_delay_s']:g} s"
    )
