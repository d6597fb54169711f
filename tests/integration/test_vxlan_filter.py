"""The VXLAN allow-list on real namespaces: a spoofed VXLAN frame from a non-member does not arrive.

The members are the kernel ipset ``p2porch-vxlan`` (changed over netlink) that a static chain matches on;
each step checks the set's members with the ``ipset`` CLI and the chain with ``iptables -S``.

Three network namespaces on one bridge (prefix ``p2tf``, underlay 10.57.0.0/24): members n1 and n2 run the
overlay reconciler (no dockerd needed: network=None), x is an attacker on the same underlay. The attacker
sends a hand-built VXLAN frame (right VNI, n1's VTEP MAC, inner UDP to n1's VTEP address) to n1. A listener
in n1 shows what arrives; a packet from member n2 over the real overlay, sent after the spoofed one, is
the barrier that proves the spoofed frame had its chance. INPUT keeps its default ACCEPT policy, so a drop
can only come from p2porch's chain. Positive control: with x made a member, the same frame arrives.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import struct
import subprocess
import sys

import pytest
import trio

from p2porch.netoverlay.driver import NetlinkDriver
from p2porch.netoverlay.firewall import Firewall
from p2porch.netoverlay.plan import (
    VXLAN_ALLOW_SET,
    VXLAN_FILTER_CHAIN,
    LocalNode,
    OverlayPeer,
    OverlaySettings,
    vtep_mac,
)
from p2porch.netoverlay.reconciler import OverlayReconciler

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, iptables)"),
    pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed"),
    pytest.mark.skipif(shutil.which("ipset") is None, reason="ipset is not installed (reads the set)"),
]

PREFIX = "p2tf"
SWITCH = f"{PREFIX}-sw"
NODES = {"n1": "10.57.0.1", "n2": "10.57.0.2", "x": "10.57.0.9"}
SUBNETS = {"n1": "10.241.1.0/24", "n2": "10.241.2.0/24", "x": "10.241.9.0/24"}
SETTINGS = OverlaySettings(cluster_cidr="10.241.0.0/16", vni=4242)
LISTEN_PORT = 7777


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


def ns(name: str) -> str:
    return f"{PREFIX}-{name}"


def in_ns(name: str, *argv: str, **kw) -> str:
    return sh("ip", "netns", "exec", ns(name), *argv, **kw)


def peer(name: str) -> OverlayPeer:
    return OverlayPeer(name, NODES[name], SUBNETS[name])


def reconciler(name: str) -> OverlayReconciler:
    local = LocalNode(name, NODES[name], SUBNETS[name], "eth0")
    return OverlayReconciler(local, NetlinkDriver(ns(name)), settings=SETTINGS, firewall=Firewall(ns(name)))


@pytest.fixture
def underlay():
    names = [SWITCH, *(ns(n) for n in NODES)]
    for name in names:
        sh("ip", "netns", "del", name, check=False)
    try:
        for name in names:
            sh("ip", "netns", "add", name)
        sh("ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", SWITCH, "link", "set", "br0", "up")
        for node, addr in NODES.items():
            port = f"{PREFIX}-{node}"
            sh("ip", "link", "add", port, "netns", SWITCH, "type", "veth", "peer", "eth0", "netns", ns(node))
            sh("ip", "-n", SWITCH, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", ns(node), "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns(node), "link", "set", "eth0", "up")
            sh("ip", "-n", ns(node), "link", "set", "lo", "up")
        yield
    finally:
        for name in names:
            sh("ip", "netns", "del", name, check=False)


LISTENER = f"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {LISTEN_PORT}))
print("ready", flush=True)
while True:
    data, _ = s.recvfrom(2048)
    print(data.decode(errors="replace"), flush=True)
"""

SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))
"""


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def vxlan_frame(payload: bytes) -> bytes:
    """VXLAN header + Ethernet to n1's VTEP MAC + IPv4/UDP from n2's subnet to n1's VTEP address."""
    src, dst = ipaddress.IPv4Address("10.241.2.66"), ipaddress.IPv4Address("10.241.1.0")
    udp = struct.pack("!HHHH", 40000, LISTEN_PORT, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src.packed, dst.packed)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    dst_mac = bytes.fromhex(vtep_mac(SUBNETS["n1"]).replace(":", ""))
    eth = dst_mac + bytes.fromhex("0e7000000099") + b"\x08\x00"
    vxlan = struct.pack("!B3xI", 0x08, SETTINGS.vni << 8)
    return vxlan + eth + ip + udp


def send_spoofed(payload: str) -> None:
    frame = vxlan_frame(payload.encode()).hex()
    in_ns("x", sys.executable, "-c", SENDER, NODES["n1"], str(SETTINGS.vxlan_port), frame)


def send_from_member(payload: str) -> None:
    in_ns("n2", sys.executable, "-c", SENDER, "10.241.1.0", str(LISTEN_PORT), payload.encode().hex())


