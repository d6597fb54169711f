"""Removed backends' conntrack entries in a real kernel: a UDP flow keeping its source port follows the rules.

Namespaces (prefix ``p3fx``, 10.73.0.0/16): a client, a node and two backends ``e1``/``e2`` behind the
node (their default route is the node, so replies pass its conntrack). The node's rules are written by
the real ``TrafficApplier`` (iptables-restore) and its conntrack entries deleted by the real
``ConntrackFlusher`` (pyroute2 conntrack netlink), both in the node's namespace. Clients send a UDP
datagram every 50 ms from a fixed source port to a VIP and to an ingress port; each backend answers
its name.

Control: the same switch from e1 to e2 without the flush leaves the flow pinned to e1 (a dead e1 would
never answer again: UDP entries live 120 s past the last packet). With it, the flows answer from e2
with their next datagrams, an established TCP connection to e1 is left alone, and a TCP connect whose
SYN e1 never answered completes on e2 with a retransmitted SYN. A connect e1 answers between the
flusher's two looks (a draining backend answering a SYN that was in flight during the dump) keeps its
entry: its request, sent before the second look, is answered by e1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import trio
from test_ingress_rules import client_node_endpoints, sh  # the ingress rules' kernel test's helpers

from p2porch.netoverlay.conntrack_flush import ConntrackFlusher
from p2porch.netoverlay.conntrack_plan import TCP_CONFIRM_S
from p2porch.netoverlay.firewall import Firewall
from p2porch.netoverlay.ingress import IngressPort
from p2porch.netoverlay.traffic import SERVICES_CHAIN, Backend, TrafficSettings
from p2porch.netoverlay.traffic_apply import TrafficApplier
from p2porch.netoverlay.vip import ServiceVip

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, iptables)"),
    pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed"),
]

P = "p3fx-ct"
SETTINGS = TrafficSettings("10.73.0.0/16", "10.73.1.0/24", "10.239.0.0/16")
VIP, NODE = "10.239.73.1", "10.73.0.1"
E1, E2 = Backend("10.73.0.130"), Backend("10.73.0.134")
UDP_PORT, PUBLISHED, TCP_PORT, SILENT_PORT, SLOW_PORT = 5300, 5353, 8000, 8001, 8002
SERVER = """
import socket, sys, threading
name = sys.argv[1].encode()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 5300))
def answer(c):
    while c.recv(64):
        c.sendall(name)
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        threading.Thread(target=answer, args=(s.accept()[0],), daemon=True).start()
for port in (8000, 8001, 8002):
    threading.Thread(target=tcp, args=(port,), daemon=True).start()
print("ready", flush=True)
while True:
    _, peer = udp.recvfrom(64); udp.sendto(name, peer)
"""
CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[3])))
s.connect((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.05)
while True:
    s.send(b"ping")
    try:
        print(f"{time.monotonic():.3f} {s.recv(64).decode()}", flush=True)
    except (TimeoutError, ConnectionRefusedError):
        pass
    time.sleep(0.05)
"""

TCP_CLIENT = """
import select, socket, sys
established = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
established.sendall(b"x"); print(established.recv(64).decode(), flush=True)
silent = socket.socket(); silent.setblocking(False)
print(silent.connect_ex((sys.argv[1], int(sys.argv[3]))) != 0, flush=True)  # SYN_SENT: never answered
slow = socket.socket(); slow.setblocking(False)
print(slow.connect_ex((sys.argv[1], int(sys.argv[4]))) != 0, flush=True)  # SYN_SENT until e1 lets it in
sys.stdin.readline()  # e1 answers SYNs on the slow port now (between the flusher's two looks)
writable = select.select([], [slow], [], 10)[1]
print(bool(writable) and slow.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), flush=True)
slow.setblocking(True); slow.settimeout(10); slow.sendall(b"x"); print("sent", flush=True)
sys.stdin.readline()  # the rules switched
established.sendall(b"x"); print(established.recv(64).decode(), flush=True)
writable = select.select([], [silent], [], 10)[1]  # the SYN is retransmitted after 1 s, then 3 s
print(bool(writable) and silent.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), flush=True)
silent.setblocking(True); silent.settimeout(10); silent.sendall(b"x")
print(silent.recv(64).decode(), flush=True)
print(slow.recv(64).decode(), flush=True)
"""


class Flow:
    """One UDP client process with a fixed source port; every answer with its monotonic time."""

    def __init__(self, ns: str, dest: str, port: int, sport: int) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-u", "-c", CLIENT, dest, str(port), str(sport)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.answers: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            at, name = line.split()
            self.answers.append((float(at), name))

    def since(self, t: float) -> list[str]:
        return [name for at, name in list(self.answers) if at >= t]

    def first(self, name: str, t: float) -> float | None:
        return next((at for at, n in list(self.answers) if at >= t and n == name), None)


def vip_and_ingress(backend: Backend) -> tuple[list[IngressPort], list[ServiceVip], TrafficSettings]:
    return (
        [IngressPort(PUBLISHED, UDP_PORT, "udp", (backend,))],
        [ServiceVip("svc", VIP, (backend,))],
        SETTINGS,
    )


async def wait_for(flow: Flow, name: str, t: float, limit: float = 15.0) -> float:
    deadline = time.monotonic() + limit
    while (at := flow.first(name, t)) is None:
        assert time.monotonic() < deadline, f"no answer from {name} in {limit} s: {flow.answers[-5:]}"
        await trio.sleep(0.02)
    return at


