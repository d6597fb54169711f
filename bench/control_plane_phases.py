"""Phases and probes the control-plane benchmark's two modes share: status polls, parallel writers, snapshot
figures, log compaction, a replica's catch-up and a leader failover (``bench/control_plane.py``).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import msgpack
from control_plane_procs import Proposer, rss_mb

from p2porch.raft import commands as C
from p2porch.raft.state import ClusterState
from p2porch.testing.raftprocs import LocalCluster, NodeProc
from p2porch.testing.seed_state import CIDR, CLUSTER_ID, PREFIX, bench_node


def status(node: NodeProc) -> dict[str, Any]:
    return node.call(op="status")["status"]  # type: ignore[no-any-return]


def wait_version(node: NodeProc, version: int, timeout_s: float) -> float:
    """Seconds until ``node`` applied state ``version``."""
    t0 = time.monotonic()
    while (have := status(node)["state_version"]) < version:
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"{node.name} at version {have}, wanted {version}")
        time.sleep(0.02)
    return time.monotonic() - t0


def init_and_join(leader: NodeProc, nodes: int, writers: int) -> None:
    """Init the cluster and join ``nodes`` nodes, each with its subnet lease (``writers`` at a time)."""
    prop = Proposer(leader.control_port)
    prop.propose(
        C.InitCluster(at=time.time(), cluster_id=CLUSTER_ID, cluster_cidr=CIDR, subnet_prefix_len=PREFIX)
    )

    def join(i: int) -> None:
        node = bench_node(i)
        prop.propose(C.AddNode(at=time.time(), node=node))
        prop.propose(C.LeaseSubnet(at=time.time(), node_id=node.node_id))

    run_parallel(join, range(nodes), writers)
    prop.close()


def run_parallel(fn: Any, items: Any, threads: int) -> None:
    work: queue.Queue[Any] = queue.Queue()
    for item in items:
        work.put(item)
    errors: list[BaseException] = []

    def worker() -> None:
        while not errors:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            try:
                fn(item)
            except BaseException as exc:  # noqa: BLE001 (re-raised below)
                errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


def snapshot_figures(state: ClusterState) -> dict[str, Any]:
    """Size and encode/load time of the snapshot form of ``state`` (what a dump holds)."""
    e0 = time.perf_counter()
    snapshot = msgpack.packb(state.to_dict(), use_bin_type=True)
    encode_s = time.perf_counter() - e0
    l0 = time.perf_counter()
    ClusterState.from_dict(msgpack.unpackb(snapshot, raw=False, strict_map_key=False))
    return {
        "snapshot_bytes": len(snapshot),
        "snapshot_encode_s": round(encode_s, 3),
        "snapshot_load_s": round(time.perf_counter() - l0, 3),
    }


def _memory_kb(pid: int) -> dict[str, int]:
    """Rss, Pss and private (dirty + clean) kB of a live process; {} once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    fields = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines[1:])}
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "private": fields["Private_Dirty"] + fields["Private_Clean"],
    }


def compaction(cluster: LocalCluster, leader: NodeProc) -> dict[str, Any]:
    """Force log compaction (a full dump) on every voter; seconds until each dump is on disk, whether
    the leader changed meanwhile (a dump that stalls the Raft thread costs an election), the leader's
    longest pause between heartbeats (an idle leader's rounds are ``idle_heartbeat_period_s``, 0.2 s,
    apart: a stall shows above that), and the peak memory of each voter with its dump child (sampled
    at ~10 Hz: RSS and PSS of the pair, the child's private pages: what copy-on-write cost).
    The leader is looked up again first: the phases before (the state read over the control port, the
    views rebuilt here) may have moved it, and that must not count against compaction."""
    leader = cluster.leader()
    term0 = status(leader)["term"]
    leader.call(op="heartbeat_gap")  # resets it
    t0 = time.monotonic()
    for node in cluster.voters():
        node.call(op="compact")
    done: dict[str, float] = {}
    peak: dict[str, dict[str, float]] = {}
    polls = 0
    while len(done) < len(cluster.voters()) and time.monotonic() - t0 < 120:
        for node in cluster.voters():
            now = status(node)
            if node.name not in done and now.get("dumps", 0) > 0:
                done[node.name] = round(time.monotonic() - t0, 2)
            if polls % 5 == 0 and node.name not in done and now.get("dump_pid") and node.proc:
                parent, child = _memory_kb(node.proc.pid), _memory_kb(now["dump_pid"])
                if parent and child:
                    pair = {
                        "rss_mb": (parent["rss"] + child["rss"]) / 1024,
                        "pss_mb": (parent["pss"] + child["pss"]) / 1024,
                        "child_private_mb": child["private"] / 1024,
                    }
                    mine = peak.setdefault(node.name, {})
                    for key, value in pair.items():
                        mine[key] = round(max(mine.get(key, 0.0), value), 1)
        polls += 1
        time.sleep(0.02)
    after = status(leader)
    gap = leader.call(op="heartbeat_gap")["gap_s"]
    return {
        "compaction_leader": leader.name,
        "compaction_s": done,
        "compaction_leader_kept": after["is_leader"] and after["term"] == term0,
        "compaction_heartbeat_gap_s": round(gap, 3),
        "compaction_peak_memory": peak,
    }


