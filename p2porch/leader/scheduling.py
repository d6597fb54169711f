"""One scheduling round of the leader: orchestrate, place, and express the result as task writes (pure).

Takes a committed :class:`ClusterState` snapshot, ``now`` and the leader's :class:`Orchestrator`, and
returns the ``put_tasks`` items that move the cluster towards its services, conditional on the task
versions it read. It never writes anything itself and never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..raft import commands as C
from ..raft.state import ClusterState, NodeRecord, ServiceRecord, TaskRecord
from ..scheduler import (
    Node,
    Orchestrator,
    PlacedTask,
    Service,
    ServiceSpec,
    Task,
    TaskRequest,
    UpdateFailed,
    build_node_infos,
    schedule,
)
from ..scheduler.orchestrator import TERMINAL_STATES
from ..scheduler.rebalance import plan_rebalance

HISTORY_PER_SLOT = 3  # finished tasks kept per slot for `service ps`


@dataclass
class Round:
    """What one round decided: task writes, update failures, when to run again, and specs that failed."""

    items: list[dict[str, Any]] = field(default_factory=list)
    update_failures: list[UpdateFailed] = field(default_factory=list)
    wake_at: float | None = None
    invalid_specs: dict[str, str] = field(default_factory=dict)  # service id -> error
    rebalanced: list[str] = field(default_factory=list)  # services whose `service rebalance` is done

    @property
    def empty(self) -> bool:
        return not self.items


# Keys p2porch keeps in a stored service spec beside the user's fields.
BOOKKEEPING_KEYS = ("previous_spec", "update_paused", "rebalance_requested", "autoscale_last")


def keep_rebalance_request(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` (a replacement stored spec) with ``old``'s pending `service rebalance` request and its
    autoscaler's last step (``autoscale_last``: when it last scaled, so a user's update does not
    reset the autoscaler's delays), if any."""
    for key in ("rebalance_requested", "autoscale_last"):
        if old.get(key):
            new[key] = old[key]
    return new


def plain_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The user's spec without p2porch's bookkeeping keys."""
    return {k: v for k, v in spec.items() if k not in BOOKKEEPING_KEYS}


def service_spec(spec: Mapping[str, Any]) -> ServiceSpec:
    """Validate a stored service spec (raises ConfigError)."""
    return ServiceSpec.from_dict(plain_spec(spec))


def scheduler_node(node: NodeRecord) -> Node:
    return Node(
        node_id=node.node_id,
        name=node.name,
        role=node.role,
        availability=node.availability,
        status=node.status,
        labels=dict(node.labels),
        cpu_nanos=node.cpu_nanos,
        memory_bytes=node.memory_bytes,
        hostname=node.name,
        down_since=(node.status_at or None) if node.status == "down" else None,
    )


def orchestrator_task(task: TaskRecord) -> Task:
    health = task.health
    return Task(
        task_id=task.task_id,
        service_id=task.service_id,
        slot=task.slot,
        node_id=task.node_id,
        desired_state=task.desired_state,
        state=task.state,
        state_at=task.state_at,
        spec_version=task.spec_version,
        template_hash=task.template_hash,
        created_at=task.created_at,
        started_at=task.started_at or None,
        healthy=None if health in ("", "starting") else health == "healthy",
        health_starting=health == "starting",
        restart_history=task.restart_history,
        move_to=task.move_to,
        move_at=task.move_at,
    )


def occupies_node(task: TaskRecord) -> bool:
    """A task holds its node's resources while it should run or has not been seen ending yet."""
    return task.node_id is not None and (task.desired_state == "running" or task.state not in TERMINAL_STATES)


