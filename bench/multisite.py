"""Two sites behind NAT: write latency, convergence and leader failover, WAN against LAN in one run (root).

The same topology twice, one after the other, on the sandbox ``p2mcb`` (WAN 10.43.0.0/24, sites
10.44/10.45, three hosts each, every packet between the sites through the NAT routers and the
userspace WAN hub): first with no delay or loss between the sites (``lan``), then with ``--wan-delay``
(round trip, default 40 ms) and ``--wan-loss`` (default 1 %). Per profile, ``--repeats`` times each:

- write latency: ``--writes`` sequential committed writes (a node label update) through a node of
  the leader's site and through a node of the other site (which forwards across the WAN);
- convergence: a 4-replica service spread over the regions, from the create until 4 tasks run and
  until every node's DNS answers ``tasks.NAME`` with exactly their addresses;
- failover: ``kill -9`` of the leader's daemon; until every survivor names the same new leader, and
  until a write succeeds (the daemon is restarted and the cluster settles between rounds).

Prints one JSON object: per profile and measurement the runs, median and max, and WAN / LAN ratios
of the medians. Usage: python bench/multisite.py [--repeats 2] [--writes 20] [--wan-delay 40]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchkit  # noqa: E402
from benchkit import P2PORCH, client  # noqa: E402

from p2porch.errors import SandboxError  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox, SandboxNode  # noqa: E402
from p2porch.sandbox.system import pid_alive, read_pid  # noqa: E402

NAME = "p2mcb"
WAN = "10.43.0.0/24"
IMAGE = "p2porch/busybox:latest"
SERVE = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"
POLL_S = 0.05
RETRY = (httpx.HTTPError, OSError, KeyError, StopIteration, SandboxError, subprocess.TimeoutExpired)


def get(node: SandboxNode, path: str, **params: str) -> Any:
    with client(node, timeout_s=10) as c:
        response = c.get(path, params=params)
        response.raise_for_status()
        return response.json()


def wait_until(predicate: Any, timeout_s: float, what: str, poll_s: float = POLL_S) -> Any:
    return benchkit.wait_until(predicate, timeout_s, what, poll_s, RETRY)


def rows(via: SandboxNode) -> dict[str, dict]:
    return {r["name"]: r for r in get(via, "/nodes")}


def leader_name(via: SandboxNode) -> str | None:
    return next((n for n, r in rows(via).items() if r["raft_role"] == "leader"), None)


def settled(nodes: list[SandboxNode]) -> bool:
    """Every node ready and alive, voters in both regions, every node at the leader's state version."""
    view = rows(nodes[0])
    regions = {r["labels"].get("region") for r in view.values() if r["raft_role"] in ("leader", "voter")}
    if len(view) != len(nodes) or regions != {"s1", "s2"}:
        return False
    if not all(r["status"] == "ready" and r["gossip"] == "alive" and r["subnet"] for r in view.values()):
        return False
    clusters = [get(n, "/status")["cluster"] for n in nodes]
    top = max(c["state_version"] for c in clusters)
    return all(c["has_quorum"] and c["state_version"] == top for c in clusters)


def form(sb: Sandbox, nodes: list[SandboxNode]) -> None:
    init = sb.exec("n1", [*P2PORCH, "--json", "init"], capture=True)
    if init.returncode != 0:
        raise RuntimeError(f"init failed: {init.stderr.decode()}")
    token = json.loads(init.stdout)["token"]
    for node in nodes[1:]:
        joined = sb.exec(
            node.name, [*P2PORCH, "join", f"{nodes[0].public_addr}:7948", "--token", token], capture=True
        )
        if joined.returncode != 0:
            raise RuntimeError(f"join of {node.name} failed: {joined.stderr.decode()}")
    wait_until(lambda: settled(nodes), 180, "a settled two-site cluster", 0.5)


def write(via: SandboxNode, target: str, value: str, timeout_s: float = 10.0) -> bool:
    with client(via, timeout_s=timeout_s) as c:
        response = c.post(f"/nodes/{target}/update", json={"label_add": {"bench": value}})
        return response.status_code == 200


def write_latencies(via: SandboxNode, target: str, count: int) -> list[float]:
    out = []
    for i in range(count):
        t0 = time.perf_counter()
        if not write(via, target, f"{via.name}-{i}"):
            raise RuntimeError(f"write {i} through {via.name} failed")
        out.append(time.perf_counter() - t0)
    return out


def dns_tasks(sb: Sandbox, node: SandboxNode, name: str) -> set[str]:
    argv = ["dig", "+time=1", "+tries=1", "+short", f"@{node.address}", f"tasks.{name}.p2p"]
    result = sb.exec(node.name, argv, capture=True)
    if result.returncode != 0:
        raise OSError(result.stdout.decode())
    return set(result.stdout.decode().split())


