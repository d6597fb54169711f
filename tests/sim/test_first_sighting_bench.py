"""bench/first_sighting.py in short: every arm's joiner is seen by the leader, a lost greeting within the
leader's seed round (docs/gossip.md, "The first sighting and the never-seen grace")."""

from __future__ import annotations

from p2porch.member.gossip import GOSSIP_SEED_CHECK_S
from p2porch.testing.bench_module import load_bench


def test_every_joiner_is_seen_and_a_lost_greeting_within_the_seed_round():
    bench = load_bench("first_sighting")
    for seed in (1, 2):
        result = bench.sightings(60, seed)
        assert set(result) == set(bench.ARMS)
        assert all(took is not None for took in result.values()), result
        assert result["greeting_lost"] <= GOSSIP_SEED_CHECK_S + 1.0, result
