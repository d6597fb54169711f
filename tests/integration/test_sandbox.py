"""The multi-host sandbox: separate hosts on one machine, each with its own dockerd and daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from p2porch.errors import SandboxError
from p2porch.sandbox import sandbox as sandbox_module
from p2porch.sandbox.dockerd import BUSYBOX_IMAGE, docker
from p2porch.sandbox.leftovers import cgroup_dirs
from p2porch.sandbox.sandbox import Sandbox
from p2porch.sandbox.system import pid_alive, read_pid, run


def leftovers(sb: Sandbox) -> dict[str, list[str]]:
    """Everything of this sandbox still in the kernel, the mount table, the process table or on disk."""
    netns = [
        line.split()[0]
        for line in run(["ip", "netns", "list"]).stdout.decode().splitlines()
        if line.startswith(f"{sb.name}-")
    ]
    links = [
        line.split()[0]
        for line in run(["ip", "-br", "link"]).stdout.decode().splitlines()
        if line.startswith(f"{sb.name}-")
    ]
    with open("/proc/self/mountinfo") as handle:
        mounts = [line.split()[4] for line in handle if "p2porch-sandbox/" + sb.name in line]
    rules = [r for r in run(["iptables", "-S", "FORWARD"]).stdout.decode().splitlines() if sb.bridge in r]
    dirs = [d for d in (sb.run_root, sb.data_root) if os.path.exists(d)]
    dirs += [d for i in range(1, 4) for d in cgroup_dirs(sb.node(i).cgroup_parent)]  # the engines' cgroups
    return {"netns": netns, "links": links, "mounts": mounts, "rules": rules, "dirs": dirs}


def assert_clean(sb: Sandbox) -> None:
    assert leftovers(sb) == {"netns": [], "links": [], "mounts": [], "rules": [], "dirs": []}


def processes_in(netns_inodes: set[int]) -> set[tuple[int, str]]:
    """(pid, start time) of every live process whose network namespace is one of ``netns_inodes``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            inode = os.stat(f"/proc/{entry}/ns/net").st_ino
            with open(f"/proc/{entry}/stat") as handle:
                start = handle.read().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            continue
        if inode in netns_inodes and pid_alive(int(entry)):
            found.add((int(entry), start))
    return found