def convergence(sb: Sandbox, nodes: list[SandboxNode], name: str) -> dict[str, float]:
    spec = {
        "name": name,
        "image": IMAGE,
        "replicas": 4,
        "command": ["sh", "-c", SERVE],
        "placement_preferences": ["spread=node.labels.region"],
        "endpoint_mode": "dnsrr",
        "stop_grace_period": "1s",
    }
    t0 = time.monotonic()
    with client(nodes[0], timeout_s=10) as c:
        c.post("/services", json=spec).raise_for_status()

    def tasks_running() -> list[dict] | None:
        tasks = get(nodes[0], f"/services/{name}/tasks", all="false")
        ok = len(tasks) == 4 and all(t["state"] == "running" and t["address"] for t in tasks)
        return tasks if ok else None

    tasks = wait_until(tasks_running, 120, f"4 running {name} tasks")
    running_s = time.monotonic() - t0
    addresses = {t["address"] for t in tasks}
    wait_until(lambda: all(dns_tasks(sb, n, name) == addresses for n in nodes), 60, "DNS everywhere")
    dns_s = time.monotonic() - t0
    with client(nodes[0], timeout_s=10) as c:
        c.delete(f"/services/{name}").raise_for_status()
    return {"tasks_running_s": running_s, "dns_everywhere_s": dns_s}


def failover(sb: Sandbox, nodes: list[SandboxNode], round_no: int) -> dict[str, float]:
    old = wait_until(lambda: leader_name(nodes[0]), 30, "a leader")
    victim = sb.node_by_name(old)
    live = [n for n in nodes if n.name != old]
    pid = read_pid(victim.p2porch_pidfile)
    t0 = time.monotonic()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    try:

        def new_leader() -> bool:
            seen = {leader_name(n) for n in live}
            return len(seen) == 1 and None not in seen and old not in seen

        wait_until(new_leader, 60, "a new leader")
        leader_s = time.monotonic() - t0
        wait_until(lambda: write(live[-1], live[0].name, f"fo{round_no}", 3.0), 60, "a write")
        write_s = time.monotonic() - t0
    finally:
        if pid is not None and not pid_alive(pid):
            os.unlink(victim.p2porch_pidfile)
        sb.up()  # restarts the killed daemon only
        wait_until(lambda: settled(nodes), 180, "the cluster settled again", 0.5)
    return {"new_leader_s": leader_s, "write_ok_s": write_s}


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "runs": [round(v, 4) for v in values],
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
    }


def profile(delay_ms: float, loss_percent: float, repeats: int, writes: int) -> dict[str, Any]:
    sb = Sandbox(
        NAME, subnet=WAN, sites=2, nodes_per_site=3, wan_delay_ms=delay_ms, wan_loss_percent=loss_percent
    )
    try:
        nodes = sb.up()
        form(sb, nodes)
        leader = wait_until(lambda: leader_name(nodes[0]), 30, "a leader")
        region = rows(nodes[0])[leader]["labels"]["region"]
        near = next(
            n for n in nodes if n.name != leader and rows(nodes[0])[n.name]["labels"]["region"] == region
        )
        far = next(n for n in nodes if rows(nodes[0])[n.name]["labels"]["region"] != region)
        voters_there = sum(
            1
            for r in rows(nodes[0]).values()
            if r["raft_role"] in ("leader", "voter") and r["labels"]["region"] == region
        )  # 2: a commit needs no WAN round trip; 1: it does
        near_w = write_latencies(near, near.name, writes)
        far_w = write_latencies(far, far.name, writes)
        converge = [convergence(sb, nodes, f"conv{i}") for i in range(repeats)]
        failovers = [failover(sb, nodes, i) for i in range(repeats)]
        config = get(nodes[0], "/config")
    finally:
        sb.down()
    return {
        "wan_delay_ms": delay_ms,
        "wan_loss_percent": loss_percent,
        "gossip_preset": config.get("gossip", {}).get("preset"),
        "leader_site_voters": voters_there,
        "write_latency_s": {"leader_site": summary(near_w), "other_site": summary(far_w)},
        "convergence": {k: summary([c[k] for c in converge]) for k in converge[0]},
        "failover": {k: summary([f[k] for f in failovers]) for k in failovers[0]},
    }


def ratios(lan: dict[str, Any], wan: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for group in ("write_latency_s", "convergence", "failover"):
        for key, values in wan[group].items():
            base = lan[group][key]["median"]
            out[f"{group}.{key}"] = round(values["median"] / base, 2) if base else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--wan-delay", type=float, default=40.0, help="round trip between the sites, ms")
    parser.add_argument("--wan-loss", type=float, default=1.0, help="per frame and direction, percent")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        lan = profile(0.0, 0.0, args.repeats, args.writes)
        wan = profile(args.wan_delay, args.wan_loss, args.repeats, args.writes)
    except (RuntimeError, SandboxError, httpx.HTTPError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    result = {
        "sites": 2,
        "nodes_per_site": 3,
        "repeats": args.repeats,
        "writes": args.writes,
        "lan": lan,
        "wan": wan,
        "wan_over_lan_median": ratios(lan, wan),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
