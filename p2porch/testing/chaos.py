"""One seeded history run on a sandbox cluster: clients, nemesis, convergence, checks (tests only).

Owns forming the sandbox cluster, running :mod:`workload` clients and a :class:`Nemesis` for a bounded
time, healing, measuring how long every node (followers and replicas included) takes to list every
acknowledged write after the last heal (issue 24), and checking the recorded history (linearizability,
lost, duplicated and phantom writes). Settings come from :class:`RunConfig`, which
``RunConfig.from_env`` fills from ``P2PORCH_HISTORY_*`` variables so long runs need no code change.
Returns one JSON-able dict per seed; never asserts (the caller does).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..sandbox.sandbox import Sandbox, SandboxNode
from .history import INF, HistoryRecorder, Op, check_history
from .nemesis import FAULT_KINDS, Nemesis
from .workload import Client, Keys, client, service_values

P2PORCH = [sys.executable, "-m", "p2porch"]


@dataclass(frozen=True)
class RunConfig:
    """Settings of one run (one seed)."""

    seed: int = 1
    duration_s: float = 40.0
    kinds: tuple[str, ...] = FAULT_KINDS
    clients: int = 6
    registers: int = 4
    big_every: int = 4
    big_bytes: int = 70_000
    converge_bound_s: float = 5.0  # issue 24: every node lists every acknowledged write within this
    converge_give_up_s: float = 60.0
    gap_s: tuple[float, float] = (1.0, 3.0)
    length_s: tuple[float, float] = (3.0, 8.0)

    @staticmethod
    def seeds_from_env(default: str = "1") -> list[int]:
        """``P2PORCH_HISTORY_SEEDS``: ``1,2,3`` or ``1-5``."""
        text = os.environ.get("P2PORCH_HISTORY_SEEDS", default)
        seeds: list[int] = []
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds.extend(range(int(low), int(high or low) + 1))
        return seeds

    @classmethod
    def from_env(cls, seed: int, **defaults: Any) -> RunConfig:
        env = os.environ.get
        base = cls(seed=seed, **defaults)
        kinds = tuple(k for k in env("P2PORCH_HISTORY_FAULTS", ",".join(base.kinds)).split(",") if k)
        return cls(
            seed=seed,
            duration_s=float(env("P2PORCH_HISTORY_DURATION", base.duration_s)),
            kinds=kinds,
            clients=int(env("P2PORCH_HISTORY_CLIENTS", base.clients)),
            registers=base.registers,
            big_every=base.big_every,
            big_bytes=base.big_bytes,
            converge_bound_s=float(env("P2PORCH_HISTORY_CONVERGE_BOUND", base.converge_bound_s)),
            converge_give_up_s=float(env("P2PORCH_HISTORY_CONVERGE_GIVE_UP", base.converge_give_up_s)),
            gap_s=base.gap_s,
            length_s=base.length_s,
        )


# ----------------------------------------------------------------------------- the cluster
def wait_until(predicate: Any, timeout_s: float, what: str, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            result = None
            last = exc
        else:
            last = result
        if result:
            return result
        time.sleep(poll_s)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


def get(node: SandboxNode, path: str, timeout_s: float = 5.0) -> Any:
    with client(node, timeout_s) as api:
        response = api.get(path)
        response.raise_for_status()
        return response.json()


def form_cluster(sb: Sandbox, nodes: Sequence[SandboxNode]) -> None:
    """``init`` on the first node, ``join`` on the others (raft.voters is 3: a 4th joins as replica)."""
    if get_or_none(nodes[0], "/status", "cluster") is None:
        init = sb.exec(nodes[0].name, [*P2PORCH, "--json", "init"], capture=True)
        if init.returncode != 0:
            raise RuntimeError(f"init failed: {init.stderr.decode()}")
    token = get(nodes[0], "/token")["token"]
    for node in nodes[1:]:
        if get_or_none(node, "/status", "cluster") is not None:
            continue
        joined = sb.exec(node.name, [*P2PORCH, "join", nodes[0].address, "--token", token], capture=True)
        if joined.returncode != 0:
            raise RuntimeError(f"join of {node.name} failed: {joined.stderr.decode()}")

    def ready() -> bool:
        rows = get(nodes[0], "/nodes")
        return len(rows) == len(nodes) and all(r["status"] == "ready" for r in rows)

    wait_until(ready, 120, "every node ready")


def in_sync(nodes: Sequence[SandboxNode], timeout_s: float = 20.0) -> bool:
    """Whether every node has applied the same state version (a stalled node from an earlier run would
    spoil the next one's convergence measurement); waits up to ``timeout_s``."""

    def same() -> bool:
        versions = {get(n, "/status", timeout_s=2.0)["cluster"].get("state_version") for n in nodes}
        return len(versions) == 1 and None not in versions

    try:
        return bool(wait_until(same, timeout_s, "every node at the same state version"))
    except RuntimeError:
        return False


def fresh_cluster(sb: Sandbox, count: int) -> list[SandboxNode]:
    """A new sandbox cluster of ``count`` nodes (whatever ran under that name before is removed)."""
    sb.down()
    nodes = sb.up(count)
    form_cluster(sb, nodes)
    return nodes


def get_or_none(node: SandboxNode, path: str, key: str) -> Any:
    try:
        return get(node, path).get(key)
    except Exception:
        return None


class ClusterView:
    """Who leads and which role each node has, asked of whichever node answers first."""

    def __init__(self, nodes: Sequence[SandboxNode]) -> None:
        self.nodes = list(nodes)
        self.roles: dict[str, str] = {}

    def leader(self) -> str | None:
        for node in self.nodes:
            try:
                addr = get(node, "/status", timeout_s=1.0)["cluster"].get("leader")
            except Exception:
                continue
            if addr:
                host = addr.rsplit(":", 1)[0]
                return next((n.name for n in self.nodes if n.address == host), None)
        return None

    def role(self, name: str) -> str:
        leader = self.leader()
        if name == leader:
            return "leader"
        for node in self.nodes:
            try:
                rows = get(node, "/nodes", timeout_s=1.0)
            except Exception:
                continue
            self.roles = {r["name"]: r["raft_role"] for r in rows}
            break
        role = self.roles.get(name, "unknown")
        return "follower" if role in ("voter", "leader") else role


# ----------------------------------------------------------------------------- convergence
@dataclass
class Convergence:
    converged: bool
    seconds: float | None  # from the last heal until every node listed the same, complete state
    per_node_s: dict[str, float | None] = field(default_factory=dict)
    final: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # node -> acknowledged keys it lacks
    status: dict[str, Any] = field(default_factory=dict)  # node -> commit_index/state_version at the end


def await_convergence(
    nodes: Sequence[SandboxNode], keys: Keys, acked_unique: set[str], healed_at: float, give_up_s: float
) -> Convergence:
    """Poll every node's service list until all are identical and hold every acknowledged unique create."""
    per_node: dict[str, float | None] = {n.name: None for n in nodes}
    views: dict[str, dict[str, tuple[str | None, int]]] = {}
    deadline = healed_at + give_up_s
    while True:
        now = time.monotonic()
        for node in nodes:
            try:
                views[node.name] = service_values(node, keys, timeout_s=3.0)
            except Exception:
                views.pop(node.name, None)
        if len(views) == len(nodes):
            reference = Counter(json.dumps(v, sort_keys=True) for v in views.values()).most_common(1)[0][0]
            for name, view in views.items():
                complete = acked_unique <= view.keys() and json.dumps(view, sort_keys=True) == reference
                if complete and per_node[name] is None:
                    per_node[name] = round(time.monotonic() - healed_at, 3)
                elif not complete:
                    per_node[name] = None
            if all(v is not None for v in per_node.values()):
                final = json.loads(reference)
                return Convergence(True, max(v or 0.0 for v in per_node.values()), per_node, final)
        if now > deadline:
            break
        time.sleep(0.1)
    counted = Counter(json.dumps(v, sort_keys=True) for v in views.values())
    final = json.loads(counted.most_common(1)[0][0]) if counted else {}
    missing = {name: sorted(acked_unique - view.keys()) for name, view in views.items()}
    status = {}
    for node in nodes:
        try:
            cluster = get(node, "/status", timeout_s=2.0)["cluster"]
            status[node.name] = {k: cluster.get(k) for k in ("commit_index", "state_version", "leader")}
        except Exception as exc:
            status[node.name] = {"error": str(exc)}
    return Convergence(False, None, per_node, final, missing, status)


# ----------------------------------------------------------------------------- one run
def run_seed(sb: Sandbox, nodes: Sequence[SandboxNode], config: RunConfig) -> dict[str, Any]:
    """Clients and nemesis for ``duration_s``, heal, convergence, checks; a JSON-able report."""
    # names unique to this run: runs on one cluster never see each other's services
    keys = Keys(prefix=f"h{config.seed}-{secrets.token_hex(2)}", registers=config.registers)
    history = HistoryRecorder()
    view = ClusterView(nodes)
    stop = threading.Event()
    clients = [
        Client(
            i,
            nodes,
            keys,
            history,
            stop,
            seed=config.seed,
            big_every=config.big_every,
            big_bytes=config.big_bytes,
        )
        for i in range(config.clients)
    ]
    nemesis = Nemesis(
        sb,
        nodes,
        config.seed,
        kinds=config.kinds,
        gap_s=config.gap_s,
        length_s=config.length_s,
        leader_of=view.leader,
        role_of=view.role,
    )
    started = time.monotonic()
    try:
        for c in clients:
            c.start()
        nemesis.start()
        time.sleep(config.duration_s)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
        healed_at = nemesis.stop()
    healed_at = max(healed_at, max((op.complete for op in history.ops() if op.complete < INF), default=0.0))
    ops = history.ops()
    acked_unique = {op.key for op in ops if op.kind == "create" and op.status == "ok" and "-s" in op.key}
    conv = await_convergence(nodes, keys, acked_unique, healed_at, config.converge_give_up_s)
    final = {key: value for key, (value, _) in conv.final.items()}
    all_keys = {op.key for op in ops}
    final_state = {key: final.get(key) for key in all_keys}
    at = time.monotonic()
    final_reads = [
        Op(len(ops) + i, "final", "read", key, final_state[key], None, "ok", at, at + 0.001, "all")
        for i, key in enumerate(sorted(all_keys))
    ]
    kills: dict[str, list[float]] = {}
    for fault in nemesis.faults:
        if fault.kind == "kill":
            kills.setdefault(fault.node, []).append(fault.start)
    report = check_history([*ops, *final_reads], final=final_state, kills=kills)
    acked_writes = sum(1 for op in ops if op.kind != "read" and op.status == "ok")
    return {
        "seed": config.seed,
        "config": {**asdict(config), "nodes": [n.name for n in nodes]},
        "run_s": round(healed_at - started, 1),
        "ops": {"total": len(ops), "acked_writes": acked_writes, **report.by_kind, **report.by_status},
        "faults": nemesis.counts(),
        "fault_list": [
            f.to_dict()
            | {"start": round(f.start - started, 2), "end": round((f.end or healed_at) - started, 2)}
            for f in nemesis.faults
        ],
        "last_heal_s": round(healed_at - started, 2),
        "nemesis_errors": nemesis.errors,
        "converged": conv.converged,
        "convergence_s": conv.seconds,
        "within_bound": conv.converged and (conv.seconds or 0.0) <= config.converge_bound_s,
        "per_node_convergence_s": conv.per_node_s,
        "missing_at_give_up": {k: v[:10] for k, v in conv.missing.items() if v},
        "status_at_give_up": conv.status,
        "linearizable": report.linearizable,
        "anomalies": report.anomalies,
        "not_linearizable": report.not_linearizable[:10],
        "unknown": report.unknown[:10],
        "lost": report.lost[:20],
        "lost_count": len(report.lost),
        "duplicated": report.duplicated[:10],
        "phantom": report.phantom[:10],
        "non_monotonic_reads": report.non_monotonic_reads[:10],
        "reads_back_after_restart": report.reads_back_after_restart[:10],
        "reads_back_after_restart_count": len(report.reads_back_after_restart),
        "search_steps": report.search_steps,
        "history": history,  # the caller may dump it; not JSON
    }


def printable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "history"}
