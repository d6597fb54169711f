"""One scheduling round of the leader: orchestrate, place, and express the result as task writes (pure).

Takes a committed :class:`ClusterState` snapshot, ``now`` and the leader's :class:`Orchestrator`, and
returns the ``PutTasks`` items that move the cluster towards its services, conditional on the task
versions it read. Services, tasks and nodes go to the scheduler as the model's records, unchanged.
It never writes anything itself and never reads a clock. A round over every task may take seconds at
100,000 tasks: its loops call the caller's ``checkpoint`` every ``CHECKPOINT_EVERY`` tasks (and the
orchestrator after each service), where the leader loop stops the round of a deposed leader
(``leader/gil_share.py``); a checkpoint never changes a decision (it may only end the round).
A round may be given a placement ``budget`` (the leader's self-pacing, ``leader/pacing.py``): see
:func:`admit`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import TypeVar

from ..model import DesiredState, NodeStatus, Service, ServiceSpec, Task, TaskState
from ..model.states import TERMINAL_STATES, GossipState
from ..raft.commands import PutTasks, TaskItem, TaskPut, TaskRemove
from ..raft.state import ClusterState
from ..raft.task_fast import evolve_task  # dataclasses.replace of a task at half the cost (tested equal)
from ..scheduler import (
    CreateTask,
    NodeInfo,
    Orchestrator,
    PlacedTask,
    RolloutDone,
    TaskRequest,
    UpdateFailed,
    build_node_infos,
    schedule,
)
from ..scheduler.jobs import job_history_keep
from ..scheduler.rebalance import plan_rebalance
from .copied_nodes import CopiedOnChange

HISTORY_PER_SLOT = 3  # finished tasks kept per slot for `service ps`
#: task writes per PutTasks command of a round: ~220 KB, far below the 10,000 items and 16 MiB a command may
#: hold (a round of 100,000 new tasks in one command was refused, so it never committed: issue 19)
ROUND_CHUNK_ITEMS = 1000
#: tasks a round's loops handle between two calls of its ``checkpoint``
CHECKPOINT_EVERY = 500

Checkpoint = Callable[[], None]


def no_checkpoint() -> None:
    """The default checkpoint: go on at once."""


_T = TypeVar("_T")


def paced(items: Iterable[_T], checkpoint: Checkpoint) -> Iterator[_T]:
    """``items`` in order, ``checkpoint`` called after every ``CHECKPOINT_EVERY`` of them."""
    for i, item in enumerate(items, 1):
        yield item
        if i % CHECKPOINT_EVERY == 0:
            checkpoint()


@dataclass
class Round:
    """What one round decided: task writes, update failures, when to run again, and specs that failed."""

    items: list[TaskItem] = field(default_factory=list)
    update_failures: list[UpdateFailed] = field(default_factory=list)
    rollouts_done: list[RolloutDone] = field(default_factory=list)  # rollouts to mark completed
    wake_at: float | None = None
    wakes: dict[str, float] = field(default_factory=dict)  # per planned service: when it asked to run again
    rebalanced: list[str] = field(default_factory=list)  # services whose `service rebalance` is done
    skipped: dict[str, str] = field(default_factory=dict)  # invalid services left alone: id -> why
    deferred: dict[str, int] = field(default_factory=dict)  # service id -> placements left to a later round
    held_back: int = 0  # placements the round's budget left to a later round
    deferred_repairs: dict[str, int] = field(default_factory=dict)  # service id -> repairs left to later

    @property
    def empty(self) -> bool:
        return not self.items

    @property
    def writes(self) -> bool:
        """The leader writes something for this round: task records or a service's bookkeeping."""
        return bool(self.items or self.update_failures or self.rollouts_done or self.rebalanced)


