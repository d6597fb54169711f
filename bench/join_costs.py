"""CPU of the two per-join costs the ninth round cut, measured without a sandbox (diagnostic; needs root).

    python bench/join_costs.py cli TREE [--runs 20]      # one `p2porch join` CLI against a fake daemon
    python bench/join_costs.py apply TREE [--runs 200] [--peers 1]   # the overlay driver's apply of a join

``cli``: a unix socket answers every request at once with a join's answer; ``TREE/.venv/bin/python -m
p2porch join`` runs ``--runs`` times with TREE as its working directory (so that tree's code runs, see
"A pitfall for paired runs" in docs/performance.md) and the children's user+sys CPU is divided by the
runs. ``apply``: in an anonymous network namespace of its own (``unshare -n``, gone with the process), a
VXLAN device and TREE's ``NetlinkDriver``; each apply (FDB, neighbour, route of ``--peers`` new peers:
1 as a member's pass for one join, 19 as a joiner's first pass in a 20-node cluster) is called from a
pool of 4 worker threads, as trio's thread cache calls it. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

ANSWER = json.dumps({"cluster_id": "c1", "role": "replica", "node_id": "n2"}).encode()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fake_daemon(path: str) -> None:
    """Answers each request on ``path`` with a join's answer (one request per connection, as a CLI)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(16)

    def serve() -> None:
        while True:
            connection, _ = server.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                lengths = [
                    ln.split(b":")[1]
                    for ln in head.split(b"\r\n")
                    if ln.lower().startswith(b"content-length")
                ]
                while len(body) < int(lengths[0] if lengths else 0):
                    body += connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                    % len(ANSWER)
                    + ANSWER
                )

    threading.Thread(target=serve, daemon=True).start()


def cli_cost(tree: str, runs: int) -> dict[str, Any]:
    path = os.path.join(tempfile.mkdtemp(prefix="p2jc-", dir="/tmp"), "api.sock")
    fake_daemon(path)
    argv = [f"{tree}/.venv/bin/python", "-m", "p2porch", "-H", f"unix://{path}", "join", "10.0.0.1"]
    argv += ["--token", "P2PT-x"]
    first = subprocess.run(argv, cwd=tree, capture_output=True, text=True)
    if "joined cluster c1" not in first.stdout:
        raise SystemExit(f"the CLI did not join: {first.stdout} {first.stderr}")
    cpu, wall = children_cpu(), time.perf_counter()
    for _ in range(runs):
        subprocess.run(argv, cwd=tree, stdout=subprocess.DEVNULL, check=True)
    return {
        "cpu_ms_per_cli": round((children_cpu() - cpu) / runs * 1000, 1),
        "wall_ms_per_cli": round((time.perf_counter() - wall) / runs * 1000, 1),
    }


def apply_cost(tree: str, runs: int, peers: int) -> dict[str, Any]:
    if os.environ.get("P2PORCH_JOIN_COSTS_NETNS") != "1":  # in a namespace of our own, then measure there
        env = {**os.environ, "P2PORCH_JOIN_COSTS_NETNS": "1"}
        done = subprocess.run(
            ["unshare", "-n", sys.executable, *sys.argv], env=env, check=True, capture_output=True
        )
        return dict(json.loads(done.stdout))
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, tree)
    from p2porch.netoverlay.diff import AddFdb, SetNeighbour, SetRoute
    from p2porch.netoverlay.driver import NetlinkDriver

    for cmd in (
        "link add vx0 type vxlan id 42 dstport 4789",
        "link set vx0 up",
        "addr add 10.99.0.1/24 dev vx0",
    ):
        subprocess.run(["ip", *cmd.split()], check=True)
    driver = NetlinkDriver()
    driver.read("vx0")

    def ops(run: int) -> list[Any]:
        """``peers`` new peers' operations in diff_overlay's order (FDB entries, neighbours, routes)."""
        numbers = range(run * peers, (run + 1) * peers)
        macs = {i: f"02:00:00:{i // 65536:02x}:{i // 256 % 256:02x}:{i % 256:02x}" for i in numbers}
        nets = {i: f"10.{100 + i // 250}.{i % 250}" for i in numbers}
        return [
            *(AddFdb("vx0", macs[i], f"192.168.{i // 250}.{i % 250 + 1}") for i in numbers),
            *(SetNeighbour("vx0", f"{nets[i]}.1", macs[i]) for i in numbers),
            *(SetRoute("vx0", f"{nets[i]}.0/24", f"{nets[i]}.1") for i in numbers),
        ]

    own = resource.getrusage(resource.RUSAGE_SELF)
    with ThreadPoolExecutor(4) as pool:
        wall = time.perf_counter()
        for i in range(runs):
            pool.submit(driver.apply, ops(i)).result()
        wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    state = driver.read("vx0")
    driver.close()
    entries = runs * peers
    assert len(state.routes) >= entries and len(state.fdb) >= entries, "the operations did not land"
    assert len(state.neighbours) >= entries, "the operations did not land"
    cpu = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
    return {
        "driver": sys.modules[NetlinkDriver.__module__].__file__,
        "peers_per_apply": peers,
        "cpu_ms_per_apply": round(cpu / runs * 1000, 2),
        "cpu_ms_per_operation": round(cpu / (runs * peers * 3) * 1000, 3),
        "wall_ms_per_apply": round(wall / runs * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["cli", "apply"])
    parser.add_argument("tree", help="a checkout with its own .venv (main or a branch)")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--peers", type=int, default=1, help="apply: new peers per apply (3 operations each)")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree)
    if args.what == "cli":
        result = cli_cost(tree, args.runs or 20)
    else:
        result = apply_cost(tree, args.runs or 200, args.peers)
    print(json.dumps({"what": args.what, "tree": tree, "load": os.getloadavg()[0], **result}))


if __name__ == "__main__":
    main()
