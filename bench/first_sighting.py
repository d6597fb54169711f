"""How long the leader's gossip takes to first see a joined node, in the gossip simulator (WAN preset).

    python bench/first_sighting.py [--nodes 1000] [--seeds 30] [--seed 1]

The leader marks down a ready node its gossip has not seen for ``UNSEEN_DOWN_S`` (leader/unseen.py);
this measures how much of that grace a real node's first sighting uses. Per seed: ``--nodes`` members on
two sites (half each; 20 ms one-way between them, a lognormal LAN delay within, 1 % loss on every UDP
packet: harsher than a WAN, where only the cross-site packets lose) with ``GossipConfig.wan()``, booted
converged and run 10 s; the leader is the first member of site a. Then, 30 s apart, one node per arm
joins on site b: its gossip starts (time 0 here: its record committed just before; a joiner's member
services start within ~1 s of its admission) and greets the member that admitted it, a random member
other than the leader, another per arm (membership/manager.py ``_greet``). The arms:

- ``gossip``: the leader learns of it only through dissemination (the seed's piggybacked alive, probes,
  push/pull rounds), as if its seed round never ran;
- ``seed_round``: the leader's seed round also runs (member/gossip.py with member/seed_plan.py: a Raft
  member its gossip does not know is pushed/pulled with the plan's grace after its record committed,
  by the leader among the first; then every ``GOSSIP_SEED_CHECK_S`` while still unknown);
- ``greeting_lost``: the admitting member crashes as the joiner greets it (the greeting is lost), and
  only the leader's seed round finds the joiner (the joiner's own seed round, which would reach a live
  member at once, is left out: an upper bound).

The time is the leader's first gossip event about the joiner (its first sighting, any state). Prints one
JSON line: p50/p99/max per arm, the margin to ``UNSEEN_DOWN_S``, CPU seconds, the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2porch.gossip.config import GossipConfig  # noqa: E402
from p2porch.leader.unseen import UNSEEN_DOWN_S  # noqa: E402
from p2porch.member.gossip import GOSSIP_SEED_CHECK_S  # noqa: E402
from p2porch.member.seed_plan import SeedPlan  # noqa: E402
from p2porch.testing.network import lognormal  # noqa: E402
from p2porch.testing.simulator import Simulator  # noqa: E402

ONE_WAY_S = 0.020  # between the sites
LOSS = 0.01
WARM_S = 10.0
APART_S = 30.0  # between two arms' joins (each arm's sighting is within it, or None)
ARMS = ("gossip", "seed_round", "greeting_lost")


def seed_round(sim: Simulator, leader: str, joiner: str, seen: dict[str, float]) -> None:
    """One of the leader's seed rounds: a push/pull with the joiner while its gossip does not know it."""
    if joiner not in seen:
        sim.push_pull(leader, [joiner])


def sightings(nodes: int, seed: int) -> dict[str, float | None]:
    """Per arm, seconds from its joiner's gossip start to the leader's first event about it (None: not
    within ``APART_S``); the arms join one after the other into one simulated cluster."""
    site = {f"n{i:05d}": "a" if i < nodes // 2 else "b" for i in range(nodes)} | {arm: "b" for arm in ARMS}
    wan = lambda src, dst: ONE_WAY_S if site[src] != site[dst] else 0.0  # noqa: E731
    sim = Simulator(seed, GossipConfig.wan(), latency=lognormal(0.0003, 0.5, cap_s=0.01), extra_delay=wan)
    names = sorted(n for n in site if n not in ARMS)
    for name in names:
        sim.add_node(name, {"a": name})
    sim.bootstrap(names)
    sim.set_loss(LOSS)
    sim.run_for(WARM_S)
    leader = names[0]
    grace_s = SeedPlan.for_gossip(leader, GossipConfig.wan().gossip_interval_s).grace_s
    rng = random.Random(f"{seed}:first-sighting")
    seen: dict[str, float] = {}

    def on_event(now: float, who: str, event: Any) -> None:
        if who == leader and event.name in ARMS and event.name not in seen:
            seen[event.name] = now

    sim.hooks.append(on_event)
    result: dict[str, float | None] = {}
    for arm, admitter in zip(ARMS, rng.sample(names[1:], len(ARMS)), strict=True):
        sim.add_node(arm, {"a": arm})
        started = sim.now
        if arm == "greeting_lost":
            sim.kill(admitter)
        sim.start(arm, [admitter])
        if arm != "gossip":  # the leader's seed round, the plan's grace after the record (just before)
            check = started + grace_s
            while check < started + APART_S:
                sim.at(check, partial(seed_round, sim, leader, arm, seen))
                check += GOSSIP_SEED_CHECK_S
        sim.run_until(started + APART_S)
        result[arm] = round(seen[arm] - started, 3) if arm in seen else None
    return result


def summary(times: list[float | None]) -> dict[str, Any]:
    got = sorted(t for t in times if t is not None)
    never = len(times) - len(got)
    if not got:
        return {"never": never}
    p99 = got[min(len(got) - 1, round(0.99 * (len(got) - 1)))]
    return {
        "p50_s": round(statistics.median(got), 3),
        "p99_s": p99,
        "max_s": got[-1],
        "never": never,
        "margin_to_grace_s_p99": round(UNSEEN_DOWN_S - p99, 3),
        "margin_to_grace_s_max": round(UNSEEN_DOWN_S - got[-1], 3),
        "all_s": [None if t is None else t for t in times],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    seeds = range(args.seed, args.seed + args.seeds)
    runs = []
    for s in seeds:
        runs.append(sightings(args.nodes, s))
        print(f"seed {s}: {runs[-1]}", file=sys.stderr)
    arms = {arm: [run[arm] for run in runs] for arm in ARMS}
    print(
        json.dumps(
            {
                "benchmark": "first_sighting",
                "preset": "wan",
                "nodes": args.nodes,
                "seeds": [seeds.start, seeds.stop - 1],
                "grace_s": UNSEEN_DOWN_S,
                "seed_check_s": GOSSIP_SEED_CHECK_S,
                **{arm: summary(times) for arm, times in arms.items()},
                "cpu_s": round(time.process_time() - cpu, 1),
                "wall_s": round(time.perf_counter() - wall, 1),
                "load_before": load,
                "load_after": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