def still_running(seen: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of ``seen`` that still run (the same pid with the same start time, not a zombie)."""
    alive = set()
    for pid, start in seen:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                same = handle.read().rsplit(")", 1)[1].split()[19] == start
        except (OSError, IndexError):
            continue
        if same and pid_alive(pid):
            alive.add((pid, start))
    return alive


@pytest.fixture(scope="module")
def cluster():
    sb = Sandbox("p2it", subnet="10.76.0.0/24")
    try:
        nodes = sb.up(3)
        yield sb, nodes
    finally:
        sb.down()


def test_three_hosts_with_separate_dockerds_and_daemons(cluster):
    sb, nodes = cluster
    statuses = sb.ls()
    assert [s.node for s in statuses] == ["n1", "n2", "n3"]
    assert all(s.dockerd_up and s.daemon_up for s in statuses)
    assert len({s.dockerd_pid for s in statuses}) == 3
    ids = {}
    for node in nodes:
        assert docker(node.dockerd, "image", "inspect", BUSYBOX_IMAGE, check=False).returncode == 0
        out = docker(node.dockerd, "run", "-d", "--name", f"probe-{node.name}", BUSYBOX_IMAGE, "sleep", "300")
        ids[node.name] = out.stdout.decode().strip()
    for node in nodes:
        visible = docker(node.dockerd, "ps", "-q", "--no-trunc").stdout.decode().split()
        assert visible == [ids[node.name]], f"{node.name} sees containers of other nodes"


def test_hosts_reach_each_other_over_the_underlay(cluster):
    sb, nodes = cluster
    for src in nodes:
        for dst in nodes:
            if src is dst:
                continue
            result = sb.exec(src.name, ["busybox", "ping", "-c", "1", "-W", "2", dst.address], capture=True)
            assert result.returncode == 0, result.stdout + result.stderr
    # eth0 inside the namespace carries the node's own address and nothing of the root namespace.
    addrs = sb.exec("n2", ["ip", "-br", "-4", "addr", "show", "eth0"], capture=True).stdout.decode()
    assert "10.76.0.2/24" in addrs


def test_daemon_in_each_host_answers_through_sandbox_exec(cluster):
    sb, nodes = cluster
    for node in nodes:
        result = sb.exec(node.name, [sys.executable, "-m", "p2porch", "status", "--json"], capture=True)
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["node"]["name"] == node.name
        assert status["node"]["advertise_addr"] == node.address


def test_up_is_idempotent(cluster):
    sb, _ = cluster
    before = {s.node: (s.dockerd_pid, s.daemon_pid) for s in sb.ls()}
    sb.up(3)
    after = {s.node: (s.dockerd_pid, s.daemon_pid) for s in sb.ls()}
    assert before == after


def test_down_leaves_nothing_behind():
    sb = Sandbox("p2id", subnet="10.75.0.0/24", start_daemons=False)
    try:
        nodes = sb.up(2)
        docker(nodes[0].dockerd, "run", "-d", BUSYBOX_IMAGE, "sleep", "300")
        pids = [read_pid(n.dockerd.pidfile) for n in nodes]
        assert all(p and pid_alive(p) for p in pids)
    finally:
        sb.down()
    assert_clean(sb)
    assert not any(p and pid_alive(p) for p in pids)


def test_down_after_its_dockerd_was_killed_leaves_no_process_of_its_containers():
    """kill -9 of a host's dockerd with running containers (a crash test, scripts/demo.sh), then `down`:
    no process of the host's namespace or of a container's (each has its own) is left. Before h52 the
    containers' processes outlived their shims, parented to init: nothing removed the containers. One
    container is paused (frozen: it acts on SIGKILL only once thawed); before h52fixh it survived `down`."""
    sb = Sandbox("p52k", subnet="10.95.49.0/24", start_daemons=False)
    try:
        (node,) = sb.up(1)
        serve = "mkdir -p /www && (sleep 100001 &) && exec httpd -f -p 80 -h /www"
        for argv in (
            ["--network", "none", BUSYBOX_IMAGE, "sleep", "100000"],
            [BUSYBOX_IMAGE, "sh", "-c", serve],
        ):
            docker(node.dockerd, "run", "-d", *argv)
        ids = docker(node.dockerd, "ps", "-q").stdout.decode().split()
        inspected = json.loads(docker(node.dockerd, "inspect", *ids).stdout)
        assert len(inspected) == 2 and all(c["State"]["Running"] for c in inspected), inspected
        inodes = {os.stat(f"/var/run/netns/{node.netns}").st_ino}
        inodes |= {os.stat(f"/proc/{c['State']['Pid']}/ns/net").st_ino for c in inspected}
        assert len(inodes) == 3  # the host's namespace and one per container
        deadline = time.monotonic() + 10  # the server's backgrounded sleep
        while len(seen := processes_in(inodes)) < 4 + 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # dockerd, containerd, 2 shims; sleep; httpd and its sleep
        dockerd = read_pid(node.dockerd.pidfile)
        assert dockerd is not None
        assert {dockerd, *(c["State"]["Pid"] for c in inspected)} <= {pid for pid, _ in seen}, seen
        docker(node.dockerd, "pause", ids[0])
        os.kill(dockerd, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(dockerd) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(dockerd)
    finally:
        sb.down()
    assert still_running(seen) == set()
    assert_clean(sb)  # the engine's cgroups removed: a cgroup with a process in it cannot be


def test_failed_up_cleans_up_halfway_state(monkeypatch):
    sb = Sandbox("p2if", subnet="10.74.0.0/24", start_daemons=False)
    calls = []

    def failing_image(paths):
        calls.append(paths)
        if len(calls) == 2:
            raise SandboxError("injected failure while importing the image on node 2")
        return real_image(paths)

    real_image = sandbox_module.ensure_busybox_image
    monkeypatch.setattr(sandbox_module, "ensure_busybox_image", failing_image)
    try:
        with pytest.raises(SandboxError, match="injected failure"):
            sb.up(3)
        assert len(calls) == 2
        assert_clean(sb)
    finally:
        sb.down()


def test_cli_up_exec_ls_down():
    env = {**os.environ}
    base = [sys.executable, "-m", "p2porch", "sandbox", "--name", "p2ic"]
    try:
        up = subprocess.run(
            [*base, "up", "--nodes", "1", "--subnet", "10.73.0.0/24", "--no-daemons"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert up.returncode == 0, up.stderr
        assert "n1" in up.stdout and "10.73.0.1" in up.stdout
        ex = subprocess.run(
            [*base, "exec", "n1", "--", "sh", "-c", "echo $DOCKER_HOST; ip -br -4 addr show eth0"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert ex.returncode == 0
        assert "/run/p2porch-sandbox/p2ic/n1/docker.sock" in ex.stdout and "10.73.0.1/24" in ex.stdout
        bad = subprocess.run([*base, "exec", "n9", "--", "true"], capture_output=True, text=True, env=env)
        assert bad.returncode == 1 and "no sandbox node 'n9'" in bad.stderr
        listed = json.loads(subprocess.run([*base, "ls", "--json"], capture_output=True, text=True).stdout)
        assert [n["node"] for n in listed] == ["n1"] and listed[0]["dockerd_up"]
    finally:
        down = subprocess.run([*base, "down"], capture_output=True, text=True, env=env, timeout=300)
    assert down.returncode == 0, down.stderr
    assert_clean(Sandbox("p2ic"))


def test_init_through_exec_on_a_sandbox_without_daemons_keeps_the_daemon_in_the_sandbox():
    """The h50 journey: `up --no-daemons`, then README's `init` through `sandbox exec`. The daemon init
    started took the machine's /var/lib/p2porch (every host's, kept by `down`) and its hostname as the
    node's name; it now takes the host's data dir and name, `ls` and `up` see it, `down` stops it."""
    base = [sys.executable, "-m", "p2porch", "sandbox", "--name", "p2nd"]
    sb = Sandbox("p2nd")
    pid = None
    try:
        up = [*base, "up", "--nodes", "1", "--subnet", "10.72.0.0/24", "--no-daemons"]
        assert subprocess.run(up, capture_output=True, text=True, timeout=300).returncode == 0
        init = subprocess.run(
            [*base, "exec", "n1", "--", "p2porch", "--json", "init", "--advertise-addr", "10.72.0.1"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert init.returncode == 0, init.stderr
        node = sb.node_by_name("n1")
        pid = node.daemon_pid()
        assert pid is not None and os.path.exists(os.path.join(node.p2porch_data_dir, "cluster.json"))
        status = subprocess.run(
            [*base, "exec", "n1", "--", "p2porch", "--json", "status"], capture_output=True, text=True
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["node"]["name"] == "n1"
        assert [(s.node, s.daemon_up, s.daemon_pid) for s in sb.ls()] == [("n1", True, pid)]
        again = subprocess.run([*base, "up"], capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr  # the running daemon is kept, not started twice
        assert node.daemon_pid() == pid
    finally:
        down = subprocess.run([*base, "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert_clean(sb)
    assert pid is not None and not pid_alive(pid)
