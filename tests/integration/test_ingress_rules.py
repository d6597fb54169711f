"""The ingress NAT renderer in a real kernel: new connections to node:8080 spread over both endpoints.

Namespaces (prefix ``p2tf``): a client and a node on 10.57.0.0/25, two endpoints behind the node on
10.57.0.128/25 (their default route is the node, so replies pass its conntrack and are un-DNATed; the
masquerade for endpoints elsewhere is not built yet). The node gets ``render_ingress`` applied with
``iptables-restore --noflush`` and a PREROUTING jump, exactly the text the pure planner produces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from p2porch.netoverlay.ingress import IngressPort
from p2porch.netoverlay.service_rules import render_traffic
from p2porch.netoverlay.traffic import SERVICES_CHAIN, Backend, TrafficSettings

SETTINGS = TrafficSettings("10.240.0.0/16", "10.240.1.0/24", "10.239.0.0/16")


def render_ingress(ports: list[IngressPort]) -> str:
    return render_traffic(ports, [], SETTINGS)


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, iptables)"),
    pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed"),
]

P = "p2tf-ig"
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
"""
CLIENT = """
import collections, json, socket, sys
seen = collections.Counter()
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((sys.argv[1], 8080), timeout=5)
    seen[s.recv(64).decode()] += 1; s.close()
print(json.dumps(seen))
"""


def sh(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {proc.stderr or proc.stdout}")
    return proc.stdout


def veth(a: str, a_addr: str, b: str, b_addr: str, name: str) -> None:
    sh("ip", "link", "add", f"{name}a", "netns", a, "type", "veth", "peer", f"{name}b", "netns", b)
    sh("ip", "-n", a, "addr", "add", a_addr, "dev", f"{name}a")
    sh("ip", "-n", b, "addr", "add", b_addr, "dev", f"{name}b")
    sh("ip", "-n", a, "link", "set", f"{name}a", "up")
    sh("ip", "-n", b, "link", "set", f"{name}b", "up")


def client_node_endpoints(names: dict[str, str], base: str, link: str) -> None:
    """Namespaces ``names["c"]``, ``["n"]``, ``["e1"]``, ``["e2"]`` wired as a client and a node on
    ``base``.0/25 (.10 and .1) and two endpoints behind the node on /30s of their own (.130 via .129, .134
    via .133; veths ``{link}c``, ``{link}1``, ``{link}2``), forwarding on in the node."""
    for ns in names.values():
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    veth(names["c"], f"{base}.10/25", names["n"], f"{base}.1/25", f"{link}c")
    veth(names["n"], f"{base}.129/30", names["e1"], f"{base}.130/30", f"{link}1")
    veth(names["n"], f"{base}.133/30", names["e2"], f"{base}.134/30", f"{link}2")
    sh("ip", "-n", names["e1"], "route", "add", "default", "via", f"{base}.129")
    sh("ip", "-n", names["e2"], "route", "add", "default", "via", f"{base}.133")
    sh("ip", "netns", "exec", names["n"], "sysctl", "-qw", "net.ipv4.ip_forward=1")


def test_rendered_rules_balance_new_connections_over_both_endpoints():
    names = {k: f"{P}{k}" for k in ("c", "n", "e1", "e2")}
    for ns in names.values():
        sh("ip", "netns", "del", ns, check=False)
    servers: list[subprocess.Popen] = []
    try:
        client_node_endpoints(names, "10.57.0", "v")
        for key in ("e1", "e2"):
            proc = subprocess.Popen(
                ["ip", "netns", "exec", names[key], sys.executable, "-u", "-c", SERVER, key],
                stdout=subprocess.PIPE,
                text=True,
            )
            servers.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        port = IngressPort(8080, 80, "tcp", (Backend("10.57.0.130", True), Backend("10.57.0.134", True)))
        node = ("ip", "netns", "exec", names["n"])
        sh(*node, "iptables-restore", "-w", "--noflush", stdin=render_ingress([port]))
        sh(*node, "iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-j", SERVICES_CHAIN)
        # Applying the same text again replaces the chains (atomic, idempotent): no duplicate rules.
        sh(*node, "iptables-restore", "-w", "--noflush", stdin=render_ingress([port]))
        assert sh(*node, "iptables", "-w", "-t", "nat", "-S").count("-j DNAT") == 2
        out = sh("ip", "netns", "exec", names["c"], sys.executable, "-c", CLIENT, "10.57.0.1", "200")
        seen = json.loads(out)
        print("connections per endpoint:", seen)
        assert sum(seen.values()) == 200 and set(seen) == {"e1", "e2"}
        # 200 fair coin flips: each side beyond 60 with probability ~1e-8.
        assert min(seen.values()) > 60, seen
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        for ns in names.values():
            sh("ip", "netns", "del", ns, check=False)