STATIC_CHAIN = [
    f"-N {VXLAN_FILTER_CHAIN}",
    f"-A {VXLAN_FILTER_CHAIN} -m set --match-set {VXLAN_ALLOW_SET} src -j ACCEPT",
    f"-A {VXLAN_FILTER_CHAIN} -j DROP",
]


def set_members(name: str = "n1") -> set[str]:
    out = in_ns(name, "ipset", "list", VXLAN_ALLOW_SET)
    assert "Type: hash:ip" in out, out
    return set(out.split("Members:\n", 1)[1].split())


def chain(name: str = "n1") -> list[str]:
    return in_ns(name, "iptables", "-w", "-S", VXLAN_FILTER_CHAIN).splitlines()


def dropped() -> int:
    out = in_ns("n1", "iptables", "-w", "-L", VXLAN_FILTER_CHAIN, "-v", "-x", "-n")
    last = [line.split() for line in out.splitlines() if line.split()[2:3] == ["DROP"]]
    assert len(last) == 1, out
    return int(last[0][0])


class Listener:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns("n1"), sys.executable, "-u", "-c", LISTENER],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    async def run(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await trio.to_thread.run_sync(self.proc.stdout.readline, abandon_on_cancel=True)
            if not line:
                return
            self.lines.append(line.strip())

    async def wait_for(self, text: str, timeout: float = 10.0) -> None:
        with trio.move_on_after(timeout):
            while text not in self.lines:
                await trio.sleep(0.05)
        assert text in self.lines, f"{text!r} never arrived; received {self.lines}"


async def wait_dropped_above(count: int, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while dropped() <= count:
            await trio.sleep(0.05)


async def test_spoofed_vxlan_from_a_non_member_does_not_arrive(underlay):
    r1, r2 = reconciler("n1"), reconciler("n2")
    await r1.reconcile([peer("n2")])
    await r1.ensure_host()
    await r2.reconcile([peer("n1")])
    await r2.ensure_host()
    listener = Listener()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            await listener.wait_for("ready")
            # The set holds exactly the members; the chain accepts the set and drops the rest.
            assert set_members() == {NODES["n2"]} and chain() == STATIC_CHAIN
            # Members talk over the overlay.
            send_from_member("member-1")
            await listener.wait_for("member-1")

            # A non-member's frame is dropped by the chain; the member packet sent after it arrives.
            before = dropped()
            send_spoofed("spoofed-1")
            await wait_dropped_above(before)
            send_from_member("member-2")
            await listener.wait_for("member-2")
            assert "spoofed-1" not in listener.lines

            # Positive control: the same frame arrives once x is a member (the frame itself is valid).
            await r1.reconcile([peer("n2"), peer("x")])
            assert set_members() == {NODES["n2"], NODES["x"]} and chain() == STATIC_CHAIN
            send_spoofed("spoofed-2")
            await listener.wait_for("spoofed-2")

            # x leaves: its frames are dropped again (a pass between resyncs: the set's diff alone).
            await r1.reconcile_if_moved([peer("n2")])
            assert set_members() == {NODES["n2"]}
            before = dropped()
            send_spoofed("spoofed-3")
            await wait_dropped_above(before)
            send_from_member("member-3")
            await listener.wait_for("member-3")
            assert "spoofed-3" not in listener.lines

            # A crash left a stale member in the set and a chain of the per-source kind written before
            # the set: a fresh reconciler's first pass reconciles both (the set is kept, not duplicated).
            in_ns("n1", "ipset", "add", VXLAN_ALLOW_SET, NODES["x"])
            in_ns("n1", "iptables", "-w", "-I", VXLAN_FILTER_CHAIN, "1", "-s", NODES["x"], "-j", "ACCEPT")
            r1.close()
            restarted = reconciler("n1")
            await restarted.reconcile([peer("n2")])
            assert chain() == STATIC_CHAIN
            assert set_members() == {NODES["n2"]}
            assert in_ns("n1", "ipset", "list", "-n").split().count(VXLAN_ALLOW_SET) == 1
            assert await restarted.ensure_host() == []  # set and rules created idempotently: nothing to do
            before = dropped()
            send_spoofed("spoofed-4")
            await wait_dropped_above(before)
            send_from_member("member-4")
            await listener.wait_for("member-4")
            assert "spoofed-4" not in listener.lines

            # A member flushed from the set by hand comes back at the next forced check (a resync).
            in_ns("n1", "ipset", "flush", VXLAN_ALLOW_SET)
            assert await restarted.ensure_host() == [f"vxlan allow-list {VXLAN_ALLOW_SET}: +{NODES['n2']}"]
            assert set_members() == {NODES["n2"]}

            # Leave: the chain, its jump and the set are gone.
            await restarted.teardown()
            assert in_ns("n1", "iptables", "-w", "-S", VXLAN_FILTER_CHAIN, check=False) == ""
            assert "p2porch-" not in in_ns("n1", "iptables", "-w", "-S")
            assert VXLAN_ALLOW_SET not in in_ns("n1", "ipset", "list", "-n").split()
            restarted.close()
            nursery.cancel_scope.cancel()
    finally:
        listener.proc.kill()
        listener.proc.wait()
        for r in (r1, r2):
            r.close()
