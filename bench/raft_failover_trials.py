"""Failover over many leader kills: kill -> new leader's first commit, and the election rounds it took (JSON).

    python bench/raft_failover_trials.py [--voters 3,5] [--trials 50] [--burners 0,2] [--out FILE]

Per voter count, two clusters of store processes (``python -m p2porch.raft.node`` on loopback) run
side by side, one per rule for the wait after a dropped leader connection
(``election_timeout.lost_leader_delay_s``, ``--lost-leader-delay``): ``width`` (the rule since the tenth
round: one draw over the election window's width) and ``window`` (minimum + width, the rule before it;
the eleventh round also ran a third, a slot of the width per survivor, since removed). Trials rotate
between them
(which goes first rotates too), so all see the same machine. A trial: SIGKILL of the leader by pid,
then every 10 ms each survivor's status until one leads in a later term, then a ``Noop`` proposed at it;
measured: kill -> a survivor reports itself leader, kill -> that write committed, and the rounds (new
term - old term: with pre-vote a term is spent only by a candidacy, so 2 or more means a split vote or
a lost candidacy) and whether every survivor was connected to every other voter at the kill
(``meshed``). The killed voter is restarted and caught up (and, unless ``--no-wait-connected``, dialled
again by every peer) before the next trial. With
``--burners`` K > 0 the same trials run again with K busy-looping processes of this benchmark's own
(killed by pid at the end). Prints one JSON object: per (voters, burners, rule) the trials and
p50/p90/p99/max, the split-vote rate (rounds >= 2), and the p50/p90 ratios against ``window``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2porch.raft import commands as C  # noqa: E402
from p2porch.testing.raftprocs import LocalCluster, NodeProc  # noqa: E402

RULES = ("width", "window")
POLL_S = 0.01


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return round(ordered[min(rank, len(ordered)) - 1], 3)


def distribution(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": round(max(values), 3) if values else None,
        "mean": round(sum(values) / len(values), 3) if values else None,
    }


@contextlib.contextmanager
def burners(count: int) -> Iterator[list[int]]:
    """``count`` busy-looping processes of our own (the load), killed by pid when done."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.wait()


def status(node: NodeProc) -> dict[str, Any] | None:
    try:
        return node.call(op="status")["status"]
    except (OSError, ConnectionError, ValueError, KeyError):
        return None


def is_meshed(view: dict[str, Any] | None) -> bool:
    """Whether a voter's status shows it connected to every other voter."""
    return view is not None and set(view["voters"]) <= {*view["connected_voters"], view["self_addr"]}


def wait_caught_up(cluster: LocalCluster, node: NodeProc, connected: bool, timeout_s: float = 30.0) -> None:
    """Until every live voter knows the same leader and ``node`` applied the leader's commit index; with
    ``connected`` also until every voter is connected to every other (a restarted voter reaches its
    leader first and a follower that must dial it again only on its next retry)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        views = [status(n) for n in cluster.voters()]
        leads = [v for v in views if v and v.get("is_leader")]
        own = status(node)
        same_leader = all(views) and len({v["leader"] for v in views if v}) == 1
        meshed = all(map(is_meshed, views))
        caught_up = (
            own and same_leader and len(leads) == 1 and own["last_applied"] >= leads[0]["commit_index"]
        )
        if caught_up and (meshed or not connected):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{node.name} did not catch up")


def trial(cluster: LocalCluster, seq: int, connected: bool, timeout_s: float = 20.0) -> dict[str, Any]:
    """Kill the leader, time its successor's first commit, restart the killed voter."""
    leader = cluster.leader()
    before = status(leader)
    if before is None or not before.get("is_leader"):
        raise RuntimeError("the leader did not answer")
    term0 = int(before["term"])
    survivors = [n for n in cluster.voters() if n is not leader and n.alive]
    meshed = all(is_meshed(status(n)) for n in survivors)
    noop = C.Noop(at=time.time(), tag=f"failover-{seq}").encode().hex()
    t0 = time.perf_counter()
    cluster.kill(leader)  # SIGKILL by pid
    out: dict[str, Any] = {"killed": leader.name, "term_before": term0, "meshed": meshed}
    deadline = t0 + timeout_s
    while time.perf_counter() < deadline and "commit_s" not in out:
        for node in survivors:
            view = status(node)
            if not view or not view.get("is_leader") or int(view["term"]) <= term0:
                continue
            out.setdefault("leader_s", round(time.perf_counter() - t0, 4))
            try:
                answer = node.call(op="propose", cmd=noop, timeout_s=5.0)
            except (OSError, ConnectionError, ValueError):
                continue
            if answer.get("ok") and answer["result"].get("ok"):
                out["commit_s"] = round(time.perf_counter() - t0, 4)
                after = status(node) or view
                out["term_after"] = int(after["term"])
                out["rounds"] = out["term_after"] - term0
                out["leader"] = node.name
                break
        else:
            time.sleep(POLL_S)
    out["terms_seen"] = sorted({int(v["term"]) for v in map(status, survivors) if v})
    cluster.start(leader)
    wait_caught_up(cluster, leader, connected)
    return out


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    done = [t for t in trials if "commit_s" in t]
    rounds = [t["rounds"] for t in done]
    return {
        "trials": len(trials),
        "failed": len(trials) - len(done),
        "commit_s": distribution([t["commit_s"] for t in done]),
        "leader_s": distribution([t["leader_s"] for t in done]),
        "rounds": {str(r): rounds.count(r) for r in sorted(set(rounds))},
        "split_rate": round(sum(1 for r in rounds if r >= 2) / len(rounds), 3) if rounds else None,
        # kills while every survivor was connected to every other, and the others (a restarted voter
        # that its peer had not dialled again yet)
        "meshed_commit_s": distribution([t["commit_s"] for t in done if t.get("meshed")]),
        "unmeshed_commit_s": distribution([t["commit_s"] for t in done if not t.get("meshed")]),
    }


