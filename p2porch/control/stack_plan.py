"""What a `stack deploy` would change beyond its services, from the committed state (pure).

Owns the parts of a dry run that a deploy does not work out before writing: the objects of the request
body, which of the stack's networks a prune would remove, which of them exist with other labels than the
file's (left as they are, warned), the named volumes its services use, and which services no node could
run now (a deploy accepts them: their tasks wait, pending). The rules a deploy
refuses with are not here: a dry run runs the deploy's own checks (``StackOps.plan``,
``StackOps.check_networks``, ``stack.object_plan.object_actions``). Never writes anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..model import ServiceSpec
from ..raft.fsm_networks import spec_network_names
from ..raft.state import ClusterState
from ..scheduler.filters import DEFAULT_FILTERS, Requirements, ResourceFilter, first_rejection
from ..scheduler.nodeinfo import build_node_infos
from ..stack.names import STACK_LABEL, stack_membership
from ..stack.networks import StackNetwork
from ..stack.object_plan import ObjectRef

MAX_STACK_OBJECTS = 1000
#: what decides whether a node could ever run a task: its state, availability, constraints and whole
#: capacity (the dynamic filters depend on what is placed at the time)
_STANDING_FILTERS = tuple(f for f in DEFAULT_FILTERS if f.static or isinstance(f, ResourceFilter))


def parse_objects(raw: Any) -> list[ObjectRef]:
    """``[{"kind", "key", "name", "external"}, ...]`` of a dry-run body (never a value)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_STACK_OBJECTS:
        raise ConfigError("objects: expected a list of {kind, key, name, external}", field="objects")
    out = []
    for i, item in enumerate(raw):
        where = f"objects[{i}]"
        if not isinstance(item, Mapping) or item.get("kind") not in ("secret", "config"):
            raise ConfigError(f"{where}: expected {{kind: secret|config, key, name, external}}", field=where)
        key, name, external = item.get("key"), item.get("name"), item.get("external", False)
        if not isinstance(key, str) or not isinstance(name, str) or not isinstance(external, bool):
            raise ConfigError(f"{where}: key and name are strings, external true or false", field=where)
        out.append(ObjectRef(item["kind"], key, name, external))
    return out


def unused_stack_networks(
    state: ClusterState, stack: str, wanted: Collection[str], specs: Iterable[ServiceSpec]
) -> list[str]:
    """The stack's own networks (labelled with it) that ``wanted`` no longer names and none of ``specs``
    (every service, as it is or would be) attaches to: what a prune removes."""
    used = {name for spec in specs for name in spec_network_names(spec)}
    return sorted(
        record.name
        for record in state.networks.values()
        if record.labels.get(STACK_LABEL) == stack and record.name not in wanted and record.name not in used
    )


def networks_kept_in_use(state: ClusterState, stack: str) -> list[dict[str, Any]]:
    """The stack's own networks (labelled with it) that a prune left because services of another stack,
    or made by hand, still use them: ``{"name", "services"}`` each, for ``stack rm`` to say so (it kept
    them silently, and no later ``stack rm`` removes them); ``stacks``: the stack of each user in one."""
    users: dict[str, list[str]] = {}
    stacks: dict[str, str] = {}  # a user's stack (its label), for `stack rm a b` to know who leaves
    for svc in state.services.values():
        for name in spec_network_names(svc.spec):
            users.setdefault(name, []).append(svc.name)
        member = stack_membership(dict(svc.spec.labels))
        if member is not None:
            stacks[svc.name] = member[0]
    return [
        {
            "name": record.name,
            "services": sorted(users[record.name]),
            "stacks": {u: stacks[u] for u in sorted(users[record.name]) if u in stacks},
        }
        for record in sorted(state.networks.values(), key=lambda r: r.name)
        if record.labels.get(STACK_LABEL) == stack and users.get(record.name)
    ]


def relabelled_networks(state: ClusterState, stack: str, networks: Iterable[StackNetwork]) -> list[str]:
    """Warnings for the stack's own networks that exist with other labels than the file gives them: a
    network has no update, so, as Swarm's ``stack deploy`` leaves an existing stack network as it is, the
    deploy keeps it and says so (external networks are only looked up: their labels are not the file's)."""
    out = []
    for net in networks:
        record = None if net.external else state.network_by_name(net.name)
        if record is None or record.labels.get(STACK_LABEL) != stack:
            continue  # created by this deploy, or refused by StackOps.check_networks
        if dict(record.labels) != {**net.labels, STACK_LABEL: stack}:
            out.append(
                f"networks.{net.key}.labels: network {net.name!r} exists with other labels and is left as it "
                "is (a network cannot change, as in Swarm): remove the stack to create it anew with them"
            )
    return out


def specs_after(
    state: ClusterState, specs: Mapping[str, ServiceSpec], removed: Collection[str]
) -> list[ServiceSpec]:
    """Every service's spec once a deploy wrote ``specs`` (by name) and removed ``removed``."""
    current = {s.name: s.spec for s in state.services.values() if s.name not in removed}
    return list({**current, **specs}.values())


def named_volumes(specs: Mapping[str, ServiceSpec]) -> list[dict[str, Any]]:
    """``[{"name", "services"}]``: the named volumes the services mount (each node's engine creates one
    when a task first uses it there)."""
    users: dict[str, set[str]] = {}
    for name, spec in specs.items():
        members = (*spec.sidecars, *spec.init_containers)
        for mount in (*spec.mounts, *(m for c in members for m in c.mounts)):
            if mount.type == "volume" and mount.source:
                users.setdefault(mount.source, set()).add(name)
    return [{"name": volume, "services": sorted(users[volume])} for volume in sorted(users)]


def placement_warning(state: ClusterState, short: str, spec: ServiceSpec) -> str | None:
    """Why no node of the cluster could run a task of ``spec`` now (state, availability, constraints,
    whole capacity), or None when one could or it runs no task."""
    if spec.mode not in ("global", "global-job") and spec.replicas == 0:
        return None
    req = Requirements.from_spec(spec)
    reasons = Counter[str]()
    for node in build_node_infos(state.nodes.values()):
        reason = first_rejection(node, req, _STANDING_FILTERS)
        if reason is None:
            return None
        reasons[reason] += 1
    why = ", ".join(f"{reason} ({n})" for reason, n in sorted(reasons.items())) or "the cluster has no node"
    return f"services.{short}: no node can run its tasks now ({why}): they would stay pending"
