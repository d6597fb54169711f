"""Shared helpers of the sandbox cluster tests: form a cluster, run the CLI in a host, call its API, wait,
kill and revive a node, create a service for a block, read its tasks and containers, query DNS and HTTP
from a host. Each test file keeps its own sandbox prefix and subnet (``cluster_fixture``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from p2porch.errors import SandboxError
from p2porch.model import TERMINAL_STATES
from p2porch.sandbox.dockerd import docker, start_dockerd
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import find_program, pid_alive, read_pid

P2PORCH = [sys.executable, "-m", "p2porch"]
IMAGE = "p2porch/busybox:latest"


class StaleRead(Exception):
    """A CLI read its node's read barrier refused (StaleReadRefused: no round committed in time, the node
    restarting, catching up or mid-election): a poll reads again."""


RETRYABLE: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError, KeyError, ValueError, StaleRead)
# busybox httpd as PID 1 ignores SIGTERM: a short grace keeps stops fast.
FAST_STOP = ("--stop-grace-period", "1s")
# A page that names the version (env V) and the node, served on port 80.
SERVE = 'mkdir -p /www && echo "v=$V node=$P2PORCH_NODE" > /www/index.html && exec httpd -f -p 80 -h /www'
# DNS round robin: a test that reads the task set from a name's answers needs it (a VIP hides it).
DNSRR = ("--endpoint-mode", "dnsrr")


def cli(sb: Sandbox, node: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``p2porch ARGS`` inside a sandbox host (its P2PORCH_HOST and DOCKER_HOST are set)."""
    return sb.exec(node, [*P2PORCH, *args], capture=True)


def stack_deploy(
    sb: Sandbox, file: Path, stack: str, wait_timeout_s: int = 60
) -> subprocess.CompletedProcess[bytes]:
    """``p2porch --json stack deploy --wait-timeout S -c FILE STACK`` on n1, as a user types it."""
    return cli(
        sb, "n1", "--json", "stack", "deploy", "--wait-timeout", str(wait_timeout_s), "-c", str(file), stack
    )


