"""CPU of per-join costs, measured without a sandbox (diagnostic; cli, apply and allowlist need root).

    python bench/join_costs.py cli TREE [--runs 20]      # one `p2porch join` CLI against a fake daemon
    python bench/join_costs.py apply TREE [--runs 200] [--peers 1]   # the overlay driver's apply of a join
    python bench/join_costs.py plan TREE [--runs 0]      # a member's pure work per join, 19/99/999 peers
    python bench/join_costs.py pass TREE [--runs 0]      # a member's whole overlay pass per join (pure)
    python bench/join_costs.py allowlist TREE [--runs 200]   # a member's VXLAN allow-list write per join
    python bench/join_costs.py lease TREE [--runs 0]     # the FSM's apply of a lease, 100-10,000 leases

``cli``: a unix socket answers every request at once with a join's answer; ``TREE/.venv/bin/python -m
p2porch join`` runs ``--runs`` times with TREE as its working directory (so that tree's code runs, see
"A pitfall for paired runs" in docs/performance.md) and the children's user+sys CPU is divided by the
runs. ``apply``: in an anonymous network namespace of its own (``unshare -n``, gone with the process), a
VXLAN device and TREE's ``NetlinkDriver``; each apply (FDB, neighbour, route of ``--peers`` new peers:
1 as a member's pass for one join, 19 as a joiner's first pass in a 20-node cluster) is called from a
pool of 4 worker threads, as trio's thread cache calls it. ``plan``: TREE's ``plan_overlay`` of every
live peer (a member plans them all again per join), ``diff_overlay``, ``entries_applied`` and the allow-list
plan, for 19, 99 and 999 peers after one joined, in ms each (pure; any user). ``pass``: TREE's
``OverlayReconciler`` pass for one join and one leave, from a committed state of 20/100/1,000 nodes to
the operations and the allow-list difference (a kernel and a firewall without netlink; any user): on
main the peer list of every node, ``plan_overlay``, ``diff_overlay``; on a branch with
``reconcile_changes`` the named node alone. ``allowlist``: in the
current namespace, the old way's ``iptables-restore`` of the whole chain (19/99/999 sources) in
``--test`` mode (parsed and built, not committed: a lower bound; daemon and child CPU apart) and, when
TREE has ``netoverlay/allow_set.py``, one netlink add to a scratch set (``p2porch-bench-probe``,
destroyed after). ``lease``: TREE's FSM applying one ``LeaseSubnet`` entry (as every member applies
it) at a state of 100/1,000/10,000 nodes and leases in 10.0.0.0/8 (/24s), CPU ms per apply: ``end`` when
the lowest free subnet is past every lease, ``hole`` when one lease in the middle was released, and the
``ReleaseSubnet`` that made it; the state is built directly (applying 10,000 leases one by one on main
scans for minutes), then one warm-up apply (a branch builds its subnet pool there once, as after a
snapshot install; a committed lease carries it on). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from p2porch.testing.fake_api import serve_unix_api

ANSWER = {"cluster_id": "c1", "role": "replica", "node_id": "n2"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_cost(tree: str, runs: int) -> dict[str, Any]:
    path = os.path.join(tempfile.mkdtemp(prefix="p2jc-", dir="/tmp"), "api.sock")
    serve_unix_api(path, lambda method, target: (200, ANSWER))
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


PEER_COUNTS = (19, 99, 999)


def _peers(count: int) -> list[Any]:
    from p2porch.netoverlay.plan import OverlayPeer

    return [
        OverlayPeer(f"n{i}", f"10.69.{i // 250}.{i % 250 + 2}", f"10.{240 + i // 256}.{i % 256}.0/24")
        for i in range(1, count + 1)
    ]


def plan_cost(tree: str, runs: int) -> dict[str, Any]:
    sys.path.insert(0, tree)
    from p2porch.netoverlay.diff import KernelState, LinkState, diff_overlay, entries_applied
    from p2porch.netoverlay.plan import LocalNode, OverlaySettings, plan_overlay, plan_vxlan_filter

    settings = OverlaySettings(cluster_cidr="10.240.0.0/12")
    local = LocalNode("n0", "10.69.0.1", "10.240.0.0/24", "eth0")
    result: dict[str, Any] = {"plan": sys.modules[plan_overlay.__module__].__file__}
    for count in PEER_COUNTS:
        before, after = _peers(count - 1), _peers(count)
        old = plan_overlay(local, before, settings, "eth0")
        link = old.link
        device = LinkState(
            link.name,
            "vxlan",
            link.vni,
            link.port,
            link.local,
            link.underlay_dev,
            link.mac,
            link.learning,
            True,
        )
        base = KernelState(device, frozenset({old.address}))
        observed = entries_applied(base, diff_overlay(base, old))
        assert observed is not None
        plan = plan_overlay(local, after, settings, "eth0")
        ops = diff_overlay(observed, plan)
        assert len(ops) == 3, ops  # the new peer's FDB entry, neighbour and route
        reps = runs or max(20, 4000 // count)
        parts: list[tuple[Any, tuple[Any, ...]]] = [
            (plan_overlay, (local, after, settings, "eth0")),
            (diff_overlay, (observed, plan)),
            (entries_applied, (observed, ops)),
            (plan_vxlan_filter, (plan, settings)),
        ]
        timed = {}
        for work, arguments in parts:
            started = time.process_time()
            for _ in range(reps):
                work(*arguments)
            timed[work.__name__] = round((time.process_time() - started) / reps * 1000, 3)
        result[f"ms_{count}_peers"] = timed
    return result


class _NullDriver:
    """The overlay driver without a kernel: keeps the entries applied (in place: O(operations), as the
    kernel's own cost is not the daemon's), reads them back; no netlink."""

    def __init__(self, base: Any) -> None:
        self.base, self.applied = base, 0
        self.routes: dict[str, Any] = {}
        self.neighbours: dict[str, tuple[str, bool]] = {}
        self.fdb: set[tuple[str, str]] = set()

    def underlay(self, address: str, dev: str | None = None) -> tuple[str, int]:
        return "eth0", 1500

    def read(self, device: str) -> Any:
        base = self.base
        fdb = frozenset(self.fdb)
        return base.__class__(base.link, base.addresses, dict(self.routes), dict(self.neighbours), fdb)

    def apply(self, ops: list[Any]) -> None:
        self.applied += len(ops)
        for op in ops:
            kind = type(op).__name__
            if kind == "SetRoute":
                self.routes[op.dst] = op.gateway
            elif kind == "DeleteRoute":
                self.routes.pop(op.dst, None)
            elif kind == "SetNeighbour":
                self.neighbours[op.ip] = (op.mac, True)
            elif kind == "DeleteNeighbour":
                self.neighbours.pop(op.ip, None)
            elif kind == "AddFdb":
                self.fdb.add((op.mac, op.dst))
            elif kind == "DeleteFdb":
                self.fdb.discard((op.mac, op.dst))
            else:
                raise AssertionError(f"not a peer entry: {op}")

    def close(self) -> None:
        pass


class _NullFirewall:
    """The allow-list without a kernel: what the real firewall computes in the daemon (the members'
    difference), no netlink, no process."""

    def __init__(self) -> None:
        self.writes = 0

    def vxlan_filter(self, wanted: Any, *, known: Any = None, listing: Any = None) -> tuple[Any, bool]:
        from p2porch.netoverlay.plan import diff_members

        self.writes += 1
        return diff_members(wanted.sources, known.sources if known else ()), known is None

    def vxlan_members(self, diff: Any) -> None:
        self.writes += 1

    def close(self) -> None:
        pass


def pass_cost(tree: str, runs: int) -> dict[str, Any]:
    """A member's overlay pass for one join (and one leave), as its reconciler runs it, TREE's code:
    the peer list from the committed state (main: every node; a branch with ``reconcile_changes``: the
    node the commit named), the plan, the diff, the device's expected state and the allow-list's
    difference. The kernel and the firewall are stand-ins (no netlink: ``apply`` measures that)."""
    sys.path.insert(0, tree)
    import trio

    from p2porch.member import views
    from p2porch.model import Node, SubnetLease
    from p2porch.netoverlay.diff import KernelState, LinkState
    from p2porch.netoverlay.plan import LocalNode, OverlaySettings, plan_overlay
    from p2porch.netoverlay.reconciler import OverlayReconciler
    from p2porch.raft.state import ClusterState

    patched = hasattr(OverlayReconciler, "reconcile_changes")
    settings = OverlaySettings(cluster_cidr="10.240.0.0/12")
    local = LocalNode("n0", "10.69.0.1", "10.240.0.0/24", "eth0")

    def state_of(count: int) -> ClusterState:
        peers = [local, *_peers(count)]
        return ClusterState(
            cluster_id="c1",
            cluster_cidr=settings.cluster_cidr,
            nodes={p.node_id: Node(p.node_id, name=p.node_id, addr=p.underlay_addr) for p in peers},
            leases={p.node_id: SubnetLease(p.node_id, p.subnet) for p in peers},
        )

    result: dict[str, Any] = {
        "reconciler": sys.modules[OverlayReconciler.__module__].__file__,
        "patched": patched,
    }
    for count in PEER_COUNTS:
        link = plan_overlay(local, [], settings, "eth0").link
        device = LinkState(link.name, "vxlan", link.vni, link.port, link.local, "eth0", link.mac, False, True)
        driver = _NullDriver(KernelState(device, frozenset({"10.240.0.0/32"})))
        reconciler = OverlayReconciler(
            local,
            driver,
            settings=settings,
            firewall=_NullFirewall(),
            blocking=_inline,  # type: ignore[arg-type]
        )
        reps = runs or max(20, 4000 // count)
        before, after = state_of(count - 1), state_of(count)
        ms, ops = trio.run(_joins_and_leaves, reconciler, views, patched, before, after, f"n{count}", reps)
        assert ops >= 3, "the joins did not reach the kernel stand-in"
        assert len(driver.routes) == count - 1
        result[f"ms_per_pass_{count}_peers"] = round(ms, 4)
        result[f"ops_per_pass_{count}_peers"] = ops
    return result


async def _inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def _joins_and_leaves(
    reconciler: Any, views: Any, patched: bool, before: Any, after: Any, joiner: str, reps: int
) -> tuple[float, float]:
    """CPU ms and kernel operations per pass over ``reps`` joins and leaves of ``joiner``."""

    async def one_pass(state: Any) -> None:
        if patched:  # what the member's PeerView.changed does for a commit that names the joiner
            changed = {joiner: views.overlay_peer(state, joiner, "n0", frozenset())}
            await reconciler.reconcile_changes(changed, lambda: views.overlay_peers(state, "n0"))
        else:
            await reconciler.reconcile_if_moved(views.overlay_peers(state, "n0", frozenset()))

    await reconciler.reconcile(views.overlay_peers(before, "n0"))
    applied = reconciler.driver.applied
    started = time.process_time()
    for _ in range(reps):
        await one_pass(after)
        await one_pass(before)
    took = time.process_time() - started
    return took / (2 * reps) * 1000, (reconciler.driver.applied - applied) / (2 * reps)


def views_cost(tree: str, runs: int, nodes: tuple[int, ...], services: int, replicas: int) -> dict[str, Any]:
    """What else a member does for one join (the admission with its lease, then the ready mark), TREE's
    code at a state built by ``bench/views_burst.py`` (``nodes`` nodes, ``services`` x ``replicas``
    running tasks): its DNS zone and scopes, ingress/VIP index, network-policy plan (``Views.burst``,
    as the daemon's member services update them), and gossip's member list as ``unreachable_nodes``
    reads it per pass (a ``Swim`` core with that many members). CPU ms per join, each view apart."""
    sys.path[:0] = [tree, os.path.join(tree, "bench")]
    import random

    import views_burst as vb

    from p2porch.context import LocalBoard
    from p2porch.gossip.config import GossipConfig
    from p2porch.gossip.membership import Member
    from p2porch.gossip.messages import ALIVE
    from p2porch.gossip.swim import Swim
    from p2porch.model import Node, NodeStatus
    from p2porch.raft import commands as C

    result: dict[str, Any] = {"tasks_per_service": replicas, "services": services}
    for count in nodes:
        chain = vb.build(
            argparse.Namespace(nodes=count, services=services, replicas=replicas, per_round=50, linking=0)
        )
        views = vb.Views(chain.state, "n00000")
        reps = runs or 10
        cpu: dict[str, float] = {}
        for i in range(reps):
            node_id, addr = f"j{i:05d}", f"192.169.{i // 250}.{i % 250 + 1}"
            chain.run(
                C.AddNode(at=3.0, node=Node(node_id, node_id, addr, 7947, 7946, status=NodeStatus.JOINING))
            )
            chain.run(C.LeaseSubnet(at=3.0, node_id=node_id))
            for view, took in views.burst(chain.state, chain.take()).items():  # the admission
                cpu[view] = cpu.get(view, 0.0) + took
            chain.run(C.UpdateNode(at=3.5, node_id=node_id, status=NodeStatus.READY))
            for view, took in views.burst(chain.state, chain.take()).items():  # the ready mark
                cpu[view] = cpu.get(view, 0.0) + took
        core = Swim(GossipConfig(), "n00000", "10.0.0.1:7946", {}, random.Random(1), 0.0)
        for i in range(1, count + 1):
            core.table.add(Member(f"n{i:05d}", f"10.0.{i // 250}.{i % 250}:7946", 0, ALIVE, {}, 0.0))
        board = LocalBoard()
        board.gossip = core  # type: ignore[assignment]  # members() is all unreachable_nodes reads
        started = time.process_time()
        for _ in range(200):
            board.unreachable_nodes()
        gossip_ms = (time.process_time() - started) / 200 * 1000
        result[f"ms_per_join_{count}_nodes"] = {
            **{view: round(took / reps * 1000, 3) for view, took in cpu.items()},
            "gossip_unreachable_nodes_per_pass": round(gossip_ms, 3),
            "tasks": len(chain.state.tasks),
        }
    return result


def allowlist_cost(tree: str, runs: int) -> dict[str, Any]:
    sys.path.insert(0, tree)
    result: dict[str, Any] = {}
    for count in PEER_COUNTS:  # the old way: the whole chain, per member per pass
        lines = ["*filter", ":P2P-BENCH-PROBE - [0:0]"]
        lines += [f"-A P2P-BENCH-PROBE -s {p.underlay_addr}/32 -j ACCEPT" for p in _peers(count)]
        text = "\n".join([*lines, "-A P2P-BENCH-PROBE -j DROP", "COMMIT", ""])
        reps = max(10, runs // 5)
        own, children = resource.getrusage(resource.RUSAGE_SELF), children_cpu()
        for _ in range(reps):
            subprocess.run(
                ["iptables-restore", "-w", "--noflush", "--test"],
                input=text,
                text=True,
                check=True,
                capture_output=True,
                timeout=60,
            )
        after = resource.getrusage(resource.RUSAGE_SELF)
        result[f"iptables_restore_test_{count}_sources"] = {
            "daemon_ms": round(
                (after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime) / reps * 1000, 3
            ),
            "child_ms": round((children_cpu() - children) / reps * 1000, 3),
        }
    if not os.path.exists(os.path.join(tree, "p2porch", "netoverlay", "allow_set.py")):
        return result
    from p2porch.netoverlay.allow_set import AllowSet
    from p2porch.netoverlay.plan import SetDiff

    scratch = AllowSet("p2porch-bench-probe")
    try:
        scratch.sync([])
        own = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(runs):  # one member's write per join: one address more
            scratch.apply(SetDiff(add=(f"10.69.{i // 250}.{i % 250 + 1}",)))
        after = resource.getrusage(resource.RUSAGE_SELF)
        held = scratch.members()
        assert held is not None and len(held) == runs, "the adds did not land"
    finally:
        scratch.destroy()
        scratch.close()
    result["netlink_add"] = {
        "daemon_ms": round((after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime) / runs * 1000, 3),
        "child_ms": 0.0,
    }
    return result


LEASE_COUNTS = (100, 1000, 10_000)


def lease_cost(tree: str, runs: int) -> dict[str, Any]:
    """CPU ms per ``LeaseSubnet``/``ReleaseSubnet`` entry applied by TREE's FSM (see the docstring)."""
    sys.path.insert(0, tree)
    import ipaddress

    from p2porch.model import Node, SubnetLease
    from p2porch.raft import commands as C
    from p2porch.raft import fsm
    from p2porch.raft.state import ClusterState

    subnets = ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=24)
    texts = [str(next(subnets)) for _ in range(max(LEASE_COUNTS) + 1)]
    result: dict[str, Any] = {"fsm": fsm.__file__}

    def per_apply(state: ClusterState, entry: bytes, expect: str, reps: int) -> float:
        new, (answer,), _ = fsm.apply_batch(state, entry)  # warm-up; checks the answer
        assert answer["ok"] and answer["value"] == expect, answer
        started = time.process_time()
        for _ in range(reps):
            fsm.apply_batch(state, entry)
        return (time.process_time() - started) / reps * 1000

    for count in LEASE_COUNTS:
        ids = [f"n{i:05d}" for i in range(count + 1)]  # the last one joins
        state = ClusterState(
            cluster_id="0123456789abcdef",
            cluster_cidr="10.0.0.0/8",
            subnet_prefix_len=24,
            version=2 * count + 1,
            nodes={i: Node(i, i, f"10.1.{n // 250}.{n % 250 + 1}", 7947, 7946) for n, i in enumerate(ids)},
            leases={i: SubnetLease(i, texts[n]) for n, i in enumerate(ids[:-1])},
        )
        reps = runs or max(20, 20_000 // count)
        lease = fsm.encode_batch([C.LeaseSubnet(at=1.0, node_id=ids[-1]).encode()])
        middle = ids[count // 2]
        release = fsm.encode_batch([C.ReleaseSubnet(at=1.0, node_id=middle).encode()])
        holed = fsm.apply_batch(state, release)[0]
        result[f"ms_per_lease_{count}"] = {
            "end": round(per_apply(state, lease, texts[count], reps), 4),
            "hole": round(per_apply(holed, lease, texts[count // 2], reps), 4),
            "release": round(per_apply(state, release, texts[count // 2], reps), 4),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["cli", "apply", "plan", "pass", "views", "allowlist", "lease"])
    parser.add_argument("tree", help="a checkout with its own .venv (main or a branch)")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--peers", type=int, default=1, help="apply: new peers per apply (3 operations each)")
    parser.add_argument("--services", type=int, default=20, help="views: services at the state")
    parser.add_argument("--replicas", type=int, default=10, help="views: running tasks per service")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree)
    if args.what == "cli":
        result = cli_cost(tree, args.runs or 20)
    elif args.what == "plan":
        result = plan_cost(tree, args.runs)
    elif args.what == "pass":
        result = pass_cost(tree, args.runs)
    elif args.what == "views":
        result = views_cost(tree, args.runs, (20, 100, 1000), args.services, args.replicas)
    elif args.what == "allowlist":
        result = allowlist_cost(tree, args.runs or 200)
    elif args.what == "lease":
        result = lease_cost(tree, args.runs)
    else:
        result = apply_cost(tree, args.runs or 200, args.peers)
    print(json.dumps({"what": args.what, "tree": tree, "load": os.getloadavg()[0], **result}))


if __name__ == "__main__":
    main()
