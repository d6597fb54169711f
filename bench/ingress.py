"""Requests/s and p99 latency through the ingress mesh and a service VIP against direct access (root).

In one run, on one 3-node sandbox (``p2igb``, 10.46.0.0/24), a 2-replica busybox httpd service publishes
port 8090 (ingress, the default) and has a VIP. From inside node n1's network namespace, one client
process makes ``--requests`` HTTP GETs, each on a new TCP connection (the case NAT rules cost most: every
request is a new conntrack entry and a new backend pick), ``--concurrency`` at a time, against:
- direct: the task addresses themselves (round robin, over the overlay; the baseline),
- ingress: n1's own address, port 8090 (DNAT to either task, masqueraded when remote),
- vip: the service VIP, port 80.
Prints one JSON object: per path requests/s, p50/p99 ms and failures, and each path's ratio to direct.
Usage: python bench/ingress.py [--requests 3000] [--concurrency 8] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchkit import client, init_and_join, wait_until  # noqa: E402

from p2porch.sandbox.sandbox import Sandbox  # noqa: E402

IMAGE = "p2porch/busybox:latest"
SERVE = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"
CLIENT = r"""
import json, socket, sys, threading, time
targets = json.loads(sys.argv[1]); n = int(sys.argv[2]); conc = int(sys.argv[3])
lat, fail, lock, next_i = [], [0], threading.Lock(), [0]
req = b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n"
def worker():
    while True:
        with lock:
            i = next_i[0]; next_i[0] += 1
        if i >= n: return
        host, port = targets[i % len(targets)]
        t0 = time.perf_counter()
        try:
            s = socket.create_connection((host, port), timeout=5); s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            s.close()
            ok = b"hello" in data
        except OSError:
            ok = False
        dt = time.perf_counter() - t0
        with lock:
            (lat.append(dt) if ok else fail.__setitem__(0, fail[0] + 1))
t0 = time.perf_counter()
threads = [threading.Thread(target=worker) for _ in range(conc)]
[t.start() for t in threads]; [t.join() for t in threads]
wall = time.perf_counter() - t0
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None
rps = round(len(lat) / wall, 1)
print(json.dumps({"requests": n, "failed": fail[0], "rps": rps, "p50_ms": q(0.5), "p99_ms": q(0.99)}))
"""


def run_client(netns: str, targets: list[tuple[str, int]], requests: int, concurrency: int) -> dict:
    argv = ["ip", "netns", "exec", netns, sys.executable, "-c", CLIENT, json.dumps(targets)]
    out = subprocess.run([*argv, str(requests), str(concurrency)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    args = parser.parse_args()
    sb = Sandbox("p2igb", subnet="10.46.0.0/24")
    try:
        nodes = sb.up(3)
        init_and_join(sb, nodes)
        with client(nodes[0]) as api:
            wait_until(lambda: all(r["subnet"] for r in api.get("/nodes").json()), 90, "3 nodes", 0.5)
            spec = {
                "name": "bench",
                "image": IMAGE,
                "command": ["sh", "-c", SERVE],
                "replicas": 2,
                "publish": ["8090:80"],
                "stop_grace_period": "1s",
            }
            api.post("/services", json=spec).raise_for_status()

            def running():
                rows = api.get("/services/bench/tasks", params={"all": "false"}).json()
                return rows if len(rows) == 2 and all(r["state"] == "running" for r in rows) else None

            tasks = wait_until(running, 90, "2 running tasks", 0.5)
            vip = api.get("/services/bench").json()["vip"]
        n1 = nodes[0]
        direct = [(t["address"], 80) for t in tasks]
        paths = {"direct": direct, "ingress": [(n1.address, 8090)], "vip": [(vip, 80)]}
        for targets in paths.values():  # warm up (and wait until the rules exist on n1)
            wait_until(lambda t=targets: run_client(n1.netns, t, 20, 1)["failed"] == 0, 30, "warm", 0.5)
        results = {
            name: run_client(n1.netns, t, args.requests, args.concurrency) for name, t in paths.items()
        }
        base = results["direct"]["rps"] or 1
        out = {
            "bench": "ingress",
            "requests": args.requests,
            "concurrency": args.concurrency,
            "tasks": [{"node": t["node"], "address": t["address"]} for t in tasks],
            "client": f"{n1.name} namespace, a new TCP connection per request",
            "results": results,
            "ratio_to_direct": {k: round(v["rps"] / base, 3) for k, v in results.items()},
            "target": ">= 0.9 of direct",
        }
        print(json.dumps(out, indent=2))
    finally:
        if not args.keep:
            sb.down()


if __name__ == "__main__":
    main()
