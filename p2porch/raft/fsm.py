"""The deterministic state machine applied to every committed Raft entry (pure).

``apply(state, command_bytes)`` returns ``(new_state, result, changes)`` and never raises: malformed
bytes, unknown ops, invalid fields and failed conditions all yield an error result and leave the state
untouched. Time comes from the command's ``at`` field (stamped by the proposer), so every replica
computes the same state. ``version`` increases by one for each command that changed something.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError, ConflictError, NotFoundError, WireError
from ..wire import pack
from . import commands as C
from . import fsm_secrets
from .state import (
    NODE_AVAILABILITIES,
    NODE_ROLES,
    NODE_STATUSES,
    ClusterState,
    NodeRecord,
    ServiceRecord,
    SubnetLease,
    TaskRecord,
)
from .vips import allocate_vip, wants_vip

MAX_BATCH_COMMANDS = 10_000
MAX_KEY_TEXT = 256  # base64 of a public key (44) or a key envelope (108), with room to spare


@dataclass(frozen=True, slots=True)
class Change:
    """One changed object: kind is node|service|task|lease|cluster|reset; op is put|delete.

    ``record`` is the new record for put (None for delete); for ``reset`` (the whole state was
    replaced, e.g. a snapshot was installed) ``record`` is the new ClusterState.
    """

    kind: str
    op: str
    key: str
    record: Any
    version: int


class _Reject(Exception):
    """Internal: abort a command with an error result."""

    def __init__(self, kind: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field


def _conflict(message: str, field: str | None = None) -> _Reject:
    return _Reject("ConflictError", message, field)


def _not_found(message: str, field: str | None = None) -> _Reject:
    return _Reject("NotFoundError", message, field)


def _invalid(message: str, field: str | None = None) -> _Reject:
    return _Reject("ConfigError", message, field)


def _get(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    if name not in body or body[name] is None:
        if optional:
            return None
        raise _invalid(f"missing field {name!r}", name)
    value = body[name]
    if isinstance(value, bool) and kind is not bool and (kind is int or kind == (int, float)):
        raise _invalid(f"field {name!r} must be {kind}, not bool", name)
    if not isinstance(value, kind):
        raise _invalid(f"field {name!r} has type {type(value).__name__}", name)
    return value


def _str(body: Mapping[str, Any], name: str) -> str:
    value = _get(body, name, str)
    if not value:
        raise _invalid(f"field {name!r} is empty", name)
    return str(value)


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{name} must be a string or nil", name)
    return value


def _labels(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid(f"{name} must map strings to strings", name)
    return dict(value)


def _port(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise _invalid(f"{name} must be a port number", name)
    return value


def _non_negative(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"{name} must be a non-negative integer", name)
    return value


def _key_text(value: Any, name: str) -> str:
    """A base64 key or envelope (checked for shape only: the FSM never opens keys)."""
    if not isinstance(value, str) or len(value) > MAX_KEY_TEXT:
        raise _invalid(f"{name} must be a base64 string of at most {MAX_KEY_TEXT} characters", name)
    return value


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _invalid(f"{name} must be one of {', '.join(allowed)}", name)
    return str(value)


def _check_object_version(current: int, body: Mapping[str, Any], name: str) -> None:
    expected = _get(body, name, int, optional=True)
    if expected is not None and expected != current:
        raise _conflict(f"{name} is {current}, expected {expected}", name)


# --- handlers: (state, body, at, version) -> (state, value, changes); raise _Reject to refuse ---

Handler = Callable[[ClusterState, Mapping[str, Any], float, int], tuple[ClusterState, Any, list[Change]]]


def _init_cluster(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    if s.initialized:
        raise _conflict(f"cluster {s.cluster_id} already initialised", "cluster_id")
    cluster_id = _str(b, "cluster_id")
    domain = _str(b, "domain")
    cidr_text = _str(b, "cluster_cidr")
    prefix_len = _get(b, "subnet_prefix_len", int)
    try:
        cidr = ipaddress.IPv4Network(cidr_text, strict=True)
    except ValueError as exc:
        raise _invalid(f"bad cluster_cidr: {exc}", "cluster_cidr") from exc
    if not cidr.prefixlen <= prefix_len <= 30:
        raise _invalid(f"subnet_prefix_len must be within /{cidr.prefixlen}../30", "subnet_prefix_len")
    new = s.evolve(
        cluster_id=cluster_id,
        domain=domain,
        cluster_cidr=str(cidr),
        subnet_prefix_len=prefix_len,
        created_at=at,
        version=v,
    )
    return new, cluster_id, [Change("cluster", "put", cluster_id, None, v)]


def _require_init(s: ClusterState) -> None:
    if not s.initialized:
        raise _conflict("cluster is not initialised", "cluster_id")


def _validated_node(d: Mapping[str, Any], at: float, v: int) -> NodeRecord:
    if not isinstance(d, Mapping):
        raise _invalid("node must be a map", "node")
    return NodeRecord(
        node_id=_str(d, "node_id"),
        name=_str(d, "name"),
        addr=_str(d, "addr"),
        raft_port=_port(d.get("raft_port"), "raft_port"),
        gossip_port=_port(d.get("gossip_port"), "gossip_port"),
        role=_choice(d.get("role", "replica"), "role", NODE_ROLES),
        availability=_choice(d.get("availability", "active"), "availability", NODE_AVAILABILITIES),
        labels=_labels(d.get("labels", {}), "labels"),
        cpu_nanos=_non_negative(d.get("cpu_nanos", 0), "cpu_nanos"),
        memory_bytes=_non_negative(d.get("memory_bytes", 0), "memory_bytes"),
        status=_choice(d.get("status", "ready"), "status", NODE_STATUSES),
        key_pub=_key_text(d.get("key_pub", ""), "key_pub"),
        joined_at=at,
        status_at=at,  # a joining node counts as coming (not down) for the autopilot's grace from now
        version=v,
    )


def _add_node(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    _require_init(s)
    node = _validated_node(b.get("node"), at, v)  # type: ignore[arg-type]
    if node.node_id in s.nodes:
        raise _conflict(f"node id {node.node_id} already exists", "node_id")
    if s.node_by_name(node.name) is not None:
        raise _conflict(f"node name {node.name} is taken", "name")
    nodes = dict(s.nodes)
    nodes[node.node_id] = node
    return s.evolve(nodes=nodes, version=v), node.node_id, [Change("node", "put", node.node_id, node, v)]


_NODE_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "labels": _labels,
    "availability": lambda x, n: _choice(x, n, NODE_AVAILABILITIES),
    "status": lambda x, n: _choice(x, n, NODE_STATUSES),
    "role": lambda x, n: _choice(x, n, NODE_ROLES),
    "addr": lambda x, n: _str({n: x}, n),
    "raft_port": _port,
    "gossip_port": _port,
    "cpu_nanos": _non_negative,
    "memory_bytes": _non_negative,
    "key_pub": _key_text,
}


def _update_node(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    node_id = _str(b, "node_id")
    node = s.nodes.get(node_id)
    if node is None:
        raise _not_found(f"no node {node_id}", "node_id")
    _check_object_version(node.version, b, "node_version")
    updates = _get(b, "fields", dict)
    clean: dict[str, Any] = {}
    for name, value in updates.items():
        check = _NODE_FIELDS.get(name)
        if check is None:
            raise _invalid(f"node field {name!r} cannot be updated", name)
        clean[name] = check(value, name)
    if not clean:
        raise _invalid("no fields to update", "fields")
    if "status" in clean and clean["status"] != node.status:
        clean["status_at"] = at
    new_node = replace(node, **clean, version=v)
    nodes = dict(s.nodes)
    nodes[node_id] = new_node
    return s.evolve(nodes=nodes, version=v), node_id, [Change("node", "put", node_id, new_node, v)]


def _remove_node(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    node_id = _str(b, "node_id")
    if node_id not in s.nodes:
        raise _not_found(f"no node {node_id}", "node_id")
    _check_object_version(s.nodes[node_id].version, b, "node_version")
    nodes = dict(s.nodes)
    del nodes[node_id]
    changes = [Change("node", "delete", node_id, None, v)]
    leases = None
    if node_id in s.leases:
        leases = dict(s.leases)
        del leases[node_id]
        changes.append(Change("lease", "delete", node_id, None, v))
    return s.evolve(nodes=nodes, leases=leases, version=v), node_id, changes


def _spec(b: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_get(b, "spec", dict))


def _service_vip(s: ClusterState, service_id: str, spec: Mapping[str, Any], current: str) -> str:
    """Keep a service's VIP while it is in vip mode, allocate one on the switch, drop it for dnsrr."""
    if not wants_vip(spec):
        return ""
    if current:
        return current
    return allocate_vip(service_id, (o.vip for o in s.services.values() if o.vip))


