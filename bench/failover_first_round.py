"""CPU of a new leader's first rounds and of a node's DNS zone per change, seeded state, in process (JSON).

The state is ``testing/seed_state.py``'s (``--nodes`` x ``--tasks``, every task RUNNING), the one
``bench/control_plane.py --seed-state`` starts its voters on. Measured with ``time.thread_time`` (CPU of
this thread), each after an untimed ``gc.collect()``:

- **leader**: a new leader's epoch claim, then the rounds of a fresh ``IncrementalPlanner`` as the leader
  loop runs them: the first (after a leader change), a service created right after it (the one the
  failover benchmark times: its round places its task), and the rounds after that until one plans
  nothing and leaves nothing to sweep (at most 40); then, for comparison, a full round (``plan_round``).
- **pauses**: those rounds in order (CPU, whether the leader writes for it, whether it is a takeover
  round: ``IncrementalPlanner.last_takeover``), replayed on a clock where a round takes its CPU times
  ``--wall-per-cpu`` (a new leader's planning thread shares the GIL with its Raft thread and views) and
  is followed by the loop's pause: main's rule (as long as it took, at most ``ROUND_PACE_MAX_S``, after
  every round) and ``round_pause`` (none after a takeover round that wrote nothing). The service is
  written during the first round, as in the failover benchmark: both plan it in the round after it.
- **dns**: one node's DNS views as a daemon keeps them (``ZoneBuilder``, the default ``Resolver`` and the
  scoped resolvers through ``ClientScopes``), built on the state, then the zone update for each committed
  change of the failover: the epoch claim, the service created, its task placed, its task running.

``--profile N`` adds cProfile's top N functions (by own time) of the first round and of the service's zone
update.

    python bench/failover_first_round.py                          # 1,000 nodes x 100,000 tasks (~1 min)
    python bench/failover_first_round.py --nodes 10 --tasks 200   # seconds
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2porch.agent.model import TaskReport  # noqa: E402
from p2porch.control.service_ops import validate_spec  # noqa: E402
from p2porch.dns.resolver import Resolver  # noqa: E402
from p2porch.dns.scope import ClientScopes  # noqa: E402
from p2porch.leader.incremental import IncrementalPlanner  # noqa: E402
from p2porch.leader.round_pause import ROUND_PACE_MAX_S, round_pause  # noqa: E402
from p2porch.leader.scheduling import plan_round, round_commands  # noqa: E402
from p2porch.member.netviews import dns_scopes  # noqa: E402
from p2porch.member.task_networks import TaskNetworkIndex  # noqa: E402
from p2porch.member.views import status_report  # noqa: E402
from p2porch.member.zone_builder import ZoneBuilder  # noqa: E402
from p2porch.model import TaskState  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import apply_command  # noqa: E402
from p2porch.raft.state import ClusterState  # noqa: E402
from p2porch.scheduler import Orchestrator  # noqa: E402
from p2porch.testing.seed_state import SEED_EPOCH, node_id, seed_state  # noqa: E402

AT = 1_000_000.0  # the seed's timestamps; the failover happens a minute later


def apply(state: ClusterState, cmd: C.Command) -> tuple[ClusterState, list[Any]]:
    state, result, changes = apply_command(state, cmd)
    if not result.get("ok"):
        raise RuntimeError(f"refused: {result}")
    return state, changes


def timed(fn: Any, *args: Any, profile: int = 0, into: dict[str, Any] | None = None, key: str = "") -> Any:
    gc.collect()
    prof = cProfile.Profile() if profile else None
    t0 = time.thread_time()
    if prof is not None:
        prof.enable()
    out = fn(*args)
    if prof is not None:
        prof.disable()
    cpu = time.thread_time() - t0
    if into is not None:
        into[key] = round(cpu, 4)
        if prof is not None:
            into[key + "_top"] = top(prof, profile)
    return out


def top(prof: cProfile.Profile, n: int) -> list[str]:
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{os.path.basename(file)}:{line}:{func}"))
    rows.sort(reverse=True)
    return [f"{tt:.3f} own {ct:.3f} cum {nc} calls {where}" for tt, ct, nc, where in rows[:n]]


def replay(rounds: list[dict[str, Any]], wall_per_cpu: float, rule: str) -> dict[str, Any]:
    """The loop's timeline of ``rounds`` (seconds from the first round's start): each round's wall
    (CPU x ``wall_per_cpu``) then its pause under ``rule`` ("main": as long as it took, at most
    ``ROUND_PACE_MAX_S``; "round_pause": this tree's rule)."""
    t, pauses, probe_planned = 0.0, [], None
    for r in rounds:
        took = r["cpu_s"] * wall_per_cpu
        t += took
        if r["round"] == "probe":
            probe_planned = t
        if rule == "main":
            pause = min(took, ROUND_PACE_MAX_S)
        else:
            pause = round_pause(took, wrote=r["writes"], takeover=bool(r["takeover"]))
        pauses.append(round(pause, 3))
        t += pause
    return {
        "probe_planned_s": round(probe_planned or 0.0, 3),
        "quiet_s": round(t - pauses[-1], 3),
        "pauses_s": pauses,
        "paused_s_total": round(sum(pauses[:-1]), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    ap.add_argument("--wall-per-cpu", type=float, nargs="+", default=[1.0, 3.0], metavar="X")
    args = ap.parse_args()
    sys.setrecursionlimit(100_000)
    t0 = time.process_time()
    seeded = seed_state(args.nodes, args.tasks, AT)
    out: dict[str, Any] = {
        "nodes": args.nodes,
        "tasks": len(seeded.tasks),
        "services": len(seeded.services),
        "seed_cpu_s": round(time.process_time() - t0, 2),
        "load_avg": os.getloadavg(),
    }
    now = AT + 60.0
    gc.collect()
    gc.freeze()  # the daemon freezes its state after a load (gc_freeze.py)

    # one node's DNS views on the seeded state, as a follower keeps them before the failover
    dns: dict[str, Any] = {}
    local = node_id(0)
    zones = ZoneBuilder(("127.0.0.1",), local)
    clients = TaskNetworkIndex()
    zone = timed(zones.update, seeded, into=dns, key="build_zone_data")
    resolver = timed(Resolver, zone, into=dns, key="build_resolver")
    scopes = ClientScopes(resolver, partial(Resolver))
    timed(scopes.update, zone, dns_scopes(seeded, clients.update(seeded)), into=dns, key="build_scopes")

    def rebuild(state: ClusterState, changes: list[Any]) -> None:
        scopes.update(zones.update(state, changes), dns_scopes(state, clients.update(state, changes)))

    # the new leader: its epoch claim, then its rounds
    leader: dict[str, Any] = {}
    state, changes = apply(seeded, C.ClaimLeaderEpoch(at=now, epoch=SEED_EPOCH + 1))
    timed(rebuild, state, changes, into=dns, key="epoch_claim")
    planner = IncrementalPlanner(Orchestrator(random.Random(1)))
    first = timed(planner.plan, state, now, profile=args.profile, into=leader, key="first_round")
    leader["first_round_items"] = len(first.items)
    leader["first_round_scope"] = planner.last_scope
    leader["first_round_full"] = planner.full_rounds
    leader["first_round_first"] = getattr(planner, "first_rounds", None)  # None: a tree without it
    rounds = [
        {
            "round": "first",
            "cpu_s": leader["first_round"],
            "writes": first.writes,
            "takeover": planner.last_takeover,
        }
    ]
    spec = validate_spec({"name": "probe", "image": "p2porch/bench", "replicas": 1})
    state, changes = apply(state, C.CreateService(at=now + 0.1, service_id="fa11over", spec=spec))
    timed(rebuild, state, changes, profile=args.profile, into=dns, key="create_service")
    plan = timed(planner.plan, state, now + 0.2, into=leader, key="probe_round")
    leader["probe_round_scope"] = planner.last_scope
    rounds.append(
        {
            "round": "probe",
            "cpu_s": leader["probe_round"],
            "writes": plan.writes,
            "takeover": planner.last_takeover,
        }
    )
    placed = [i.task for i in plan.items if isinstance(i, C.TaskPut) and i.task.service_id == "fa11over"]
    leader["probe_placed"] = sum(1 for t in placed if t.node_id is not None)
    for cmd in round_commands(plan.items, now + 0.2, state.version):
        state, changes = apply(state, C.PutTasks(at=cmd.at, items=cmd.items, leader_epoch=SEED_EPOCH + 1))
        timed(rebuild, state, changes, into=dns, key="task_placed")
    task = placed[0]
    report = status_report(
        TaskReport(task.task_id, TaskState.RUNNING, now + 0.5, container_id="c", address="")
    )
    state, changes = apply(
        state, C.ReportTaskStates(at=now + 0.5, node_id=task.node_id or "", reports=(report,))
    )
    timed(rebuild, state, changes, into=dns, key="task_running")
    compiler = resolver._compiler  # the default resolver's (a bench reads it; the daemon never does)
    dns["default_full_merges"] = getattr(compiler, "full_merges", None)
    dns["default_patched_merges"] = getattr(compiler, "patched_merges", None)
    dns["names"] = len(resolver.zone.names)
    dns["reverse_names"] = len(resolver.zone.reverse)
    later: dict[str, Any] = {}
    items, scopes = [], []
    for i in range(40):
        r = timed(planner.plan, state, now + 1.0 + i, into=later, key=str(i))
        rounds.append(
            {
                "round": f"later {i}",
                "cpu_s": later[str(i)],
                "writes": r.writes,
                "takeover": planner.last_takeover,
            }
        )
        items.append(len(r.items))
        scopes.append(planner.last_scope)
        if r.empty and not getattr(planner, "sweeping", False):
            break
    leader["later_rounds_cpu_s"] = list(later.values())
    leader["later_rounds_cpu_s_total"] = round(sum(later.values()), 4)
    leader["later_round_items"] = items
    leader["later_round_scopes"] = scopes
    timed(
        plan_round,
        state,
        now + 50.0,
        Orchestrator(random.Random(2)),
        into=leader,
        key="full_round_plan_round",
    )
    out["leader_cpu_s"] = leader
    out["rounds"] = rounds
    out["replay"] = {
        f"wall_per_cpu {x:g}": {rule: replay(rounds, x, rule) for rule in ("main", "round_pause")}
        for x in args.wall_per_cpu
    }
    out["dns_cpu_s"] = dns
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
