"""Where a formation's daemon CPU went, by node phase, thread kind and frame (text).

    P2PORCH_CPU_PROFILE=/tmp/cpu/{pid}.txt python bench/joins.py --runs 20x8 ... > run.json
    python bench/cpu_phases.py run.json /tmp/cpu [PHASE] [TOP]

Reads the daemons' ``p2porch/cpu_sampler.py`` dumps (collapsed stacks with microseconds, in 0.5 s
wall-clock buckets) and the run's joiners (``phases.joiners``: each one's join window) and charges each
bucket of a node to a phase: ``joining`` (its own join's window), ``startup`` (the 1.5 s after its
``joined`` line: its first overlay pass, Docker network, firewall, DNS), ``member`` (later: its reaction
to the others' joins), ``member(n1)`` for the node that initialised the cluster; buckets outside the
formation are left out. Prints the CPU seconds per phase, then per phase and thread kind (trio, the
overlay's netlink and ipset threads, Raft, other workers) the frames with the most CPU on top of the
stack ("self") and anywhere on it ("incl"), in ms; ``PHASE`` keeps the phases starting with it.
"""

from __future__ import annotations

import collections
import glob
import json
import re
import sys
from pathlib import Path
from typing import Any

STARTUP_S = 1.5
BUCKET_S = 0.5
MIN_SHOWN_US = 20_000


def thread_kind(name: str) -> str:
    if name == "MainThread":
        return "trio"
    for prefix in ("netlink", "ipset", "raft"):
        if name.startswith(prefix):
            return prefix
    return "raft" if "RaftStore" in name else "worker"


def phase_of(bucket: float, joiner: dict[str, Any] | None) -> str:
    if joiner is None:
        return "member(n1)"
    start = joiner["t_joined"] - joiner["total"] - joiner.get("prepared", 0.0)
    if bucket + BUCKET_S <= start:
        return "before"
    if bucket < joiner["t_joined"]:
        return "joining"
    return "startup" if bucket < joiner["t_joined"] + STARTUP_S else "member"


def main() -> None:
    run_json, dump_dir = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3] if len(sys.argv) > 3 else ""
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    joiners = json.loads(Path(run_json).read_text())["runs"][0]["phases"]["joiners"]
    starts = [j["t_joined"] - j["total"] - j.get("prepared", 0.0) for j in joiners.values()]
    first, last = min(starts) - BUCKET_S, max(j["t_joined"] for j in joiners.values()) + BUCKET_S
    totals: dict[tuple[str, str], list[Any]] = collections.defaultdict(
        lambda: [0, collections.Counter(), collections.Counter()]
    )
    by_phase: collections.Counter[str] = collections.Counter()
    for path in glob.glob(f"{dump_dir}/*.txt"):
        lines = Path(path).read_text().splitlines()
        named = re.search(r"--name (\S+)", lines[0]) if lines else None
        if named is None:
            continue
        joiner = joiners.get(named.group(1))
        for line in lines[1:]:
            if line.startswith("#"):  # the sampler's "# dropped ... us" line
                continue
            key, _, us_text = line.rpartition(" ")
            bucket_text, _, rest = key.partition(" ")
            bucket, us = float(bucket_text[1:]), int(us_text)
            if not first <= bucket <= last:
                continue
            phase = phase_of(bucket, joiner)
            thread, _, stack = rest.partition(";")
            by_phase[phase] += us
            entry = totals[(phase, thread_kind(thread))]
            entry[0] += us
            frames = [re.sub(r" \(.*\)$", "", f) for f in stack.split(";")] if stack else []
            if frames:
                entry[1][frames[-1]] += us
            for frame in set(frames):
                entry[2][frame] += us
    print(
        f"formation {last - first:.1f} s; CPU-s by phase:",
        {k: round(v / 1e6, 3) for k, v in by_phase.items()},
    )
    for (phase, kind), (us, own, inclusive) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        if not phase.startswith(wanted) or us < MIN_SHOWN_US:
            continue
        print(f"== {phase} {kind}: {us / 1e6:.3f} CPU-s")
        print("  self:", "; ".join(f"{f} {c / 1e3:.0f}" for f, c in own.most_common(top)))
        print("  incl:", "; ".join(f"{f} {c / 1e3:.0f}" for f, c in inclusive.most_common(3 * top)))


if __name__ == "__main__":
    main()