def cli_json(sb: Sandbox, node: str, *args: str) -> Any:
    """``p2porch --json ARGS`` (the flag goes first: after IMAGE it would become part of CMD)."""
    result = cli(sb, node, "--json", *args)
    if result.returncode != 0 and b"holds every committed write" in result.stderr:
        raise StaleRead(result.stderr.decode())
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def api(node: SandboxNode) -> httpx.Client:
    """A client for a host's control API; paths are relative to /v1. Plain HTTP over a unix socket: no
    TLS, so no CA bundle loaded (``verify=False``: the default context cost 40-80 ms of CPU per client on
    a loaded machine, paid by every poll of every wait, beside the cluster under test)."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket, verify=False),
        base_url="http://p2porch/v1",
        timeout=15,
    )


def api_get(node: SandboxNode, path: str, **params: str) -> Any:
    with api(node) as client:
        response = client.get(path, params=params)
        response.raise_for_status()
        return response.json()


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float = 60.0,
    what: str = "condition",
    interval_s: float = 0.2,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``predicate`` until it returns something truthy; errors in RETRYABLE (+ ``retry_on``) retry."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except RETRYABLE + retry_on as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def wait_retrying(
    predicate: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition", interval_s: float = 0.2
) -> Any:
    """:func:`wait_for` that also retries a failed docker call or a failed assertion in ``predicate``."""
    return wait_for(predicate, timeout_s, what, interval_s, retry_on=(SandboxError, AssertionError))


def all_ready(via: SandboxNode, count: int) -> bool:
    """``via`` lists ``count`` nodes, each ready, alive in gossip and holding an overlay subnet."""
    rows = api_get(via, "/nodes")
    return len(rows) == count and all(
        r["status"] == "ready" and r["gossip"] == "alive" and r["subnet"] for r in rows
    )


def form_cluster(sb: Sandbox, nodes: list[SandboxNode], timeout_s: float = 90.0) -> None:
    """``init`` on the first node, ``join`` of the others through it; waits until all are ready."""
    token = cli_json(sb, nodes[0].name, "init")["token"]
    for node in nodes[1:]:
        result = cli(sb, node.name, "join", nodes[0].address, "--token", token)
        assert result.returncode == 0, result.stderr.decode()
    wait_for(lambda: all_ready(nodes[0], len(nodes)), timeout_s, f"{len(nodes)} ready nodes")


@contextlib.contextmanager
def formed_cluster(
    prefix: str, subnet: str, size: int = 3, **sandbox_options: Any
) -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
    """A sandbox ``prefix`` on ``subnet`` with ``size`` hosts formed into one cluster; torn down after."""
    sb = Sandbox(prefix, subnet=subnet, **sandbox_options)
    try:
        nodes = sb.up(size)
        form_cluster(sb, nodes)
        yield sb, nodes
    finally:
        sb.down()


def cluster_fixture(prefix: str, subnet: str, size: int = 3, **sandbox_options: Any) -> Any:
    """A module-scoped pytest fixture yielding ``(sandbox, nodes)`` of :func:`formed_cluster`."""

    @pytest.fixture(scope="module")
    def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
        with formed_cluster(prefix, subnet, size, **sandbox_options) as formed:
            yield formed

    return cluster


def compose_sample_fixture(prefix: str, subnet: str, images: Sequence[str], files: Mapping[str, str]) -> Any:
    """A module-scoped pytest fixture for a real-world Compose sample's deploy test: ``(sandbox, node,
    workdir)`` of a formed one-node sandbox whose engine has the busybox image tagged as each of
    ``images`` (no registry), and a directory holding ``files`` (relative path -> text)."""

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, SandboxNode, Path]]:
        with formed_cluster(prefix, subnet, 1) as (sb, nodes):
            for image in images:
                docker(nodes[0].dockerd, "tag", IMAGE, image)
            workdir = tmp_path_factory.mktemp(prefix)
            for relative, text in files.items():
                (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
                (workdir / relative).write_text(text)
            yield sb, nodes[0], workdir

    return cluster


def wait_in_stack(predicate: Callable[[], Any], what: str) -> Any:
    """:func:`wait_for` as the stack sample tests wait: 90 s, a failed assertion retried."""
    return wait_for(predicate, 90.0, what, 0.3, retry_on=(AssertionError,))


def kill_node(node: SandboxNode) -> float:
    """``kill -9`` of a host's p2porch daemon and its dockerd (both must run); returns the monotonic
    time of the kill once both processes are gone."""
    pids = [read_pid(node.p2porch_pidfile), read_pid(node.dockerd.pidfile)]
    assert all(p is not None and pid_alive(p) for p in pids), pids
    killed_at = time.monotonic()
    for pid in pids:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(p) for p in pids if p is not None), 10, "killed processes gone")
    return killed_at


def revive(sb: Sandbox, nodes: list[SandboxNode], node: SandboxNode) -> None:
    """Restart a killed node's dockerd and daemon; waits until it and another node see all ready again."""
    pid = read_pid(node.p2porch_pidfile)
    if pid is not None and not pid_alive(pid):
        os.unlink(node.p2porch_pidfile)
    docker_pid = read_pid(node.dockerd.pidfile)
    if docker_pid is None or not pid_alive(docker_pid):
        restart_dockerd(sb, node)
    sb.up(len(nodes))
    other = next(n for n in nodes if n is not node)
    for via in (other, node):
        wait_for(lambda via=via: all_ready(via, len(nodes)), 120, f"{node.name} ready again (via {via.name})")


def restart_dockerd(sb: Sandbox, node: SandboxNode, attempts: int = 3, timeout_s: float = 90.0) -> None:
    """Start a killed node's dockerd again, up to ``attempts`` times. An engine killed with running
    containers restores them on its start and has once not answered within two minutes on a loaded
    machine: each attempt that does not answer in ``timeout_s`` is stopped (``start_dockerd`` does) and
    started anew; if none answers, the error carries each attempt's dockerd log tail."""
    failures: list[str] = []
    for _ in range(attempts):
        try:
            start_dockerd(node.netns, node.dockerd, cgroup_parent=node.cgroup_parent, timeout_s=timeout_s)
        except SandboxError as exc:
            failures.append(str(exc))
            continue
        return
    raise AssertionError(
        f"dockerd of {node.name} did not answer after {attempts} starts: " + " | ".join(failures)
    )


def leader_node(nodes: list[SandboxNode]) -> SandboxNode:
    """The node whose Raft address the first reachable node names as leader."""
    for via in nodes:
        try:
            addr = api_get(via, "/status")["cluster"]["leader"]
        except RETRYABLE:
            continue
        return next(n for n in nodes if n.address == addr.rsplit(":", 1)[0])
    raise AssertionError("no node answers /status")


