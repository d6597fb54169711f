"""Network isolation rules in a real kernel, without dockerd: who may connect to whom, measured.

A router namespace ``p2np-r`` holds a Linux bridge (the node's ``p2p-br0`` stand-in, lease 10.27.0.0/26)
with three "task" namespaces on it, and a "remote task" namespace routed through it (10.27.0.66, as
if it arrived over the VXLAN device). Each task listens on TCP 8080. The plan of
``netoverlay.netpolicy`` is applied with the real ``PolicyFirewall``; connections are then attempted
for real: between tasks sharing a network they connect, otherwise they are refused (a TCP reset, measured
in milliseconds); same-bridge traffic is policed too (bridge netfilter). Moving a task to another network
changes the verdict on the next apply; the chains are rewritten only when they differ, a task elsewhere
is one set entry, stale sets go, the jump is put back first, a set emptied by hand is refilled by the
resync, and ``remove`` leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from p2porch.netoverlay.firewall import Firewall
from p2porch.netoverlay.netpolicy import (
    JUMP_COMMENT,
    POLICY_CHAIN,
    PolicyInput,
    network_set,
    plan_policy,
)
from p2porch.netoverlay.policy_firewall import PolicyFirewall
from p2porch.netoverlay.policy_sets import KeptPolicy

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, iptables)"),
    pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed"),
    pytest.mark.skipif(shutil.which("ipset") is None, reason="ipset is not installed (scripts/install.sh)"),
]

PREFIX = "p2np"
ROUTER = f"{PREFIX}-r"
CLUSTER = "10.27.0.0/24"
LEASE = "10.27.0.0/26"
TASKS = {"t1": "10.27.0.2", "t2": "10.27.0.3", "t3": "10.27.0.4"}
REMOTE = ("rm", "10.27.0.66")
OUTSIDE = ("out", "10.27.0.200")  # outside the cluster CIDR of the internal-network test (10.27.0.0/25)
PORT = 8080

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(b"hello"); c.close()
"""


def sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


def ns(name: str) -> str:
    return f"{PREFIX}-{name}"