def plan_round(
    state: ClusterState, now: float, orchestrator: Orchestrator, *, rebalance_max_moves: int = 1
) -> Round:
    out = Round()
    specs: dict[str, ServiceSpec] = {}
    services = []
    for service in state.services.values():
        try:
            spec = service_spec(service.spec)
        except ConfigError as exc:
            out.invalid_specs[service.service_id] = exc.message
            continue
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # a stored spec the validator did not foresee: this service waits, every other one is scheduled
            out.invalid_specs[service.service_id] = f"unreadable stored spec: {type(exc).__name__}: {exc}"
            continue
        specs[service.service_id] = spec
        services.append(
            Service(service.service_id, spec, service.version, bool(service.spec.get("update_paused")))
        )
    tasks = list(state.tasks.values())
    nodes = [scheduler_node(n) for n in state.nodes.values()]
    task_views = [orchestrator_task(t) for t in tasks]
    reconciliation = orchestrator.reconcile(services, task_views, nodes, now)
    out.update_failures = list(reconciliation.events)
    out.wake_at = reconciliation.wake_at

    placed = [
        PlacedTask(
            service=specs[t.service_id].name,
            node_id=t.node_id,
            cpu_nanos=specs[t.service_id].reserve_cpu_nanos,
            memory_bytes=specs[t.service_id].reserve_memory_bytes,
            host_ports=specs[t.service_id].host_ports,
        )
        for t in tasks
        if occupies_node(t) and t.service_id in specs and t.node_id is not None
    ]
    shutdown_ids = {a.task_id for a in reconciliation.shutdowns}
    requests: list[TaskRequest] = []
    new_records: dict[str, TaskRecord] = {}
    for create in reconciliation.creates:
        record = TaskRecord(
            task_id=create.task_id,
            service_id=create.service_id,
            slot=create.slot,
            node_id=None,
            state="pending",
            state_at=now,
        )
        record = replace(
            record,
            spec_version=create.spec_version,
            template_hash=create.template_hash,
            created_at=create.created_at,
            restart_history=create.restart_history,
            stop_grace_s=specs[create.service_id].stop_grace_period_s,
        )
        new_records[create.task_id] = record
        requests.append(TaskRequest(create.task_id, specs[create.service_id], node_id=create.node_id))
    # Tasks that found no node in an earlier round get another chance every round (a rebalance
    # replacement only on its move's target).
    move_targets = {
        (t.service_id, t.slot): t.move_to for t in tasks if t.move_to and t.desired_state == "running"
    }
    for t in tasks:
        if (
            t.node_id is None
            and t.desired_state == "running"
            and t.state == "pending"
            and t.service_id in specs
            and t.task_id not in shutdown_ids
        ):
            pin = move_targets.get((t.service_id, t.slot))
            requests.append(TaskRequest(t.task_id, specs[t.service_id], node_id=pin))
    result = schedule(requests, build_node_infos(nodes, placed)) if requests else None

    for create_id, record in new_records.items():
        node_id = result.assignments.get(create_id) if result else None
        explanation = result.unschedulable.get(create_id, "") if result else ""
        record = replace(
            record, node_id=node_id, state="assigned" if node_id else "pending", message=explanation
        )
        out.items.append(C.task_put(record, task_version=0))
    for t in tasks:
        if t.task_id in shutdown_ids:
            reason = next(a.reason for a in reconciliation.shutdowns if a.task_id == t.task_id)
            out.items.append(
                C.task_put(replace(t, desired_state="shutdown", message=reason), task_version=t.version)
            )
            continue
        if result is None or t.task_id in new_records:
            continue
        if t.task_id in result.assignments:
            out.items.append(
                C.task_put(
                    replace(
                        t, node_id=result.assignments[t.task_id], state="assigned", state_at=now, message=""
                    ),
                    task_version=t.version,
                )
            )
        elif t.task_id in result.unschedulable and result.unschedulable[t.task_id] != t.message:
            out.items.append(
                C.task_put(replace(t, message=result.unschedulable[t.task_id]), task_version=t.version)
            )
    out.items.extend(forget_finished(state, shutdown_ids | set(new_records)))

    wanted = {
        s.service_id
        for s in state.services.values()
        if s.service_id in specs and (specs[s.service_id].rebalance or s.spec.get("rebalance_requested"))
    }
    if wanted:
        placed_now = placed + [  # what this round placed counts too
            PlacedTask(
                service=r.spec.name,
                node_id=result.assignments[r.task_id],
                cpu_nanos=r.spec.reserve_cpu_nanos,
                memory_bytes=r.spec.reserve_memory_bytes,
                host_ports=r.spec.host_ports,
            )
            for r in requests
            if result is not None and r.task_id in result.assignments
        ]
        rebalance = plan_rebalance(
            services, task_views, nodes, placed_now, now, wanted=wanted, max_moves=rebalance_max_moves
        )
        touched = result_ids(out)  # one write per task per round: a second would conflict
        moves: dict[str, str | None] = {m.task_id: m.to_node for m in rebalance.moves}
        moves.update((task_id, None) for task_id in rebalance.cancels)
        for task_id, target in moves.items():
            t = state.tasks[task_id]
            if task_id not in touched:
                moved = replace(t, move_to=target, move_at=now if target else 0.0)
                out.items.append(C.task_put(moved, task_version=t.version))
        out.rebalanced = sorted(
            sid for sid in rebalance.balanced if state.services[sid].spec.get("rebalance_requested")
        )
    return out


