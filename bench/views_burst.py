"""CPU of one node's member views per burst of task reports at a large state, in process (JSON).

The state is built as ``bench/leader_rounds.py`` builds it, through the real FSM: ``--nodes`` nodes
(each with a leased subnet), ``--services`` services of ``--replicas`` replicas created ``--per-round``
at a time, each round placed by the ``IncrementalPlanner`` and its placements reported running (with an
overlay address in the node's subnet) before the next round. Then one node's views are built as a
daemon keeps them (``testing/member_views.py``: ``ZoneBuilder`` with the default and scoped resolvers
through ``ClientScopes``, ``TrafficIndex``, ``PolicyPlanner``) and fed ``--bursts`` bursts of
``--burst`` random tasks' reports (grouped by node, at most 64 per ``ReportTaskStates``), once with
reports changing only the message and once toggling health (HEALTHY <-> UNHEALTHY: what answers
changes). Printed: CPU ms (``time.process_time``) per burst of each view (parts of ``dns``:
``dns_scopes``, building the scope data, ``member/netviews.py``'s ``DnsScopes``; ``dns_resolvers``, the
default and scoped resolvers' update, ``ClientScopes.update``), mean and max, the setup
times, and how many full (generation 2) garbage collections ran inside the timed views (each burst
starts after an untimed ``gc.collect()``; a full collection at this state costs ~1-2 s and lands in
whichever view allocates when it falls due).

``--memory`` (a separate run: tracing slows everything, so its CPU figures are not comparable) traces the
views' allocations with tracemalloc from their first build: MB held after each stage (the zone input,
the default resolver, the scoped resolvers, traffic, policy) and after the bursts, per task, and the
lines that hold the most. ``--state FILE`` keeps the built state in a pickle (written when missing, read
when present) so repeated runs skip the minutes it takes to build.

    python bench/views_burst.py                                  # 1,000 nodes x 100,000 tasks (minutes)
    python bench/views_burst.py --nodes 100 --services 100 --replicas 20 --bursts 3   # seconds
    python bench/views_burst.py --memory --state /tmp/views-1000x100k.pickle      # MB per view

``--linking N`` gives the first N services a Compose link (``svc<i+1>:peer``): each adds a DNS scope
(docs/dns.md, "Scoped to the querier's networks").
"""

from __future__ import annotations

import argparse
import copyreg
import gc
import json
import os
import pickle
import platform
import random
import sys
import time
import tracemalloc
import types
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2porch.dns.resolver import Resolver  # noqa: E402
from p2porch.dns.scope import ClientScopes  # noqa: E402
from p2porch.leader.incremental import IncrementalPlanner  # noqa: E402
from p2porch.leader.scheduling import round_commands  # noqa: E402
from p2porch.member.netviews import DnsScopes  # noqa: E402
from p2porch.member.policy_planner import PolicyPlanner  # noqa: E402
from p2porch.member.task_networks import TaskNetworkIndex  # noqa: E402
from p2porch.member.traffic_index import TrafficIndex  # noqa: E402
from p2porch.member.zone_builder import ZoneBuilder  # noqa: E402
from p2porch.model import Node, ServiceSpec, TaskHealth, TaskState  # noqa: E402
from p2porch.model.netrefs import ServiceLink  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import Change, apply_command  # noqa: E402
from p2porch.raft.state import EMPTY_STATE, ClusterState  # noqa: E402
from p2porch.scheduler import Orchestrator  # noqa: E402

REPORTS_PER_COMMAND = 64
FULL_GCS = [0]  # generation-2 collections that ran inside the views (the bench's own are not counted)


def _count_full_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info.get("generation") == 2 and TIMING[0]:
        FULL_GCS[0] += 1


TIMING = [False]


class Chain:
    """The committed state and the changes applied since the last ``take``."""

    def __init__(self) -> None:
        self.state: ClusterState = EMPTY_STATE
        self.changes: list[Change] = []

    def run(self, command: C.Command) -> None:
        self.state, result, changes = apply_command(self.state, command)
        if not result["ok"]:
            raise RuntimeError(f"{command.TAG} refused: {result}")
        self.changes += changes

    def take(self) -> list[Change]:
        out, self.changes = self.changes, []
        return out


def report(chain: Chain, task_ids: list[str], now: float, make: Any) -> None:
    """``make(task)`` -> a TaskStatusReport for each task, grouped by node, 64 per command."""
    by_node: dict[str, list[str]] = {}
    for task_id in task_ids:
        task = chain.state.tasks.get(task_id)
        if task is not None and task.node_id is not None:
            by_node.setdefault(task.node_id, []).append(task_id)
    for node_id, ids in by_node.items():
        for i in range(0, len(ids), REPORTS_PER_COMMAND):
            reports = tuple(make(chain.state.tasks[x]) for x in ids[i : i + REPORTS_PER_COMMAND])
            chain.run(C.ReportTaskStates(at=now, node_id=node_id, reports=reports))


