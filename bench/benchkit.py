"""Shared pieces of the sandbox benchmarks: the API client, polling, and forming the cluster (root).

Imported by bench scripts run as ``python bench/NAME.py`` (this folder is then on ``sys.path``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from p2porch.sandbox.cluster import JOIN_PARALLEL, Formation, form_cluster
from p2porch.sandbox.sandbox import Sandbox, SandboxNode

P2PORCH = [sys.executable, "-m", "p2porch"]


def client(node: SandboxNode, timeout_s: float = 30.0) -> httpx.Client:
    """A client for a host's control API; paths are relative to /v1."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket),
        base_url="http://p2porch/v1",
        timeout=timeout_s,
    )


def wait_until(
    predicate: Callable[[], Any],
    timeout_s: float,
    what: str,
    poll_s: float,
    retry_on: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError),
) -> Any:
    """Poll until ``predicate`` is truthy (errors in ``retry_on`` mean not yet); RuntimeError on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except retry_on:
            result = None
        if result:
            return result
        time.sleep(poll_s)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def init_and_join(sb: Sandbox, nodes: list[SandboxNode], parallel: int = JOIN_PARALLEL) -> Formation:
    """Init on the first node and join the others through it, ``parallel`` joins at a time, over each
    node's API socket (readiness: the caller's); returns how long init and each join took. A node
    that could not join at all fails the benchmark, naming the node and its last error."""
    formation = form_cluster(nodes, parallel=parallel)
    if formation.failed:
        raise RuntimeError(f"nodes failed to join: {formation.failed}")
    return formation


def init_and_join_cli(sb: Sandbox, nodes: list[SandboxNode]) -> Formation:
    """The same with ``p2porch init`` / ``p2porch join`` CLI processes, one join after the other."""
    started = time.monotonic()
    init = sb.exec(nodes[0].name, [*P2PORCH, "--json", "init"], capture=True)
    if init.returncode != 0:
        raise RuntimeError(f"init failed: {init.stderr.decode()}")
    token = json.loads(init.stdout)["token"]
    formation = Formation(token=token, init_s=time.monotonic() - started)
    for node in nodes[1:]:
        t0 = time.monotonic()
        joined = sb.exec(node.name, [*P2PORCH, "join", nodes[0].address, "--token", token], capture=True)
        if joined.returncode != 0:
            raise RuntimeError(f"join of {node.name} failed: {joined.stderr.decode()}")
        formation.join_s[node.name] = time.monotonic() - t0
    formation.formed_s = time.monotonic() - started
    return formation
