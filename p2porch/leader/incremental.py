"""The leader's incremental round: re-plan only the services that may decide something new (pure).

A full round (:func:`~.scheduling.plan_round`) reads every task of the cluster: ~0.5 s at 100,000 tasks,
and while agents' reports stream in the leader planned again after every burst (issue 19). Between two
rounds most services are unchanged, and a service whose inputs did not change decides what it decided
last time: nothing, if its last round left it alone. :class:`IncrementalPlanner` keeps what the last
round planned on and re-plans only the services that

- changed: their record, or any of their tasks (found by comparing the two immutable states record by
  record: the FSM keeps the very same object for every record it did not touch);
- acted in the last round that planned them (its writes may not have committed, or lead further);
- are *restless*: their decisions can change with time or with other services' placements (tasks
  waiting for a node, ended or unhealthy tasks, outdated tasks, a rollout in progress, a job);
- asked to run again by now (the orchestrator's wake time, kept per service).

Its first round, after :meth:`IncrementalPlanner.reset` (the loop calls it when leadership is lost, so a
new leader starts so), reads every task but plans only the services ``first_round.SteadyCheck`` cannot
show settled (unplaced, short or over their replica count, restarting, unhealthy, outdated, moving, on a
node that is not ready or drained, with history to forget): a settled service decides nothing in a full
round, so the decisions are a full round's, at a fraction of its cost (issue 19: a service created right
after a failover waited for the new leader's full round). The settled services are still planned by the
rounds after it, ``sweep_tasks`` of their tasks per round, by id (:attr:`sweeping` until then;
:attr:`last_takeover` says the last round was the first or one of these sweep rounds). It plans
everything (a full round) when any node changed, when a rebalance is wanted (it compares every service's
spread; on a first round too), and at least every ``full_every_s`` as a safety net. Either way the
decisions are :func:`~.scheduling.plan_scope`'s; the planner only chooses the scope and keeps, per
service, its tasks and what they hold on each node (``NodeUsage``), so a round costs O(changed services'
tasks) plus one identity pass over the task map. Tested: its rounds equal full rounds on random states
and changes. It never writes anything and never reads a clock; ``checkpoint`` (the leader loop's pause, see
``leader/gil_share.py``) is called between chunks of a round's work and never changes a decision; when
it raises, the round ends there and the caller must :meth:`IncrementalPlanner.reset` the planner.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..model import TERMINAL_STATES, DesiredState, Service, Task, TaskState
from ..raft.commands import TaskPut
from ..raft.state import ClusterState
from ..scheduler import Orchestrator, PlacedTask
from ..scheduler.usage import NodeUsage
from .first_round import SteadyCheck
from .scheduling import (
    Checkpoint,
    Round,
    Scope,
    group_tasks,
    no_checkpoint,
    occupies_node,
    paced,
    placed_tasks,
    plan_scope,
)

__all__ = ["FULL_ROUND_EVERY_S", "SWEEP_TASKS_PER_ROUND", "IncrementalPlanner", "restless"]

#: the safety net: a round that plans every service at least this often (s of the leader's ``now``)
FULL_ROUND_EVERY_S = 30.0
#: after a first round, the settled services it left out are planned by the next rounds, at least one
#: service and about this many tasks per round (a full round's reconcile spread: ~0.1 CPU-s each)
SWEEP_TASKS_PER_ROUND = 10_000


def restless(service: Service | None, tasks: Iterable[Task]) -> bool:
    """True when what the round decides for ``service`` may change although neither it nor its tasks
    did: with time (restart back-off and windows, rollout monitors, jobs) or with other services'
    placements (a task waiting for a node). A removed service's tasks only wait for their agents, and
    an invalid service is left alone."""
    if service is None or service.invalid:
        return False
    if service.spec.is_job or (service.rollout is not None and not service.rollout.completed):
        return True
    current = service.spec.template_hash()
    return any(
        t.desired_state == DesiredState.RUNNING
        and (
            t.state in TERMINAL_STATES
            or (t.node_id is None and t.state == TaskState.PENDING)
            or t.healthy is False
            or t.template_hash != current
            or t.move_to is not None
        )
        for t in tasks
    )


def _holds(task: Task) -> str | None:
    """The node whose resources ``task`` holds (``scheduling.occupies_node``), None: none."""
    return task.node_id if occupies_node(task) else None


@dataclass
class _Planned:
    """What the last round planned on, per service: its tasks and what they hold, and why it must be
    planned again."""

    state: ClusterState
    at: float  # ``now`` of the last full round
    tasks: dict[str, dict[str, Task]] = field(default_factory=dict)  # service id -> task id -> task
    held: dict[str, list[PlacedTask]] = field(default_factory=dict)  # service id -> its placed tasks
    usage: NodeUsage = field(default_factory=NodeUsage)
    restless: set[str] = field(default_factory=set)
    acted: set[str] = field(default_factory=set)  # services the last round planning them gave output
    wakes: dict[str, float] = field(default_factory=dict)  # service id -> when it asked to run again
    #: service id -> placements a budget left out when it was last planned (planned again, see plan)
    deferred: dict[str, int] = field(default_factory=dict)
    deferred_repairs: dict[str, int] = field(default_factory=dict)  # ... and repairs
    unswept: set[str] = field(default_factory=set)  # settled services a first round left to later rounds


class IncrementalPlanner:
    """Owns the leader's orchestrator and what the last round planned on; only the leader loop uses
    it, one round at a time. Never reads a clock (``now`` is given) and never writes."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        rebalance_max_moves: int = 1,
        full_every_s: float = FULL_ROUND_EVERY_S,
        checkpoint: Checkpoint = no_checkpoint,
        sweep_tasks: int = SWEEP_TASKS_PER_ROUND,
    ) -> None:
        self.orchestrator = orchestrator
        self.checkpoint = checkpoint
        self.rebalance_max_moves = rebalance_max_moves
        self.full_every_s = full_every_s
        self.sweep_tasks = sweep_tasks
        self._last: _Planned | None = None
        self.full_rounds = 0  # rounds that read every task: full rounds and first rounds (metrics, tests)
        self.first_rounds = 0  # of them, first rounds (that planned only the services not settled)
        self.last_scope = 0  # services the last round planned
        #: the last round was a new leadership's first round or one of the sweep rounds after it (the
        #: loop does not pause after such a round when it wrote nothing: ``round_pause.py``)
        self.last_takeover = False

    def reset(self) -> None:
        """Forget the last round: the next plans everything (leadership changed hands meanwhile)."""
        self._last = None

    @property
    def quiet(self) -> bool:
        """No service is restless or acted in the last round: only a change (or a wake time) can give
        the next round anything to do, so the loop may check less often."""
        last = self._last
        return (
            last is not None
            and not last.restless
            and not last.acted
            and not last.deferred
            and not last.deferred_repairs
            and not last.unswept
        )

    @property
    def sweeping(self) -> bool:
        """Settled services a first round left out wait for a round: the loop should plan again soon."""
        return self._last is not None and bool(self._last.unswept)

    def plan(
        self, state: ClusterState, now: float, budget: int | None = None, repair_budget: int | None = None
    ) -> Round:
        """The round for ``state`` at ``now``: equal to a full round's decisions (see the module);
        ``budget`` and ``repair_budget`` bound its placements and repairs (``plan_scope``). A service with
        placements or repairs left out is planned again by a later round: with a budget, only as many of
        them (by id) as what they left out fills it (repairs first), so a bounded round does not re-plan
        every service waiting for its turn."""
        last = self._last
        if last is None and not _rebalance_wanted(state):
            return self._plan_first(state, now, budget, repair_budget)
        if last is None or self._wants_full(last, state, now):
            return self._plan_full(state, now, budget, repair_budget)
        changed, moved = self._changed_services(last, state)
        due = {sid for sid, at in last.wakes.items() if at <= now}
        turn = self._turn(last.deferred_repairs, repair_budget) | self._turn(last.deferred, budget)
        sweep = self._sweep_turn(last)
        scope_ids = changed | last.acted | last.restless | due | turn | sweep
        for sid in changed:  # refresh what they hold and whether they are restless
            tasks = last.tasks.get(sid, {})
            if sid in moved:  # else every task holds what it held: the same placed tasks
                last.usage.remove(last.held.pop(sid, ()))
                held = placed_tasks(state.services.get(sid), tasks.values())
                if held:
                    last.held[sid] = held
                    last.usage.add(held)
            if restless(state.services.get(sid), tasks.values()):
                last.restless.add(sid)
            else:
                last.restless.discard(sid)
        last.state = state
        scope = _scope_of(state, scope_ids, last.tasks, last.usage)
        out = self._decide(state, now, scope, budget, repair_budget)
        self._remember(last, out, scope_ids)
        self.last_scope = len(scope_ids)
        self.last_takeover = bool(sweep)
        return out

    # --- internals -----------------------------------------------------------------------------------

    def _decide(
        self, state: ClusterState, now: float, scope: Scope, budget: int | None, repair_budget: int | None
    ) -> Round:
        return plan_scope(
            state,
            now,
            self.orchestrator,
            scope,
            rebalance_max_moves=self.rebalance_max_moves,
            checkpoint=self.checkpoint,
            budget=budget,
            repair_budget=repair_budget,
        )

    @staticmethod
    def _turn(deferred: dict[str, int], budget: int | None) -> set[str]:
        """The services left out by earlier budgets (``deferred``: what each left out) that this round
        plans: every one without a budget, else the first by id until what they left out fills it (at
        least one)."""
        if budget is None:
            return set(deferred)
        turn: set[str] = set()
        wanted = 0
        for sid in sorted(deferred):
            if turn and wanted >= budget:
                break
            turn.add(sid)
            wanted += deferred[sid]
        return turn

    def _sweep_turn(self, last: _Planned) -> set[str]:
        """The settled services left out by the first round that this round plans: by id, at least one,
        until their tasks reach ``sweep_tasks``."""
        turn: set[str] = set()
        count = 0
        for sid in sorted(last.unswept):
            if turn and count >= self.sweep_tasks:
                break
            turn.add(sid)
            count += len(last.tasks.get(sid, ()))
        return turn

    def _wants_full(self, last: _Planned, state: ClusterState, now: float) -> bool:
        if now - last.at >= self.full_every_s or now < last.at:
            return True
        if state.nodes is not last.state.nodes and (
            len(state.nodes) != len(last.state.nodes)
            or any(last.state.nodes.get(k) is not n for k, n in state.nodes.items())
        ):
            return True  # node fates, capacity and eligibility touch every service
        return _rebalance_wanted(state)

    def _plan_first(
        self, state: ClusterState, now: float, budget: int | None, repair_budget: int | None
    ) -> Round:
        """A new leader's first round: the bookkeeping of a full round, the decisions of a full round,
        the orchestrator run only over the services that are not settled (see the module)."""
        checkpoint = self.checkpoint
        grouped = group_tasks(state, checkpoint)
        usage = NodeUsage()
        for held in grouped.held.values():
            usage.add(held)
        last = _Planned(state=state, at=now, tasks=grouped.tasks, held=grouped.held, usage=usage)
        check = SteadyCheck(state.nodes, now)
        scope_ids: set[str] = set()
        wakes: dict[str, float] = {}
        for sid in paced(sorted(state.services.keys() | grouped.tasks.keys()), checkpoint):
            service, tasks = state.services.get(sid), grouped.tasks.get(sid, {}).values()
            steady, wake = check.steady(service, tasks)
            if steady:  # decides nothing now; asks to run again at ``wake`` as a full round's would
                last.unswept.add(sid)
                if wake is not None:
                    wakes[sid] = wake
                continue
            scope_ids.add(sid)
            if restless(service, tasks):
                last.restless.add(sid)
        scope = _scope_of(state, scope_ids, grouped.tasks, usage)
        out = self._decide(state, now, scope, budget, repair_budget)
        out.wakes.update(wakes)  # as a full round's: every service's
        self._remember(last, out, scope_ids)
        self._last = last
        self.full_rounds += 1
        self.first_rounds += 1
        self.last_scope = len(scope_ids)
        self.last_takeover = True
        return out

    def _plan_full(
        self, state: ClusterState, now: float, budget: int | None, repair_budget: int | None
    ) -> Round:
        checkpoint = self.checkpoint
        grouped = group_tasks(state, checkpoint)
        usage = NodeUsage()
        placed: list[PlacedTask] = []
        for held in grouped.held.values():
            usage.add(held)
            placed.extend(held)
        # full_scope's, with the node infos of the usage kept for the next rounds (equal: tested)
        scope = Scope(
            services=list(state.services.values()),
            tasks=list(state.tasks.values()),
            infos=usage.infos(state.nodes.values()),
            placed=placed,
            by_service=grouped.tasks,
        )
        out = self._decide(state, now, scope, budget, repair_budget)
        last = _Planned(state=state, at=now, tasks=grouped.tasks, held=grouped.held, usage=usage)
        last.restless = {
            sid
            for sid, svc in paced(state.services.items(), checkpoint)
            if restless(svc, last.tasks.get(sid, {}).values())
        }
        every = set(state.services) | set(last.tasks)
        self._remember(last, out, every)
        self._last = last
        self.full_rounds += 1
        self.last_scope = len(every)
        self.last_takeover = False
        return out

    @staticmethod
    def _changed_services(last: _Planned, state: ClusterState) -> tuple[set[str], set[str]]:
        """Services whose record or any task differs from the last round's state (by identity: an
        untouched record is the very same object), with ``last.tasks`` brought up to ``state``; and
        those of them whose placed tasks may differ (their record, or a task that came, went or
        changed what it holds where: an agent's report of a task starting or running changes
        neither, so what the service holds is not summed again)."""
        old = last.state
        changed = {sid for sid, s in state.services.items() if old.services.get(sid) is not s}
        changed.update(old.services.keys() - state.services.keys())
        moved = set(changed)
        if state.tasks is old.tasks:
            return changed, moved
        before = old.tasks
        for tid, t in state.tasks.items():
            prior = before.get(tid)
            if prior is t:
                continue
            if prior is not None and prior.service_id != t.service_id:
                last.tasks.get(prior.service_id, {}).pop(tid, None)
                changed.add(prior.service_id)
                moved.add(prior.service_id)
                prior = None
            last.tasks.setdefault(t.service_id, {})[tid] = t
            changed.add(t.service_id)
            if _holds(t) != (None if prior is None else _holds(prior)):
                moved.add(t.service_id)
        for tid in before.keys() - state.tasks.keys():
            prior = before[tid]
            sid = prior.service_id
            tasks = last.tasks.get(sid)
            if tasks is not None:
                tasks.pop(tid, None)
                if not tasks:
                    del last.tasks[sid]
            changed.add(sid)
            if _holds(prior) is not None:
                moved.add(sid)
        return changed, moved

    @staticmethod
    def _remember(last: _Planned, out: Round, planned: set[str]) -> None:
        """What the round just planned leaves for the next: who acted, when each asked to run again
        (``out.wake_at`` becomes the earliest of every service's, planned now or before)."""
        acted = {e.service_id for e in out.update_failures} | {e.service_id for e in out.rollouts_done}
        removed: set[str] = set()
        for item in out.items:
            if isinstance(item, TaskPut):
                acted.add(item.task.service_id)
            else:
                removed.add(item.task_id)
        if removed:  # a removal names only the task: its service is one of those planned
            acted.update(
                t.service_id
                for sid in planned
                for t in last.tasks.get(sid, {}).values()
                if t.task_id in removed
            )
        last.acted = acted  # every service that acted last time was planned now
        last.unswept.difference_update(planned)
        for sid in planned:
            last.wakes.pop(sid, None)
            last.deferred.pop(sid, None)
            last.deferred_repairs.pop(sid, None)
        last.deferred.update(out.deferred)  # placements a budget left out: planned again in turn
        last.deferred_repairs.update(out.deferred_repairs)
        last.wakes.update(out.wakes)
        out.wake_at = min(last.wakes.values(), default=None)


def _scope_of(
    state: ClusterState, scope_ids: set[str], by_service: dict[str, dict[str, Task]], usage: NodeUsage
) -> Scope:
    """The scope of the services ``scope_ids`` (in id order) with every node's kept usage."""
    ordered = sorted(scope_ids)
    return Scope(
        services=[state.services[sid] for sid in ordered if sid in state.services],
        tasks=[t for sid in ordered for t in by_service.get(sid, {}).values()],
        infos=usage.infos(state.nodes.values()),
        by_service=by_service,
    )


def _rebalance_wanted(state: ClusterState) -> bool:
    """Some service asks to be rebalanced: a round compares every service's spread (a full round)."""
    return any(s.spec.rebalance or s.rebalance_requested for s in state.services.values())
