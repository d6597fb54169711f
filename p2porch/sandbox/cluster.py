"""Forming a cluster out of a sandbox's hosts: ``init`` on the first, ``join`` on the rest at once (shell).

Owns only the API calls that form the cluster, over each host's own control socket (the daemons already
run: no CLI process per node), and the time each join took. Joins run concurrently, a few at a time
(``parallel``); every joiner asks the same member, which admits them one at a time (its membership lock)
and commits each admission through Raft; a failed join is tried again (twice). It never touches
namespaces, processes or cluster state itself.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import SandboxError
from .sandbox import SandboxNode

JOIN_PARALLEL = 8  # joins in flight at once: enough to overlap each joiner's own start-up
READY_POLL_S = 0.2
JOIN_ATTEMPTS = 3
JOIN_RETRY_S = 1.0


@dataclass
class Formation:
    """The formed cluster: its join token and how long init and each join took (seconds)."""

    token: str
    init_s: float
    join_s: dict[str, float] = field(default_factory=dict)
    formed_s: float = 0.0
    retries: int = 0  # joins tried again after a failed attempt

    def to_dict(self) -> dict[str, Any]:
        joins = sorted(self.join_s.values())
        return {
            "init_s": round(self.init_s, 3),
            "formed_s": round(self.formed_s, 3),
            "joins": len(joins),
            "retries": self.retries,
            "join_p50_s": round(joins[len(joins) // 2], 3) if joins else None,
            "join_max_s": round(joins[-1], 3) if joins else None,
            "join_s": {name: round(s, 3) for name, s in self.join_s.items()},
        }


def _client(node: SandboxNode, timeout_s: float) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket),
        base_url="http://p2porch/v1",
        timeout=timeout_s,
    )


def _post(node: SandboxNode, path: str, body: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    try:
        with _client(node, timeout_s) as client:
            response = client.post(path, json=body)
    except httpx.HTTPError as exc:
        raise SandboxError(f"{node.name}: {path} failed: {exc}") from exc
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message") or response.text)
        except (ValueError, AttributeError):
            message = response.text
        raise SandboxError(f"{node.name}: {path} failed: {message}")
    result: dict[str, Any] = response.json()
    return result


def form_cluster(nodes: list[SandboxNode], parallel: int = JOIN_PARALLEL) -> Formation:
    """``init`` on ``nodes[0]``, then every other node joins through it, ``parallel`` at a time."""
    if not nodes:
        raise SandboxError("no sandbox nodes to form a cluster of")
    started = time.monotonic()
    seed = nodes[0]
    token = str(_post(seed, "/cluster/init", {})["token"])
    formation = Formation(token=token, init_s=time.monotonic() - started)

    def join(node: SandboxNode) -> tuple[str, float]:
        for attempt in range(JOIN_ATTEMPTS):
            t0 = time.monotonic()
            try:
                _post(node, "/cluster/join", {"peer": seed.address, "token": token})
                return node.name, time.monotonic() - t0
            except SandboxError:
                # e.g. the admission did not commit in time on a starved machine: running the same
                # join again is safe, the member admits the same node again (admission_plan.py)
                if attempt + 1 == JOIN_ATTEMPTS:
                    raise
                formation.retries += 1
                time.sleep(JOIN_RETRY_S * (attempt + 1))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for name, seconds in pool.map(join, nodes[1:]):
            formation.join_s[name] = seconds
    formation.formed_s = time.monotonic() - started
    return formation


def wait_ready(node: SandboxNode, count: int, timeout_s: float = 120.0) -> float:
    """Wait until ``node`` lists ``count`` nodes, all ready with a subnet; returns the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout_s
    rows: Any = None
    with _client(node, 15.0) as client:
        while time.monotonic() < deadline:
            try:
                rows = client.get("/nodes").json()
            except (httpx.HTTPError, ValueError):
                rows = None
            if (
                isinstance(rows, list)
                and len(rows) == count
                and all(r.get("status") == "ready" and r.get("subnet") for r in rows)
            ):
                return time.monotonic() - started
            time.sleep(READY_POLL_S)
    not_ready = [r.get("name") for r in rows or [] if r.get("status") != "ready"]
    raise SandboxError(f"not every node became ready within {timeout_s:.0f} s (not ready: {not_ready})")
