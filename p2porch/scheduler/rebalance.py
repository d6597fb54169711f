"""Rebalancing: move running tasks onto nodes that joined or came back (pure).

``plan_rebalance`` looks at settled replicated services that asked for it (``spec.rebalance`` or an
operator's ``service rebalance``) and proposes at most one move per service per round, and no more
moves in flight cluster-wide than the disruption budget. A move only marks the old task with
``move_to``; the orchestrator then starts the replacement on that node first and stops the old task
once the replacement runs (start-first), so a service never drops below its replicas. The target is
the node the scheduler itself would choose for one more task (filters, resources, preferences,
affinity), and a move is proposed only when it strictly improves the spread: the target then holds
fewer tasks of the service than the source did. Moves whose target went away, whose replacement
failed or runs unhealthy, or that did not complete within ``MOVE_DEADLINE_S`` are cancelled; a service
whose replacement failed is left alone for ``FAILURE_COOLDOWN_S``. Nothing here performs I/O or reads a
clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from ..model import (
    FAILURE_STATES,
    TERMINAL_STATES,
    Availability,
    DesiredState,
    Node,
    NodeStatus,
    Service,
    Task,
    TaskState,
)
from .nodeinfo import NodeInfo, PlacedTask, build_node_infos
from .placement import TaskRequest, schedule

#: after a replacement in a service failed, leave the service alone this long (no move storm on a bad node)
FAILURE_COOLDOWN_S = 30.0
#: a move whose replacement is not running healthy this long after the move is cancelled
MOVE_DEADLINE_S = 120.0
_PROBE = "rebalance-probe"


def replacement_failed(moving: Task, other: Task) -> bool:
    """``other`` is a replacement started for ``moving``'s rebalance move, and it ended in failure."""
    return (
        other.task_id != moving.task_id
        and other.node_id == moving.move_to
        and other.created_at >= moving.move_at
        and other.state in FAILURE_STATES
    )


@dataclass(frozen=True, slots=True)
class Move:
    """Move ``task_id`` (slot ``slot`` of ``service_id``) from ``from_node`` to ``to_node``."""

    task_id: str
    service_id: str
    slot: int
    from_node: str
    to_node: str


@dataclass(slots=True)
class RebalancePlan:
    """Moves to start, moves to cancel (task ids), and services found balanced this round."""

    moves: list[Move] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    balanced: set[str] = field(default_factory=set)


def _move_over(task: Task, slot_tasks: Sequence[Task], target: Node | None, now: float) -> bool:
    """The move of ``task`` cannot succeed any more: its target is gone, unschedulable, or its
    replacement failed, runs unhealthy, or is not running healthy ``MOVE_DEADLINE_S`` after the move."""
    if target is None or not target.schedulable:
        return True
    replacements = [
        t
        for t in slot_tasks
        if t.task_id != task.task_id and t.created_at >= task.move_at and t.node_id in (task.move_to, None)
    ]
    if any(replacement_failed(task, t) or t.healthy is False for t in replacements):
        return True
    return now - task.move_at > MOVE_DEADLINE_S


def _settled(tasks: Sequence[Task], svc: Service, nodes: dict[str, Node], now: float) -> bool:
    """One running, healthy, current, well-placed task per slot, nothing starting, and no replacement
    that failed lately (a task created after its slot's running task: a failed move or update)."""
    spec = svc.spec
    current = spec.template_hash()
    active = [t for t in tasks if t.desired_state == DesiredState.RUNNING]
    if sorted(t.slot for t in active) != list(range(1, spec.replicas + 1)):
        return False
    holder = {t.slot: t for t in active}
    for t in tasks:
        if t.desired_state != DesiredState.RUNNING and t.state not in TERMINAL_STATES:
            return False  # a stopped task still holds its node: counts would be stale
        if (
            t.state in FAILURE_STATES
            and t.state_at > now - FAILURE_COOLDOWN_S
            and t.slot in holder
            and t.created_at > holder[t.slot].created_at
        ):
            return False
    for t in active:
        node = nodes.get(t.node_id or "")
        if (
            node is None
            or node.status != NodeStatus.READY
            or node.availability == Availability.DRAIN
            or t.state != TaskState.RUNNING
            or t.healthy is False
            or t.health_starting
            or t.template_hash != current
            or t.move_to is not None
        ):
            return False
    return True


