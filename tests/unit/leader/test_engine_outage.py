"""The engine-outage grace runs on the leader's monotonic clock: a wall clock stepped an hour forward or
back replaces a node's tasks neither early nor late (leader/engine_outage.py, the scheduler's view)."""

from __future__ import annotations

import random

from p2porch.leader.engine_outage import EngineOutages
from p2porch.model import Node, Service, ServiceSpec, Task
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator, ShutdownTask

SPEC = ServiceSpec(name="web", image="busybox:1", replicas=2)
SERVICES = [Service("s1", SPEC)]
TASKS = [
    Task(f"t{i}-{n}", "s1", i, n, state="running", template_hash=SPEC.template_hash())
    for i, n in ((1, "a"), (2, "b"))
]
WALL = 1_800_000_000.0
GRACE_S = 10.0


def cluster(down_at: float = 0.0) -> ClusterState:
    nodes = {"a": Node("a", "a"), "b": Node("b", "b", engine_down_at=down_at, engine_error="refused")}
    return EMPTY_STATE.evolve(nodes=nodes)


def shutdowns(view: ClusterState, now: float) -> list[ShutdownTask]:
    orchestrator = Orchestrator(random.Random(1), engine_grace_s=GRACE_S)
    return orchestrator.reconcile(SERVICES, TASKS, list(view.nodes.values()), now=now).shutdowns


def test_a_wall_clock_step_neither_hastens_nor_delays_the_replacement() -> None:
    lost = [ShutdownTask("t2-b", "node engine unreachable")]
    for step in (3600.0, -3600.0):
        outages, state = EngineOutages(), cluster(down_at=WALL)
        assert shutdowns(outages.view(state, WALL + 0.5, 50.0), WALL + 0.5) == []  # first seen: mono 50
        stepped = WALL + 5.0 + step  # 4.5 s later on the monotonic clock, the wall clock stepped
        view = outages.view(state, stepped, 54.5)
        assert shutdowns(view, stepped) == []  # the record's time alone: lost at once / an hour late
        assert shutdowns(state, stepped) == (lost if step > 0 else [])
        # first seen at 50, credited the agent's 1 s confirmation: the grace ends at 59 on the monotonic clock
        assert shutdowns(outages.view(state, stepped + 4.4, 58.9), stepped + 4.4) == []
        assert shutdowns(outages.view(state, stepped + 4.5, 59.0), stepped + 4.5) == lost


def test_the_record_keeps_its_time_and_the_view_wakes_the_leader_at_the_monotonic_deadline() -> None:
    outages, state = EngineOutages(), cluster(down_at=WALL)
    view = outages.view(state, WALL + 100.0, 10.0)  # a new leader finds the outage 100 s old: from now - 1 s
    assert state.nodes["b"].engine_down_at == WALL and view.nodes["b"].engine_down_at == WALL + 99.0
    orchestrator = Orchestrator(random.Random(1), engine_grace_s=GRACE_S)
    planned = orchestrator.reconcile(SERVICES, TASKS, list(view.nodes.values()), now=WALL + 100.0)
    assert planned.actions == [] and planned.wake_at == WALL + 109.0


def test_the_same_state_gives_the_same_records_and_a_new_outage_counts_anew() -> None:
    outages, state = EngineOutages(), cluster(down_at=WALL)
    first = outages.view(state, WALL, 0.0)
    again = outages.view(state, WALL + 3.0001, 3.0)  # a slewing wall clock: the same records and mapping
    assert again.nodes is first.nodes and again.nodes["a"] is state.nodes["a"]
    assert outages.view(cluster(), WALL + 4.0, 4.0).nodes["b"].engine_down_at == 0.0  # back: as recorded
    later = cluster(down_at=WALL + 20.0)
    assert outages.view(later, WALL + 30.0, 30.0).nodes["b"].engine_down_at == WALL + 29.0
    reachable = cluster()
    assert outages.view(reachable, WALL, 40.0) is reachable