def _create_service(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    _require_init(s)
    service_id = _str(b, "service_id")
    name = _str(b, "name")
    if service_id in s.services:
        raise _conflict(f"service id {service_id} already exists", "service_id")
    if s.service_by_name(name) is not None:
        raise _conflict(f"service name {name} is taken", "name")
    spec = _spec(b)
    vip = _service_vip(s, service_id, spec, "")
    svc = ServiceRecord(service_id, name, spec, version=v, created_at=at, updated_at=at, vip=vip)
    services = dict(s.services)
    services[service_id] = svc
    return s.evolve(services=services, version=v), service_id, [Change("service", "put", service_id, svc, v)]


def _update_service(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    service_id = _str(b, "service_id")
    svc = s.services.get(service_id)
    if svc is None:
        raise _not_found(f"no service {service_id}", "service_id")
    _check_object_version(svc.version, b, "service_version")
    spec = _spec(b)
    vip = _service_vip(s, service_id, spec, svc.vip)
    new_svc = replace(svc, spec=spec, version=v, updated_at=at, vip=vip)
    services = dict(s.services)
    services[service_id] = new_svc
    return (
        s.evolve(services=services, version=v),
        service_id,
        [Change("service", "put", service_id, new_svc, v)],
    )


def _remove_service(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    service_id = _str(b, "service_id")
    svc = s.services.get(service_id)
    if svc is None:
        raise _not_found(f"no service {service_id}", "service_id")
    _check_object_version(svc.version, b, "service_version")
    services = dict(s.services)
    del services[service_id]
    # Its tasks stop in the same commit: agents see desired_state shutdown, the leader later forgets them.
    tasks = dict(s.tasks)
    changes = [Change("service", "delete", service_id, None, v)]
    for task in s.tasks_of_service(service_id):
        if task.desired_state != "shutdown":
            stopped = replace(task, desired_state="shutdown", message="service removed", version=v)
            tasks[task.task_id] = stopped
            changes.append(Change("task", "put", task.task_id, stopped, v))
    return s.evolve(services=services, tasks=tasks, version=v), service_id, changes


_TASK_STR_FIELDS = ("desired_state", "state", "error", "container_id", "address", "message")
_TASK_DEFAULTS = {"desired_state": "running", "state": "new"}


def _validated_task(d: Any, v: int) -> TaskRecord:
    if not isinstance(d, Mapping):
        raise _invalid("task must be a map", "task")
    node_id = _optional_str(d, "node_id")
    move_to = _optional_str(d, "move_to")
    slot = d.get("slot")
    if not isinstance(slot, int) or isinstance(slot, bool) or slot < 0:
        raise _invalid("slot must be a non-negative integer", "slot")
    state_at = d.get("state_at", 0.0)
    if not isinstance(state_at, int | float) or isinstance(state_at, bool):
        raise _invalid("state_at must be a number", "state_at")
    strs: dict[str, Any] = {}
    for name in _TASK_STR_FIELDS:
        value = d.get(name)
        if value is None:
            value = _TASK_DEFAULTS.get(name, "")
        if not isinstance(value, str):
            raise _invalid(f"{name} must be a string", name)
        strs[name] = value
    extra: dict[str, Any] = {}  # checked below, one type per field
    grace = d.get("stop_grace_s", 10.0)
    if not isinstance(grace, int | float) or isinstance(grace, bool) or grace < 0:
        raise _invalid("stop_grace_s must be a non-negative number", "stop_grace_s")
    extra["stop_grace_s"] = float(grace)
    for name in ("created_at", "started_at", "move_at"):
        value = d.get(name, 0.0) or 0.0
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _invalid(f"{name} must be a number", name)
        extra[name] = float(value)
    spec_version = d.get("spec_version", 0)
    if not isinstance(spec_version, int) or isinstance(spec_version, bool) or spec_version < 0:
        raise _invalid("spec_version must be a non-negative integer", "spec_version")
    for name in ("template_hash", "health"):
        value = d.get(name) or ""
        if not isinstance(value, str):
            raise _invalid(f"{name} must be a string", name)
        extra[name] = value
    exit_code = d.get("exit_code")
    if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
        raise _invalid("exit_code must be an integer or nil", "exit_code")
    history = d.get("restart_history") or ()
    if not isinstance(history, list | tuple) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in history
    ):
        raise _invalid("restart_history must be a list of numbers", "restart_history")
    return TaskRecord(
        task_id=_str(d, "task_id"),
        service_id=_str(d, "service_id"),
        slot=slot,
        node_id=node_id,
        move_to=move_to,
        state_at=float(state_at),
        version=v,
        spec_version=spec_version,
        exit_code=exit_code,
        restart_history=tuple(float(x) for x in history),
        **extra,
        **strs,
    )


def _put_tasks(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    items = _get(b, "items", list)
    tasks = dict(s.tasks)
    changes: list[Change] = []
    touched: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _invalid(f"items[{i}] must be a map", "items")
        op = item.get("op")
        expected = item.get("task_version")
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
            raise _invalid(f"items[{i}].task_version must be an integer", "task_version")
        if op == "put":
            task = _validated_task(item.get("task"), v)
            current = tasks.get(task.task_id)
        elif op == "remove":
            task_id = _str(item, "task_id")
            current = tasks.get(task_id)
            if current is None:
                raise _not_found(f"no task {task_id}", "task_id")
        else:
            raise _invalid(f"items[{i}].op must be put or remove", "op")
        key = task.task_id if op == "put" else task_id
        if key in touched:
            raise _invalid(f"task {key} appears twice in one batch", "task_id")
        touched.add(key)
        if expected is not None:
            actual = 0 if current is None else current.version
            if actual != expected:
                raise _conflict(f"task {key} is at version {actual}, expected {expected}", "task_version")
        if op == "remove":
            del tasks[key]
            changes.append(Change("task", "delete", key, None, v))
            continue
        if task.service_id not in s.services:
            raise _conflict(f"task {key}: no service {task.service_id}", "service_id")
        if task.node_id is not None and (current is None or current.node_id != task.node_id):
            # Only a new assignment needs a live node; a task may still be updated (e.g. shut down)
            # after its node left.
            node = s.nodes.get(task.node_id)
            if node is None or node.status == "left":
                raise _conflict(f"task {key}: node {task.node_id} is not a member", "node_id")
        tasks[key] = task
        changes.append(Change("task", "put", key, task, v))
    if not changes:
        return s, [], []
    return s.evolve(tasks=tasks, version=v), [c.key for c in changes], changes


def _report_task_states(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    node_id = _str(b, "node_id")
    reports = _get(b, "reports", list)
    tasks: dict[str, TaskRecord] | None = None
    changes: list[Change] = []
    applied: list[str] = []
    skipped: list[str] = []
    for i, report in enumerate(reports):
        if not isinstance(report, Mapping):
            raise _invalid(f"reports[{i}] must be a map", "reports")
        task_id = _str(report, "task_id")
        current = (tasks or s.tasks).get(task_id)
        if current is None or current.node_id != node_id:
            skipped.append(task_id)
            continue
        updates: dict[str, Any] = {}
        for name in ("state", "error", "container_id", "address", "message", "health"):
            if name in report:
                if not isinstance(report[name], str):
                    raise _invalid(f"reports[{i}].{name} must be a string", name)
                updates[name] = report[name]
        if "exit_code" in report:
            exit_code = report["exit_code"]
            if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
                raise _invalid(f"reports[{i}].exit_code must be an integer or nil", "exit_code")
            updates["exit_code"] = exit_code
        if "state_at" in report:
            state_at = report["state_at"]
            if not isinstance(state_at, int | float) or isinstance(state_at, bool):
                raise _invalid(f"reports[{i}].state_at must be a number", "state_at")
            updates["state_at"] = float(state_at)
        if all(getattr(current, k) == val for k, val in updates.items()):
            skipped.append(task_id)
            continue
        if updates.get("state") == "running" and not current.started_at:
            updates["started_at"] = updates.get("state_at", at)
        if tasks is None:
            tasks = dict(s.tasks)
        new_task = replace(current, **updates, version=v)
        tasks[task_id] = new_task
        applied.append(task_id)
        changes.append(Change("task", "put", task_id, new_task, v))
    value = {"applied": applied, "skipped": skipped}
    if tasks is None:
        return s, value, []
    return s.evolve(tasks=tasks, version=v), value, changes


def _lease_subnet(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    _require_init(s)
    node_id = _str(b, "node_id")
    if node_id not in s.nodes:
        raise _not_found(f"no node {node_id}", "node_id")
    existing = s.leases.get(node_id)
    if existing is not None:
        return s, existing.subnet, []
    taken = {lease.subnet for lease in s.leases.values()}
    cidr = ipaddress.IPv4Network(s.cluster_cidr)
    for subnet in cidr.subnets(new_prefix=s.subnet_prefix_len):
        text = str(subnet)
        if text not in taken:
            lease = SubnetLease(node_id, text, version=v)
            leases = dict(s.leases)
            leases[node_id] = lease
            return s.evolve(leases=leases, version=v), text, [Change("lease", "put", node_id, lease, v)]
    raise _conflict(f"cluster CIDR {s.cluster_cidr} has no free /{s.subnet_prefix_len}", "cluster_cidr")


def _release_subnet(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    node_id = _str(b, "node_id")
    lease = s.leases.get(node_id)
    if lease is None:
        return s, None, []
    leases = dict(s.leases)
    del leases[node_id]
    return s.evolve(leases=leases, version=v), lease.subnet, [Change("lease", "delete", node_id, None, v)]


def _set_join_token(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    _require_init(s)
    token = _str(b, "join_token")
    if not token.startswith(f"P2PT-1-{s.cluster_id}-"):
        raise _invalid("join_token must be a token of this cluster", "join_token")
    return s.evolve(join_token=token, version=v), None, [Change("cluster", "put", s.cluster_id, None, v)]


def _rotate_keys(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    """The next cluster key epoch: only the members holding an envelope can follow it."""
    _require_init(s)
    epoch = _get(b, "epoch", int)
    if epoch != s.key_epoch + 1:
        raise _conflict(f"key epoch is {s.key_epoch}: the next is {s.key_epoch + 1}, not {epoch}", "epoch")
    envelopes = _get(b, "envelopes", dict)
    excluded = set(_get(b, "excluded", list, optional=True) or ())
    for node_id, envelope in envelopes.items():
        if node_id not in s.nodes:
            raise _not_found(f"no node {node_id}", "envelopes")
        _key_text(envelope, "envelopes")
    # computed from an older state (a node joined since): it would silently cut that node off
    missing = sorted(
        n.name
        for n in s.nodes.values()
        if n.status != "left" and n.node_id not in envelopes and n.node_id not in excluded
    )
    if missing:
        raise _conflict(f"the rotation has no key for {', '.join(missing)}", "envelopes")
    new = s.evolve(key_epoch=epoch, key_envelopes=dict(envelopes), version=v)
    return new, epoch, [Change("cluster", "put", s.cluster_id, None, v)]


def _restore_state(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    """First entry of a recovered cluster's new log: the whole state one node had, one generation on."""
    if s.initialized:
        raise _conflict("only a new, empty Raft log can be restored into", "state")
    data = _get(b, "state", dict)
    try:
        restored = ClusterState.from_dict(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise _invalid(f"state is malformed: {exc}", "state") from exc
    if not restored.initialized:
        raise _invalid("state has no cluster id", "state")
    version = max(v, restored.version + 1)
    new = restored.evolve(
        version=version, generation=restored.generation + 1, founded_at_version=restored.version
    )
    return new, new.generation, [Change("reset", "put", new.cluster_id, new, version)]


def _noop(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    return s, b.get("tag"), []


HANDLERS: dict[str, Handler] = {
    "init_cluster": _init_cluster,
    "add_node": _add_node,
    "update_node": _update_node,
    "remove_node": _remove_node,
    "create_service": _create_service,
    "update_service": _update_service,
    "remove_service": _remove_service,
    "put_tasks": _put_tasks,
    "report_task_states": _report_task_states,
    "lease_subnet": _lease_subnet,
    "release_subnet": _release_subnet,
    "set_join_token": _set_join_token,
    "rotate_keys": _rotate_keys,
    "restore_state": _restore_state,
    "noop": _noop,
    "put_secret": lambda s, b, at, v: _changes_of(fsm_secrets.put_secret(s, b, at, v), v),
    "remove_secret": lambda s, b, at, v: _changes_of(fsm_secrets.remove_secret(s, b, at, v), v),
}
assert set(HANDLERS) == set(C.OPS)


def _changes_of(result: tuple[ClusterState, Any, list[tuple[str, str, str, Any]]], v: int) -> Any:
    return result[0], result[1], [Change(kind, op, key, record, v) for kind, op, key, record in result[2]]


def apply(state: ClusterState, command: bytes) -> tuple[ClusterState, dict[str, Any], list[Change]]:
    """Apply one encoded command; never raises. Unchanged state on any error."""
    try:
        body = C.decode(command)
    except WireError as exc:
        return state, C.error("WireError", exc.message, version=state.version), []
    return apply_decoded(state, body)


def apply_decoded(state: ClusterState, body: Any) -> tuple[ClusterState, dict[str, Any], list[Change]]:
    """Apply one already-decoded command map; never raises."""
    try:
        if not isinstance(body, Mapping):
            raise _Reject("WireError", f"command is a {type(body).__name__}, not a map")
        op = body.get("op")
        handler = HANDLERS.get(op) if isinstance(op, str) else None
        if handler is None:
            raise _invalid(f"unknown op {op!r}", "op")
        at = _get(body, "at", (int, float))
        expected = _get(body, "expected_version", int, optional=True)
        if expected is not None and expected != state.version:
            raise _conflict(f"state is at version {state.version}, expected {expected}", "expected_version")
        new_state, value, changes = handler(state, body, float(at), state.version + 1)
        if not changes:
            return state, C.ok(state.version, value), []
        return new_state, C.ok(new_state.version, value), changes
    except _Reject as rej:
        return state, C.error(rej.kind, rej.message, field=rej.field, version=state.version), []
    except (ConfigError, ConflictError, NotFoundError) as exc:  # raised by the fsm_secrets handlers
        return state, C.error(type(exc).__name__, exc.message, field=exc.field, version=state.version), []
    except Exception as exc:  # a handler bug must not diverge replicas or kill the Raft thread
        return state, C.error("RaftError", f"{type(exc).__name__}: {exc}", version=state.version), []


def encode_batch(commands: list[bytes]) -> bytes:
    """Pack several encoded commands into one Raft entry."""
    return pack(list(commands))


def apply_batch(state: ClusterState, batch: bytes) -> tuple[ClusterState, list[dict[str, Any]], list[Change]]:
    """Apply a batch made by :func:`encode_batch` in order; one result per command."""
    try:
        items = C.decode(batch)
    except WireError as exc:
        return state, [C.error("WireError", exc.message, version=state.version)], []
    if not isinstance(items, list) or len(items) > MAX_BATCH_COMMANDS:
        return state, [C.error("WireError", "batch is not a list of commands", version=state.version)], []
    results: list[dict[str, Any]] = []
    changes: list[Change] = []
    for item in items:
        if not isinstance(item, bytes):
            results.append(C.error("WireError", "batch item is not bytes", version=state.version))
            continue
        state, result, item_changes = apply(state, item)
        results.append(result)
        changes.extend(item_changes)
    return state, results, changes