@dataclass(frozen=True)
class Scope:
    """What a round plans: ``tasks`` are every task of the services it re-plans (those of a removed or
    invalid service included), ``services`` those services as committed, and ``infos`` every node with
    what every placed task of the cluster holds on it. ``by_service`` holds at least ``tasks`` grouped
    by service (service id -> task id -> task; a full round's :func:`group_tasks`, the incremental
    planner's kept grouping of every service), read where the round needs one service's tasks.
    ``placed`` (all placed tasks) only in a full round: rebalancing compares every service's spread."""

    services: list[Service]
    tasks: list[Task]
    infos: list[NodeInfo]
    by_service: Mapping[str, Mapping[str, Task]]
    placed: list[PlacedTask] | None = None


def occupies_node(task: Task) -> bool:
    """A task holds its node's resources while it should run or has not been seen ending yet."""
    return task.node_id is not None and (
        task.desired_state == DesiredState.RUNNING or task.state not in TERMINAL_STATES
    )


def placed_tasks(service: Service | None, tasks: Iterable[Task]) -> list[PlacedTask]:
    """What ``tasks`` of ``service`` (None: removed) hold on their nodes; nothing for a removed or invalid
    service (the round leaves an invalid service's tasks alone and does not count them)."""
    if service is None or service.invalid:
        return []
    spec = service.spec
    name, cpu, memory, ports = (
        spec.name,
        spec.placement_cpu_nanos,
        spec.placement_memory_bytes,
        spec.host_ports,
    )
    running = DesiredState.RUNNING
    return [  # occupies_node, inlined: a full round asks it of every task
        PlacedTask(service=name, node_id=t.node_id, cpu_nanos=cpu, memory_bytes=memory, host_ports=ports)
        for t in tasks
        if t.node_id is not None and (t.desired_state == running or t.state not in TERMINAL_STATES)
    ]


def spread_without_outgoing(
    infos: list[NodeInfo],
    slots: Collection[tuple[str, int]],
    placing: Collection[str],
    tasks_of: Mapping[str, Iterable[Task]],
    specs: Mapping[str, ServiceSpec],
) -> list[NodeInfo]:
    """``infos`` as this round's placements should see them: every other task of a replicated slot that
    the round places a task for (``slots``; ``placing``: the tasks being placed) is on its way out (the
    task a start-first or stop-first update or a restart replaces), so it does not count towards its
    service's spread on its node; its resources and host ports still do (a start-first pair runs
    together for a while). Without this a replacement went to the least loaded node and the service
    piled up there. ``tasks_of`` holds every task of each service that has a slot in ``slots`` (service
    id -> its tasks): only those services' tasks are read, not every task the round plans (issue 19: a
    round placing one service's tasks walked every task of its scope). Copies only the nodes it
    changes."""
    wanted: dict[str, set[int]] = {}  # replicated service id -> its slots placed this round
    for sid, slot in slots:
        if specs[sid].mode == "replicated":
            wanted.setdefault(sid, set()).add(slot)
    if not wanted:
        return infos
    nodes = CopiedOnChange(infos)
    for sid, slots_of in wanted.items():
        name = specs[sid].name
        for t in tasks_of.get(sid, ()):
            if t.slot not in slots_of or t.task_id in placing or not occupies_node(t):
                continue
            node = nodes.to_change(t.node_id)
            if node is not None:
                node.remove_task(name)  # counts only: resources and ports stay held
    return nodes.result()


def release_ended(
    infos: list[NodeInfo],
    shutdowns: Collection[str],
    tasks_by_id: Mapping[str, Task],
    specs: Mapping[str, ServiceSpec],
) -> tuple[list[NodeInfo], set[str]]:
    """``infos`` without what the tasks this round shuts down that have already ended (failed, exited,
    rejected: the engine holds no port or memory for them) held, and those tasks' ids. A failed task
    holds its node while it should run (its restart may go back there); the round that replaces it
    frees it, so a global task's restart gets its node's host ports back: that node is the only one
    it may use (it was left pending, then shut down as "not eligible", every time). Copies only the
    nodes it changes."""
    nodes = CopiedOnChange(infos)
    released: set[str] = set()
    for task_id in shutdowns:
        t = tasks_by_id.get(task_id)
        if t is None or t.state not in TERMINAL_STATES or not occupies_node(t) or t.service_id not in specs:
            continue
        node = nodes.to_change(t.node_id)
        if node is None:
            continue
        spec = specs[t.service_id]
        node.remove_task(spec.name, spec.placement_cpu_nanos, spec.placement_memory_bytes, spec.host_ports)
        released.add(task_id)
    return nodes.result(), released