def plan_rebalance(
    services: Sequence[Service],
    tasks: Sequence[Task],
    nodes: Sequence[Node],
    placed: Sequence[PlacedTask],
    now: float,
    *,
    wanted: Collection[str],
    max_moves: int,
) -> RebalancePlan:
    """Moves for the services in ``wanted`` (ids), within ``max_moves`` moves in flight cluster-wide.

    ``placed`` are the tasks occupying nodes (as for :func:`schedule`). A service is reported
    ``balanced`` when it is settled and no move would improve its spread (or it cannot be rebalanced:
    global mode, binpack strategy), so a one-off request can be cleared.
    """
    plan = RebalancePlan()
    by_id = {n.node_id: n for n in nodes}
    by_service: dict[str, list[Task]] = {}
    for t in tasks:
        by_service.setdefault(t.service_id, []).append(t)

    in_flight = 0
    moving_services: set[str] = set()
    for t in sorted(tasks, key=lambda t: t.task_id):
        if t.move_to is None or t.desired_state != DesiredState.RUNNING:
            continue
        slot_tasks = [s for s in by_service[t.service_id] if s.slot == t.slot]
        if _move_over(t, slot_tasks, by_id.get(t.move_to), now):
            plan.cancels.append(t.task_id)
        else:
            in_flight += 1
            moving_services.add(t.service_id)

    infos: list[NodeInfo] | None = None
    for svc in sorted(services, key=lambda s: (s.spec.name, s.service_id)):
        if svc.service_id not in wanted:
            continue
        spec = svc.spec
        if spec.mode == "global" or spec.strategy != "spread":
            plan.balanced.add(svc.service_id)
            continue
        mine = by_service.get(svc.service_id, [])
        if svc.service_id in moving_services or not _settled(mine, svc, by_id, now):
            continue
        if in_flight >= max_moves:
            continue  # the budget is spent; this service waits for a later round
        if infos is None:
            infos = build_node_infos(nodes, placed)
        move = _best_move(svc, [t for t in mine if t.desired_state == DesiredState.RUNNING], infos)
        if move is None:
            plan.balanced.add(svc.service_id)
            continue
        plan.moves.append(move)
        in_flight += 1
        destination = next(n for n in infos if n.node_id == move.to_node)
        destination.add_task(
            spec.name, spec.placement_cpu_nanos, spec.placement_memory_bytes, spec.host_ports
        )
    return plan


def _best_move(svc: Service, active: Sequence[Task], infos: Sequence[NodeInfo]) -> Move | None:
    """Take one task off the most loaded node and ask the scheduler where it would go instead."""
    spec = svc.spec
    counts = {n.node_id: n.tasks_by_service.get(spec.name, 0) for n in infos}
    on_node: dict[str, list[Task]] = {}
    for t in active:
        assert t.node_id is not None  # settled tasks are placed
        on_node.setdefault(t.node_id, []).append(t)
    for src in sorted(on_node, key=lambda n: (-counts.get(n, 0), n)):
        if counts.get(src, 0) < 2:
            break  # no node holds two: nothing can improve
        task = max(on_node[src], key=lambda t: t.slot)
        probe = [n.copy() for n in infos]
        source = next(n for n in probe if n.node_id == src)
        source.remove_task(spec.name, spec.placement_cpu_nanos, spec.placement_memory_bytes, spec.host_ports)
        target = schedule([TaskRequest(_PROBE, spec)], probe, in_place=True).assignments.get(_PROBE)
        if target is not None and target != src and counts.get(target, 0) + 2 <= counts[src]:
            return Move(task.task_id, svc.service_id, task.slot, src, target)
    return None