def address_of(state: ClusterState, node_id: str, used: dict[str, int]) -> str:
    """The next free overlay address inside the node's leased subnet (a /20: up to 3,750 tasks)."""
    n = used[node_id] = used.get(node_id, 0) + 1
    base = state.leases[node_id].subnet.split("/")[0].split(".")
    return f"{base[0]}.{base[1]}.{int(base[2]) + n // 250}.{n % 250 + 2}"


def build(args: argparse.Namespace) -> Chain:
    chain = Chain()
    chain.run(C.InitCluster(at=1.0, cluster_id="c", cluster_cidr="10.0.0.0/8", subnet_prefix_len=20))
    for i in range(args.nodes):
        addr = f"192.168.{i // 250}.{i % 250 + 1}"
        chain.run(C.AddNode(at=1.0, node=Node(f"n{i:05d}", f"n{i}", addr, 7947, 7946)))
        chain.run(C.LeaseSubnet(at=1.0, node_id=f"n{i:05d}"))
    planner = IncrementalPlanner(Orchestrator(random.Random(1)))
    now, created, placed = 2.0, 0, []
    used: dict[str, int] = {}

    def running(task: Any) -> C.TaskStatusReport:
        address = address_of(chain.state, task.node_id, used)
        return C.TaskStatusReport(
            task.task_id, state=TaskState.RUNNING, state_at=now, address=address, health=TaskHealth.HEALTHY
        )

    while True:
        for _ in range(args.per_round):
            if created < args.services:
                links = (ServiceLink(f"svc{created + 1}", "peer"),) if created < args.linking else ()
                spec = ServiceSpec(name=f"svc{created}", image="bench", replicas=args.replicas, links=links)
                chain.run(C.CreateService(at=now, service_id=f"s{created}", spec=spec))
                created += 1
        report(chain, placed, now, running)
        plan = planner.plan(chain.state, now)
        placed = [i.task_id for i in plan.items if isinstance(i, C.TaskPut) and i.task.node_id is not None]
        for put in round_commands(plan.items, now, chain.state.version):
            chain.run(put)
        now += 0.25
        if created >= args.services and not plan.items and not placed:
            break
    chain.take()
    return chain


class _Marks:
    """With tracemalloc on: the MB each stage added to what is traced (after a collection)."""

    def __init__(self, stages: dict[str, float] | None) -> None:
        self.stages = stages
        self.last = _traced_mb() if stages is not None else 0.0

    def __call__(self, stage: str) -> None:
        if self.stages is not None:
            now = _traced_mb()
            self.stages[stage] = round(now - self.last, 1)
            self.last = now


def _traced_mb() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 1e6


class Views:
    """One node's views, updated as ``testing/member_views.py`` updates them (without the pacing)."""

    def __init__(self, state: ClusterState, node_id: str, stages: dict[str, float] | None = None) -> None:
        mark = _Marks(stages)
        self.zones = ZoneBuilder(("127.0.0.1",), node_id)
        zone = self.zones.update(state)
        mark("zone_builder")
        self.clients = TaskNetworkIndex()
        self.scopes = ClientScopes(Resolver(zone), partial(Resolver))
        mark("default_resolver")
        self.kept_scopes = DnsScopes()  # as member/dns.py keeps it
        self.scopes.update(
            zone, self.kept_scopes.update(state, self.clients.update(state), self.clients.addresses_of)
        )
        mark("scoped_resolvers")
        self.traffic = TrafficIndex(node_id)
        self.traffic.update(state)
        mark("traffic")
        self.policy = PolicyPlanner(node_id, self.clients)  # the DNS view's index, as member/netpolicy.py
        self.policy.plan(state)
        mark("netpolicy")

    def burst(self, state: ClusterState, changes: list[Change]) -> dict[str, float]:
        out = {}
        gc.collect()  # untimed: a burst starts with empty young generations (full collections counted)
        TIMING[0] = True
        t0 = time.process_time()
        zone = self.zones.update(state, changes)
        clients = self.clients.update(state, changes)
        ts = time.process_time()
        data = self.kept_scopes.update(state, clients, self.clients.addresses_of)  # as member/dns.py calls it
        out["dns_scopes"] = time.process_time() - ts
        tu = time.process_time()
        self.scopes.update(zone, data)
        t1 = time.process_time()
        out["dns_resolvers"] = t1 - tu
        self.traffic.update(state, frozenset(), changes)
        t2 = time.process_time()
        self.policy.plan(state, changes)
        t3 = time.process_time()
        TIMING[0] = False
        out["dns"], out["traffic"], out["netpolicy"] = t1 - t0, t2 - t1, t3 - t2
        return out


