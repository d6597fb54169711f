"""A deterministic whole-cluster simulator: gossip, Raft, the leader and every agent (pure; tests only).

``ClusterSim`` wires N simulated nodes from the real pure cores: SWIM gossip (``testing.simulator``),
one in-memory Raft group whose commands go through the real FSM (``testing.memstore``), the real
leader round (``plan_round``) with the follow-ups the leader loop does (node statuses from gossip,
update failure actions, finished rebalances) and the real autopilot decision (``next_voter_change``),
both in ``testing.sim_leader``, the API's own service operations (``ServiceOps``) and, per node,
the real agent planner over a fake engine (``testing.fake_engine``). Scenario scripts call
``add_nodes``, ``create_service``, ``kill``, ``run_for``, ``wait_for``, ... (docs/testing.md).

Time is simulated (``now`` is seconds since an epoch offset), randomness comes from the seed, and
nothing iterates a set or depends on hash order, so one seed reproduces a run exactly. It never
sleeps, reads the wall clock or touches sockets. Raft is simplified: every reachable node sees each
commit at once (a cut-off node keeps acting on the last state it received); a leader is elected
``election_s`` after the last one is gone if a majority of the voters runs and is reachable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from ..config import Config
from ..control.service_ops import ServiceOps
from ..errors import ConflictError, P2POrchError
from ..gossip.config import GossipConfig
from ..gossip.messages import RESTART_META_KEY
from ..leader.autopilot import voters_target
from ..member.views import agent_assignments, status_report
from ..membership.voter_role import recovered_state
from ..model import (
    Availability,
    DesiredState,
    Node,
    NodeRole,
    NodeStatus,
    Service,
    ServiceSpec,
    Task,
    TaskHealth,
    TaskState,
)
from ..netoverlay.plan import DEFAULT_NETWORK
from ..raft import commands as C
from ..raft.state import ClusterState
from ..scheduler import Orchestrator
from .fake_engine import Behaviour, FakeEngine, SimAgent
from .memstore import MemoryRaft
from .sim_leader import SimLeader
from .sim_recovery import lost_voters
from .simulator import Simulator

EPOCH = 1_700_000_000.0  # simulated wall clock at t=0 (0.0 means "never" in some records)
GIB = 1 << 30


@dataclass(frozen=True)
class SimSettings:
    """Timing of the simulated control plane (defaults follow the daemon's)."""

    tick_s: float = 0.05  # granularity of agents, leader and autopilot steps
    election_s: float = 1.5  # no leader this long after the last one vanished -> a new one
    leader_idle_s: float = 1.0  # the leader loop plans at least this often
    autopilot_s: float = 0.5  # AUTOPILOT_CHECK_S
    role_switch_s: float = 1.5  # a node restarts its store in its recorded role this long after
    report_flush_s: float = 0.1  # the agent's flush interval


@dataclass
class SimNode:
    """One simulated host: its identity, whether it runs, its engine and agent, its store's role."""

    index: int
    name: str
    node_id: str
    addr: str
    engine: FakeEngine
    agent: SimAgent
    running: bool = True
    isolated: bool = False
    running_role: str = "replica"  # the role its store runs in (voter | replica)
    generation: int = 0
    role_due_at: float | None = None  # when it restarts in its recorded role
    flush_at: float = 0.0
    seen: ClusterState = field(default_factory=ClusterState)  # the last committed state it received

    @property
    def raft_addr(self) -> str:
        return f"{self.addr}:7947"


class ClusterSim:
    """Runs a simulated cluster; see the module docstring and docs/testing.md."""

    def __init__(
        self,
        seed: int,
        *,
        config: Config | None = None,
        gossip: GossipConfig | None = None,
        settings: SimSettings | None = None,
    ) -> None:
        self.seed = seed
        self.config = config or Config()
        self.settings = settings or SimSettings()
        self.gossip = Simulator(seed, gossip or GossipConfig.fast_lan())
        self.raft = MemoryRaft()
        self.nodes: dict[str, SimNode] = {}
        self.rng = random.Random(f"{seed}:cluster")
        self.log: list[tuple[float, str]] = []  # (t, what happened), for failure messages
        self.leader: SimLeader | None = None
        self.leaderless_since = 0.0
        self.auto_elect = True  # elect a leader election_s after the last one is gone
        self.rounds = 0
        # the API's service operations, reading the simulated clock (logs are not simulated)
        self.ops = ServiceOps(cast(Any, _Control(self)), cast(Any, None), clock=_SimClock(self))

    # ------------------------------------------------------------------------------------ views
    @property
    def t(self) -> float:
        """Seconds since the simulation started."""
        return self.gossip.now

    @property
    def now(self) -> float:
        """The simulated wall clock (what commands carry as ``at``)."""
        return EPOCH + self.gossip.now

    @property
    def state(self) -> ClusterState:
        return self.raft.state

    def node(self, name: str) -> SimNode:
        return self.nodes[name]

    def name_of(self, node_id: str | None) -> str | None:
        return next((n.name for n in self.nodes.values() if n.node_id == node_id), None)

    def service(self, name: str) -> Service:
        service = self.state.service_by_name(name)
        if service is None:
            raise KeyError(f"no service {name}")
        return service

    def tasks(self, service: str, *, desired: str | None = DesiredState.RUNNING) -> list[Task]:
        """Tasks of ``service`` (by default those that should run), by slot."""
        sid = self.service(service).service_id
        found = [t for t in self.state.tasks_of_service(sid) if desired is None or t.desired_state == desired]
        return sorted(found, key=lambda t: (t.slot, t.created_at, t.task_id))

    def running(self, service: str) -> list[Task]:
        """Tasks committed as running that should run."""
        return [t for t in self.tasks(service) if t.state == TaskState.RUNNING]

    def placement(self, service: str) -> dict[str, int]:
        """Node name -> number of running tasks of ``service`` there (committed state)."""
        out: dict[str, int] = {}
        for t in self.running(service):
            name = self.name_of(t.node_id) or "?"
            out[name] = out.get(name, 0) + 1
        return dict(sorted(out.items()))

    def containers(self, service: str) -> dict[str, int]:
        """Node name -> running containers of ``service`` on its engine (what really runs)."""
        sid = self.service(service).service_id
        task_ids = {t.task_id for t in self.state.tasks_of_service(sid)}
        out = {}
        for node in self.nodes.values():
            count = sum(1 for task_id in node.engine.running_tasks() if task_id in task_ids)
            if count:
                out[node.name] = count
        return out

    def leader_name(self) -> str | None:
        return self.leader.node if self.leader is not None else None

    def voters(self) -> list[str]:
        """Names of the nodes in the Raft voter configuration."""
        by_addr = {n.raft_addr: n.name for n in self.nodes.values()}
        return sorted(by_addr.get(a, a) for a in self.raft.voters)

    def recorded(self, name: str) -> Node:
        record = self.state.nodes.get(self.nodes[name].node_id)
        assert record is not None, f"{name} has no record"
        return record

    # ------------------------------------------------------------------------------------ nodes
    def add_node(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        memory_gib: int = 8,
        gossip_after_s: float | None = 0.0,
    ) -> SimNode:
        """A new host that inits the cluster (the first) or joins it; a voter until the target is met.
        Its gossip starts ``gossip_after_s`` after its admission (a slow start), or never (None: a join
        whose daemon never started its member services)."""
        index = len(self.nodes) + 1
        engine = FakeEngine(name, f"10.240.{index}")
        node = SimNode(
            index=index,
            name=name,
            node_id=f"{name}-{self.rng.getrandbits(32):08x}",
            addr=f"10.0.0.{index}",
            engine=engine,
            agent=SimAgent(name, engine),
        )
        self.nodes[name] = node
        first = not self.state.initialized
        live = [n for n in self.state.nodes.values() if n.status != NodeStatus.LEFT]
        voters = [n for n in live if n.role == NodeRole.VOTER]
        wanted = first or len(voters) < voters_target(self.config.raft, len(live) + 1)
        role = NodeRole.VOTER if wanted else NodeRole.REPLICA
        node.running_role, node.generation = role, self.state.generation
        if first:
            self.raft.voters = [node.raft_addr]
            self.raft.set_leader(node.raft_addr)
            self._follow_raft_leader()
            self._commit(C.InitCluster(at=self.now, cluster_id="0123456789abcdef").encode())
        record = Node(
            node.node_id, name, node.addr, 7947, 7946, role=role, labels=labels or {},
            cpu_nanos=4_000_000_000, memory_bytes=memory_gib * GIB,
        )  # fmt: skip
        self._commit(C.AddNode(at=self.now, node=record).encode())
        self._commit(C.LeaseSubnet(at=self.now, node_id=node.node_id).encode())
        if role == "voter" and not first:
            self.raft.voters = sorted([*self.raft.voters, node.raft_addr])
        if gossip_after_s == 0.0:
            self._start_gossip(node)
        elif gossip_after_s is not None:
            self.gossip.at(self.gossip.now + gossip_after_s, lambda: self._start_gossip(node))
        self.note(f"{name} joins as {role}")
        return node

    def _start_gossip(self, node: SimNode) -> None:
        """``node``'s gossip starts and greets the first other running node (unless it stopped since)."""
        if node.running:
            seeds = [n.node_id for n in self.nodes.values() if n.running and n is not node][:1]
            self.gossip.start(node.node_id, seeds)
            self.note(f"{node.name} gossips")

    def add_nodes(self, count: int, **kw: Any) -> list[SimNode]:
        """``count`` nodes named n<i> (continuing the numbering), then run until gossip converged."""
        start = len(self.nodes) + 1
        nodes = [self.add_node(f"n{i}", **kw) for i in range(start, start + count)]
        self.wait_for(lambda: self.gossip.converged(), within_s=30.0, what="gossip converges")
        return nodes

    def kill(self, name: str) -> None:
        """kill -9 of the daemon and its dockerd: no gossip, no agent, its containers die."""
        node = self.nodes[name]
        node.running = False
        node.engine.kill_all()
        self.gossip.kill(node.node_id)
        self.note(f"{name} killed")

    def stop_daemon(self, name: str) -> None:
        """SIGTERM of the daemon alone (an upgrade): it announces a restart in gossip unless
        ``restart_grace_s`` is 0 (``member/gossip.announce_restart``), gives that ``leave_propagate_s`` at
        most to spread, then stops (gossip, agent, store); its containers keep running (``restart``)."""
        node = self.nodes[name]
        grace_s = self.config.scheduler.restart_grace_s
        if grace_s > 0:
            self.gossip.update_meta(node.node_id, RESTART_META_KEY, math.ceil(self.now + grace_s))
            self.note(f"{name} announces a restart")
            self.run_until(self.t + self.gossip.config.leave_propagate_s, self.gossip.spread(node.node_id))
        node.running = False
        self.gossip.kill(node.node_id)
        self.note(f"{name}'s daemon stopped")

    def restart(self, name: str) -> None:
        """Start a killed or stopped node's daemon again: gossip rejoins, the agent starts from its
        engine (adopting what still runs), the store asks its peers how the cluster records it (it starts
        in the recorded role and generation)."""
        node = self.nodes[name]
        node.running, node.isolated = True, False
        node.agent.restart()
        record = self.state.nodes.get(node.node_id)
        if record is not None:
            node.running_role, node.generation = record.role, self.state.generation
        seeds = [n.node_id for n in self.nodes.values() if n.running and n is not node][:1]
        self.gossip.start(node.node_id, seeds)
        self.note(f"{name} restarted")

    def isolate(self, name: str) -> None:
        """Cut ``name`` off the network (gossip and Raft); it keeps running."""
        self.nodes[name].isolated = True
        self.gossip.isolate(self.nodes[name].node_id)
        self.note(f"{name} isolated")

    def heal(self) -> None:
        for node in self.nodes.values():
            node.isolated = False
        self.gossip.heal()
        self.note("network healed")

    # ------------------------------------------------------------------------------------ services
    def create_service(self, name: str, image: str = "app:1", replicas: int = 1, **spec: Any) -> str:
        """``service create``: a validated spec committed as the API does; returns the service id."""
        checked = ServiceSpec.from_dict({"name": name, "image": image, "replicas": replicas, **spec})
        service_id = f"{self.rng.getrandbits(64):016x}"
        self.write(C.CreateService(at=self.now, service_id=service_id, spec=checked).encode())
        self.note(f"service {name} created")
        return service_id

    def update_service(self, name: str, **changes: Any) -> None:
        """``service update NAME`` with spec fields (the API's own operation, ``ServiceOps.update``)."""
        run_now(self.ops.update(name, changes))
        self.note(f"service {name} updated: {', '.join(sorted(changes))}")

    def rollback(self, name: str) -> None:
        run_now(self.ops.rollback(name))
        self.note(f"service {name} rolled back")

    def rebalance(self, name: str) -> None:
        """``service rebalance NAME``: a one-off request the leader clears once the service is balanced."""
        run_now(self.ops.rebalance(name))
        self.note(f"service {name} rebalance requested")

    def remove_service(self, name: str) -> None:
        run_now(self.ops.remove(name))
        self.note(f"service {name} removed")

    def set_availability(self, name: str, availability: str) -> None:
        """``node update --availability``."""
        node_id = self.nodes[name].node_id
        update = C.UpdateNode(at=self.now, node_id=node_id, availability=Availability(availability))
        self.write(update.encode())
        self.note(f"{name} availability {availability}")

    def behave(self, image: str, behaviour: Behaviour) -> None:
        """Every engine runs containers of ``image`` this way from now on."""
        for node in self.nodes.values():
            node.engine.behaviours[image] = behaviour

    def crash_task(self, task: Task, exit_code: int = 1) -> None:
        name = self.name_of(task.node_id)
        assert name is not None
        self.nodes[name].engine.crash(task.task_id, exit_code, self.now)

    def set_health(self, task: Task, health: TaskHealth) -> None:
        name = self.name_of(task.node_id)
        assert name is not None
        self.nodes[name].engine.set_health(task.task_id, health, self.now)

    # ------------------------------------------------------------------------------------ raft
    def write(self, command: bytes) -> Any:
        """A client write through the current leader (raises like ``RaftStore.write``)."""
        return C.raise_for_result(self.raft.submit(command))

    def set_leader(self, name: str | None) -> None:
        """Scripted leadership: ``name`` leads now; None: nobody until the next election (``election_s``
        later, unless ``auto_elect`` is off)."""
        self.raft.set_leader(self.nodes[name].raft_addr if name else None)
        self.leaderless_since = self.t
        self.note(f"leadership scripted: {name or 'no leader'}")
        self._follow_raft_leader()

    def recover(self, name: str) -> None:
        """``recover --force-new-cluster`` on ``name``: its state restored into a new log, one generation
        on, as the only voter, the recorded voters that did not answer its question ``down`` since now
        (refused, like the daemon, while the cluster has a quorum or a majority of voters answers); its
        member services, gossip included, start again with the new store."""
        if self.raft.leader is not None:
            raise ConflictError("the cluster has a quorum", field="--force-new-cluster")
        node = self.nodes[name]
        lost = lost_voters(self, node)
        restored = recovered_state(self.state, node.node_id, lost, self.now)
        self.raft.new_log([node.raft_addr], node.raft_addr)
        self.write(C.RestoreState(at=self.now, state=restored).encode())
        node.running_role, node.generation = "voter", self.state.generation
        # its member services start again with the new store: a fresh gossip that has seen nobody yet
        seeds = [n.node_id for n in self.nodes.values() if n.running and not n.isolated and n is not node]
        self.gossip.start(node.node_id, seeds[:1])
        self._follow_raft_leader()
        self.note(f"{name} recovered the cluster (generation {self.state.generation})")

    def _commit(self, command: bytes) -> Any:
        return self.write(command)

    # ------------------------------------------------------------------------------------ running
    def run_for(self, seconds: float) -> None:
        self.run_until(self.t + seconds)

    def run_until(self, t: float, stop: Callable[[], bool] | None = None) -> bool:
        """Advance to ``t`` (seconds since start) tick by tick; True as soon as ``stop`` holds."""
        tick = self.settings.tick_s
        while self.t < t - 1e-9:
            self.gossip.run_until(min(self.t + tick, t))
            self._step()
            if stop is not None and stop():
                return True
        return stop() if stop is not None else False

    def wait_for(self, condition: Callable[[], bool], *, within_s: float, what: str) -> float:
        """Run until ``condition`` holds; returns how long it took. Fails with the timeline if it
        does not hold within ``within_s``."""
        start = self.t
        if condition() or self.run_until(start + within_s, condition):
            return self.t - start
        raise AssertionError(f"not within {within_s} s: {what} (seed={self.seed})\n{self.timeline()}")

    def holds_for(self, condition: Callable[[], bool], *, seconds: float, what: str) -> None:
        """``condition`` holds at every tick for ``seconds`` (a negative check over a time window)."""
        end = self.t + seconds
        if not condition() or self.run_until(end, lambda: not condition()):
            raise AssertionError(
                f"{what} stopped holding at t={self.t:.2f} (seed={self.seed})\n{self.timeline()}"
            )

    def timeline(self, last: int = 40) -> str:
        return "\n".join(f"  {t:8.2f}  {what}" for t, what in self.log[-last:])

    def note(self, what: str) -> None:
        self.log.append((round(self.t, 3), what))

    def _step(self) -> None:
        self._elections()
        self._role_watchers()
        for node in self.nodes.values():
            if node.running and not node.isolated:
                node.seen = self.state  # a cut-off node keeps acting on what it last received
            if node.running:
                self._agent_step(node)
        if self.leader is not None:
            self.leader.step(self)

    # ----- raft leadership
    def _reachable(self, addr: str | None) -> bool:
        node = next((n for n in self.nodes.values() if n.raft_addr == addr), None)
        return node is not None and node.running and not node.isolated and node.running_role == "voter"

    def _elections(self) -> None:
        leader = self.raft.leader
        if leader is not None and not self._reachable(leader):
            self.note(f"leader {self.name_of_addr(leader)} lost")
            self._step_down()
        elif leader is not None and not self._has_majority():
            self.note(f"leader {self.name_of_addr(leader)} lost its quorum")
            self._step_down()
        if (
            self.raft.leader is None
            and self.auto_elect
            and self.t - self.leaderless_since >= self.settings.election_s
        ):
            self._elect()
        self._follow_raft_leader()

    def _step_down(self) -> None:
        self.raft.set_leader(None)
        self.leaderless_since = self.t

    def _has_majority(self) -> bool:
        return sum(1 for a in self.raft.voters if self._reachable(a)) * 2 > len(self.raft.voters)

    def _elect(self) -> None:
        candidates = [a for a in self.raft.voters if self._reachable(a)]
        if self._has_majority():
            self.raft.set_leader(self.rng.choice(candidates))
            self.note(f"{self.name_of_addr(self.raft.leader)} elected leader (term {self.raft.term})")

    def _follow_raft_leader(self) -> None:
        name = self.name_of_addr(self.raft.leader) if self.raft.leader else None
        if name is None:
            self.leader = None
            return
        if self.leader is None or self.leader.node != name:
            rng = random.Random(f"{self.seed}:orchestrator:{name}:{self.raft.term}")
            scheduler = self.config.scheduler
            orchestrator = Orchestrator(
                rng,
                down_grace_s=scheduler.down_grace_s,
                site_grace_s=scheduler.site_grace_s,
                engine_grace_s=scheduler.engine_down_grace_s,
            )
            self.leader = SimLeader(name, orchestrator)

    def name_of_addr(self, addr: str | None) -> str | None:
        return next((n.name for n in self.nodes.values() if n.raft_addr == addr), None)

    def _role_watchers(self) -> None:
        """Each running node restarts its store in its recorded role (``voter_role.watch_role``) and
        follows a newer generation (after a forced recovery) as the record says."""
        state = self.state
        for node in self.nodes.values():
            record = state.nodes.get(node.node_id)
            if not node.running or node.isolated or record is None or self.raft.leader is None:
                node.role_due_at = None
                continue
            wanted = (record.role, state.generation)
            if wanted == (node.running_role, node.generation):
                node.role_due_at = None
            elif node.role_due_at is None:
                node.role_due_at = self.t + self.settings.role_switch_s
            elif self.t >= node.role_due_at:
                node.running_role, node.generation = wanted
                node.role_due_at = None
                self.note(f"{node.name} runs as {record.role} (generation {state.generation})")

    # ----- agents
    def _agent_step(self, node: SimNode) -> None:
        node.agent.step(agent_assignments(node.seen, node.node_id, node.name, DEFAULT_NETWORK), self.now)
        if self.t < node.flush_at or not node.agent.pending:
            return
        node.flush_at = self.t + self.settings.report_flush_s
        if node.isolated or not self.raft.can_commit:
            return  # reports wait in the agent until a leader can take them
        reports = node.agent.take_reports()
        try:
            batch = tuple(status_report(r) for r in reports)
            self.write(C.ReportTaskStates(at=self.now, node_id=node.node_id, reports=batch).encode())
        except P2POrchError:
            node.agent.requeue(reports)

    def gossip_members(self, node: SimNode) -> dict[str, Any]:
        """``node``'s gossip member views (``MemberView``: state, incarnation, meta); {} when it is down."""
        if node.node_id not in self.gossip.nodes or self.gossip.nodes[node.node_id].core is None:
            return {}
        return self.gossip.members(node.node_id)

    def gossip_states(self, node: SimNode) -> dict[str, str]:
        """``node id -> alive | suspect | dead | left`` as ``node``'s gossip sees it."""
        if node.node_id not in self.gossip.nodes or self.gossip.nodes[node.node_id].core is None:
            return {}
        return dict(sorted(self.gossip.view(node.node_id).items()))

    def runs_as_voter(self, state: ClusterState) -> list[str]:
        """Raft addresses of reachable nodes whose store runs as a voter of this generation (what the
        leader learns by asking them over the join port)."""
        return sorted(
            n.raft_addr
            for n in self.nodes.values()
            if n.running and not n.isolated and (n.running_role, n.generation) == ("voter", state.generation)
        )


class _Control:
    """What the API's operations need from the manager: the committed state and a write that commits
    at once (so :func:`run_now` can drive them without an event loop)."""

    def __init__(self, sim: ClusterSim) -> None:
        self.sim = sim
        self.config = Config()  # the default ports, which services may not publish
        self.command_readers = None  # every member reads every spec field (no rolling upgrade here)

    def snapshot(self) -> ClusterState:
        return self.sim.state

    def require_store(self) -> _Control:
        """The store's part the API's operations read besides the state: ``command_readers``."""
        return self

    async def write(self, command: bytes) -> Any:
        return self.sim.write(command)


class _SimClock:
    """The simulated wall clock as a :class:`~p2porch.clock.Clock`."""

    def __init__(self, sim: ClusterSim) -> None:
        self.sim = sim

    def now(self) -> float:
        return self.sim.now

    def monotonic(self) -> float:
        return self.sim.t


def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (its awaits all complete at once) to its result."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the operation waited on I/O; the simulator cannot run it")


def settle(sim: ClusterSim, services: Iterable[str], *, within_s: float = 20.0) -> float:
    """Run until every named service runs all its replicas; returns how long that took."""
    names = list(services)

    def done() -> bool:
        return all(len(sim.running(s)) == sim.service(s).spec.replicas for s in names)

    return sim.wait_for(done, within_s=within_s, what=f"{', '.join(names)} run all replicas")
