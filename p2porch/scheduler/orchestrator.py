"""Reconcile desired services with existing tasks (pure).

``Orchestrator.reconcile`` looks at services (spec + version), tasks and nodes at time ``now`` and returns
the actions that move the cluster towards the desired state: create tasks for missing slots, shut down
surplus, lost, superseded or outdated tasks, replace ended tasks per restart policy, move tasks off drained
nodes (start-first: the old task stops once its replacement runs), and roll out template changes in
batches. It never places tasks on nodes (the scheduler does, except global mode's pinned tasks), never
performs I/O and never reads a clock: ``wake_at`` tells the caller when to call again. Task ids come from
the owned ``random.Random``.
"""

from __future__ import annotations

import functools
import operator
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..model import (
    FAILURE_STATES,
    TERMINAL_STATES,
    Availability,
    DesiredState,
    Node,
    Service,
    ServiceSpec,
    Task,
    TaskHealth,
    TaskState,
    UpdateConfig,
)
from .actions import Action, CreateTask, Event, Reconciliation, RolloutDone, ShutdownTask, UpdateFailed
from .jobs import plan_job
from .rebalance import replacement_failed
from .restart import (
    UNHEALTHY,
    awaiting_restart,
    final_reason,
    given_up,
    next_history,
    policy_of,
    restart_due,
)
from .rollout import (
    FailureVerdict,
    effective_policy,
    failed_within_monitor,
    failure_verdict,
    settled,
    started_at,
)
from .round_context import RoundContext
from .stop_wait import is_stopping, may_run, stop_bound

#: the reason of a rolling update's stops and replacements, and of those for a task off its constraints
ROLLING_UPDATE = "rolling update"
OFF_CONSTRAINTS = "constraints no longer met"

__all__ = [
    "Action",
    "CreateTask",
    "Event",
    "Orchestrator",
    "Reconciliation",
    "RolloutDone",
    "ShutdownTask",
    "UpdateFailed",
]