@dataclass
class Grouped:
    """Every task of a state by service (in the task map's order) and what each service's tasks hold:
    read once per full round, by the round's scope and by the incremental planner's bookkeeping."""

    tasks: dict[str, dict[str, Task]]  # service id -> task id -> task
    held: dict[str, list[PlacedTask]]  # service id -> its placed tasks (only services holding some)


def group_tasks(state: ClusterState, checkpoint: Checkpoint = no_checkpoint) -> Grouped:
    """:class:`Grouped` of ``state``: one pass over its tasks, one :func:`placed_tasks` per service."""
    by_service: dict[str, dict[str, Task]] = {}
    for t in paced(state.tasks.values(), checkpoint):
        group = by_service.get(t.service_id)
        if group is None:
            group = by_service[t.service_id] = {}
        group[t.task_id] = t
    held: dict[str, list[PlacedTask]] = {}
    for sid, tasks in by_service.items():
        placed = placed_tasks(state.services.get(sid), tasks.values())
        if placed:
            held[sid] = placed
        checkpoint()
    return Grouped(tasks=by_service, held=held)


def full_scope(
    state: ClusterState, checkpoint: Checkpoint = no_checkpoint, grouped: Grouped | None = None
) -> Scope:
    """Every service and task of ``state`` (a full round); ``grouped`` is ``group_tasks(state)`` if the
    caller has it already."""
    if grouped is None:
        grouped = group_tasks(state, checkpoint)
    placed: list[PlacedTask] = []
    for held in grouped.held.values():
        placed.extend(held)
    return Scope(
        services=list(state.services.values()),
        tasks=list(state.tasks.values()),
        infos=build_node_infos(state.nodes.values(), placed),
        placed=placed,
        by_service=grouped.tasks,
    )


def plan_round(
    state: ClusterState, now: float, orchestrator: Orchestrator, *, rebalance_max_moves: int = 1
) -> Round:
    """A full round: every service of ``state`` planned."""
    return plan_scope(state, now, orchestrator, full_scope(state), rebalance_max_moves=rebalance_max_moves)


