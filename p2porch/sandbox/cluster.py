"""Forming a cluster out of a sandbox's hosts: ``init`` on the first, ``join`` on the rest at once (shell).

Owns only the API calls that form the cluster, over each host's own control socket (the daemons already
run: no CLI process per node), and the time each join took. Joins run concurrently, a few at a time;
every joiner asks the same member, which plans their admissions one at a time and commits the writes of
joins that arrive together in one Raft entry (``membership.admission.Admissions``); a failed join is
tried again. How many at once, how often, and whether a
join first waits for the machine's run queue to shorten is ``pacing.join_pacing`` (a crowded sandbox
is paced). A node whose every attempt failed is reported in ``Formation.failed``; the others go on.
It never touches namespaces, processes or cluster state itself.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from ..errors import SandboxError
from . import pacing as paced
from .sandbox import SandboxNode

JOIN_PARALLEL = paced.SMALL.parallel  # joins in flight at once in a small sandbox
READY_POLL_S = 0.2
RUNQUEUE_SAMPLES = 5  # /proc/loadavg readings per headroom check, RUNQUEUE_SAMPLE_S apart
RUNQUEUE_SAMPLE_S = 0.1


@dataclass
class Formation:
    """The formed cluster: its join token and how long init and each join took (seconds)."""

    token: str
    init_s: float
    join_s: dict[str, float] = field(default_factory=dict)
    formed_s: float = 0.0
    retries: int = 0  # joins tried again after a failed attempt
    failed: dict[str, str] = field(default_factory=dict)  # node -> the last attempt's error
    paced_s: float = 0.0  # seconds joins waited in all for the machine's run queue to shorten
    baseline_runnable: float = 0.0  # the run queue before the formation (what pacing allows above)

    def to_dict(self) -> dict[str, Any]:
        joins = sorted(self.join_s.values())
        return {
            "init_s": round(self.init_s, 3),
            "formed_s": round(self.formed_s, 3),
            "joins": len(joins),
            "retries": self.retries,
            "failed": dict(sorted(self.failed.items())),
            "paced_s": round(self.paced_s, 1),
            "baseline_runnable": round(self.baseline_runnable, 1),
            "join_p50_s": round(joins[len(joins) // 2], 3) if joins else None,
            "join_max_s": round(joins[-1], 3) if joins else None,
            "join_s": {name: round(s, 3) for name, s in self.join_s.items()},
        }


def _client(node: SandboxNode, timeout_s: float) -> httpx.Client:
    """A client of ``node``'s API socket. Plain HTTP over a unix socket: no TLS, so no CA bundle loaded
    (``verify=False``; the default context costs ~25-42 ms of CPU per client, paid per join)."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket, verify=False),
        base_url="http://p2porch/v1",
        timeout=timeout_s,
    )


def _post(node: SandboxNode, path: str, body: dict[str, Any], timeout_s: float = 60.0) -> Any:
    return _call(node, "POST", path, body, timeout_s)


def _get(node: SandboxNode, path: str, timeout_s: float = 15.0) -> Any:
    return _call(node, "GET", path, None, timeout_s)


def _call(node: SandboxNode, method: str, path: str, body: dict[str, Any] | None, timeout_s: float) -> Any:
    try:
        with _client(node, timeout_s) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise SandboxError(f"{node.name}: {path} failed: {exc}") from exc
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message") or response.text)
        except (ValueError, AttributeError):
            message = response.text
        raise SandboxError(f"{node.name}: {path} failed: {message}")
    return response.json()


def _existing_cluster(seed: SandboxNode) -> tuple[str, set[str]] | None:
    """The join token and member names of the cluster ``seed`` already belongs to (a sandbox grown with
    ``up --nodes N --init``), or None when it belongs to none (its ``/status`` names no cluster). Both
    read ``seed``'s own copy (``stale``): right after a whole-cluster restart its read barrier may refuse
    for a while, and a member taken for a fresh node would be sent ``init``."""
    if _get(seed, "/status").get("cluster") is None:
        return None
    token = str(_get(seed, "/token?stale=true")["token"])
    members = {str(row["name"]) for row in _get(seed, "/nodes?stale=true")}
    return token, members