class Orchestrator:
    """Owns the task ids' random source and the down-node, site and engine grace periods; else stateless."""

    def __init__(
        self,
        rng: random.Random,
        *,
        down_grace_s: float = 0.0,
        site_grace_s: float = 10.0,
        engine_grace_s: float = 10.0,
    ) -> None:
        self.rng = rng
        self.down_grace_s = down_grace_s
        self.site_grace_s = site_grace_s
        self.engine_grace_s = engine_grace_s

    def new_task_id(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    # ------------------------------------------------------------------------------------------------

    def reconcile(
        self,
        services: Sequence[Service],
        tasks: Sequence[Task],
        nodes: Sequence[Node],
        now: float,
        *,
        checkpoint: Callable[[], None] | None = None,
    ) -> Reconciliation:
        """Actions that bring ``tasks`` towards ``services`` on ``nodes`` at time ``now``.

        ``checkpoint`` (the caller's, e.g. a pause that lets other threads run) is called after each
        service; it cannot change a decision."""
        out = Reconciliation()
        ctx = RoundContext(nodes, now, self.down_grace_s, out, self.site_grace_s, self.engine_grace_s)
        by_service: dict[str, list[Task]] = {}
        shut_of: dict[str, list[Task]] = {}  # tasks told to stop, stopped or not
        every_task = ctx.history  # jobs and rollout failure counts look at finished tasks too
        for t in sorted(tasks, key=operator.attrgetter("service_id", "slot", "created_at", "task_id")):
            every_task.setdefault(t.service_id, []).append(t)
            if t.desired_state == DesiredState.RUNNING:
                by_service.setdefault(t.service_id, []).append(t)
            else:
                shut_of.setdefault(t.service_id, []).append(t)
        known = {s.service_id for s in services}
        for service_id in sorted(by_service):
            if service_id not in known:
                for t in by_service[service_id]:
                    out.actions.append(ShutdownTask(t.task_id, "service removed"))
        for svc in sorted(services, key=lambda s: (s.spec.name, s.service_id)):
            out.service_id = svc.service_id
            active = by_service.get(svc.service_id, [])
            self._hold_stopping(svc, shut_of.get(svc.service_id, []), active, ctx)
            if svc.spec.is_job:
                self._reconcile_job(svc, every_task.get(svc.service_id, []), ctx)
            elif svc.spec.mode == "global":
                self._reconcile_global(svc, active, ctx)
            else:
                ctx.crowded = crowded(svc.spec, active)
                self._reconcile_replicated(svc, active, ctx)
                ctx.crowded, ctx.off_constraints = set(), set()
            if checkpoint is not None:
                checkpoint()
        return out

    # ------------------------------------------------------------------------------------------------

    @staticmethod
    def _hold_stopping(svc: Service, shut: list[Task], active: list[Task], ctx: RoundContext) -> None:
        """Fill ``ctx.held`` and ``ctx.stopped`` for ``svc``: a key (a wanted slot, or a node when
        global) with no task that should run, whose task was told to stop and has not stopped on a node
        that is up, is held (no new task) until its stop is reported or the bound of :mod:`.stop_wait`
        passes (counted from its ``state_at``, which the leader's stop write sets; the round then asks
        to wake). Jobs are not held."""
        ctx.held, ctx.stopped = set(), {}
        if svc.spec.is_job:
            return
        by_node = svc.spec.mode == "global"
        occupied = {t.node_id if by_node else t.slot for t in active}
        for t in shut:
            key = t.node_id if by_node else t.slot
            if key in occupied or (not by_node and not 1 <= t.slot <= svc.spec.replicas):
                continue  # nothing waits for it (a start-first pair's old task, a scale down)
            if is_stopping(t, ctx.node_fate(t.node_id)) and ctx.now < stop_bound(t, t.state_at):
                ctx.held.add(key)
                ctx.out.wake(stop_bound(t, t.state_at))
        for t in shut:
            key = t.node_id if by_node else t.slot
            prev = ctx.stopped.get(key)
            if prev is None or (t.created_at, t.task_id) > (prev.created_at, prev.task_id):
                ctx.stopped[key] = t

    def _create(
        self,
        svc: Service,
        slot: int,
        node_id: str | None,
        ctx: RoundContext,
        reason: str,
        history: tuple[float, ...] = (),
    ) -> CreateTask:
        action = CreateTask(
            task_id=self.new_task_id(),
            service_id=svc.service_id,
            slot=slot,
            node_id=node_id,
            spec_version=svc.version,
            template_hash=svc.spec.template_hash(),
            created_at=ctx.now,
            restart_history=history,
            reason=reason,
            job_iteration=svc.job_iteration,
        )
        ctx.out.actions.append(action)
        ctx.created.add((svc.service_id, slot))
        return action

    def _reconcile_job(self, svc: Service, tasks: list[Task], ctx: RoundContext) -> None:
        """A job's tasks run to completion: the decisions are :func:`~.jobs.plan_job`'s."""
        eligible = [n for n in sorted(ctx.nodes) if ctx.nodes[n].schedulable and ctx.satisfies(n, svc.spec)]
        fate = functools.partial(ctx.fate, spec=svc.spec)
        plan = plan_job(svc.spec, svc.job_iteration, tasks, fate, eligible, ctx.now)
        ctx.out.actions.extend(ShutdownTask(task_id, why) for task_id, why in plan.shutdowns)
        for c in plan.creates:
            self._create(svc, c.slot, c.node_id, ctx, c.reason, c.restart_history)
        if plan.wake_at is not None:
            ctx.out.wake(plan.wake_at)

    def _reconcile_replicated(self, svc: Service, active: list[Task], ctx: RoundContext) -> None:
        spec = svc.spec
        slots: dict[int, list[Task]] = {}
        for t in active:
            slots.setdefault(t.slot, []).append(t)
        for slot in sorted(slots):
            if slot > spec.replicas or slot < 1:
                for t in slots[slot]:
                    ctx.out.actions.append(ShutdownTask(t.task_id, "scale down"))
        wanted = range(1, spec.replicas + 1)
        history = ctx.history.get(svc.service_id, ())
        done = given_up(spec, history, "slot", set(wanted) - slots.keys())
        waiting = awaiting_restart(spec, history, "slot", set(wanted) - slots.keys() - done.keys())
        winners: dict[int, Task | None] = {}
        for slot in wanted:  # a slot its restart policy ended keeps its last task (not created again)
            if slot in waiting:  # its task was stopped unhealthy: the replacement waits for the policy
                winners[slot] = self._restart_unhealthy(svc, slot, None, waiting[slot], ctx)
                continue
            if slot in done:
                winners[slot] = done[slot]
            elif slot not in slots and slot in ctx.held:
                winners[slot] = None  # its old task is still stopping: the replacement waits for it
            elif slot not in slots and self._replaced(svc, slot, None, ctx):
                winners[slot] = None
            else:
                winners[slot] = self._reconcile_key(svc, slot, None, slots.get(slot, []), ctx)
        self._rolling_update(svc, winners, slots, ctx)

    def _reconcile_global(self, svc: Service, active: list[Task], ctx: RoundContext) -> None:
        spec = svc.spec
        by_node: dict[str | None, list[Task]] = {}
        for t in active:
            by_node.setdefault(t.node_id, []).append(t)
        used_slots = {t.slot for t in active}
        winners: dict[str, Task | None] = {}
        slots_of: dict[str, list[Task]] = {}
        for node_id in sorted(by_node, key=lambda n: n or ""):
            group = by_node[node_id]
            node = ctx.nodes.get(node_id or "")
            if node_id is not None and ctx.fate(node_id, spec) == "lost":
                for t in group:
                    ctx.out.actions.append(ShutdownTask(t.task_id, ctx.lost_reason(node_id)))
                continue
            eligible_to_keep = (
                node_id is not None
                and node is not None
                and node.availability != Availability.DRAIN
                and ctx.satisfies(node_id, spec)
            )
            if not eligible_to_keep:
                why = (
                    "node drained"
                    if node is not None and node.availability == Availability.DRAIN
                    else "not eligible"
                )
                for t in group:
                    ctx.out.actions.append(ShutdownTask(t.task_id, f"global: {why}"))
                continue
            assert node_id is not None
            slots_of[node_id] = group
            winners[node_id] = self._reconcile_key(svc, group[0].slot, node_id, group, ctx)
        history = ctx.history.get(svc.service_id, ())
        done = given_up(spec, history, "node_id", ctx.nodes.keys() - slots_of.keys())
        current = spec.template_hash()
        for node_id, last in done.items():  # a node whose task its restart policy ended keeps it
            node = ctx.nodes[node_id]
            if last.template_hash == current or (node.schedulable and ctx.satisfies(node_id, spec)):
                winners[node_id] = last  # an outdated one for the rolling update, on an eligible node
        waiting = awaiting_restart(spec, history, "node_id", ctx.nodes.keys() - slots_of.keys() - done.keys())
        used_slots |= {t.slot for t in (*done.values(), *waiting.values())}
        next_slot = 1
        for node_id in sorted(ctx.nodes):
            node = ctx.nodes[node_id]
            if node_id in winners or not node.schedulable or not ctx.satisfies(node_id, spec):
                continue
            if node_id in waiting:  # its task was stopped unhealthy: the replacement waits for the policy
                sick = waiting[node_id]
                winners[node_id] = self._restart_unhealthy(svc, sick.slot, node_id, sick, ctx)
                continue
            if node_id in ctx.held:  # its old task is still stopping: the replacement waits for it
                continue
            prev = ctx.stopped.get(node_id)
            if (
                prev is not None
                and prev.slot not in used_slots
                and self._replaced(svc, prev.slot, node_id, ctx)
            ):
                used_slots.add(prev.slot)
                continue
            while next_slot in used_slots:
                next_slot += 1
            used_slots.add(next_slot)
            self._create(svc, next_slot, node_id, ctx, "global: eligible node")
        keyed_winners = {k: v for k, v in winners.items() if v is not None}
        self._rolling_update(svc, keyed_winners, slots_of, ctx)

    def _reconcile_key(
        self, svc: Service, slot: int, pin: str | None, tasks: list[Task], ctx: RoundContext
    ) -> Task | None:
        """Settle one slot (replicated) or one node (global); returns the task that holds it, if any."""
        settled = self._settled_slot(svc, pin, tasks, ctx)
        if settled is not None:
            return settled
        spec = svc.spec
        current = spec.template_hash()
        live: list[Task] = []
        ended: list[Task] = []
        for t in tasks:
            fate = ctx.fate(t.node_id, spec)
            if fate == "lost":
                ctx.out.actions.append(ShutdownTask(t.task_id, ctx.lost_reason(t.node_id)))  # ps names it
            elif t.state in TERMINAL_STATES:
                ended.append(t)
            else:
                live.append(t)

        def moving(t: Task) -> bool:
            """A rebalance moves ``t`` and its target can still take the replacement."""
            return (
                t.move_to is not None
                and ctx.node_fate(t.move_to) == "ok"
                and not any(replacement_failed(t, e) for e in ended)
            )

        def well_placed(t: Task) -> bool:
            if pin is not None:
                return True
            return (
                ctx.fate(t.node_id, spec) in ("ok", "unassigned", "grace", "cut")
                and ctx.satisfies(t.node_id, spec)
                and not moving(t)
                and t.task_id not in ctx.crowded
            )

        unhealthy = [t for t in live if t.state == TaskState.RUNNING and t.healthy is False]
        if unhealthy and len(unhealthy) == len(live):
            # An unhealthy task is a failed one: stopped at once, its replacement follows the restart
            # policy (restart.py), as Swarm's: after the delay, within the window's attempts
            final = final_reason(policy_of(unhealthy[0], spec), unhealthy[0], unhealthy=True)
            for t in unhealthy:
                ctx.out.actions.append(ShutdownTask(t.task_id, final or UNHEALTHY))
            if final:
                return unhealthy[0]
            # of an outdated template too: the rolling update may take the slot sooner (_rolling_update)
            return self._restart_unhealthy(svc, slot, pin, unhealthy[0], ctx)
        if live:
            for t in ended:
                ctx.out.actions.append(ShutdownTask(t.task_id, "superseded"))
            if len(live) > 1:  # the key's checks have no effect but wakes, which the winner's below make
                live.sort(
                    key=lambda t: (
                        t.template_hash != current,
                        not well_placed(t),
                        t.state != TaskState.RUNNING,
                        t.healthy is False,
                        t.created_at,
                        t.task_id,
                    )
                )
            winner = live[0]
            if (
                winner.state == TaskState.RUNNING
                and winner.healthy is not False
                and not winner.health_starting
                and well_placed(winner)
            ):
                for t in live[1:]:  # the reason `service ps` shows for the one replaced
                    if moving(t):
                        why = f"moved to {ctx.node_name(t.move_to)} (rebalance)"
                    elif ctx.node_fate(t.node_id) == "drain":
                        why = "node drained"  # as the replacement's reason and a job's (jobs.py)
                    else:  # a start-first update's old task: the reason a stop-first one's has
                        why = ROLLING_UPDATE if t.template_hash != winner.template_hash else "superseded"
                    ctx.out.actions.append(ShutdownTask(t.task_id, why))
            elif pin is None and not any(well_placed(t) for t in live):
                # drained node, crowded node or a rebalance: start the replacement first
                fate = ctx.node_fate(winner.node_id)
                target = None
                if fate == "drain":
                    why = "node drained"
                elif not ctx.satisfies(winner.node_id, spec):
                    ctx.off_constraints.add(slot)  # Swarm's dirty task: the rolling update replaces it
                    return winner
                elif winner.task_id in ctx.crowded:
                    why = "max replicas per node"
                else:
                    why, target = "rebalance", winner.move_to
                self._create(svc, slot, target, ctx, why, winner.restart_history)
            return winner

        if ended:
            return self._restart(svc, slot, pin, ended, ctx)
        self._create(svc, slot, pin, ctx, "missing" if not tasks else "replace lost task")
        return None

    @staticmethod
    def _settled_slot(svc: Service, pin: str | None, tasks: list[Task], ctx: RoundContext) -> Task | None:
        """The slot's one task when it is running, healthy or unchecked, not moving, on a node that is
        ok and that it satisfies: then :meth:`_reconcile_key` decides nothing and returns it (the
        rolling update compares its template). Most slots of a full round; None: decide in full."""
        if len(tasks) != 1:
            return None
        t = tasks[0]
        if (
            t.state == TaskState.RUNNING
            and t.move_to is None
            and (t.health is TaskHealth.NONE or t.health is TaskHealth.HEALTHY)
            and ctx.fate(t.node_id, svc.spec) == "ok"
            and (pin is not None or ctx.satisfies(t.node_id, svc.spec))
            and t.task_id not in ctx.crowded
        ):
            return t
        return None

    def _replaced(self, svc: Service, slot: int, pin: str | None, ctx: RoundContext) -> bool:
        """Create the replacement of an empty key whose newest stopped task has another template (a
        stop-first update's, created once that task stopped); False: no such task."""
        key = pin if pin is not None else slot
        prev = ctx.stopped.get(key)
        if prev is None:
            return False
        if prev.template_hash != svc.spec.template_hash():
            why = ROLLING_UPDATE
        elif prev.message == OFF_CONSTRAINTS:
            why = OFF_CONSTRAINTS  # stopped stop-first for its new constraints (_rolling_update)
        else:
            return False
        self._create(svc, slot, pin, ctx, why, prev.restart_history)
        ctx.held.add(key)  # in flight for the rolling update from now on
        return True

    def _restart(
        self, svc: Service, slot: int, pin: str | None, ended: list[Task], ctx: RoundContext
    ) -> Task | None:
        """Apply the restart policy to the latest ended task of a slot with nothing live."""
        last = max(ended, key=lambda t: (t.state_at, t.created_at, t.task_id))
        policy = policy_of(last, svc.spec)
        for t in ended:
            if t is not last:
                ctx.out.actions.append(ShutdownTask(t.task_id, "superseded"))
        final = final_reason(policy, last)
        if final:  # desired shutdown, as Swarm's: the task stays failed and visible, never restarted
            ctx.out.actions.append(ShutdownTask(last.task_id, final))
            return last
        if policy.condition == "none" or (
            policy.condition == "on-failure" and last.state not in FAILURE_STATES
        ):
            return last  # the slot is done (a task the cluster stopped); nothing to do until the spec changes
        due = restart_due(policy, last, ctx.now, drained=ctx.node_fate(last.node_id) == "drain")
        if ctx.now < due:  # the back-off, or the window's attempts used: the task stays failed and visible
            ctx.out.wake(due)
            return last
        ctx.out.actions.append(ShutdownTask(last.task_id, f"restart after {last.state}"))
        self._create(svc, slot, pin, ctx, f"restart after {last.state}", next_history(policy, last, ctx.now))
        return None

    def _restart_unhealthy(
        self, svc: Service, slot: int, pin: str | None, sick: Task, ctx: RoundContext
    ) -> Task | None:
        """The replacement of ``sick``, stopped (or being stopped) for failing its health check, once
        :func:`~.restart.restart_due` says so; until then the slot holds ``sick`` and asks to wake."""
        policy = policy_of(sick, svc.spec)
        due = restart_due(policy, sick, ctx.now, drained=ctx.node_fate(sick.node_id) == "drain")
        if ctx.now < due:
            ctx.out.wake(due)
            return sick
        if (pin if pin is not None else slot) in ctx.held:
            return sick  # still stopping: the replacement waits for its stop, as Swarm's restart does
        if sick.desired_state == DesiredState.RUNNING and may_run(sick, ctx.node_fate(sick.node_id)):
            ctx.out.wake(stop_bound(sick, ctx.now))
            return sick  # stopped this round (by the caller): the same wait
        history = next_history(policy, sick, ctx.now)
        self._create(svc, slot, pin, ctx, "replace unhealthy task", history)
        return None

    def _rolling_update(
        self,
        svc: Service,
        winners: Mapping[Any, Task | None],
        tasks_of: Mapping[Any, list[Task]],
        ctx: RoundContext,
    ) -> None:
        """Replace outdated tasks batch by batch with the rollout's policy (parallelism, delay, order,
        monitor, failure action and max failure ratio), and say when a recorded rollout completed."""
        spec = svc.spec
        cfg = effective_policy(spec.update, spec.rollback, svc.rollout)
        current = spec.template_hash()
        verdict = self._rollout_failures(svc, cfg, winners, ctx)
        outdated: list[tuple[bool, int, Task]] = []
        in_flight = len(ctx.held)  # keys replaced stop-first: old task stopping, or replacement just created
        last_settle: float | None = None
        for key in sorted(winners, key=str):
            winner = winners[key]
            group = tasks_of.get(key, [])
            for t in group:
                if t.template_hash != current or (t is winner and key in ctx.off_constraints):
                    continue  # (a task off its constraints is to be replaced: never in flight)
                started = started_at(t)
                if (
                    key not in verdict.failed_keys
                    and t.state not in TERMINAL_STATES
                    and not settled(t, cfg, ctx.now)
                ):
                    in_flight += 1  # a slot that failed within tolerance no longer holds the update up
                    if started is not None and t.state == TaskState.RUNNING:
                        ctx.out.wake(started + cfg.monitor_s)
                if started is not None and t.state not in TERMINAL_STATES:
                    settle = started + cfg.monitor_s
                    last_settle = settle if last_settle is None else max(last_settle, settle)
            if winner is None or key in ctx.held:
                continue
            if winner.template_hash == current and key not in ctx.off_constraints:
                continue
            if (svc.service_id, winner.slot) in ctx.created:
                continue  # already given a new task this round (restart or move)
            if any(
                t is not winner and t.template_hash == current and t.state not in TERMINAL_STATES
                for t in group
            ):
                continue  # a replacement is already under way (start-first)
            outdated.append((winner.state == TaskState.RUNNING, winner.slot, winner))
        in_progress = bool(outdated) or (svc.rollout is not None and not svc.rollout.completed)
        if not in_progress:
            return
        rolling = svc.rollout is not None and not svc.rollout.completed
        if verdict.triggered and (rolling or any(o.slot not in ctx.off_constraints for _, _, o in outdated)):
            # (moves off new constraints alone are no rollout: old failures do not hold them)
            if not svc.update_paused:
                ctx.out.events.append(
                    UpdateFailed(svc.service_id, verdict.task_id, cfg.failure_action, verdict.reason)
                )
            return
        if not outdated:
            if in_flight == 0 and svc.rollout is not None and not svc.update_paused:
                ctx.out.events.append(RolloutDone(svc.service_id, svc.rollout.rollback))
            return
        if svc.update_paused:
            return
        if cfg.delay_s > 0 and last_settle is not None and ctx.now < last_settle + cfg.delay_s:
            ctx.out.wake(last_settle + cfg.delay_s)
            return
        budget = (cfg.parallelism or len(outdated)) - in_flight
        order = cfg.order
        if spec.mode == "global" and spec.host_ports:
            order = "stop-first"  # the new task needs the same host ports on the same node
        stopped_now: set[str] | None = None
        for _, slot, old in sorted(outdated, key=lambda x: (x[0], x[1], x[2].task_id))[: max(budget, 0)]:
            pin = old.node_id if spec.mode == "global" else None
            why = OFF_CONSTRAINTS if old.template_hash == current else ROLLING_UPDATE
            if order == "stop-first" and old.desired_state == DesiredState.RUNNING:
                if stopped_now is None:  # the reason of a stop this round stays (e.g. unhealthy)
                    stopped_now = {a.task_id for a in ctx.out.shutdowns}
                if old.task_id not in stopped_now:
                    ctx.out.actions.append(ShutdownTask(old.task_id, why))
                if may_run(old, ctx.node_fate(old.node_id)):
                    ctx.out.wake(stop_bound(old, ctx.now))
                    continue  # created once it stopped (stop_wait.py, _replaced)
            # a task stopped before (unhealthy, or for good) and not held: stopped, or past its bound
            self._create(svc, slot, pin, ctx, why, old.restart_history)

    def _rollout_failures(
        self, svc: Service, cfg: UpdateConfig, winners: Mapping[Any, Task | None], ctx: RoundContext
    ) -> FailureVerdict:
        """Keys (slots, or nodes when global) whose task of the current template failed within
        ``monitor`` since the rollout started (every such task when none was recorded), shut-down ones
        included, and whether that exceeds ``max_failure_ratio``."""
        current = svc.spec.template_hash()
        since = svc.rollout.started_at if svc.rollout is not None else float("-inf")
        failures: dict[Any, list[tuple[str, str]]] = {}
        for t in ctx.history.get(svc.service_id, []):
            if t.template_hash != current or t.created_at < since:
                continue
            if failed_within_monitor(t.state, t.state_at, started_at(t), t.healthy, ctx.now, cfg.monitor_s):
                detail = t.error or ("unhealthy" if t.healthy is False else t.state)
                failures.setdefault(_key(t, svc.spec), []).append((t.task_id, detail))
        return failure_verdict(failures, len(winners), cfg)


def crowded(spec: ServiceSpec, active: Sequence[Task]) -> set[str]:
    """Ids of ``active`` tasks (desired running) beyond ``spec.max_replicas_per_node`` on their node: the
    newest there, not yet ended. A lowered limit holds for running tasks as Swarm's does (a placement
    change rolls them out there): they move start-first, as a task off its constraints does."""
    limit = spec.max_replicas_per_node
    if not limit or len(active) <= limit:
        return set()
    on_node: dict[str, list[Task]] = {}
    for t in active:
        if t.node_id is not None and t.state not in TERMINAL_STATES:
            on_node.setdefault(t.node_id, []).append(t)
    return {
        t.task_id
        for tasks in on_node.values()
        if len(tasks) > limit
        for t in sorted(tasks, key=operator.attrgetter("created_at", "task_id"))[limit:]
    }


def _key(task: Task, spec: ServiceSpec) -> Any:
    """What a rolling update counts: the slot (replicated) or the node (global)."""
    return task.node_id if spec.mode == "global" else task.slot