def plan_scope(
    state: ClusterState,
    now: float,
    orchestrator: Orchestrator,
    scope: Scope,
    *,
    rebalance_max_moves: int = 1,
    checkpoint: Checkpoint = no_checkpoint,
    budget: int | None = None,
    repair_budget: int | None = None,
) -> Round:
    """The round's decisions for the services of ``scope`` (see :class:`Scope`); a service outside it is
    left as it is. Rebalancing runs only with ``scope.placed`` (a full round). ``budget`` and
    ``repair_budget`` (None: no bound) bound the round's placements as :func:`admit` says; a slot whose
    repair is left out is left as it is (its shutdowns wait with it)."""
    out = Round()
    # a service whose committed spec does not validate here is left alone, tasks and all (committed.py)
    out.skipped = {s.service_id: s.invalid for s in state.services.values() if s.invalid}
    services = [s for s in scope.services if not s.invalid]
    specs: dict[str, ServiceSpec] = {s.service_id: s.spec for s in state.services.values()}
    tasks = [t for t in scope.tasks if t.service_id not in out.skipped]
    nodes = list(state.nodes.values())
    reconciliation = orchestrator.reconcile(services, tasks, nodes, now, checkpoint=checkpoint)
    out.update_failures = [e for e in reconciliation.events if isinstance(e, UpdateFailed)]
    out.rollouts_done = [e for e in reconciliation.events if isinstance(e, RolloutDone)]
    out.wake_at = reconciliation.wake_at
    out.wakes = reconciliation.wakes

    shutdowns = {a.task_id: a.reason for a in reconciliation.shutdowns}
    creates = reconciliation.creates
    waiting = [
        t
        for t in paced(tasks, checkpoint)
        if t.node_id is None
        and t.desired_state == DesiredState.RUNNING
        and t.state == TaskState.PENDING
        and t.service_id in specs
        and t.task_id not in shutdowns
    ]
    waiting.sort(key=attrgetter("service_id", "slot", "created_at", "task_id"))
    if budget is not None or repair_budget is not None:
        admitted = admit(creates, waiting, tasks, budget, repair_budget)
        creates, waiting = admitted.creates, admitted.waiting
        out.deferred, out.held_back = admitted.deferred, admitted.held_back
        out.deferred_repairs = admitted.deferred_repairs
        if admitted.deferred_slots:  # the stop of a slot's task waits for its replacement
            slot_of = {t.task_id: (t.service_id, t.slot) for t in tasks if t.task_id in shutdowns}
            for task_id, key in slot_of.items():
                if key in admitted.deferred_slots:
                    del shutdowns[task_id]
    requests: list[TaskRequest] = []
    new_records: dict[str, Task] = {}
    for create in paced(creates, checkpoint):
        record = Task(
            task_id=create.task_id,
            service_id=create.service_id,
            slot=create.slot,
            node_id=None,
            state=TaskState.PENDING,
            state_at=now,
            spec_version=create.spec_version,
            template_hash=create.template_hash,
            created_at=create.created_at,
            restart_history=create.restart_history,
            stop_grace_s=specs[create.service_id].stop_grace_period_s,
            job_iteration=create.job_iteration,
            restart_policy=specs[create.service_id].restart,
        )
        new_records[create.task_id] = record
        requests.append(TaskRequest(create.task_id, specs[create.service_id], node_id=create.node_id))
    # Tasks that found no node in an earlier round get another chance every round (a rebalance
    # replacement only on its move's target), in one order whatever the order of the state's map.
    move_targets = {
        (t.service_id, t.slot): t.move_to
        for t in tasks
        if t.move_to and t.desired_state == DesiredState.RUNNING
    }
    for t in waiting:
        pin = move_targets.get((t.service_id, t.slot))
        requests.append(TaskRequest(t.task_id, specs[t.service_id], node_id=pin))
    pinned = {r.task_id for r in requests if r.node_id is not None}  # spread does not place them
    slots = {(t.service_id, t.slot) for t in (*new_records.values(), *waiting) if t.task_id not in pinned}
    placing_in = {sid for sid, _ in slots}
    by_service = scope.by_service
    tasks_of = {sid: by_service[sid].values() for sid in placing_in if sid in by_service}
    infos, released = (
        release_ended(scope.infos, shutdowns, state.tasks, specs) if requests else (scope.infos, set())
    )
    infos = spread_without_outgoing(infos, slots, {r.task_id for r in requests} | released, tasks_of, specs)
    result = schedule(requests, infos) if requests else None

    checkpoint()
    for create_id, record in paced(new_records.items(), checkpoint):
        node_id = result.assignments.get(create_id) if result else None
        explanation = result.unschedulable.get(create_id, "") if result else ""
        state_now = TaskState.ASSIGNED if node_id else TaskState.PENDING
        record = evolve_task(record, {"node_id": node_id, "state": state_now, "message": explanation})
        out.items.append(TaskPut(record, task_version=0))
    for t in paced(tasks, checkpoint):
        if t.task_id in shutdowns:
            why = shutdowns[t.task_id]
            stop: dict[str, object] = {"desired_state": DesiredState.SHUTDOWN, "message": why}
            if t.state not in TERMINAL_STATES:
                stop["state_at"] = now  # what a replacement waiting for the stop counts from (stop_wait.py)
            stopped = evolve_task(t, stop)
            out.items.append(TaskPut(stopped, task_version=t.version))
            continue
        if result is None or t.task_id in new_records:
            continue
        if t.task_id in result.assignments:
            node_id = result.assignments[t.task_id]
            assigned = evolve_task(
                t, {"node_id": node_id, "state": TaskState.ASSIGNED, "state_at": now, "message": ""}
            )
            out.items.append(TaskPut(assigned, task_version=t.version))
        elif t.task_id in result.unschedulable and result.unschedulable[t.task_id] != t.message:
            explained = evolve_task(t, {"message": result.unschedulable[t.task_id]})
            out.items.append(TaskPut(explained, task_version=t.version))
    out.items.extend(forget_finished(state, shutdowns.keys() | new_records.keys(), scope.tasks))

    wanted = {s.service_id for s in state.services.values() if s.spec.rebalance or s.rebalance_requested}
    if wanted and scope.placed is not None:
        placed_now = scope.placed + [  # what this round placed counts too
            PlacedTask(
                service=r.spec.name,
                node_id=result.assignments[r.task_id],
                cpu_nanos=r.spec.placement_cpu_nanos,
                memory_bytes=r.spec.placement_memory_bytes,
                host_ports=r.spec.host_ports,
            )
            for r in requests
            if result is not None and r.task_id in result.assignments
        ]
        rebalance = plan_rebalance(
            services, tasks, nodes, placed_now, now, wanted=wanted, max_moves=rebalance_max_moves
        )
        touched = result_ids(out)  # one write per task per round: a second would conflict
        moves: dict[str, str | None] = {m.task_id: m.to_node for m in rebalance.moves}
        moves.update((task_id, None) for task_id in rebalance.cancels)
        for task_id, target in moves.items():
            t = state.tasks[task_id]
            if task_id not in touched:
                moved = replace(t, move_to=target, move_at=now if target else 0.0)
                out.items.append(TaskPut(moved, task_version=t.version))
        out.rebalanced = sorted(sid for sid in rebalance.balanced if state.services[sid].rebalance_requested)
    return out