def form_cluster(
    nodes: list[SandboxNode], parallel: int | None = None, pacing: paced.JoinPacing | None = None
) -> Formation:
    """``init`` on ``nodes[0]``, then every other node joins through it, paced as ``pacing`` says
    (default: :func:`pacing.join_pacing` for this many hosts; ``parallel`` overrides its width). In a
    sandbox of several sites the joiners dial its public address (its router forwards the join port of
    a site's first node, 7948; its own site's nodes come back through the hairpin), as a user would.
    When ``nodes[0]`` already belongs to a cluster (``up --nodes N --init`` on a formed sandbox that
    grew), only the hosts it does not list join, with its current token."""
    if not nodes:
        raise SandboxError("no sandbox nodes to form a cluster of")
    plan = pacing or paced.join_pacing(len(nodes))
    if parallel is not None:
        plan = replace(plan, parallel=max(1, parallel))
    baseline = paced.mean(_sample_runqueue()) if plan.max_runnable_per_core > 0 else 0.0
    seed = nodes[0]
    peer = seed.public_addr or seed.address
    existing = _existing_cluster(seed)  # before the clock: init_s times init alone, as before
    started = time.monotonic()
    if existing is None:
        token = str(_post(seed, "/cluster/init", {})["token"])
        joiners = nodes[1:]
    else:  # grown: only the hosts the cluster does not list join (n1 is never asked to init again)
        token, members = existing
        joiners = [node for node in nodes[1:] if node.name not in members]
    formation = Formation(token=token, init_s=time.monotonic() - started, baseline_runnable=baseline)
    gate = threading.Lock()  # one joiner at a time looks for headroom: starts are spaced, not bunched
    tally = threading.Lock()
    cores = os.cpu_count() or 1

    def wait_turn() -> None:
        with gate:
            waited = paced.wait_for_headroom(
                plan, cores, _sample_runqueue, time.monotonic, time.sleep, baseline=baseline
            )
            formation.paced_s += waited.waited_s

    def join(node: SandboxNode) -> None:
        for attempt in range(plan.attempts):
            wait_turn()
            t0 = time.monotonic()
            try:
                _post(node, "/cluster/join", {"peer": peer, "token": token})
                formation.join_s[node.name] = time.monotonic() - t0
                formation.failed.pop(node.name, None)
                return
            except SandboxError as exc:
                # e.g. the admission did not commit in time on a starved machine: running the same
                # join again is safe, the member admits the same node again (admission_plan.py)
                formation.failed[node.name] = exc.message
                if attempt + 1 < plan.attempts:
                    with tally:
                        formation.retries += 1
                    time.sleep(plan.retry_s * (attempt + 1))

    with ThreadPoolExecutor(max_workers=max(1, plan.parallel)) as pool:
        list(pool.map(join, joiners))
    formation.formed_s = time.monotonic() - started
    return formation


def _sample_runqueue() -> list[int]:
    """A few readings of the machine's run queue (/proc/loadavg), RUNQUEUE_SAMPLE_S apart."""
    readings = []
    for index in range(RUNQUEUE_SAMPLES):
        if index:
            time.sleep(RUNQUEUE_SAMPLE_S)
        try:
            with open("/proc/loadavg") as handle:
                readings.append(paced.runnable_from_loadavg(handle.read()))
        except (OSError, ValueError):
            return []  # nothing to go by: do not hold the formation
    return readings


def wait_ready(
    node: SandboxNode, count: int, timeout_s: float = 120.0, names: list[str] | None = None
) -> float:
    """Wait until ``node`` lists ``count`` nodes, all ready with a subnet; returns the seconds waited.

    On timeout the SandboxError names every node that is not ready, and (given ``names``, the nodes
    expected) every one the cluster does not list at all."""
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
    raise SandboxError(
        f"not every node became ready within {timeout_s:.0f} s: {not_ready_summary(rows, names or [])}"
    )


def not_ready_summary(rows: Any, names: list[str]) -> str:
    """Which nodes are not ready, from a ``GET /nodes`` answer (anything else: "no answer")."""
    if not isinstance(rows, list):
        return "no answer to GET /nodes"
    listed = {str(r.get("name")): r for r in rows if isinstance(r, dict)}
    parts = [
        f"{name} ({row.get('status')}{'' if row.get('subnet') else ', no subnet'})"
        for name, row in sorted(listed.items(), key=lambda item: _natural(item[0]))
        if row.get("status") != "ready" or not row.get("subnet")
    ]
    parts += [f"{name} (not a member)" for name in names if name not in listed]
    return ", ".join(parts) or "none missing (the count differs)"


def _natural(name: str) -> tuple[str, int]:
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz")
    return (name[: len(name) - len(digits)], int(digits) if digits.isdigit() else -1)