def result_ids(round_: Round) -> set[str]:
    """Task ids some item of ``round_`` already writes or removes."""
    return {item["task"]["task_id"] if item["op"] == "put" else item["task_id"] for item in round_.items}


def forget_finished(state: ClusterState, busy: set[str]) -> list[dict[str, Any]]:
    """Remove records of tasks that are over: keep the newest HISTORY_PER_SLOT per slot for
    ``service ps``; forget every finished task of a removed service or of a node that is gone."""
    over: dict[tuple[str, int], list[TaskRecord]] = {}
    items = []
    for t in state.tasks.values():
        if t.task_id in busy or t.desired_state != "shutdown":
            continue
        node = state.nodes.get(t.node_id) if t.node_id else None
        node_gone = t.node_id is not None and (node is None or node.status == "left")
        if not (t.state in TERMINAL_STATES or t.node_id is None or node_gone):
            continue  # its agent has not stopped it yet
        if t.service_id not in state.services or node_gone:
            items.append(C.task_remove(t.task_id, task_version=t.version))
        else:
            over.setdefault((t.service_id, t.slot), []).append(t)
    for finished in over.values():
        finished.sort(key=lambda t: (t.state_at, t.task_id), reverse=True)
        items.extend(C.task_remove(t.task_id, task_version=t.version) for t in finished[HISTORY_PER_SLOT:])
    return items


def node_status_updates(state: ClusterState, gossip_states: Mapping[str, str]) -> dict[str, str]:
    """Raft node statuses that gossip contradicts: ``{node_id: "down" | "ready"}``.

    A ready node that gossip declares dead (or gone without leaving) goes down; a joining or down node
    that gossip sees alive is ready (a joiner that never gossips stays joining and gets no tasks).
    Suspect, and nodes gossip does not know yet, change nothing; a node that left through
    `p2porch leave` stays left.
    """
    updates = {}
    for node in state.nodes.values():
        seen = gossip_states.get(node.node_id)
        if node.status == "ready" and seen in ("dead", "left"):
            updates[node.node_id] = "down"
        elif node.status in ("joining", "down") and seen == "alive":
            updates[node.node_id] = "ready"
    return updates


def update_failure_specs(
    state: ClusterState, failures: list[UpdateFailed]
) -> list[tuple[ServiceRecord, dict[str, Any], str]]:
    """What a failed rolling update makes the leader write: per service (once), the stored spec rolled
    back to ``previous_spec`` (action rollback, when there is one) or with ``update_paused`` set, and
    which of the two ("rollback" | "pause"). Services already paused or gone are left alone."""
    out = []
    for service_id in sorted({f.service_id for f in failures}):
        service = state.services.get(service_id)
        if service is None or service.spec.get("update_paused"):
            continue
        action = next(f.action for f in failures if f.service_id == service_id)
        previous = service.spec.get("previous_spec")
        if action == "rollback" and previous:
            spec = keep_rebalance_request(
                service.spec, {**dict(previous), "previous_spec": plain_spec(service.spec)}
            )
            out.append((service, spec, "rollback"))
        else:
            out.append((service, {**dict(service.spec), "update_paused": True}, "pause"))
    return out


def rebalance_done_specs(
    state: ClusterState, service_ids: list[str]
) -> list[tuple[ServiceRecord, dict[str, Any]]]:
    """The stored specs of services found balanced, without their `service rebalance` request."""
    return [
        (
            state.services[sid],
            {k: v for k, v in state.services[sid].spec.items() if k != "rebalance_requested"},
        )
        for sid in service_ids
        if sid in state.services
    ]