def leader_addr(node: SandboxNode) -> str | None:
    """The Raft address ``node`` names as leader (None while it knows none)."""
    return api_get(node, "/status")["cluster"].get("leader")


def node_at(nodes: list[SandboxNode], raft_addr: str) -> SandboxNode:
    """The node whose underlay address is the host part of ``raft_addr``."""
    host = raft_addr.rsplit(":", 1)[0]
    return next(n for n in nodes if n.address == host)


def leader_and_followers(nodes: list[SandboxNode]) -> tuple[SandboxNode, list[SandboxNode]]:
    """(leader, the others) once ``nodes[0]`` names a leader (within 30 s)."""
    leader = node_at(nodes, wait_for(lambda: leader_addr(nodes[0]), 30, "a leader"))
    return leader, [n for n in nodes if n is not leader]


def node_row(via: SandboxNode, name: str) -> dict:
    """Node ``name``'s row of ``via``'s ``/nodes``."""
    return next(r for r in api_get(via, "/nodes") if r["name"] == name)


@contextlib.contextmanager
def killed(sb: Sandbox, nodes: list[SandboxNode], node: SandboxNode) -> Iterator[float]:
    """Kill ``node`` for the duration of the block (yields the kill time); always revived afterwards."""
    try:
        yield kill_node(node)
    finally:
        revive(sb, nodes, node)


# ----------------------------------------------------------------------------- services, tasks, containers
def all_tasks(node: SandboxNode, service: str) -> list[dict]:
    """Every task record of ``service`` (history included), as ``service ps --json`` shows them."""
    return api_get(node, f"/services/{service}/tasks", all="true")


def tasks(node: SandboxNode, service: str) -> list[dict]:
    """Tasks of ``service`` that should run (no history)."""
    return api_get(node, f"/services/{service}/tasks", all="false")


def running_tasks(
    node: SandboxNode, service: str, count: int, timeout_s: float = 60.0, *, avoid: str = ""
) -> list[dict]:
    """Wait until exactly ``count`` tasks should run and all run with an address (none on the node
    named ``avoid``); return them by slot."""

    def done() -> list[dict] | None:
        current = tasks(node, service)
        ok = len(current) == count and all(
            t["state"] == "running" and t["address"] and t["node"] != avoid for t in current
        )
        return sorted(current, key=lambda t: t["slot"]) if ok else None

    return wait_for(done, timeout_s, f"{count} running tasks of {service}", retry_on=(SandboxError,))


def containers(node: SandboxNode, service: str, *, include_stopped: bool = False) -> list[dict]:
    """``docker inspect`` of the containers labelled with ``service`` on one node's engine."""
    argv = ["ps", "-q", "--no-trunc", "--filter", f"label=p2porch.service={service}"]
    if include_stopped:
        argv.insert(1, "-a")
    ids = docker(node.dockerd, *argv, timeout_s=20).stdout.decode().split()
    if not ids:
        return []
    # A container may go away between ps and inspect: inspect prints the ones it still finds.
    found = docker(node.dockerd, "inspect", *ids, check=False, timeout_s=20).stdout
    return json.loads(found) if found.strip() else []


def stack_container(node: SandboxNode, short: str) -> dict:
    """``docker inspect`` of a running main container of the stack service ``short`` (its Compose name)
    on ``node`` (not one of its task group's sidecars, which carry the task's labels too); AssertionError
    until one runs (for ``wait_for(..., retry_on=(AssertionError,))``)."""
    label = f"label=p2porch.stack.service={short}"
    ids = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", label).stdout.decode().split()
    text = docker(node.dockerd, "inspect", *ids, check=False).stdout if ids else b""
    found = json.loads(text) if text.strip() else []  # one may have gone between ps and inspect
    mains = [c for c in found if "p2porch.container" not in (c["Config"]["Labels"] or {})]
    assert mains, f"no running {short} container yet"
    return mains[0]


def stack_sidecar(node: SandboxNode, name: str) -> dict:
    """``docker inspect`` of a running sidecar ``name`` of a task group on ``node``; AssertionError until
    one runs."""
    ids = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", f"label=p2porch.container={name}")
    found = ids.stdout.decode().split()
    assert found, f"no running {name} sidecar yet"
    return json.loads(docker(node.dockerd, "inspect", found[0]).stdout)[0]


