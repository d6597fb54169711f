"""Overlay benchmark: iperf3 throughput and time-to-reachable on a 3-node sandbox (needs root).

In one run, on the same namespaces:
- TCP throughput host-to-host over the veth underlay;
- container-to-container across nodes over p2porch's overlay (programmed by the reconciler);
- container-to-container over a VXLAN device built by hand with `ip` (the kernel's own limit), with
  p2porch's device removed meanwhile and the same containers, bridges and routes;
- seconds from a new peer being handed to the running reconcilers of the other nodes until its
  container answers pings from every other node's container.
Prints one JSON object. Usage: python bench/overlay.py [--seconds 5] [--repeats 3] [--join-trials 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import trio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from p2porch.netoverlay.dockernet import DockerNetwork  # noqa: E402
from p2porch.netoverlay.driver import NetlinkDriver  # noqa: E402
from p2porch.netoverlay.firewall import Firewall  # noqa: E402
from p2porch.netoverlay.plan import LocalNode, OverlayPeer, OverlaySettings, vtep_mac  # noqa: E402
from p2porch.netoverlay.reconciler import OverlayReconciler, run_overlay  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox  # noqa: E402

CLUSTER = "10.242.0.0/16"
SETTINGS = OverlaySettings(cluster_cidr=CLUSTER)
HAND_DEVICE = "p2ov-hx"
HAND_VNI = 4343
IMAGE = "p2porch/busybox:latest"


def sh(*argv: str, check: bool = True, timeout_s: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


class Bench:
    def __init__(self, nodes):
        self.nodes = {i + 1: n for i, n in enumerate(nodes)}
        self.pids: dict[int, int] = {}
        self.ips: dict[int, str] = {}

    def local(self, i: int) -> LocalNode:
        return LocalNode(f"n{i}", self.nodes[i].address, f"10.242.{i}.0/24")

    def peers(self, i: int, members) -> list[OverlayPeer]:
        return [OverlayPeer(f"n{j}", self.nodes[j].address, f"10.242.{j}.0/24") for j in members if j != i]

    def reconciler(self, i: int) -> OverlayReconciler:
        node = self.nodes[i]
        return OverlayReconciler(
            self.local(i),
            NetlinkDriver(node.netns),
            settings=SETTINGS,
            network=DockerNetwork(node.dockerd.host_url),
            firewall=Firewall(node.netns),
        )

    async def converge(self, i: int, members) -> None:
        rec = self.reconciler(i)
        try:
            await rec.reconcile(self.peers(i, members))
            await rec.ensure_host()
            await rec.ensure_bridge()  # the Docker network, made on first need (its containers here)
        finally:
            rec.close()

    def docker(self, i: int, *args: str) -> str:
        return sh("docker", "-H", self.nodes[i].dockerd.host_url, *args)

    def start_container(self, i: int) -> None:
        cid = self.docker(
            i,
            "run",
            "-d",
            "--name",
            f"p2ov-b{i}",
            "--network",
            SETTINGS.network_name,
            IMAGE,
            "sleep",
            "36000",
        ).strip()
        fmt = "{{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        pid, ip = self.docker(i, "inspect", "-f", fmt, cid).split()
        self.pids[i], self.ips[i] = int(pid), ip

    def host_ns(self, i: int) -> list[str]:
        return ["nsenter", f"--net=/var/run/netns/{self.nodes[i].netns}"]

    def container_ns(self, i: int) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.pids[i]}/ns/net"]

    def iperf(self, server_ns: list[str], client_ns: list[str], address: str, seconds: float) -> float:
        """Gbit/s received by a one-off iperf3 server."""
        server = subprocess.Popen(
            [*server_ns, "iperf3", "-s", "-1", "-p", "5201"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                proc = subprocess.run(
                    [*client_ns, "iperf3", "-c", address, "-p", "5201", "-t", str(seconds), "-J"],
                    capture_output=True,
                    text=True,
                    timeout=seconds + 30,
                    check=False,
                )
                data = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
                if proc.returncode == 0 and "sum_received" in data.get("end", {}):
                    return data["end"]["sum_received"]["bits_per_second"] / 1e9
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"iperf3 to {address} failed: {proc.stdout[-500:]} {proc.stderr[-500:]}"
                    )
                time.sleep(0.1)
        finally:
            server.kill()
            server.wait()

    def build_hand_vxlan(self, members) -> None:
        """The same L3 layout as p2porch's, typed by hand with ip and bridge (p2porch's device removed)."""
        for i in members:
            driver = NetlinkDriver(self.nodes[i].netns)
            driver.delete_link(SETTINGS.device)
            driver.close()
            ns = self.nodes[i].netns
            sh(
                "ip",
                "-n",
                ns,
                "link",
                "add",
                HAND_DEVICE,
                "address",
                vtep_mac(f"10.242.{i}.0/24"),
                "type",
                "vxlan",
                "id",
                str(HAND_VNI),
                "dstport",
                "4789",
                "local",
                self.nodes[i].address,
                "dev",
                "eth0",
                "nolearning",
            )
            sh("ip", "-n", ns, "addr", "add", f"10.242.{i}.0/32", "dev", HAND_DEVICE)
            sh("ip", "-n", ns, "link", "set", HAND_DEVICE, "up")
            for j in members:
                if j == i:
                    continue
                mac = vtep_mac(f"10.242.{j}.0/24")
                sh("bridge", "-n", ns, "fdb", "append", mac, "dev", HAND_DEVICE, "dst", self.nodes[j].address)
                sh(
                    "ip",
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    f"10.242.{j}.0",
                    "lladdr",
                    mac,
                    "dev",
                    HAND_DEVICE,
                    "nud",
                    "permanent",
                )
                sh(
                    "ip",
                    "-n",
                    ns,
                    "route",
                    "replace",
                    f"10.242.{j}.0/24",
                    "via",
                    f"10.242.{j}.0",
                    "dev",
                    HAND_DEVICE,
                    "onlink",
                )
            # forward through the hand device like through p2porch's
            for args in (
                ["-i", HAND_DEVICE, "-o", SETTINGS.bridge],
                ["-i", SETTINGS.bridge, "-o", HAND_DEVICE],
            ):
                sh(*self.host_ns(i), "iptables", "-w", "-I", "DOCKER-USER", *args, "-j", "ACCEPT")

    def remove_hand_vxlan(self, members) -> None:
        for i in members:
            sh("ip", "-n", self.nodes[i].netns, "link", "del", HAND_DEVICE, check=False)
            for args in (
                ["-i", HAND_DEVICE, "-o", SETTINGS.bridge],
                ["-i", SETTINGS.bridge, "-o", HAND_DEVICE],
            ):
                sh(
                    *self.host_ns(i),
                    "iptables",
                    "-w",
                    "-D",
                    "DOCKER-USER",
                    *args,
                    "-j",
                    "ACCEPT",
                    check=False,
                )

    def reachable(self, src: int, dst: int) -> bool:
        proc = subprocess.run(
            [*self.container_ns(src), "busybox", "ping", "-c", "1", "-W", "1", self.ips[dst]],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return proc.returncode == 0


async def throughput(bench: Bench, seconds: float, repeats: int) -> dict:
    results: dict[str, list[float]] = {"underlay": [], "p2porch": [], "hand_vxlan": []}
    pair_ratios = []
    for k in range(repeats):
        results["underlay"].append(
            bench.iperf(bench.host_ns(2), bench.host_ns(1), bench.nodes[2].address, seconds)
        )
        # alternate which overlay goes first so a drifting machine load does not favour one of them
        order = ("p2porch", "hand_vxlan") if k % 2 == 0 else ("hand_vxlan", "p2porch")
        for path in order:
            if path == "p2porch":
                for i in (1, 2):
                    await bench.converge(i, (1, 2, 3))
            else:
                bench.build_hand_vxlan((1, 2))
            try:
                results[path].append(
                    bench.iperf(bench.container_ns(2), bench.container_ns(1), bench.ips[2], seconds)
                )
            finally:
                if path == "hand_vxlan":
                    bench.remove_hand_vxlan((1, 2))
        pair_ratios.append(results["p2porch"][-1] / results["hand_vxlan"][-1])
    for i in (1, 2):
        await bench.converge(i, (1, 2, 3))
    mean = {k: statistics.mean(v) for k, v in results.items()}
    return {
        "gbit_s": {k: round(v, 3) for k, v in mean.items()},
        "samples_gbit_s": {k: [round(x, 3) for x in v] for k, v in results.items()},
        "ratio_p2porch_to_hand_vxlan": round(mean["p2porch"] / mean["hand_vxlan"], 3),
        "ratio_p2porch_to_hand_vxlan_per_pair": [round(r, 3) for r in pair_ratios],
        "ratio_p2porch_to_underlay": round(mean["p2porch"] / mean["underlay"], 3),
        "ratio_hand_vxlan_to_underlay": round(mean["hand_vxlan"] / mean["underlay"], 3),
    }


PROBE = """
import socket, sys, time
print("ready", flush=True)
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.02).close()
        break
    except OSError:
        time.sleep(0.005)