def run_voters(
    root: Path,
    voters: int,
    trials: int,
    loads: list[int],
    seq: list[int],
    rules: tuple[str, ...],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """``trials`` kills per rule and per load, the rules' clusters side by side (``args``: the log
    level, whether to wait for every connection between trials)."""
    clusters: dict[str, LocalCluster] = {}
    out: dict[str, Any] = {}
    try:
        for rule in rules:
            cluster = LocalCluster(
                root / f"{rule}{voters}",
                voters=voters,
                extra_args=("--lost-leader-delay", rule, "--log-level", args.log_level),
                die_with_parent=True,
            )
            clusters[rule] = cluster
            cluster.start_all()
            cluster.leader(timeout_s=30)
        for load in loads:
            results: dict[str, list[dict[str, Any]]] = {rule: [] for rule in rules}
            loads_seen: list[float] = []
            with burners(load):
                for i in range(trials):
                    for rule in rules[i % len(rules) :] + rules[: i % len(rules)]:
                        seq[0] += 1
                        results[rule].append(trial(clusters[rule], seq[0], not args.no_wait_connected))
                    loads_seen.append(os.getloadavg()[0])
                    print(
                        json.dumps(
                            {
                                "voters": voters,
                                "burners": load,
                                "trial": i,
                                **{r: results[r][-1] for r in rules},
                            }
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
            summary = {rule: summarize(results[rule]) for rule in rules}
            ratio: dict[str, Any] = {}
            for rule in [r for r in rules if r != "window" and "window" in rules]:
                for q in ("p50", "p90"):
                    a, b = summary[rule]["commit_s"][q], summary["window"]["commit_s"][q]
                    ratio[f"{rule}_{q}"] = round(a / b, 3) if a and b else None
            out[f"burners={load}"] = {
                "load_avg": {"min": min(loads_seen, default=None), "max": max(loads_seen, default=None)},
                "summary": summary,
                "commit_ratio_over_window": ratio,
                "trials": results,
            }
    finally:
        for cluster in clusters.values():
            cluster.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voters", default="3,5")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--burners", default="0", help="comma-separated counts of busy loops (0: none)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rules", default=",".join(RULES), help="a subset of " + ",".join(RULES))
    parser.add_argument("--log-level", default="WARNING", help="the store processes' (INFO: every drop)")
    parser.add_argument(
        "--no-wait-connected",
        action="store_true",
        help="kill again once the restarted voter caught up, before every voter is connected to every other",
    )
    parser.add_argument("--keep", type=Path, default=None, help="run (and leave the logs) in this directory")
    args = parser.parse_args()
    rules = tuple(r for r in args.rules.split(",") if r)
    if not rules or set(rules) - set(RULES):
        parser.error(f"--rules: a subset of {','.join(RULES)}")
    loads = [int(x) for x in args.burners.split(",") if x]
    seq = [0]
    t0 = time.monotonic()
    result: dict[str, Any] = {"trials_per_arm": args.trials, "cpus": os.cpu_count(), "runs": {}}
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="p2el-fo-")))
        for voters in (int(v) for v in args.voters.split(",")):
            run = run_voters(root, voters, args.trials, loads, seq, rules, args)
            result["runs"][f"voters={voters}"] = run
    result["wall_s"] = round(time.monotonic() - t0, 1)
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