def in_ns(name: str, *argv: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", name, *argv, check=check)


def connect(src: str, dst: str) -> tuple[str, float]:
    """Connect from namespace ``src`` to ``dst``:8080: ("ok" | "refused" | "timeout" | error, seconds)."""
    code = (
        "import socket, time, sys\n"
        "t = time.monotonic()\n"
        "try:\n"
        f"    c = socket.create_connection(({dst!r}, {PORT}), timeout=3); data = c.recv(5)\n"
        "    print('ok' if data == b'hello' else 'short', time.monotonic() - t)\n"
        "except ConnectionRefusedError:\n"
        "    print('refused', time.monotonic() - t)\n"
        "except TimeoutError:\n"
        "    print('timeout', time.monotonic() - t)\n"
        "except OSError as e:\n"
        "    print(type(e).__name__, time.monotonic() - t)\n"
    )
    out = in_ns(ns(src), sys.executable, "-c", code).split()
    return out[0], float(out[1])


def routed(host: tuple[str, str], router_port: str, gateway: str) -> None:
    """Namespace ``host`` (name, address) on its own /26 behind ``router_port`` (the router's ``gateway``)."""
    name, addr = host
    sh("ip", "link", "add", router_port, "netns", ROUTER, "type", "veth", "peer", "eth0", "netns", ns(name))
    in_ns(ROUTER, "ip", "addr", "add", f"{gateway}/26", "dev", router_port)
    in_ns(ROUTER, "ip", "link", "set", router_port, "up")
    in_ns(ns(name), "ip", "addr", "add", f"{addr}/26", "dev", "eth0")
    in_ns(ns(name), "ip", "link", "set", "eth0", "up")
    in_ns(ns(name), "ip", "route", "add", "default", "via", gateway)


@pytest.fixture(scope="module")
def lab():
    servers: list[subprocess.Popen[bytes]] = []
    names = [ROUTER, *(ns(t) for t in TASKS), ns(REMOTE[0]), ns(OUTSIDE[0])]
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            in_ns(name, "ip", "link", "set", "lo", "up")
        in_ns(ROUTER, "ip", "link", "add", "br0", "type", "bridge")
        in_ns(ROUTER, "ip", "addr", "add", "10.27.0.1/26", "dev", "br0")
        in_ns(ROUTER, "ip", "link", "set", "br0", "up")
        in_ns(ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        in_ns(ROUTER, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        for i, (task, addr) in enumerate(TASKS.items()):
            sh(
                "ip",
                "link",
                "add",
                f"{PREFIX}-v{i}",
                "netns",
                ROUTER,
                "type",
                "veth",
                "peer",
                "eth0",
                "netns",
                ns(task),
            )
            in_ns(ROUTER, "ip", "link", "set", f"{PREFIX}-v{i}", "master", "br0", "up")
            in_ns(ns(task), "ip", "addr", "add", f"{addr}/26", "dev", "eth0")
            in_ns(ns(task), "ip", "link", "set", "eth0", "up")
            in_ns(ns(task), "ip", "route", "add", "default", "via", "10.27.0.1")
        routed(REMOTE, f"{PREFIX}-vr", "10.27.0.126")
        routed(OUTSIDE, f"{PREFIX}-vo", "10.27.0.254")
        for task, addr in [*TASKS.items(), REMOTE, OUTSIDE]:
            servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", ns(task), sys.executable, "-c", SERVER, addr, str(PORT)]
                )
            )
        for task, addr in TASKS.items():  # everyone reaches everyone before any policy
            deadline = time.monotonic() + 10
            while connect(REMOTE[0], addr)[0] != "ok":
                assert time.monotonic() < deadline, f"{task} does not listen"
                time.sleep(0.1)
        yield PolicyFirewall(Firewall(netns=ROUTER))
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def plan(layout: dict[str, set[str]]):
    return plan_policy(PolicyInput(CLUSTER, LEASE, mapping(layout)))


def mapping(layout: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    addresses = {**TASKS, REMOTE[0]: REMOTE[1]}
    return {addresses[t]: frozenset(nets) for t, nets in layout.items()}


LAYOUT = {"t1": {"red"}, "t2": {"blue"}, "t3": {"red", "blue"}, "rm": {"red"}}


def test_tasks_connect_only_within_a_shared_network(lab: PolicyFirewall) -> None:
    changes = lab.apply(plan(LAYOUT))
    assert changes and any("rewrote" in c for c in changes)
    expected = {
        ("t2", "t1"): "refused",  # same bridge, different networks: bridge netfilter polices it
        ("t3", "t1"): "ok",  # on red and blue
        ("t3", "t2"): "ok",
        ("t1", "t3"): "ok",
        ("rm", "t1"): "ok",  # a remote red task, routed in
        ("rm", "t2"): "refused",
    }
    measured = {pair: connect(pair[0], TASKS[pair[1]]) for pair in expected}
    print("connection results (verdict, seconds):", measured)
    assert {pair: verdict for pair, (verdict, _) in measured.items()} == expected
    assert all(seconds < 1.0 for verdict, seconds in measured.values() if verdict == "refused")


def test_a_second_apply_changes_nothing(lab: PolicyFirewall) -> None:
    lab.apply(plan(LAYOUT))
    assert lab.apply(plan(LAYOUT)) == []


def test_moving_a_task_changes_the_verdict_and_stale_chains_go(lab: PolicyFirewall) -> None:
    moved = {"t1": {"red"}, "t2": {"red"}, "t3": {"red"}, "rm": {"red"}}
    changes = lab.apply(plan(moved))
    assert f"destroyed set {network_set('blue')}" in changes
    assert connect("t2", TASKS["t1"])[0] == "ok"
    lab.apply(plan(LAYOUT))
    assert connect("t2", TASKS["t1"])[0] == "refused"


def test_a_jump_pushed_down_or_a_flushed_chain_is_repaired(lab: PolicyFirewall) -> None:
    lab.apply(plan(LAYOUT))
    forward = lab.fw.forward_chain()
    in_ns(ROUTER, "iptables", "-w", "-I", forward, "1", "-j", "ACCEPT")  # something put above the jump
    in_ns(ROUTER, "iptables", "-w", "-F", POLICY_CHAIN)  # and the policy emptied by hand
    assert connect("t2", TASKS["t1"])[0] == "ok"
    changes = lab.apply(plan(LAYOUT))
    assert any("first in" in c for c in changes) and any("rewrote" in c for c in changes)
    in_ns(ROUTER, "iptables", "-w", "-D", forward, "-j", "ACCEPT")
    assert in_ns(ROUTER, "iptables", "-w", "-S", forward).splitlines()[1].endswith(f"-j {POLICY_CHAIN}")
    assert connect("t2", TASKS["t1"])[0] == "refused"


def test_remove_leaves_nothing(lab: PolicyFirewall) -> None:
    lab.apply(plan(LAYOUT))
    assert lab.remove() >= 3
    listing = in_ns(ROUTER, "iptables", "-w", "-S")
    assert "P2P-NET" not in listing and JUMP_COMMENT not in listing
    assert not [n for n in in_ns(ROUTER, "ipset", "list", "-n").split() if n.startswith("p2p-")]
    assert connect("t2", TASKS["t1"])[0] == "ok"


def test_a_task_elsewhere_is_one_set_entry_and_a_set_emptied_by_hand_is_refilled(lab: PolicyFirewall) -> None:
    lab.apply(plan(LAYOUT))
    grown = {**LAYOUT, "rm": {"red", "blue"}}  # the remote task joins blue: the rules stay the same
    assert lab.apply(plan(grown)) == ["wrote 1 set entries"]
    assert connect("rm", TASKS["t2"])[0] == "ok"
    in_ns(ROUTER, "ipset", "flush", network_set("red"))  # by hand, under a running daemon
    assert connect("rm", TASKS["t1"])[0] == "refused"
    assert lab.apply(plan(grown)) == []  # trusted between resyncs
    assert lab.apply(plan(grown), verify=True) == ["wrote 3 set entries"]  # red's members: t1, t3, rm
    assert connect("rm", TASKS["t1"])[0] == "ok"
    lab.apply(plan(LAYOUT))
    assert connect("rm", TASKS["t2"])[0] == "refused"


def test_apply_cost_for_a_thousand_tasks(lab: PolicyFirewall) -> None:
    """Not a timing assertion: prints what one full rewrite costs at 1,000 tasks on 20 networks."""
    endpoints = {
        f"10.27.{i // 250}.{i % 250 + 2}": frozenset({f"net{i % 20}", f"net{(i * 7) % 20}"})
        for i in range(1000)
    }
    big = plan_policy(PolicyInput("10.27.0.0/22", LEASE, endpoints))  # rule text only: no traffic there
    started = time.monotonic()
    lab.apply(big)
    first = time.monotonic() - started
    started = time.monotonic()
    assert lab.apply(big) == []
    check = time.monotonic() - started
    print(f"1000 tasks: {big.rule_count} rules; rewrite {first * 1000:.0f} ms, check {check * 1000:.0f} ms")
    remote = {"10.27.3.253": frozenset({"net1"})}  # above every address of the 1,000
    grown = plan_policy(PolicyInput("10.27.0.0/22", LEASE, {**endpoints, **remote}))
    assert grown.text == big.text  # a task elsewhere changes no rule
    started = time.monotonic()
    assert lab.apply(grown) == ["wrote 2 set entries"]  # p2p-tasks, and net1's set (a local network)
    print(f"1000 tasks: one task elsewhere {(time.monotonic() - started) * 1000:.0f} ms")
    lab.apply(plan(LAYOUT))
    assert connect("t2", TASKS["t1"])[0] == "refused"


def test_tasks_on_internal_networks_only_cannot_leave_the_cluster(lab: PolicyFirewall) -> None:
    layout = {"t1": {"vault"}, "t2": {"blue"}, "t3": {"vault", "red"}, "rm": {"red"}}
    lab.apply(plan_policy(PolicyInput("10.27.0.0/25", LEASE, mapping(layout), frozenset({"vault"}))))
    assert connect("t1", OUTSIDE[1])[0] == "refused"  # only on an internal network
    assert connect("t3", OUTSIDE[1])[0] == "ok"  # also on a network that is not internal
    assert connect("t2", OUTSIDE[1])[0] == "ok"
    assert connect("t3", TASKS["t1"])[0] == "ok"  # inside the cluster the internal network works
    lab.apply(plan(LAYOUT))


def test_kept_plans_write_their_edits_only_and_the_resync_finds_them_right(lab: PolicyFirewall) -> None:
    """The member's path (``KeptPolicy``): the first plan is written whole, then each change is its
    set edits only (no ``ipset save``); the verdicts follow and a resync finds nothing to repair."""
    lab.apply(plan(LAYOUT))
    addresses = mapping(LAYOUT)
    kept = KeptPolicy(CLUSTER, LEASE, frozenset(), addresses)
    assert lab.apply(kept.plan(), verify=True) == []  # the full plan's rules and sets exactly
    assert connect("rm", TASKS["t2"])[0] == "refused"
    moved = {**addresses, REMOTE[1]: frozenset({"blue"})}  # the remote task moves to blue
    kept.set_address(REMOTE[1], moved[REMOTE[1]], moved)
    step = kept.plan()
    assert step.edits is not None and step.text == plan(LAYOUT).text
    assert lab.apply(step) == ["wrote 2 set entries"]  # out of red's set, into blue's
    assert connect("rm", TASKS["t2"])[0] == "ok"
    assert connect("rm", TASKS["t1"])[0] == "refused"
    assert lab.apply(step, verify=True) == []  # the kernel holds exactly the full plan's sets
    assert dict(step.sets) == dict(plan_policy(PolicyInput(CLUSTER, LEASE, moved)).sets)
    lab.apply(plan(LAYOUT))