def bursts(chain: Chain, views: Views, args: argparse.Namespace, kind: str, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ids = sorted(chain.state.tasks)
    now = 1000.0
    cpu: dict[str, list[float]] = {
        "dns": [],
        "dns_scopes": [],
        "dns_resolvers": [],
        "traffic": [],
        "netpolicy": [],
    }
    full_gcs = FULL_GCS[0]
    for b in range(args.bursts):
        picked = rng.sample(ids, min(args.burst, len(ids)))

        def make(task: Any, b: int = b) -> C.TaskStatusReport:
            if kind == "message":
                return C.TaskStatusReport(task.task_id, message=f"burst {b} {kind}")
            health = TaskHealth.UNHEALTHY if task.health == TaskHealth.HEALTHY else TaskHealth.HEALTHY
            return C.TaskStatusReport(task.task_id, health=health)

        report(chain, picked, now, make)
        now += 1.0
        for view, took in views.burst(chain.state, chain.take()).items():
            cpu[view].append(took * 1000)
    return {"full_gcs_timed": FULL_GCS[0] - full_gcs} | {
        view: {
            "mean_ms": round(sum(v) / len(v), 1),
            "max_ms": round(max(v), 1),
            "per_burst_ms": [round(x, 1) for x in v],
        }
        for view, v in cpu.items()
    }


def _memory(stages: dict[str, float], tasks: int) -> dict[str, Any]:
    total = _traced_mb()
    return {
        "stages": stages,
        "total": round(total, 1),
        "bytes_per_task": {k: round(v * 1e6 / max(1, tasks)) for k, v in stages.items()},
        "top_lines": _top_lines(),
    }


def _top_lines(n: int = 25) -> list[str]:
    stats = tracemalloc.take_snapshot().statistics("lineno")
    return [f"{s.size / 1e6:.1f} MB {s.count} blocks {s.traceback[0]}" for s in stats[:n]]


def _load_or_build(args: argparse.Namespace) -> Chain:
    """The built state: ``args.state``'s for these sizes, else built and written there."""
    sizes = (args.nodes, args.services, args.replicas, args.per_round, args.linking)
    if args.state is not None and args.state.exists():
        with args.state.open("rb") as f:
            saved_sizes, state = pickle.load(f)
        if saved_sizes == sizes:
            chain = Chain()
            chain.state = state
            return chain
    chain = build(args)
    if args.state is not None:
        part = args.state.with_suffix(".part")
        with part.open("wb") as f:
            pickle.dump((sizes, chain.state), f, protocol=pickle.HIGHEST_PROTOCOL)
        part.replace(args.state)
    return chain


def _proxy(m: types.MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _read_only, (dict(m),)


def _read_only(d: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(d)


copyreg.pickle(types.MappingProxyType, _proxy)  # the state's read-only mappings (``--state``)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--per-round", type=int, default=50, help="services created between two rounds")
    parser.add_argument("--linking", type=int, default=0, help="services with a Compose link (to the next)")
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--burst", type=int, default=1024, help="task reports per burst")
    parser.add_argument("--node", default="n00000", help="the node whose views are measured")
    parser.add_argument("--memory", action="store_true", help="trace the views' allocations (MB, not CPU)")
    parser.add_argument("--state", type=Path, help="the built state, pickled: read if there, else written")
    args = parser.parse_args()
    gc.callbacks.append(_count_full_gc)
    t0 = time.process_time()
    chain = _load_or_build(args)
    built = time.process_time() - t0
    stages: dict[str, float] | None = None
    if args.memory:
        tracemalloc.start(1)
        stages = {}
    t0 = time.process_time()
    views = Views(chain.state, args.node, stages)
    first = time.process_time() - t0
    out: dict[str, Any] = {
        "benchmark": "views_burst",
        "python": platform.python_version(),
        "nodes": args.nodes,
        "tasks": len(chain.state.tasks),
        "running": sum(1 for t in chain.state.tasks.values() if t.state == TaskState.RUNNING),
        "burst": args.burst,
        "bursts": args.bursts,
        "build_state_cpu_s": round(built, 2),
        "first_views_cpu_s": round(first, 2),
        "scopes": views.scopes.scope_count,
        "linking": args.linking,
        "loadavg_start": os.getloadavg()[0],
    }
    if stages is not None:
        out["memory_mb"] = _memory(stages, len(chain.state.tasks))
    for kind, seed in (("message", 1), ("health", 2)):
        out[kind] = bursts(chain, views, args, kind, seed)
    if stages is not None:
        out["memory_mb"]["after_bursts_total"] = round(_traced_mb(), 1)
        out["memory_mb"]["top_lines_after_bursts"] = _top_lines()
        out["cpu_figures_traced"] = True  # tracemalloc was on: not comparable with an untraced run
    out["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
