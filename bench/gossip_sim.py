"""Simulated SWIM/Lifeguard benchmark: detection time, join rounds, traffic, false positives, sim speed.

Usage: python bench/gossip_sim.py [--quick] [--sizes 100,1000,5000] [--seed N]
Prints one JSON object. The baseline (same run, N=100) is the same protocol with Lifeguard's local
health awareness and dynamic suspicion turned off (plain SWIM suspicion with a fixed timeout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2porch.gossip.config import GossipConfig  # noqa: E402
from p2porch.gossip.swim import failure_detection_bound_s  # noqa: E402
from p2porch.testing.network import lognormal  # noqa: E402
from p2porch.testing.simulator import Simulator  # noqa: E402

META = {"a": "10.0.0.1", "v": "10.0.0.1", "l": {"zone": "zone-a", "disk": "ssd"}, "c": {"cpu_millis": 4000}}


def make(n: int, seed: int, config: GossipConfig) -> tuple[Simulator, list[str]]:
    sim = Simulator(seed, config, latency=lognormal(0.001, 0.5, cap_s=0.05))
    names = [f"n{i:05d}" for i in range(n)]
    for name in names:
        sim.add_node(name, dict(META, a=name))
    sim.bootstrap(names)
    return sim, names


def measure(n: int, seed: int, config: GossipConfig, *, quick: bool) -> dict[str, float | int | None]:
    t0 = time.perf_counter()
    sim, names = make(n, seed, config)
    setup_wall = time.perf_counter() - t0
    sim.run_for(5.0 if quick else 15.0)  # let start-up broadcasts drain

    # steady state traffic and simulator speed
    steady_s = 3.0 if quick else 10.0
    before = sim.traffic()
    t0 = time.perf_counter()
    sim.run_for(steady_s)
    steady_wall = time.perf_counter() - t0
    after = sim.traffic()
    per_node_s = n * steady_s

    # one node joins through one seed: time until every member sees it alive
    joiner = "joiner"
    sim.add_node(joiner, dict(META, a=joiner))
    sim.start(joiner, [names[0]])
    join_start = sim.now
    everyone = [*names, joiner]
    joined = sim.run_until(
        sim.now + 60.0, stop=lambda: sim.all_see(names, joiner, "alive"), check_every_s=0.05
    )
    join_s = sim.now - join_start if joined else None

    # crash detection
    victim = names[n // 2]
    sim.kill(victim)
    killed_at = sim.now
    others = [x for x in everyone if x != victim]
    bound = failure_detection_bound_s(config, n)
    first_suspect: list[float] = []
    sim.hooks.append(
        lambda now, who, e: first_suspect.append(now) if e.kind == "suspect" and e.name == victim else None
    )
    dead = sim.run_until(
        killed_at + bound, stop=lambda: sim.all_see(others, victim, "dead"), check_every_s=0.1
    )
    detect_all_s = sim.now - killed_at if dead else None
    sim.hooks.clear()

    # false positives under 10 % loss
    loss_s = 20.0 if quick else (60.0 if n <= 1000 else 20.0)
    dead_before = len(sim.events_of("dead"))
    suspect_before = len(sim.events_of("suspect"))
    sim.set_loss(0.10)
    t0 = time.perf_counter()
    sim.run_for(loss_s)
    loss_wall = time.perf_counter() - t0
    false_dead = [e for e in sim.events_of("dead")[dead_before:] if e[2].name != victim]
    return {
        "nodes": n,
        "setup_wall_s": round(setup_wall, 2),
        "detect_first_suspect_s": round(first_suspect[0] - killed_at, 3) if first_suspect else None,
        "detect_dead_everywhere_s": None if detect_all_s is None else round(detect_all_s, 3),
        "detect_bound_s": round(bound, 1),
        "join_converge_s": None if join_s is None else round(join_s, 3),
        "join_converge_gossip_rounds": None
        if join_s is None
        else round(join_s / config.gossip_interval_s, 1),
        "udp_msgs_per_node_s": round((after["messages"] - before["messages"]) / per_node_s, 2),
        "udp_packets_per_node_s": round((after["packets"] - before["packets"]) / per_node_s, 2),
        "udp_bytes_per_node_s": round((after["udp_bytes"] - before["udp_bytes"]) / per_node_s, 1),
        "udp_sealed_bytes_per_node_s": round(
            (after["udp_bytes"] - before["udp_bytes"] + 29 * (after["packets"] - before["packets"]))
            / per_node_s,
            1,
        ),
        "tcp_bytes_per_node_s_est": round((after["tcp_bytes"] - before["tcp_bytes"]) / per_node_s, 1),
        "loss10_sim_s": loss_s,
        "loss10_false_dead": len(false_dead),
        "loss10_suspicions": len(sim.events_of("suspect")) - suspect_before,
        "wall_s_per_sim_s_steady": round(steady_wall / steady_s, 3),
        "wall_s_per_sim_s_loss10": round(loss_wall / loss_s, 3),
    }


def baseline_config(config: GossipConfig) -> GossipConfig:
    """Plain SWIM suspicion: no local health awareness, fixed (minimum) suspicion timeout."""
    return dataclasses.replace(config, awareness_max_multiplier=1, suspicion_max_timeout_mult=1)


def loss_scenario(n: int, seed: int, config: GossipConfig, loss: float, seconds: float) -> dict[str, int]:
    sim, names = make(n, seed, config)
    sim.run_for(5.0)
    sim.set_loss(loss)
    # one slow node as well: pauses of 1.5 s every 10 s
    for i in range(int(seconds // 10)):
        sim.at(sim.now + 2.0 + 10.0 * i, lambda: sim.pause(names[1], 1.5))
    sim.run_for(seconds)
    return {"false_dead": len(sim.events_of("dead")), "suspicions": len(sim.events_of("suspect"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (smoke test)")
    parser.add_argument("--sizes", default=None, help="comma separated cluster sizes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(x) for x in (args.sizes or ("30" if args.quick else "100,1000,5000")).split(",")]
    config = GossipConfig.lan()
    results = []
    for n in sizes:
        started = time.perf_counter()
        results.append(measure(n, args.seed, config, quick=args.quick))
        print(f"N={n} done in {time.perf_counter() - started:.1f} s wall", file=sys.stderr)

    n_base = 30 if args.quick else 100
    seconds = 20.0 if args.quick else 120.0
    udp_only = dataclasses.replace(config, tcp_fallback_ping=False)
    lifeguard = loss_scenario(n_base, args.seed, udp_only, 0.25, seconds)
    plain = loss_scenario(n_base, args.seed, baseline_config(udp_only), 0.25, seconds)
    comparison = {
        "scenario": f"N={n_base}, UDP only, 25% loss, a node pausing 1.5 s every 10 s, {seconds:.0f} sim s",
        "lifeguard": lifeguard,
        "baseline_plain_swim": plain,
        "false_dead_ratio_lifeguard_over_baseline": (
            round(lifeguard["false_dead"] / plain["false_dead"], 3) if plain["false_dead"] else None
        ),
    }
    by_n = {r["nodes"]: r for r in results}
    summary = {}
    if 1000 in by_n:
        summary["target_1000_nodes_wall_le_1s_per_sim_s"] = by_n[1000]["wall_s_per_sim_s_steady"] <= 1.0
    print(
        json.dumps(
            {
                "benchmark": "gossip_sim",
                "config": "lan",
                "seed": args.seed,
                "results": results,
                "lifeguard_vs_plain_swim": comparison,
                "summary": summary,
                "see_also": "bench/gossip_real.py compares with serf on real namespaces",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
