"""Shared helpers of the sandbox cluster tests: form a cluster, run the CLI in a host, call its API, wait,
kill and revive a node. Each test file keeps its own sandbox prefix and subnet (``cluster_fixture``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from p2porch.errors import SandboxError
from p2porch.sandbox.dockerd import docker_ping, start_dockerd
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

P2PORCH = [sys.executable, "-m", "p2porch"]
IMAGE = "p2porch/busybox:latest"
RETRYABLE: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError, KeyError, ValueError)


def cli(sb: Sandbox, node: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``p2porch ARGS`` inside a sandbox host (its P2PORCH_HOST and DOCKER_HOST are set)."""
    return sb.exec(node, [*P2PORCH, *args], capture=True)


def cli_json(sb: Sandbox, node: str, *args: str) -> Any:
    """``p2porch --json ARGS`` (the flag goes first: after IMAGE it would become part of CMD)."""
    result = cli(sb, node, "--json", *args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def api(node: SandboxNode) -> httpx.Client:
    """A client for a host's control API; paths are relative to /v1."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket), base_url="http://p2porch/v1", timeout=15
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
        # the same call sb.up makes, but a slow restore must not make sb.up tear everything down
        with contextlib.suppress(SandboxError):
            start_dockerd(node.netns, node.dockerd, cgroup_parent=f"/p2porch-{sb.name}-{node.name}")
        wait_for(
            lambda: docker_ping(node.dockerd),
            120,
            f"dockerd of {node.name} answering",
            interval_s=1.0,
            retry_on=(SandboxError,),
        )
    sb.up(len(nodes))
    other = next(n for n in nodes if n is not node)
    for via in (other, node):
        wait_for(lambda via=via: all_ready(via, len(nodes)), 120, f"{node.name} ready again (via {via.name})")


def leader_node(nodes: list[SandboxNode]) -> SandboxNode:
    """The node whose Raft address the first reachable node names as leader."""
    for via in nodes:
        try:
            addr = api_get(via, "/status")["cluster"]["leader"]
        except RETRYABLE:
            continue
        return next(n for n in nodes if n.address == addr.rsplit(":", 1)[0])
    raise AssertionError("no node answers /status")
