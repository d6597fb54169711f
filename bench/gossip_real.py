"""Real-network gossip benchmark: p2porch gossip vs HashiCorp Serf (default LAN profile), same namespaces.

Needs root, iproute2 and the Debian ``serf`` package. Creates network namespaces ``p2gs-n<i>`` joined by a
bridge ``p2gs-br`` (10.213.0.0/24), runs N agents of each system in them (one system at a time), and
measures join convergence, bytes per node per second on the wire (veth counters, headers included) and
crash (kill -9) detection time. Everything it creates is removed at exit, also on failure.

Usage: python bench/gossip_real.py [--nodes 10] [--steady-s 20] [--kills 3]
Prints one JSON object with both systems and the ratios p2porch / serf.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from p2porch.testing.runsecrets import RunSecrets, new_secret  # noqa: E402

PREFIX = "p2gs"
BRIDGE = f"{PREFIX}-br"
SUBNET = "10.213.0"
PORT = 7946


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def ns_name(i: int, tag: str = "n") -> str:
    return f"{PREFIX}-{tag}{i}"


def ip_of(i: int, subnet: str = SUBNET) -> str:
    return f"{subnet}.{i + 1}"


@contextlib.contextmanager
def namespaces(n: int, tag: str = "n", bridge: str = BRIDGE, subnet: str = SUBNET) -> Iterator[None]:
    """``n`` namespaces ``p2gs-<tag><i>`` (address ``<subnet>.<i+1>``) on one bridge; removed on exit."""
    created: list[str] = []
    try:
        sh("ip", "link", "add", bridge, "type", "bridge")
        created.append("bridge")
        sh("ip", "link", "set", bridge, "up")
        for i in range(n):
            ns = ns_name(i, tag)
            sh("ip", "netns", "add", ns)
            created.append(ns)
            host, peer = f"{ns}h", f"{ns}p"
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "link", "set", host, "master", bridge)
            sh("ip", "link", "set", host, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip_of(i, subnet)}/24", "dev", peer)
            sh("ip", "-n", ns, "link", "set", peer, "up")
        yield
    finally:
        for name in reversed(created):
            if name == "bridge":
                sh("ip", "link", "del", bridge, check=False)
            else:
                sh("ip", "netns", "del", name, check=False)
                sh("ip", "link", "del", f"{name}h", check=False)


def tx_rx_bytes(n: int) -> int:
    """Bytes all nodes sent (veth host side rx = what the namespace transmitted)."""
    total = 0
    for i in range(n):
        total += int(Path(f"/sys/class/net/{ns_name(i)}h/statistics/rx_bytes").read_text())
    return total


def wait_until(pred: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if pred():
            return time.monotonic() - start
        time.sleep(poll_s)
    return None


class System:
    name = ""

    def __init__(self, n: int, workdir: Path, run_secrets: RunSecrets) -> None:
        self.n = n
        self.workdir = workdir
        self.run_secrets = run_secrets
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, i: int) -> None:
        raise NotImplementedError

    def states(self, i: int) -> dict[str, str]:
        raise NotImplementedError

    def dead_word(self) -> str:
        raise NotImplementedError

    def kill(self, i: int) -> None:
        proc = self.procs.pop(i)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs.clear()

    def all_see(self, observers: list[int], subject: int, state: str) -> bool:
        return all(self.states(i).get(f"n{subject}") == state for i in observers)

    def converged(self, alive: list[int]) -> bool:
        return all(all(self.states(i).get(f"n{j}") == "alive" for j in alive) for i in alive)


class Serf(System):
    name = "serf"

    def __init__(self, n: int, workdir: Path, run_secrets: RunSecrets) -> None:
        super().__init__(n, workdir, run_secrets)
        # serf/memberlist AES-GCM, as ours is always encrypted: a per-run key in a 0600 config file
        key = base64.b64encode(new_secret(32)).decode()
        self.config_file = run_secrets.write("serf.json", json.dumps({"encrypt_key": key}).encode())

    def start(self, i: int) -> None:
        cmd = [
            "ip", "netns", "exec", ns_name(i), "serf", "agent", f"-node=n{i}",
            f"-bind={ip_of(i)}:{PORT}", "-rpc-addr=127.0.0.1:7373", "-profile=lan", "-log-level=err",
            f"-config-file={self.config_file}",
        ]  # fmt: skip
        if i:
            cmd.append(f"-join={ip_of(0)}:{PORT}")
        self.procs[i] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def states(self, i: int) -> dict[str, str]:
        out = sh(
            "ip", "netns", "exec", ns_name(i), "serf", "members", "-format=json", "-rpc-addr=127.0.0.1:7373",
            check=False,
        )  # fmt: skip
        if out.returncode:
            return {}
        return {m["name"]: m["status"] for m in json.loads(out.stdout).get("members", [])}

    def dead_word(self) -> str:
        return "failed"


class P2porch(System):
    name = "p2porch"

    def __init__(self, n: int, workdir: Path, run_secrets: RunSecrets) -> None:
        super().__init__(n, workdir, run_secrets)
        self.secret_file = run_secrets.write("gossip-secret")

    def start(self, i: int) -> None:
        cmd = [
            "ip", "netns", "exec", ns_name(i), sys.executable, str(Path(__file__).resolve()), "--agent",
            "--name", f"n{i}", "--host", ip_of(i), "--status", str(self.workdir / f"n{i}.json"),
            "--secret-file", str(self.secret_file),
        ]  # fmt: skip
        if i:
            cmd += ["--seed", f"{ip_of(0)}:{PORT}"]
        self.procs[i] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def states(self, i: int) -> dict[str, str]:
        try:
            data = json.loads((self.workdir / f"n{i}.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v["state"]) for k, v in data.items()}

    def dead_word(self) -> str:
        return "dead"


def victims(n: int, kills: int) -> list[int]:
    """Nodes to crash: spread over the cluster, never the seed (node 0)."""
    return [1 + (i * (n - 1)) // kills for i in range(kills)]


def run_system(system: System, steady_s: float, kills: int) -> dict[str, object]:
    n = system.n
    everyone = list(range(n))
    try:
        system.start(0)
        time.sleep(0.5)
        started = time.monotonic()
        for i in everyone[1:-1]:
            system.start(i)
        ok = wait_until(lambda: system.converged(everyone[:-1]), 60.0, 0.2)
        cluster_s = time.monotonic() - started if ok is not None else None
        # the measured join: one more node, timed from when its agent answers (excludes process start-up)
        last = everyone[-1]
        system.start(last)
        wait_until(lambda: bool(system.states(last)), 30.0, 0.01)
        ready = time.monotonic()
        ok = wait_until(lambda: system.all_see(everyone, last, "alive"), 60.0, 0.02)
        join_s = time.monotonic() - ready if ok is not None else None
        time.sleep(5.0)  # let join traffic settle
        before = tx_rx_bytes(n)
        time.sleep(steady_s)
        bytes_per_node_s = (tx_rx_bytes(n) - before) / (n * steady_s)
        detections: list[float | None] = []
        alive = list(everyone)
        for victim in victims(n, kills):  # one crash at a time, each after the previous was detected
            system.kill(victim)
            alive.remove(victim)
            detections.append(
                wait_until(lambda v=victim: system.all_see(alive, v, system.dead_word()), 120.0, 0.1)
            )
        found = [d for d in detections if d is not None]
        return {
            "cluster_start_converge_s": None if cluster_s is None else round(cluster_s, 2),
            "join_converge_s": None if join_s is None else round(join_s, 3),
            "bytes_per_node_s": round(bytes_per_node_s, 1),
            "detect_dead_everywhere_s": [None if d is None else round(d, 2) for d in detections],
            "detect_dead_everywhere_mean_s": round(sum(found) / len(found), 2) if found else None,
            "undetected_kills": len(detections) - len(found),
        }
    finally:
        system.stop_all()


def agent(args: argparse.Namespace) -> None:
    import trio

    from p2porch.gossip.config import GossipConfig
    from p2porch.gossip.keyring import Keyring
    from p2porch.gossip.messages import NodeMeta
    from p2porch.gossip.runner import serve_gossip

    async def main() -> None:
        config = GossipConfig.lan(node_name=args.name, advertise_host=args.host, port=PORT)
        keyring = Keyring.from_secret(Path(args.secret_file).read_bytes())
        meta = NodeMeta(advertise_addr=args.host, vtep_addr=args.host)
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(
                serve_gossip, config, keyring, meta, [args.seed] if args.seed else [], lambda e: None
            )
            status = Path(args.status)
            while True:
                tmp = status.with_suffix(".tmp")
                members = handle.members().items()
                tmp.write_text(json.dumps({k: {"state": v.state, "inc": v.incarnation} for k, v in members}))
                tmp.replace(status)
                await trio.sleep(0.02)

    trio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--steady-s", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=3, help="crashes to time, one after another")
    parser.add_argument("--agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--name")
    parser.add_argument("--host")
    parser.add_argument("--seed")
    parser.add_argument("--status")
    parser.add_argument("--secret-file", help="file (0600) holding the gossip secret")
    args = parser.parse_args()
    if args.agent:
        agent(args)
        return
    if os.geteuid() != 0 or shutil.which("serf") is None:
        print(json.dumps({"benchmark": "gossip_real", "skipped": "needs root and the serf binary"}))
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-bench-"))
    try:
        with namespaces(args.nodes), RunSecrets(prefix=f"{PREFIX}-secrets-") as run_secrets:
            ours = run_system(P2porch(args.nodes, workdir, run_secrets), args.steady_s, args.kills)
            serf = run_system(Serf(args.nodes, workdir, run_secrets), args.steady_s, args.kills)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def ratio(key: str) -> float | None:
        a, b = ours.get(key), serf.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float) and b:
            return round(a / b, 3)
        return None

    print(
        json.dumps(
            {
                "benchmark": "gossip_real",
                "nodes": args.nodes,
                "steady_s": args.steady_s,
                "p2porch": ours,
                "serf_lan": serf,
                "ratio_p2porch_over_serf": {
                    k: ratio(k)
                    for k in ("join_converge_s", "bytes_per_node_s", "detect_dead_everywhere_mean_s")
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