print(time.monotonic(), flush=True)
"""
PROBE_PORT = 7000


async def time_to_reachable(bench: Bench, trials: int) -> dict:
    """n3 is handed to the running reconcilers of n1 and n2; until both containers connect to n3's.

    A prober process in each source container retries a TCP connect (20 ms timeout) every 5 ms and
    prints CLOCK_MONOTONIC (shared by all processes) when it succeeds.
    """
    members = [1, 2]
    samples = []
    bench.docker(3, "exec", "-d", "p2ov-b3", "nc", "-ll", "-p", str(PROBE_PORT), "-e", "true")
    async with trio.open_nursery() as nursery:
        channels = {}
        for i in (1, 2):
            send, recv = trio.open_memory_channel[object](10)
            channels[i] = send
            nursery.start_soon(
                lambda i=i, recv=recv: run_overlay(
                    bench.local(i),
                    lambda: bench.peers(i, members),
                    NetlinkDriver(bench.nodes[i].netns),
                    settings=SETTINGS,
                    network=DockerNetwork(bench.nodes[i].dockerd.host_url),
                    firewall=Firewall(bench.nodes[i].netns),
                    changes=recv,
                    resync_interval_s=30.0,
                )
            )
        for _ in range(trials):
            if 3 in members:
                members.remove(3)
            for send in channels.values():
                await send.send("n3 left")
            with trio.fail_after(10):
                for i in (1, 2):
                    while "10.242.3.0/24" in sh(
                        "ip", "-n", bench.nodes[i].netns, "route", "show", "dev", SETTINGS.device
                    ):
                        await trio.sleep(0.02)
            probers = []
            try:
                for i in (1, 2):
                    proc = subprocess.Popen(
                        [*bench.container_ns(i), sys.executable, "-c", PROBE, bench.ips[3], str(PROBE_PORT)],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    probers.append(proc)
                    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
                await trio.sleep(0.2)  # the probers are failing against the missing route by now
                start = time.monotonic()
                members.append(3)
                for send in channels.values():
                    await send.send("n3 joined")
                with trio.fail_after(30):
                    outs = [await trio.to_thread.run_sync(p.communicate) for p in probers]
                samples.append(max(float(out.strip()) for out, _ in outs) - start)
            finally:
                for proc in probers:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
        nursery.cancel_scope.cancel()
    return {
        "seconds_median": round(statistics.median(samples), 3),
        "seconds_max": round(max(samples), 3),
        "samples_s": [round(s, 3) for s in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="iperf3 duration per sample")
    parser.add_argument("--repeats", type=int, default=3, help="samples per path (interleaved)")
    parser.add_argument("--join-trials", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(json.dumps({"error": "needs root"}))
        return 2
    sandbox = Sandbox("p2ovb", subnet="10.81.0.0/24", start_daemons=False)
    try:
        bench = Bench(sandbox.up(3))
        for i in (1, 2, 3):
            sh("ip", "-n", bench.nodes[i].netns, "route", "replace", "unreachable", CLUSTER)
            trio.run(bench.converge, i, (1, 2, 3))
            bench.start_container(i)
        started = time.monotonic()
        result = {
            "bench": "overlay",
            "params": {
                "iperf_seconds": args.seconds,
                "repeats": args.repeats,
                "join_trials": args.join_trials,
            },
            "throughput": trio.run(throughput, bench, args.seconds, args.repeats),
            "time_to_reachable": trio.run(time_to_reachable, bench, args.join_trials),
        }
        tp, ttr = result["throughput"], result["time_to_reachable"]
        result["targets"] = {
            "ratio_p2porch_to_hand_vxlan_min": 0.95,
            "ratio_met": tp["ratio_p2porch_to_hand_vxlan"] >= 0.95,
            "reachable_within_s": 2.0,
            "reachable_met": ttr["seconds_max"] <= 2.0,
        }
        result["wall_s"] = round(time.monotonic() - started, 1)
        print(json.dumps(result))
        return 0
    finally:
        sandbox.down()


if __name__ == "__main__":
    raise SystemExit(main())
