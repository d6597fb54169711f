"""Gossip presets over a two-site WAN (issue 20): 40 ms round trip and 1 % loss between the sites.

Measures, per preset, false deaths over a long quiet window with process pauses (a Python daemon
stalls) and how long a crashed node takes to be declared dead by everyone. The numbers are printed
(``-s``) and documented in docs/multi-site.md; the assertions are what the choice rests on.
Reproduce with P2PORCH_SIM_SEED.
"""

from __future__ import annotations

import os

import pytest

from p2porch.gossip.config import GossipConfig
from p2porch.testing.network import lognormal
from p2porch.testing.simulator import Simulator

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "20261203"))
SITES = {f"a{i}": "a" for i in range(3)} | {f"b{i}": "b" for i in range(3)}
ONE_WAY_S = 0.020
PRESETS = {"fast-lan": GossipConfig.fast_lan, "lan": GossipConfig.lan, "wan": GossipConfig.wan}


def two_sites(preset: str, seed: int) -> tuple[Simulator, list[str]]:
    wan = lambda src, dst: ONE_WAY_S if SITES[src] != SITES[dst] else 0.0  # noqa: E731
    sim = Simulator(seed, PRESETS[preset](), latency=lognormal(0.0003, 0.5, cap_s=0.01), extra_delay=wan)
    names = sorted(SITES)
    for name in names:
        sim.add_node(name, {"a": name})
    sim.bootstrap(names)
    for src in names:
        for dst in names:
            if SITES[src] != SITES[dst]:
                sim.drop(src, dst, 0.01)
    return sim, names


def measure(preset: str, seed: int, window_s: float) -> dict[str, float | int | None]:
    sim, names = two_sites(preset, seed)
    sim.run_for(30.0)
    start = len(sim.events_of("dead"))
    pauses = 0
    t = sim.now
    while t < sim.now + window_s:  # every node stalls 0.5 s once a minute, staggered
        for i, name in enumerate(names):
            sim.at(t + i * 10.0, lambda name=name: sim.pause(name, 0.5))
            pauses += 1
        t += 60.0
    sim.run_for(window_s)
    false_deaths = len(sim.events_of("dead")) - start
    victim = names[0]
    sim.kill(victim)
    killed = sim.now
    others = [n for n in names if n != victim]
    seen = sim.run_until(killed + 300.0, stop=lambda: sim.all_see(others, victim, "dead"), check_every_s=0.1)
    return {"false_deaths": false_deaths, "detect_s": round(sim.now - killed, 1) if seen else None}


@pytest.mark.parametrize("preset", ["fast-lan", "wan"])
def test_no_false_death_over_ten_simulated_minutes_at_40ms_and_1pct(preset):
    result = measure(preset, SEED, 600.0)
    print(f"two sites, 40 ms RTT, 1 % loss, {preset}: {result}")
    assert result["false_deaths"] == 0, f"{preset} seed={SEED}: {result}"
    assert result["detect_s"] is not None, f"{preset} seed={SEED}: a crash was never detected"


def test_wan_preset_detects_slower_than_fast_lan():
    fast, wan = measure("fast-lan", SEED, 60.0), measure("wan", SEED, 60.0)
    print(f"detection: fast-lan {fast['detect_s']} s, wan {wan['detect_s']} s")
    assert fast["detect_s"] is not None and wan["detect_s"] is not None
    assert fast["detect_s"] < wan["detect_s"]
