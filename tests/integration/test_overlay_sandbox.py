"""The VXLAN overlay on a real 3-node sandbox: kernel state, containers, resync, restart and teardown.

Each node is a network namespace with its own dockerd; the reconciler for each node runs in this test
process against that namespace by name. FORWARD and INPUT policies are set to DROP in every node so
the overlay must work through its own iptables rules, and an `unreachable` route for the cluster CIDR
keeps unprogrammed overlay traffic inside the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import trio

from p2porch.netoverlay.dockernet import DockerNetwork
from p2porch.netoverlay.driver import NetlinkDriver
from p2porch.netoverlay.firewall import Firewall
from p2porch.netoverlay.plan import VXLAN_ALLOW_SET, LocalNode, OverlayPeer, OverlaySettings
from p2porch.netoverlay.reconciler import OverlayReconciler, run_overlay

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, dockerd)"),
    pytest.mark.skipif(
        shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
        reason="docker.io is not installed",
    ),
]

CLUSTER = "10.241.0.0/16"
PLANNED_RULES = 11  # plan_firewall: 7 overlay rules + 4 jumps into the service traffic (ingress/VIP) chains
SETTINGS = OverlaySettings(cluster_cidr=CLUSTER, vni=4242)
IMAGE = "p2porch/busybox:latest"
INDEXES = (1, 2, 3)


def sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


class Cluster:
    def __init__(self, sandbox, nodes):
        self.sandbox = sandbox
        self.nodes = {i: node for i, node in zip(INDEXES, nodes, strict=True)}
        self.containers: dict[int, str] = {}

    def local(self, i: int) -> LocalNode:
        return LocalNode(f"n{i}", self.nodes[i].address, f"10.241.{i}.0/24")

    def peer(self, i: int) -> OverlayPeer:
        return OverlayPeer(f"n{i}", self.nodes[i].address, f"10.241.{i}.0/24")

    def peers_of(self, i: int, members=INDEXES) -> list[OverlayPeer]:
        return [self.peer(j) for j in members if j != i]

    def reconciler(self, i: int) -> OverlayReconciler:
        node = self.nodes[i]
        return OverlayReconciler(
            self.local(i),
            NetlinkDriver(node.netns),
            settings=SETTINGS,
            network=DockerNetwork(node.dockerd.host_url),
            firewall=Firewall(node.netns),
        )

    async def converge(self, members=INDEXES) -> None:
        for i in members:
            rec = self.reconciler(i)
            try:
                await rec.reconcile(self.peers_of(i, members))
                await rec.ensure_host()
                await rec.ensure_bridge()  # the Docker network, made on first need (its containers here)
            finally:
                rec.close()

    def docker(self, i: int, *args: str, check: bool = True) -> str:
        return sh("docker", "-H", self.nodes[i].dockerd.host_url, *args, check=check)

    def ip(self, i: int, *args: str) -> str:
        return sh("ip", "-n", self.nodes[i].netns, *args)

    def bridge_fdb(self, i: int) -> str:
        return sh("bridge", "-n", self.nodes[i].netns, "fdb", "show", "dev", SETTINGS.device, check=False)

    def iptables(self, i: int, *args: str) -> str:
        return sh("nsenter", f"--net=/var/run/netns/{self.nodes[i].netns}", "iptables", "-w", *args)

    def container_ip(self, i: int) -> str:
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return self.docker(i, "inspect", "-f", fmt, self.containers[i]).strip()

    def ping(self, src: int, dst: int) -> bool:
        out = self.docker(
            src,
            "exec",
            self.containers[src],
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            self.container_ip(dst),
            check=False,
        )
        return " 0% packet loss" in out


@pytest.fixture(scope="module")
def cluster():
    from p2porch.sandbox.sandbox import Sandbox

    sandbox = Sandbox("p2ov", subnet="10.80.0.0/24", start_daemons=False)
    try:
        nodes = sandbox.up(len(INDEXES))
        c = Cluster(sandbox, nodes)
        for i in INDEXES:
            ns = c.nodes[i].netns
            sh("ip", "-n", ns, "route", "replace", "unreachable", CLUSTER)
            c.iptables(i, "-P", "FORWARD", "DROP")
            c.iptables(i, "-P", "INPUT", "DROP")
        trio.run(c.converge)
        for i in INDEXES:
            c.containers[i] = c.docker(
                i,
                "run",
                "-d",
                "--name",
                f"p2ov-c{i}",
                "--network",
                SETTINGS.network_name,
                IMAGE,
                "sleep",
                "36000",
            ).strip()
        yield c
    finally:
        sandbox.down()


def test_kernel_state_matches_the_flannel_layout(cluster):
    link = cluster.ip(1, "-d", "link", "show", SETTINGS.device)
    assert "vxlan id 4242" in link and "local 10.80.0.1 dev eth0" in link and "nolearning" in link
    assert "mtu 1450" in link and "dstport 4789" in link and "0e:70:0a:f1:01:00" in link
    routes = cluster.ip(1, "route", "show", "dev", SETTINGS.device)
    assert "10.241.2.0/24 via 10.241.2.0 proto static onlink" in routes
    assert "10.241.3.0/24 via 10.241.3.0 proto static onlink" in routes
    neigh = cluster.ip(1, "neigh", "show", "dev", SETTINGS.device)
    assert "10.241.2.0 lladdr 0e:70:0a:f1:02:00 PERMANENT" in neigh
    fdb = cluster.bridge_fdb(1)
    assert "0e:70:0a:f1:02:00 dst 10.80.0.2 self permanent" in fdb
    assert "0e:70:0a:f1:03:00 dst 10.80.0.3 self permanent" in fdb
    net = cluster.docker(
        1,
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{json .Options}}",
        "p2porch",
    )
    assert "10.241.1.0/24 10.241.1.1" in net
    assert '"com.docker.network.driver.mtu":"1450"' in net
    assert '"com.docker.network.bridge.enable_ip_masquerade":"false"' in net
    nat = cluster.iptables(1, "-t", "nat", "-S", "POSTROUTING")
    assert "-A POSTROUTING -s 10.241.1.0/24 ! -d 10.241.0.0/16 -m comment" in nat
    assert "10.241.1.0/24 ! -o p2p-br0 -j MASQUERADE" not in nat  # Docker's own masquerade is off


async def test_containers_ping_and_transfer_over_tcp_keeping_their_source_address(cluster):
    await cluster.converge()
    for dst in (2, 3):
        assert cluster.ping(1, dst), f"n1 cannot ping the container on n{dst}"
        cluster.docker(
            dst,
            "exec",
            "-d",
            cluster.containers[dst],
            "nc",
            "-l",
            "-p",
            "5000",
            "-e",
            "sh",
            "-c",
            "netstat -tn > /tmp/peer; md5sum > /tmp/md5",
        )
        await trio.sleep(0.3)
        sent = cluster.docker(
            1,
            "exec",
            cluster.containers[1],
            "sh",
            "-c",
            f"head -c 3000000 /dev/urandom > /tmp/d; md5sum < /tmp/d; "
            f"timeout 20 nc {cluster.container_ip(dst)} 5000 < /tmp/d",
        )
        for _ in range(50):
            got = cluster.docker(dst, "exec", cluster.containers[dst], "cat", "/tmp/md5", check=False)
            if got.strip():
                break
            await trio.sleep(0.1)
        assert got.split()[0] == sent.split()[0], "data arrived corrupted or incomplete"
        peer = cluster.docker(dst, "exec", cluster.containers[dst], "cat", "/tmp/peer")
        assert f"{cluster.container_ip(1)}:" in peer, f"receiver saw another source address: {peer}"
        cluster.docker(dst, "exec", cluster.containers[dst], "rm", "-f", "/tmp/peer", "/tmp/md5")


async def test_removed_peer_disappears_and_a_peer_added_later_becomes_reachable(cluster):
    await cluster.converge()
    await cluster.converge(members=(2, 3))  # n1 leaves the peer sets of n2 and n3
    for i in (2, 3):
        assert "10.241.1.0" not in cluster.ip(i, "route", "show", "dev", SETTINGS.device)
        assert "0e:70:0a:f1:01:00" not in cluster.bridge_fdb(i)
        assert "10.241.1.0 " not in cluster.ip(i, "neigh", "show", "dev", SETTINGS.device)
    assert cluster.ping(2, 3)
    assert not cluster.ping(2, 1)
    await cluster.converge()  # n1 comes back
    assert cluster.ping(2, 1) and cluster.ping(3, 1) and cluster.ping(1, 3)


async def test_peer_address_change_moves_only_its_fdb_entry(cluster):
    await cluster.converge()
    rec = cluster.reconciler(1)
    moved = [OverlayPeer("n2", "10.80.0.99", "10.241.2.0/24"), cluster.peer(3)]
    ops = await rec.reconcile(moved)
    assert [type(op).__name__ for op in ops] == ["DeleteFdb", "AddFdb"]
    assert "0e:70:0a:f1:02:00 dst 10.80.0.99" in cluster.bridge_fdb(1)
    await rec.reconcile(cluster.peers_of(1))
    assert "0e:70:0a:f1:02:00 dst 10.80.0.2 " in cluster.bridge_fdb(1)
    assert cluster.ping(1, 2)


async def test_restart_creates_no_duplicate_or_stale_entries(cluster):
    await cluster.converge()
    for i in INDEXES:
        fresh = cluster.reconciler(i)  # a restarted daemon: new objects, same kernel
        assert await fresh.reconcile(cluster.peers_of(i)) == []
        assert await fresh.ensure_host() == []
        assert fresh.status()["peers"] and all(p["programmed"] for p in fresh.status()["peers"])
        assert cluster.bridge_fdb(i).count("dst") == 2
        assert len(cluster.ip(i, "route", "show", "dev", SETTINGS.device).splitlines()) == 2
        rules = cluster.iptables(i, "-S") + cluster.iptables(i, "-t", "nat", "-S")
        assert rules.count("--comment p2porch-") == PLANNED_RULES
        assert cluster.docker(i, "network", "ls", "-q", "--filter", "name=^p2porch$").count("\n") == 1


async def test_resync_repairs_a_route_and_fdb_entry_deleted_by_hand(cluster):
    await cluster.converge()
    changes_send, changes_recv = trio.open_memory_channel[object](10)
    members = list(INDEXES)
    async with trio.open_nursery() as nursery:
        rec = await nursery.start(
            lambda task_status: run_overlay(
                cluster.local(1),
                lambda: cluster.peers_of(1, members),
                NetlinkDriver(cluster.nodes[1].netns),
                settings=SETTINGS,
                network=DockerNetwork(cluster.nodes[1].dockerd.host_url),
                firewall=Firewall(cluster.nodes[1].netns),
                changes=changes_recv,
                resync_interval_s=0.5,
                task_status=task_status,
            )
        )
        cluster.ip(1, "route", "del", "10.241.3.0/24")
        sh(
            "bridge",
            "-n",
            cluster.nodes[1].netns,
            "fdb",
            "del",
            "0e:70:0a:f1:02:00",
            "dev",
            SETTINGS.device,
            "dst",
            "10.80.0.2",
        )
        assert not cluster.ping(1, 3)
        with trio.fail_after(10):
            while "10.241.3.0/24" not in cluster.ip(
                1, "route", "show", "dev", SETTINGS.device
            ) or "0e:70:0a:f1:02:00" not in cluster.bridge_fdb(1):
                await trio.sleep(0.1)
        assert cluster.ping(1, 3) and cluster.ping(1, 2)
        # a firewall rule deleted by hand comes back with the full resync too
        cluster.iptables(
            1,
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-s",
            "10.241.1.0/24",
            "!",
            "-d",
            CLUSTER,
            "-m",
            "comment",
            "--comment",
            _masq_comment(),
            "-j",
            "MASQUERADE",
        )
        with trio.fail_after(10):
            while _masq_comment() not in cluster.iptables(1, "-t", "nat", "-S", "POSTROUTING"):
                await trio.sleep(0.1)
        # a change notification reconciles at once: n3 leaves
        members.remove(3)
        await changes_send.send("n3 left")
        with trio.fail_after(5):
            while "10.241.3.0/24" in cluster.ip(1, "route", "show", "dev", SETTINGS.device):
                await trio.sleep(0.05)
        with trio.fail_after(5):  # the pass that removed the route finishes and updates the status
            while [p["node_id"] for p in rec.status()["peers"]] != ["n2"]:
                await trio.sleep(0.05)
        assert rec.status()["passes"] >= 3 and rec.status()["peers"][0]["programmed"]
        nursery.cancel_scope.cancel()
    # cancelling the loop leaves the kernel state in place for a restarted daemon
    assert "10.241.2.0/24" in cluster.ip(1, "route", "show", "dev", SETTINGS.device)


def _masq_comment() -> str:
    from p2porch.netoverlay.plan import plan_firewall

    return plan_firewall(LocalNode("n1", "10.80.0.1", "10.241.1.0/24"), SETTINGS, "eth0", "DOCKER-USER")[
        0
    ].comment


async def test_teardown_leaves_nothing_of_p2porch(cluster):
    await cluster.converge()
    try:
        for i in INDEXES:
            result = await cluster.reconciler(i).teardown()
            assert result == {"link": True, "network": True, "rules": PLANNED_RULES}
        for i in INDEXES:
            assert "vxlan" not in cluster.ip(i, "-d", "link", "show")
            assert "p2p-" not in cluster.ip(i, "link", "show")
            assert "10.241." not in cluster.ip(i, "route", "show").replace(f"unreachable {CLUSTER}", "")
            assert "0e:70:0a:f1" not in sh("bridge", "-n", cluster.nodes[i].netns, "fdb", "show")
            rules = cluster.iptables(i, "-S") + cluster.iptables(i, "-t", "nat", "-S")
            assert "p2porch" not in rules and "10.241." not in rules
            sets = sh("ip", "netns", "exec", cluster.nodes[i].netns, "ipset", "list", "-n").split()
            assert VXLAN_ALLOW_SET not in sets
            assert "p2porch" not in cluster.docker(i, "network", "ls")
            # teardown of nothing is harmless
            assert await cluster.reconciler(i).teardown() == {"link": False, "network": False, "rules": 0}
    finally:
        for i in INDEXES:
            cluster.docker(i, "rm", "-f", cluster.containers[i], check=False)