@dataclass(frozen=True)
class Admitted:
    """What a round's budgets let through (:func:`admit`)."""

    creates: list[CreateTask]
    waiting: list[Task]
    deferred: dict[str, int]  # service id -> its new creates and waiting tasks left out
    held_back: int  # new creates and waiting tasks left out
    deferred_repairs: dict[str, int] = field(default_factory=dict)  # service id -> its repairs left out
    deferred_slots: frozenset[tuple[str, int]] = frozenset()  # (service id, slot) of the repairs left out


def admit(
    creates: list[CreateTask],
    waiting: list[Task],
    tasks: Iterable[Task],
    budget: int | None,
    repair_budget: int | None = None,
) -> Admitted:
    """The creates and waiting tasks a round with a placement ``budget`` plans, in their order.

    A create for a slot that has a task in ``tasks`` (a repair: a lost node's task, a restart, a
    rolling update's replacement) goes first, up to ``repair_budget`` (None: all of them), and uses the
    placement budget too, so repairs never wait behind new tasks; the waiting tasks (created by an
    earlier round, no node yet) take what is left of ``budget`` (None: no bound), then the creates of new
    slots. What is left out is planned again by a later round (``deferred`` counts it per service,
    ``deferred_repairs`` the repairs); the caller leaves a left-out repair's slot as it is."""
    held = {(t.service_id, t.slot) for t in tasks}
    repairs = [c for c in creates if (c.service_id, c.slot) in held]
    fresh = [c for c in creates if (c.service_id, c.slot) not in held]
    kept_repairs = repairs if repair_budget is None else repairs[: max(0, repair_budget)]
    room = len(waiting) + len(fresh) if budget is None else max(0, budget - len(kept_repairs))
    kept_waiting = waiting[:room]
    room -= len(kept_waiting)
    kept_fresh = fresh[:room]
    left = waiting[len(kept_waiting) :]
    left_fresh = fresh[len(kept_fresh) :]
    left_repairs = repairs[len(kept_repairs) :]
    deferred: dict[str, int] = {}
    for sid in [t.service_id for t in left] + [c.service_id for c in left_fresh]:
        deferred[sid] = deferred.get(sid, 0) + 1
    deferred_repairs: dict[str, int] = {}
    for c in left_repairs:
        deferred_repairs[c.service_id] = deferred_repairs.get(c.service_id, 0) + 1
    if not deferred and not deferred_repairs:
        return Admitted(creates, waiting, {}, 0)
    kept_ids = {c.task_id for c in kept_fresh} | {c.task_id for c in kept_repairs}
    return Admitted(
        [c for c in creates if c.task_id in kept_ids],
        kept_waiting,
        deferred,
        len(left) + len(left_fresh),
        deferred_repairs,
        frozenset((c.service_id, c.slot) for c in left_repairs),
    )