def test_flows_to_a_replaced_backend_follow_the_new_rules_at_once():
    names = {k: f"{P}{k}" for k in ("c", "n", "e1", "e2")}
    for ns in names.values():
        sh("ip", "netns", "del", ns, check=False)
    procs: list[subprocess.Popen] = []
    try:
        client_node_endpoints(names, "10.73.0", "p3fx")  # NODE is 10.73.0.1
        sh("ip", "-n", names["c"], "route", "add", "default", "via", NODE)
        # e1 never answers a SYN on SILENT_PORT (a backend that died after its last rule was written), and
        # on SLOW_PORT not until the flusher's first look is done
        e1_drop = ("ip", "netns", "exec", names["e1"], "iptables", "-w")
        for port in (SILENT_PORT, SLOW_PORT):
            sh(*e1_drop, "-A", "INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP")
        for key in ("e1", "e2"):
            proc = subprocess.Popen(
                ["ip", "netns", "exec", names[key], sys.executable, "-u", "-c", SERVER, key],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        firewall = Firewall(names["n"])
        flows: list[Flow] = []

        def flow(dest: str, port: int, sport: int) -> Flow:
            flows.append(Flow(names["c"], dest, port, sport))
            procs.append(flows[-1].proc)
            return flows[-1]

        async def scenario() -> None:
            # control: without the flush the flows stay with e1 after the rules switched to e2
            plain = TrafficApplier(firewall)
            assert await plain.apply(vip_and_ingress(E1))
            node = ("ip", "netns", "exec", names["n"])
            sh(*node, "iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-j", SERVICES_CHAIN)  # the jump
            pinned_vip, pinned_ingress = flow(VIP, UDP_PORT, 40002), flow(NODE, PUBLISHED, 40003)
            await wait_for(pinned_vip, "e1", 0)
            await wait_for(pinned_ingress, "e1", 0)
            assert await plain.apply(vip_and_ingress(E2))
            switched = time.monotonic()
            fresh = flow(VIP, UDP_PORT, 40004)  # a new source port is balanced by the new rules
            await wait_for(fresh, "e2", switched)
            for pinned in (pinned_vip, pinned_ingress):  # answered 1 s after the switch, still by e1
                await wait_for(pinned, "e1", switched + 1.0, limit=15.0)
                assert set(pinned.since(switched)) == {"e1"}

            # with the flush: the first write of a new applier knows no old set (nothing flushed)
            counted: list[tuple[str, int]] = []
            looks: list[float] = []

            def answer_the_slow_syn(seconds: float) -> None:
                """Between the two looks: e1 answers the slow connect, whose request then goes out."""
                looks.append(seconds)
                sh(*e1_drop, "-D", "INPUT", "-p", "tcp", "--dport", str(SLOW_PORT), "-j", "DROP")
                assert tcp.stdin is not None and tcp.stdout is not None
                tcp.stdin.write("answered\n")
                tcp.stdin.flush()
                assert [tcp.stdout.readline() for _ in range(2)] == ["0\n", "sent\n"]

            applier = TrafficApplier(
                firewall,
                ConntrackFlusher(names["n"], sleep=answer_the_slow_syn),
                lambda p, n: counted.append((p, n)),
            )
            assert await applier.apply(vip_and_ingress(E1))
            vip_flow, ingress_flow = flow(VIP, UDP_PORT, 40001), flow(NODE, PUBLISHED, 40005)
            await wait_for(vip_flow, "e1", 0)
            await wait_for(ingress_flow, "e1", 0)
            tcp = subprocess.Popen(
                ["ip", "netns", "exec", names["c"], sys.executable, "-u", "-c", TCP_CLIENT, VIP]
                + [str(TCP_PORT), str(SILENT_PORT), str(SLOW_PORT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(tcp)
            assert tcp.stdin is not None and tcp.stdout is not None
            assert await trio.to_thread.run_sync(tcp.stdout.readline) == "e1\n"  # established through the VIP
            for _ in range(2):  # both connects in progress
                assert await trio.to_thread.run_sync(tcp.stdout.readline) == "True\n"
            await trio.sleep(0.3)
            assert counted == []
            assert await applier.apply(vip_and_ingress(E2))
            written = time.monotonic()
            assert counted == [] and applier.flush_waiting  # the write did not wait for the flush
            await applier.flush_removed()
            for moved in (vip_flow, ingress_flow, pinned_vip, pinned_ingress):
                took = await wait_for(moved, "e2", written) - written
                print(f"flow answered by e2 {took:.3f} s after the write (a pinned one: never)")
                assert took < 2.0  # ~0.1 s here; the limit leaves room for a loaded machine
            # the four UDP flows and the silent SYN; the slow one was answered before the second look
            assert dict(counted) == {"udp": 4, "tcp": 1}, counted
            assert looks == [TCP_CONFIRM_S]
            tcp.stdin.write("switched\n")
            tcp.stdin.flush()
            answers = [await trio.to_thread.run_sync(tcp.stdout.readline) for _ in range(4)]
            # the established connection keeps its backend; the silent connect completes (SO_ERROR 0) on
            # e2 with a retransmitted SYN, which the flush let the new rules balance; the slow one's request
            # is answered by e1 (had its entry been deleted, the answer would have been stranded)
            assert answers == ["e1\n", "0\n", "e2\n", "e1\n"], answers

        trio.run(scenario)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for ns in names.values():
            sh("ip", "netns", "del", ns, check=False)