def container_sh(node: SandboxNode, cid: str, script: str) -> str:
    """The standard output of ``sh -c script`` in container ``cid`` (whatever its exit code)."""
    return docker(node.dockerd, "exec", cid, "sh", "-c", script, check=False, timeout_s=30).stdout.decode()


def running_containers(nodes: list[SandboxNode], service: str) -> dict[str, int]:
    """Running containers of ``service`` per node, straight from each node's engine."""
    out = {}
    for n in nodes:
        argv = ["ps", "-q", "--filter", f"label=p2porch.service={service}", "--filter", "status=running"]
        out[n.name] = len(docker(n.dockerd, *argv, timeout_s=20).stdout.split())
    return out


def remove_and_wait(nodes: list[SandboxNode], service: str) -> None:
    """Remove ``service`` (if it exists) and wait until no node has any of its containers.

    A replicated service is scaled to 0 first: its tasks then stop with the service's own stop grace
    period (removing the service alone removes them as orphans after 10 s). Scaled to 0, no container of
    it runs and every task is over or was never placed (a reservation no node meets); the containers of
    tasks that ended by themselves (a crash, a job done) stay for their logs while the cluster keeps the
    tasks' records, and go with the service."""

    def gone() -> bool:
        return not any(containers(n, service, include_stopped=True) for n in nodes)

    def over(task: dict) -> bool:  # ended, or never placed: a task no node took has no container to stop
        never_placed = task["node"] is None and task["desired_state"] != "running"
        return task["state"] in TERMINAL_STATES or never_placed

    def scaled_to_0() -> bool:
        ended = all(over(t) for t in all_tasks(nodes[0], service))
        return ended and not any(running_containers(nodes, service).values())

    with api(nodes[0]) as client:
        if client.post(f"/services/{service}/scale", json={"replicas": 0}).status_code == 200:
            wait_for(scaled_to_0, what=f"{service} scaled to 0", retry_on=(SandboxError,))
        response = client.delete(f"/services/{service}")
        assert response.status_code in (200, 404), response.text
    wait_for(gone, what=f"every container of {service} removed", retry_on=(SandboxError,))


@contextlib.contextmanager
def service(sb: Sandbox, nodes: list[SandboxNode], name: str, *args: str) -> Iterator[dict]:
    """``service create -d --name NAME ARGS`` (from n1) for the duration of the block, removed afterwards."""
    try:
        created = cli_json(sb, nodes[0].name, "service", "create", "-d", "--name", name, *args)
        assert created["name"] == name
        yield created
    finally:
        remove_and_wait(nodes, name)


def dnsrr_service(sb: Sandbox, nodes: list[SandboxNode], name: str, *args: str) -> Any:
    """:func:`service` with DNS round robin, for a test that reads the task set from a name's answers."""
    return service(sb, nodes, name, *DNSRR, *args)


class Sampler:
    """Samples a service's running containers on every node's engine in a thread (min and max seen),
    back to back or every ``every_s`` seconds."""

    def __init__(self, nodes: list[SandboxNode], service_name: str, every_s: float = 0.0) -> None:
        self.nodes, self.service, self.every_s = nodes, service_name, every_s
        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every_s):
            with contextlib.suppress(SandboxError, OSError):
                self.samples.append(sum(running_containers(self.nodes, self.service).values()))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


# ----------------------------------------------------------------------------- DNS and HTTP from a host
def dig_a(server: str, name: str) -> set[str]:
    """``dig @server name +short`` from the host namespace (the underlay is reachable from it)."""
    result = subprocess.run(
        ["dig", "+time=1", "+tries=1", f"@{server}", name, "+short"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if result.returncode != 0:
        raise OSError(f"dig @{server} {name}: {result.stdout.strip()} {result.stderr.strip()}")
    return set(result.stdout.split())


def http_get(node: SandboxNode, url: str) -> str | None:
    """GET ``url`` from inside ``node``'s namespace (overlay routes live there); the body, None on failure."""
    result = subprocess.run(
        [
            find_program("nsenter") or "nsenter",
            f"--net=/var/run/netns/{node.netns}",
            "timeout",
            "3",
            find_program("busybox") or "busybox",
            "wget",
            "-q",
            "-O-",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None
