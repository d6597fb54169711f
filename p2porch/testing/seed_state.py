"""The control-plane benchmark's end state built in one process, and the Raft dump that seeds voters with it
(pure builder plus one file writer; benchmark and tests only, never the daemon).

``bench/control_plane.py --seed-state`` skips the ~7 minutes of placing 100,000 tasks through the scheduler
and starts every store on this state instead. :func:`seed_commands` yields the commands a real
``--bulk`` run commits, in the order it commits them, each as the component that writes it makes it: the
joins (``AddNode`` + ``LeaseSubnet``, the benchmark's node records), a service per 100 replicas as the
service API makes it (``validate_spec`` of the benchmark's body, ``resolve_file_refs``, an 8-byte hex id),
the leader's epoch claim, its rounds (``round_commands`` of the pure round, fenced by the epoch) and each
node's agent's RUNNING reports as ``sim_nodes`` makes them (``status_report`` of a ``TaskReport`` with the
task's address and container id), batched as a bulk agent batches them. :func:`seed_state` applies them
with the real FSM. :func:`write_seed_dump` writes the result as the store's own dump format
(``dumps.encode_dump``) covering two no-op entries of term 0, so each store loads it as its snapshot at
start (pysyncobj loads a dump it finds before the journal) exactly as a voter restarted after a
compaction does; a new leader then has the state and the work a real one has. Never touches the network.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from ..agent.model import TaskReport
from ..control.secret_ops import resolve_file_refs
from ..control.service_ops import SERVICE_ID_BYTES, validate_spec
from ..leader.epoch import fenced
from ..leader.scheduling import plan_round, round_commands
from ..member.views import status_report
from ..model import Node, TaskState
from ..raft import commands as C
from ..raft import dumps
from ..raft.fsm import apply_command
from ..raft.state import ClusterState
from ..scheduler.orchestrator import Orchestrator
from .sim_nodes import BULK_MAX_BATCH, subnet_hosts

CLUSTER_ID = "cpbench"
CIDR, PREFIX = "10.0.0.0/8", 20  # room for 1,000+ nodes of up to 4,000 tasks each
REPLICAS_PER_SERVICE = 100
IMAGE = "p2porch/bench"
SEED_EPOCH = 1  # the first leader's term: every later leader claims a newer one, as after a real run
NO_OP = b"\x01"  # pysyncobj's _COMMAND_TYPE.NO_OP entry, the kind a new log starts with


def node_id(i: int) -> str:
    return f"id{i:05d}"


def bench_node(i: int) -> Node:
    """The benchmark's ``i``-th simulated node record (what ``init_and_join`` adds)."""
    return Node(node_id(i), f"n{i}", f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}", 7947, 7946)


def service_body(s: int) -> dict[str, object]:
    """The body the benchmark posts to ``/services`` for its ``s``-th service."""
    return {"name": f"svc{s}", "image": IMAGE, "replicas": REPLICAS_PER_SERVICE}


class _Applied:
    """The state the commands so far built (each applied with the real FSM as it is yielded)."""

    def __init__(self) -> None:
        self.state = ClusterState()

    def apply(self, cmd: C.Command | bytes) -> None:
        state, result, _ = apply_command(
            self.state, cmd if isinstance(cmd, C.Command) else C.decode_command(cmd)
        )
        if not result.get("ok"):
            raise RuntimeError(f"the seed's command was refused: {result}")
        self.state = state


def seed_commands(nodes: int, tasks: int, at: float, rng: random.Random, built: _Applied) -> Iterator[bytes]:
    """The encoded commands of a ``--bulk`` run of ``nodes`` x ``tasks`` (``built`` applies each)."""

    def out(cmd: C.Command | bytes) -> bytes:
        built.apply(cmd)
        return cmd if isinstance(cmd, bytes) else cmd.encode()

    yield out(C.InitCluster(at=at, cluster_id=CLUSTER_ID, cluster_cidr=CIDR, subnet_prefix_len=PREFIX))
    for i in range(nodes):
        yield out(C.AddNode(at=at, node=bench_node(i)))
        yield out(C.LeaseSubnet(at=at, node_id=node_id(i)))
    for s in range(tasks // REPLICAS_PER_SERVICE):
        spec = resolve_file_refs(built.state, validate_spec(service_body(s)))
        service_id = rng.randbytes(SERVICE_ID_BYTES).hex()
        yield out(C.CreateService(at=at, service_id=service_id, spec=spec))
    yield out(C.ClaimLeaderEpoch(at=at, epoch=SEED_EPOCH))
    orchestrator = Orchestrator(rng)
    while not (plan := plan_round(built.state, at, orchestrator)).empty:
        for cmd in round_commands(plan.items, at, built.state.version):
            yield out(fenced(cmd, SEED_EPOCH))
    by_node: dict[str, list[str]] = {}
    for task in built.state.tasks.values():
        if task.node_id is not None:
            by_node.setdefault(task.node_id, []).append(task.task_id)
    for nid in sorted(by_node):
        host = subnet_hosts(built.state.leases[nid].subnet)
        ids = by_node[nid]
        for first in range(0, len(ids), BULK_MAX_BATCH):
            reports = tuple(
                status_report(TaskReport(t, TaskState.RUNNING, at, container_id=t, address=host(t)))
                for t in ids[first : first + BULK_MAX_BATCH]
            )
            yield out(C.ReportTaskStates(at=at, node_id=nid, reports=reports))


def seed_state(nodes: int, tasks: int, at: float, seed: int = 1) -> ClusterState:
    """The state a ``nodes`` x ``tasks`` ``--bulk`` run ends with, every task RUNNING."""
    if tasks % REPLICAS_PER_SERVICE:
        raise ValueError(f"tasks: a multiple of {REPLICAS_PER_SERVICE} (services of 100 replicas)")
    built = _Applied()
    for _ in seed_commands(nodes, tasks, at, random.Random(seed), built):
        pass
    return built.state


def write_seed_dump(path: Path, state: ClusterState, voters: list[str]) -> int:
    """Write ``state`` as a store's dump at ``path`` (``voters``: the Raft configuration); its size."""
    head = {
        "format": 1,
        "last": [NO_OP, 2, 0],
        "prev": [NO_OP, 1, 0],
        "cluster": sorted(voters),
    }
    data = dumps.encode_dump(head, state.to_dict())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
