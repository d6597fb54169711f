"""``--filter/-f KEY=VALUE`` of ``service ls``, ``node ls``, ``service|stack ps``, ``secret|config ls`` and
``network ls``, as Docker's, applied to the API's rows (``ps``: ``id``, ``name``, ``node``,
``desired-state`` running|shutdown|accepted; ``network ls``: ``id`` and ``name`` match any part,
``type`` is ``custom`` or ``builtin`` (the default network ``p2porch``); ``events``: ``type``, ``event``
(an action, or a task's state), ``service`` (its tasks' too), ``node``...).

Docker's rules: values of one key are alternatives (any may match), different keys must all match;
``id`` and ``name`` match a prefix, ``label`` a key (``label=K``) or a pair (``label=K=V``); ``node ls``'s
``role`` takes Swarm's ``manager``/``worker`` (voters, the leader among them / replicas) or p2porch's
roles. Docker's ``ID`` is ``id``. An unknown key, a value a key cannot take (``role=bogus``, as Docker's
``Invalid role filter``) or a malformed filter is a usage error (exit 2) naming the flag.

The fixed values are spelled here, not imported from the model (a unit test checks they are the model's):
``events --filter`` is declared with ``join`` and ``init`` (one command module), which never load the model.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from .util import UsageError

Match = Callable[[dict[str, Any], str], bool]


def _label(labels_of: Callable[[dict[str, Any]], Mapping[str, str]]) -> Match:
    def match(row: dict[str, Any], value: str) -> bool:
        key, sep, wanted = value.partition("=")
        labels = labels_of(row)
        return key in labels and (not sep or labels[key] == wanted)

    return match


def _node_role(row: dict[str, Any], value: str) -> bool:
    role = row.get("raft_role")
    wanted = {"manager": ("leader", "voter"), "worker": ("replica",), "voter": ("leader", "voter")}
    return role in wanted.get(value, (value,))


SERVICE_FILTERS: dict[str, Match] = {
    "id": lambda row, value: str(row["id"]).startswith(value),
    "name": lambda row, value: str(row["name"]).startswith(value),
    "mode": lambda row, value: row.get("mode") == value,
    "label": _label(lambda row: (row.get("spec") or {}).get("service_labels") or {}),
}
NODE_FILTERS: dict[str, Match] = {
    "id": lambda row, value: str(row["id"]).startswith(value),
    "name": lambda row, value: str(row["name"]).startswith(value),
    "role": _node_role,
    "availability": lambda row, value: row.get("availability") == value,
    "status": lambda row, value: row.get("status") == value,
    "label": _label(lambda row: row.get("labels") or {}),
    "node.label": _label(lambda row: row.get("labels") or {}),
}

TASK_FILTERS: dict[str, Match] = {  # service ps, stack ps: Docker's keys
    "id": lambda row, value: str(row["id"]).startswith(value),
    "name": lambda row, value: str(row["name"]).startswith(value),
    "node": lambda row, value: row.get("node") == value or str(row.get("node_id") or "").startswith(value),
    "desired-state": lambda row, value: (
        row.get("desired_state") == value or (value == "accepted" and row.get("desired_state") == "running")
    ),
}

#: node ps's: Docker's ``label`` too, a task's being its service's (swarmkit's ServiceAnnotations)
NODE_TASK_FILTERS: dict[str, Match] = {
    **TASK_FILTERS,
    "label": _label(lambda row: row.get("service_labels") or {}),
}

EVENT_TYPES = ("node", "service", "task", "secret", "config", "network", "access", "leader", "stream")


def _event_service(row: dict[str, Any], value: str) -> bool:
    """A service's own events and its tasks' (``web.2`` is of ``web``)."""
    return row.get("service") == value or str(row.get("task") or "").rpartition(".")[0] == value


EVENT_FILTERS: dict[str, Match] = {  # events: Docker's keys that our events have
    "type": lambda row, value: row.get("type") == value,
    "event": lambda row, value: value in (row.get("action"), row.get("state")),  # a task's is its state
    "service": _event_service,
    "node": lambda row, value: row.get("node") == value,
    "network": lambda row, value: row.get("network") == value,
    "secret": lambda row, value: row.get("type") == "secret" and row.get("name") == value,
    "config": lambda row, value: row.get("type") == "config" and row.get("name") == value,
}


OBJECT_FILTERS: dict[str, Match] = {  # secret ls, config ls
    "id": lambda row, value: str(row["id"]).startswith(value),
    "name": lambda row, value: str(row["name"]).startswith(value),
    "label": _label(lambda row: row.get("labels") or {}),
}
NETWORK_FILTERS: dict[str, Match] = {
    "id": lambda row, value: value in str(row["id"]),
    "name": lambda row, value: value in str(row["name"]),
    "driver": lambda row, value: row.get("driver") == value,
    # every network spans the cluster: Docker's ``swarm`` scope
    "scope": lambda row, value: (
        row.get("scope") == value or (value == "swarm" and row.get("scope") == "cluster")
    ),
    "label": _label(lambda row: row.get("labels") or {}),
    "type": lambda row, value: bool(row.get("builtin")) == (value == "builtin"),
}

#: the values a key takes where they are a fixed set (Docker refuses any other: ``Invalid role filter``)
FILTER_VALUES: dict[str, tuple[str, ...]] = {
    "mode": ("replicated", "global", "replicated-job", "global-job"),  # model.spec.MODES
    "role": ("manager", "worker", "leader", "voter", "replica", "none"),
    "availability": ("active", "pause", "drain"),  # model.Availability
    "status": ("joining", "ready", "down", "left"),  # model.NodeStatus
    "desired-state": ("running", "shutdown", "accepted"),
    "type": EVENT_TYPES,
}
#: network ls's: its ``type`` is Docker's network type, not an event type
NETWORK_VALUES: dict[str, tuple[str, ...]] = {**FILTER_VALUES, "type": ("custom", "builtin")}


def _checked(filters: Mapping[str, Match], values: Mapping[str, tuple[str, ...]]) -> Callable[[str], str]:
    """The ``--filter`` value as given, once its key is known: a bad filter is refused while parsing,
    before the command asks the daemon anything (exit 2, naming the flag and the valid keys)."""

    def check(item: str) -> str:
        try:
            _split(item, filters, values)
        except UsageError as exc:  # argparse names the flag itself: "argument --filter/-f: ..."
            raise argparse.ArgumentTypeError(str(exc).removeprefix("--filter: ")) from None
        return item

    return check


def _split(
    item: str, filters: Mapping[str, Match], fixed: Mapping[str, tuple[str, ...]] = FILTER_VALUES
) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not value:
        raise UsageError(f"--filter: expected KEY=VALUE, got {item!r}", field="--filter")
    if key == "ID":  # Docker's other spelling (`stack services --filter ID=...`)
        key = "id"
    if key not in filters:
        raise UsageError(f"--filter: invalid filter {key!r} (keys: {', '.join(filters)})", field="--filter")
    values = fixed.get(key)
    if values is not None and value not in values:
        raise UsageError(
            f"--filter: invalid {key} filter {value!r} (values: {', '.join(values)})", field="--filter"
        )
    return key, value


def add_filter(
    p: argparse.ArgumentParser,
    filters: Mapping[str, Match],
    values: Mapping[str, tuple[str, ...]] = FILTER_VALUES,
    *,
    short: bool = True,
) -> None:
    """``--filter`` (and ``-f`` unless ``short`` is false: Docker's prune commands have ``-f`` for
    ``--force``)."""
    keys = ", ".join(filters)
    p.add_argument(
        "--filter",
        *(["-f"] if short else []),
        dest="filters",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_checked(filters, values),
        help=f"only the rows that match (keys: {keys}; repeatable)",
    )


def apply_filters(
    rows: list[dict[str, Any]],
    given: list[str],
    filters: Mapping[str, Match],
    values: Mapping[str, tuple[str, ...]] = FILTER_VALUES,
) -> list[dict[str, Any]]:
    """The rows that match every key of ``given`` (any of that key's values)."""
    wanted: dict[str, list[str]] = {}
    for item in given:
        key, value = _split(item, filters, values)
        wanted.setdefault(key, []).append(value)
    return [
        row
        for row in rows
        if all(any(filters[key](row, value) for value in values) for key, values in wanted.items())
    ]
