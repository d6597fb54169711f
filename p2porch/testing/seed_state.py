"""The control-plane benchmark's end state built in one process, and the Raft dump that seeds voters with it
(pure builder plus one file writer; benchmark and tests only, never the daemon).

``bench/control_plane.py --seed-state`` skips the ~7 minutes of placing 100,000 tasks through the scheduler
and starts every store on this state instead. :func:`seed_state` applies, with the real FSM, the commands
a real ``--bulk`` run commits, in the order it commits them, each as the component that writes it makes
it: the joins (``AddNode`` + ``LeaseSubnet``, the benchmark's node records), a service per 100 replicas as
the service API makes it (``validate_spec`` of the benchmark's body, ``resolve_file_refs``, an 8-byte hex
id), the leader's epoch claim, its rounds (``round_commands`` of the pure round, fenced by the epoch) and
each node's agent's RUNNING reports as ``sim_nodes`` makes them (``status_report`` of a ``TaskReport``
with the task's address and container id), batched as a bulk agent batches them. :func:`write_seed_dump`
writes the result in the store's own dump format (``dumps.encode_dump``) covering two no-op entries of
term 0, so each store loads it as its snapshot at start (pysyncobj loads a dump it finds before the
journal) exactly as a voter restarted after a compaction does; a new leader then has the state and the
work a real one has. Never touches the network.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from ..agent.model import TaskReport
from ..control.secret_ops import resolve_file_refs
from ..control.service_ops import SERVICE_ID_BYTES, validate_spec
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


def _apply(state: ClusterState, cmd: C.Command) -> ClusterState:
    state, result, _ = apply_command(state, cmd)
    if not result.get("ok"):
        raise RuntimeError(f"the seed's command was refused: {result}")
    return state


def seed_state(nodes: int, tasks: int, at: float, seed: int = 1) -> ClusterState:
    """The state a ``nodes`` x ``tasks`` ``--bulk`` run ends with, every task RUNNING: its commands, in the
    order it commits them, applied with the real FSM (timestamps: ``at``; ids and tie-breaks: ``seed``)."""
    if tasks % REPLICAS_PER_SERVICE:
        raise ValueError(f"tasks: a multiple of {REPLICAS_PER_SERVICE} (services of 100 replicas)")
    rng = random.Random(seed)
    state = _apply(
        ClusterState(),
        C.InitCluster(at=at, cluster_id=CLUSTER_ID, cluster_cidr=CIDR, subnet_prefix_len=PREFIX),
    )
    for i in range(nodes):  # init_and_join's joins
        state = _apply(state, C.AddNode(at=at, node=bench_node(i)))
        state = _apply(state, C.LeaseSubnet(at=at, node_id=node_id(i)))
    for s in range(tasks // REPLICAS_PER_SERVICE):  # ServiceOps.create's command
        spec = resolve_file_refs(state, validate_spec(service_body(s)))
        service_id = rng.randbytes(SERVICE_ID_BYTES).hex()
        state = _apply(state, C.CreateService(at=at, service_id=service_id, spec=spec))
    state = _apply(state, C.ClaimLeaderEpoch(at=at, epoch=SEED_EPOCH))  # the leader loop's first write
    orchestrator = Orchestrator(rng)
    while not (plan := plan_round(state, at, orchestrator)).empty:  # its rounds, fenced as write_round does
        for cmd in round_commands(plan.items, at, state.version):
            state = _apply(state, dataclasses.replace(cmd, leader_epoch=SEED_EPOCH))
    by_node: dict[str, list[str]] = {}
    for task in state.tasks.values():
        if task.node_id is not None:
            by_node.setdefault(task.node_id, []).append(task.task_id)
    for nid in sorted(by_node):  # each node's bulk agent: RUNNING with address and container id
        host = subnet_hosts(state.leases[nid].subnet)
        ids = by_node[nid]
        for first in range(0, len(ids), BULK_MAX_BATCH):
            reports = tuple(
                status_report(TaskReport(t, TaskState.RUNNING, at, container_id=t, address=host(t)))
                for t in ids[first : first + BULK_MAX_BATCH]
            )
            state = _apply(state, C.ReportTaskStates(at=at, node_id=nid, reports=reports))
    return state


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
