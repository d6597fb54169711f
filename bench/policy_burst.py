"""CPU and memory of one node's network-isolation plan per address change at a large state, in process
(JSON). Runs against whichever tree is first on ``PYTHONPATH`` (this file's own tree otherwise), so two
trees are compared with one script.

The state is ``bench/views_burst.py``'s (``--nodes`` x ``--services`` x ``--replicas`` through the real
FSM; ``--state FILE`` keeps it in a pickle both trees read). One node keeps, as its daemon does, the DNS
view's ``TaskNetworkIndex`` and a ``PolicyPlanner`` (given that index when the tree's planner takes one,
as ``member/netpolicy.py`` does on such a tree; else the planner keeps its own), and a ``PolicyFirewall``
over a runner that runs no process (an in-memory ``iptables -S``/``ipset``: what is timed is the
Python side of a pass). Then ``--bursts`` bursts each move ``--burst`` random tasks to a new address in
their node's lease (a restart elsewhere: an address goes, another comes). Printed per burst, CPU ms
(``time.process_time``): the DNS view's index update, the policy plan, the firewall pass, and their sum.
``--memory``: instead, MB traced (tracemalloc, after a collection) held by the DNS index, and added by the
planner with its first plan and the firewall's first pass; and the process's RSS.

    python bench/policy_burst.py --state /tmp/views-1000x100k.pickle --burst 1
    PYTHONPATH=/path/to/other/tree python bench/policy_burst.py --state /tmp/views-1000x100k.pickle --burst 1
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: another tree wins
sys.path.append(str(Path(__file__).resolve().parent))

# p2porch first, from PYTHONPATH's tree (views_burst puts this file's tree first on sys.path)
# isort: off
import p2porch  # noqa: E402
from p2porch.member.policy_planner import PolicyPlanner  # noqa: E402
from p2porch.member.task_networks import TaskNetworkIndex  # noqa: E402
from p2porch.model import TaskState  # noqa: E402
from p2porch.netoverlay.iptables_listing import Listing  # noqa: E402
from p2porch.netoverlay.policy_firewall import PolicyFirewall  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from views_burst import _load_or_build, address_of, report  # noqa: E402

# isort: on


class NoProcessRunner:
    """An ``IptablesRunner`` that keeps the filter table's lines in memory and runs nothing."""

    def __init__(self) -> None:
        self.lines: list[str] = ["-P FORWARD ACCEPT"]

    def ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[:1] == ("-I",):
            self.lines.insert(1, " ".join(["-A", args[1], *args[3:]]))
        return subprocess.CompletedProcess(["iptables"], 0, "", "")

    def ipset(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(["ipset"], 0, "", "")

    def restore(self, text: str) -> None:
        chains = [line[1:].split()[0] for line in text.splitlines() if line.startswith(":")]
        kept = [line for line in self.lines if not any(f" {c} " in f"{line} " for c in chains)]
        lines = text.splitlines()
        self.lines = [*kept, *(f"-N {c}" for c in chains), *(x for x in lines if x.startswith("-A "))]

    def forward_chain(self, listing: Listing | None = None) -> str:
        return "FORWARD"

    def listing(self, table: str) -> Listing:
        return Listing.parse("\n".join(self.lines))


def _rss_mb() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


def _planner(node_id: str, index: TaskNetworkIndex) -> tuple[PolicyPlanner, bool]:
    shares = "index" in inspect.signature(PolicyPlanner).parameters
    return (PolicyPlanner(node_id, index) if shares else PolicyPlanner(node_id)), shares  # type: ignore[call-arg]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--burst", type=int, default=1, help="tasks moved to a new address per burst")
    parser.add_argument("--node", default="n00000")
    parser.add_argument("--state", type=Path)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    chain = _load_or_build(args)
    gc.collect()
    out: dict[str, Any] = {
        "tree": str(Path(p2porch.__file__).resolve().parent.parent),
        "tasks": len(chain.state.tasks),
        "setup_s": round(time.monotonic() - started, 1),
    }
    if args.memory:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    index = TaskNetworkIndex()
    index.update(chain.state)  # the DNS view's
    if args.memory:
        gc.collect()
        with_index = tracemalloc.get_traced_memory()[0]
    planner, shares = _planner(args.node, index)
    firewall = PolicyFirewall(NoProcessRunner())
    plan = planner.plan(chain.state)
    assert plan is not None
    firewall.apply(plan, verify=True)
    out["shares_index"] = shares
    if args.memory:
        gc.collect()
        now = tracemalloc.get_traced_memory()[0]
        out["dns_index_mb"] = round((with_index - base) / 1e6, 1)
        out["policy_mb"] = round((now - with_index) / 1e6, 1)
        tracemalloc.stop()
        gc.collect()
        out |= _rss_mb()
        print(json.dumps(out))
        return
    rng = random.Random(7)
    used: dict[str, int] = {n: 3000 for n in chain.state.leases}  # above the build's addresses
    running = sorted(t.task_id for t in chain.state.tasks.values() if t.address)
    cpu: dict[str, list[float]] = {"dns_index": [], "plan": [], "apply": [], "sum": []}
    now = 5000.0
    for _ in range(args.bursts):
        picked = rng.sample(running, args.burst)

        def moved(task: Any, at: float = now) -> C.TaskStatusReport:
            address = address_of(chain.state, task.node_id, used)
            return C.TaskStatusReport(task.task_id, state=TaskState.RUNNING, state_at=at, address=address)

        report(chain, picked, now, moved)
        now += 1.0
        changes = chain.take()
        gc.collect()
        t0 = time.process_time()
        index.update(chain.state, changes)
        t1 = time.process_time()
        plan = planner.plan(chain.state, changes)
        t2 = time.process_time()
        assert plan is not None
        firewall.apply(plan)
        t3 = time.process_time()
        for key, took in (("dns_index", t1 - t0), ("plan", t2 - t1), ("apply", t3 - t2), ("sum", t3 - t0)):
            cpu[key].append(took * 1000)
    out["burst"] = args.burst
    for key, values in cpu.items():
        ordered = sorted(values)
        out[key] = {
            "median_ms": round(ordered[len(ordered) // 2], 2),
            "min_ms": round(ordered[0], 2),
            "max_ms": round(ordered[-1], 2),
        }
    out |= _rss_mb()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
