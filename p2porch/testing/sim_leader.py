"""The simulated leader: the real leader round and autopilot decision driven by the cluster simulator.

``SimLeader`` owns what the leader loops keep between rounds (the incremental planner with its
orchestrator and seeded RNG, the round's wake-up time, the last state and gossip view planned on). Each
tick it does what ``leader/loop.py`` and ``leader/autopilot_loop.py`` do, through the same pure
functions: node statuses from gossip (``node_status_updates``), ready nodes its gossip has never seen
marked down after the grace (``leader/unseen.py``'s ``UnseenNodes``) and the holds of daemons that
announced a restart (``leader/restart_hold.py``'s ``RestartHolds``), the round (``IncrementalPlanner``, each
of its rounds checked against a full ``plan_round`` on a copy of the orchestrator: a difference raises)
and its bookkeeping (``leader/followups.py``'s ``cron_writes`` and ``round_writes``, the generators the
real loop's ``leader/bookkeeping.py`` drives: the same writes, the same outcomes, the same rounds ended),
and ``next_voter_change``.
It never reads a clock (pure; tests only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ConflictError, NotFoundError, ProposalTimeout
from ..leader.autopilot import next_voter_change, voters_target
from ..leader.cron import plan_cron
from ..leader.followups import COMMITTED, Outcome, Writes, cron_writes, outcome_of, round_writes
from ..leader.incremental import IncrementalPlanner
from ..leader.restart_hold import RestartHolds, Sighting, sightings
from ..leader.scheduling import node_status_updates, plan_round
from ..leader.unseen import UnseenNodes
from ..model import GossipState, NodeRole, NodeStatus
from ..raft import commands as C
from ..scheduler import Orchestrator

# ``sim`` is the ClusterSim and ``leader`` its SimNode; they are not imported here so that
# cluster_sim -> sim_leader stays the only import between the two modules (no cycle).
ClusterSim = Any
SimNode = Any


@dataclass
class SimLeader:
    """The leader loops' memory on the node named ``node`` (a new one per leader and term)."""

    node: str
    orchestrator: Orchestrator
    wake_at: float | None = None
    last_round: float = -1e9
    last_version: int = -1
    last_view: dict[str, str] = field(default_factory=dict)
    next_autopilot: float = 0.0
    planner: IncrementalPlanner | None = None
    unseen: UnseenNodes = field(default_factory=UnseenNodes)  # the leader loop's, with its grace
    holds: RestartHolds = field(default_factory=RestartHolds)  # announced restarts (restart_hold.py)
    last_sightings: dict[str, Sighting] = field(default_factory=dict)

    def plan(self, sim: ClusterSim, state: Any) -> Any:
        """The incremental round, checked against a full round planned by a copy of the orchestrator."""
        moves = sim.config.scheduler.rebalance_max_moves
        if self.planner is None:
            self.planner = IncrementalPlanner(self.orchestrator, rebalance_max_moves=moves)
        twin = copy.deepcopy(self.orchestrator)
        plan = self.planner.plan(state, sim.now)
        full = plan_round(state, sim.now, twin, rebalance_max_moves=moves)
        if (plan.items, plan.update_failures, plan.rollouts_done, plan.wake_at, plan.rebalanced) != (
            full.items, full.update_failures, full.rollouts_done, full.wake_at, full.rebalanced
        ):  # fmt: skip
            raise AssertionError(f"t={sim.t:.1f}: the incremental round differs from the full round")
        return plan

    def step(self, sim: ClusterSim) -> None:
        """One tick of the leader loop and, every ``autopilot_s``, of the autopilot loop."""
        node = sim.nodes[self.node]
        state = sim.state
        view = sim.gossip_states(node)
        seen = sightings(sim.gossip_members(node))  # an announcement changes the meta, not the state
        due = (
            state.version != self.last_version
            or view != self.last_view
            or seen != self.last_sightings
            or any(w is not None and sim.now >= w for w in (self.wake_at, self.holds.wake_at))
            or sim.t - self.last_round >= sim.settings.leader_idle_s
        )
        if sim.t >= self.next_autopilot:
            self.next_autopilot = sim.t + sim.settings.autopilot_s
            self.autopilot(sim, node, view)
        if not due:
            return
        self.last_round, self.last_version, self.last_view = sim.t, state.version, view
        self.last_sightings = seen
        sim.rounds += 1
        # as sync_node_statuses (leader/loop.py) does: gossip's marks, the never-seen downs, the holds
        hold = self.holds.plan(state, seen, sim.now)
        self.holds.wake_at = hold.wake_at
        never_seen = self.unseen.downs(state, view, node.node_id, sim.now, sim.raft.term)
        for node_id, fields in hold.node_updates(node_status_updates(state, view), never_seen).items():
            version = state.nodes[node_id].version
            mark = C.UpdateNode(at=sim.now, node_id=node_id, node_version=version, **fields)
            _leader_write(sim, mark.encode())
            if node_id in hold.updates:
                why = hold.why(node_id)
            else:
                why = "never seen by gossip" if node_id in never_seen else "gossip"
            sim.note(f"{sim.name_of(node_id)} is {fields.get('status', NodeStatus.READY)} ({why})")
        if sim.state.version != state.version:
            return  # plan on the new state next tick
        cron = plan_cron(state, sim.now)
        if cron.decisions and _drive(sim, cron_writes(cron.decisions)):
            return  # the ticks are committed: the next round starts their executions
        plan = self.plan(sim, state)
        self.wake_at = min((w for w in (plan.wake_at, cron.wake_at) if w is not None), default=None)
        if _drive(sim, round_writes(state, plan, sim.now)):
            return  # the services changed: plan again on the new specs
        if not plan.empty:
            placed = C.PutTasks(at=sim.now, items=tuple(plan.items), expected_version=state.version)
            if not _leader_write(sim, placed.encode()):
                self.wake_at = sim.now

    def autopilot(self, sim: ClusterSim, leader: SimNode, view: dict[str, str]) -> None:
        """One autopilot check: the real decision, carried out on the simulated Raft group."""
        state = sim.state
        live = [n for n in state.nodes.values() if n.status != NodeStatus.LEFT]
        alive = sorted(node_id for node_id, seen in view.items() if seen == GossipState.ALIVE)
        change = next_voter_change(
            state.nodes.values(),
            sim.raft.voters,
            alive,
            sim.runs_as_voter(state),
            sim.now,
            target=voters_target(sim.config.raft, len(live)),
            grace_s=sim.config.raft.replace_dead_voter_s,
            self_addr=leader.raft_addr,
        )
        if change is None:
            return
        sim.note(f"autopilot: {change.kind} {sim.name_of_addr(change.addr)} ({change.reason})")
        if change.kind == "add":
            sim.raft.voters = sorted([*sim.raft.voters, change.addr])
        elif change.kind == "remove":
            sim.raft.voters = [a for a in sim.raft.voters if a != change.addr]
        else:
            assert change.node_id is not None
            record = state.nodes[change.node_id]
            role = NodeRole.VOTER if change.kind == "promote" else NodeRole.REPLICA
            update = C.UpdateNode(at=sim.now, node_id=record.node_id, role=role, node_version=record.version)
            _leader_write(sim, update.encode())


def _drive(sim: ClusterSim, writes: Writes) -> bool:
    """Carry out a bookkeeping decision as ``Bookkeeping.drive`` does (each write noted, written, its
    outcome sent back); whether the round ends there."""
    try:
        write = next(writes)
        while True:
            sim.note(write.note or f"{write.what} for {write.service.name}")
            write = writes.send(_bookkeeping_write(sim, write.update.encode()))
    except StopIteration as stop:
        return bool(stop.value)


def _bookkeeping_write(sim: ClusterSim, command: bytes) -> Outcome:
    """A bookkeeping write and how it ended, as ``Bookkeeping.write`` says (the simulated leader's
    writes are not fenced: never deposed)."""
    try:
        sim.write(command)
    except (ConfigError, ConflictError, NotFoundError, ProposalTimeout) as exc:
        outcome = outcome_of(exc)
        if outcome.kind == "refused":
            sim.note(f"refused: {outcome.message}")
        return outcome
    return COMMITTED


def _leader_write(sim: ClusterSim, command: bytes) -> bool:
    """A leader write; a lost race (conflict, no commit) is left to the next round, as the loop does."""
    try:
        sim.write(command)
        return True
    except (ConflictError, ProposalTimeout):
        return False