def catch_up(cluster: LocalCluster, replica: NodeProc, version: int) -> dict[str, Any]:
    """Start ``replica`` (a new, empty read-only store); seconds until it applied ``version``."""
    t0 = time.monotonic()
    cluster.start(replica)
    wait_version(replica, version, 300)
    seconds = time.monotonic() - t0
    return {"replica_catch_up_s": round(seconds, 2), "replica_rss_mb": rss_mb(replica.proc.pid)}  # type: ignore[union-attr]


class Probe(Protocol):
    """More figures per failover (the daemons' API write and round, ``control_plane_seeded``)."""

    def before_kill(self, cluster: LocalCluster) -> None: ...

    def after(self, new: NodeProc, marks: dict[str, float]) -> dict[str, Any]: ...


def failover(cluster: LocalCluster, timeout_s: float = 60.0, probe: Probe | None = None) -> dict[str, Any]:
    """SIGKILL the leader; seconds until a new leader commits a write (fails after ``timeout_s``).

    ``failover_marks``: wall-clock times (``time.time()``, to line up with the members' logs) of the
    kill, of the killed process reaped (its memory freed and its sockets closed), of the new leader
    found by polling and of the write committed. A ``probe`` reads its baseline before the kill and adds
    its figures after the write."""
    leader = cluster.leader()
    if probe is not None:
        probe.before_kill(cluster)
    t0 = time.monotonic()
    marks = {"kill": time.time()}
    cluster.kill(leader)
    marks["reaped"] = time.time()
    last: BaseException | None = None
    while time.monotonic() - t0 < timeout_s:
        try:
            new = cluster.leader(timeout_s=max(0.1, timeout_s - (time.monotonic() - t0)))
        except TimeoutError as exc:
            last = exc
            continue
        marks["leader_found"] = time.time()
        prop = Proposer(new.control_port)
        try:
            result = prop.propose(C.Noop(at=time.time(), tag="failover"), timeout_s=5)
        except (RuntimeError, OSError, ConnectionError) as exc:
            last = exc
            continue
        finally:
            prop.close()
        if result.get("ok"):
            marks["committed"] = time.time()
            out = {
                "failover_s": round(time.monotonic() - t0, 2),
                "killed": leader.name,
                "new_leader": new.name,
                "failover_marks": {k: round(v, 3) for k, v in marks.items()},
            }
            return out | (probe.after(new, marks) if probe else {})
    raise RuntimeError(f"no new leader committed a write {timeout_s} s after the leader was killed: {last!r}")


def failovers(cluster: LocalCluster, repeats: int, probe: Probe | None = None) -> dict[str, Any]:
    """``repeats`` failovers in a row: each restarts the voter killed by the one before and waits until it
    applied the leader's state version (its journal replayed, caught up) first. Each one's figures, in
    order; the first one's also at the top level (``failover_s``, as a single failover reports)."""
    runs: list[dict[str, Any]] = []
    for i in range(repeats):
        if runs:
            killed = cluster.node(runs[-1]["killed"])
            r0 = time.monotonic()
            cluster.start(killed, wait=False)
            cluster.wait_ready(killed, timeout_s=180)
            wait_version(killed, status(cluster.leader())["state_version"], 180)
            runs[-1]["restarted_caught_up_s"] = round(time.monotonic() - r0, 1)
            time.sleep(5.0)  # heartbeats resume to it; the leader settles before the next kill
        runs.append(failover(cluster, probe=probe))
        print(f"failover {i + 1}/{repeats}: {runs[-1]}", file=sys.stderr, flush=True)
    first = runs[0] if runs else {}
    return first | {"failovers": runs}
