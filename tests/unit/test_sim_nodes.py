"""The benchmark's simulated nodes report as a real agent does: STARTING, then RUNNING after the start time,
each node in batches of its own, through its own (replica) store."""

from __future__ import annotations

import random

import trio

from p2porch.leader.scheduling import plan_round, round_commands
from p2porch.model import Node, ServiceSpec, TaskState
from p2porch.raft import commands as C
from p2porch.scheduler.orchestrator import Orchestrator
from p2porch.testing.memstore import MemoryRaft, MemoryStore
from p2porch.testing.sim_nodes import SimNodes, merge_status

VOTER = "10.0.0.1:7947"


async def _cluster(raft: MemoryRaft, nodes: int, replicas: int) -> None:
    leader = raft.store(VOTER)
    await leader.write(
        C.InitCluster(at=0.0, cluster_id="c", cluster_cidr="10.0.0.0/8", subnet_prefix_len=20).encode()
    )
    for i in range(nodes):
        node = Node(f"id{i}", f"n{i}", f"10.1.0.{i + 1}", 7947, 7946)
        await leader.write(C.AddNode(at=0.0, node=node).encode())
        await leader.write(C.LeaseSubnet(at=0.0, node_id=node.node_id).encode())
    spec = ServiceSpec(name="web", image="nginx", replicas=replicas)
    await leader.write(C.CreateService(at=0.0, service_id="s1", spec=spec).encode())


async def _place(raft: MemoryRaft) -> None:
    leader = raft.store(VOTER)
    state = leader.snapshot()
    plan = plan_round(state, 0.0, Orchestrator(random.Random(1)))
    for cmd in round_commands(plan.items, 0.0, state.version):
        await leader.write(cmd.encode())


def _spied_replica(raft: MemoryRaft, sent: list[C.ReportTaskStates]) -> MemoryStore:
    """A read-only replica (the agents' writes go through it) that records every report command."""
    replica = raft.store(None)
    inner = replica.write

    async def spy(command: bytes, timeout_s: float = 5.0) -> object:
        decoded = C.decode_command(command)
        assert isinstance(decoded, C.ReportTaskStates)
        sent.append(decoded)
        return await inner(command, timeout_s)

    replica.write = spy  # type: ignore[method-assign]
    return replica


def _states(raft: MemoryRaft) -> list[TaskState]:
    return sorted({t.state for t in raft.store(VOTER).snapshot().tasks.values()})


async def test_nodes_report_starting_then_running_in_batches_of_their_own(
    autojump_clock: trio.abc.Clock,
) -> None:
    raft = MemoryRaft([VOTER], leader=VOTER)
    await _cluster(raft, nodes=4, replicas=12)
    sent: list[C.ReportTaskStates] = []
    replica = _spied_replica(raft, sent)
    halves = [SimNodes(replica, ["id0", "id1"], start_s=2.0), SimNodes(replica, ["id2", "id3"], start_s=2.0)]
    async with trio.open_nursery() as nursery:
        for sim in halves:
            await nursery.start(sim.run)
        await _place(raft)
        # STARTING-only batches are held up to 1 s (agent/report_window.py); no start has finished yet
        await trio.sleep(1.5)
        assert _states(raft) == [TaskState.STARTING]
        await trio.sleep(1.0)  # the starts finished at 2 s, their batches left 0.1 s later
        assert _states(raft) == [TaskState.RUNNING]
        nursery.cancel_scope.cancel()
    total = merge_status(sim.status() for sim in halves)
    assert (total["placed_seen"], total["starting"], total["running"], total["failures"]) == (12, 12, 12, 0)
    assert total["nodes"] == 4 and total["commands"] == len(sent)
    tasks = raft.store(VOTER).snapshot().tasks
    for cmd in sent:  # one node per batch: every report in it is of a task on that node
        assert {tasks[r.task_id].node_id for r in cmd.reports} == {cmd.node_id}
    # each node reported both states, in separate batches (the start takes longer than the hold)
    assert {(c.node_id, r.state) for c in sent for r in c.reports} == {
        (f"id{i}", s) for i in range(4) for s in (TaskState.STARTING, TaskState.RUNNING)
    }


async def test_bulk_nodes_leave_the_same_records_with_one_command_per_node(
    autojump_clock: trio.abc.Clock,
) -> None:
    """--bulk: RUNNING at once (no STARTING), each node's reports in one command; the records are those
    a STARTING then RUNNING pair leaves (running, started, address and container id set)."""
    raft = MemoryRaft([VOTER], leader=VOTER)
    await _cluster(raft, nodes=4, replicas=40)
    sent: list[C.ReportTaskStates] = []
    replica = _spied_replica(raft, sent)
    sim = SimNodes(replica, [f"id{i}" for i in range(4)], start_s=2.0, bulk=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        await _place(raft)
        await trio.sleep(1.5)  # one bulk flush: no engine start time waited for
        assert _states(raft) == [TaskState.RUNNING]
        nursery.cancel_scope.cancel()
    status = sim.status()
    assert (status["placed_seen"], status["starting"], status["running"]) == (40, 0, 40)
    assert sorted(c.node_id for c in sent) == [f"id{i}" for i in range(4)]  # one command per node
    assert {r.state for c in sent for r in c.reports} == {TaskState.RUNNING}
    for task in raft.store(VOTER).snapshot().tasks.values():
        assert task.started_at > 0 and task.address and task.container_id == task.task_id


async def test_a_start_shorter_than_the_hold_is_reported_once(autojump_clock: trio.abc.Clock) -> None:
    """A start that finishes within the agent's STARTING hold (1 s, agent/report_window.py): its RUNNING
    report replaces the STARTING one in the queue, so each node sends one command for its three tasks."""
    raft = MemoryRaft([VOTER], leader=VOTER)
    await _cluster(raft, nodes=4, replicas=12)
    sent: list[C.ReportTaskStates] = []
    replica = _spied_replica(raft, sent)
    sim = SimNodes(replica, [f"id{i}" for i in range(4)], start_s=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        await _place(raft)
        await trio.sleep(2.0)
        assert _states(raft) == [TaskState.RUNNING]
        nursery.cancel_scope.cancel()
    status = sim.status()
    assert (status["starting"], status["running"], status["failures"]) == (0, 12, 0)
    assert {r.state for c in sent for r in c.reports} == {TaskState.RUNNING}
    assert sorted(c.node_id for c in sent) == [f"id{i}" for i in range(4)]