def result_ids(round_: Round) -> set[str]:
    """Task ids some item of ``round_`` already writes or removes."""
    return {item.task_id for item in round_.items}


def forget_finished(state: ClusterState, busy: Collection[str], tasks: Iterable[Task]) -> list[TaskItem]:
    """Remove records of ``tasks`` that are over: keep the newest HISTORY_PER_SLOT per slot for
    ``service ps`` (a job: what :func:`job_history_keep` keeps, even when a node is gone: a complete
    task is what makes its slot done); forget every finished task of a removed service or of a node
    that is gone. ``tasks`` holds every task of each service it names (a job's history is all of them)."""
    tasks = list(tasks)
    jobs = {sid for sid, svc in state.services.items() if svc.spec.is_job}
    of_job: dict[str, list[Task]] = {}
    if jobs:
        for t in tasks:
            if t.service_id in jobs:
                of_job.setdefault(t.service_id, []).append(t)
    job_keep = {
        sid: job_history_keep(state.services[sid].spec, state.services[sid].job_iteration, job_tasks)
        for sid, job_tasks in of_job.items()
    }
    over: dict[tuple[str, int], list[Task]] = {}
    items: list[TaskItem] = []
    for t in tasks:
        if t.task_id in busy or t.desired_state != DesiredState.SHUTDOWN:
            continue
        node = state.nodes.get(t.node_id) if t.node_id else None
        node_gone = t.node_id is not None and (node is None or node.status == NodeStatus.LEFT)
        if not (t.state in TERMINAL_STATES or t.node_id is None or node_gone):
            continue  # its agent has not stopped it yet
        if t.service_id in job_keep:
            if t.task_id not in job_keep[t.service_id]:
                items.append(TaskRemove(t.task_id, task_version=t.version))
        elif t.service_id not in state.services or node_gone:
            items.append(TaskRemove(t.task_id, task_version=t.version))
        else:
            over.setdefault((t.service_id, t.slot), []).append(t)
    for finished in over.values():
        finished.sort(key=lambda t: (t.state_at, t.task_id), reverse=True)
        items.extend(TaskRemove(t.task_id, task_version=t.version) for t in finished[HISTORY_PER_SLOT:])
    return items


def node_status_updates(state: ClusterState, gossip_states: Mapping[str, str]) -> dict[str, NodeStatus]:
    """Raft node statuses that gossip contradicts: ``{node_id: "down" | "ready"}``.

    A ready node that gossip declares dead (or gone without leaving) goes down; a joining or down node
    that gossip sees alive is ready (a joiner that never gossips stays joining and gets no tasks).
    Suspect, and nodes gossip does not know yet, change nothing; a node that left through
    `p2porch leave` stays left.
    """
    updates = {}
    for node in state.nodes.values():
        seen = gossip_states.get(node.node_id)
        if node.status == NodeStatus.READY and seen in (GossipState.DEAD, GossipState.LEFT):
            updates[node.node_id] = NodeStatus.DOWN
        elif node.status in (NodeStatus.JOINING, NodeStatus.DOWN) and seen == GossipState.ALIVE:
            updates[node.node_id] = NodeStatus.READY
    return updates


def round_commands(items: list[TaskItem], now: float, version: int) -> list[PutTasks]:
    """The commands that commit a round's ``items``, ``ROUND_CHUNK_ITEMS`` each, in order.

    The first is conditional on the state ``version`` the round planned on (any change since: plan
    again); the others only on each item's task version, as every item is: agents' reports committed
    between two of them do not void the round, a changed task does (its item conflicts)."""
    return [
        PutTasks(
            at=now,
            items=tuple(items[i : i + ROUND_CHUNK_ITEMS]),
            expected_version=version if i == 0 else None,
        )
        for i in range(0, len(items), ROUND_CHUNK_ITEMS)
    ]
