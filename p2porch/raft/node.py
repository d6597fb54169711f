"""A standalone store process with a loopback control protocol, for tests and benchmarks (shell).

    python -m p2porch.raft.node --self 127.0.0.1:7101 --voters 127.0.0.1:7101,127.0.0.1:7102,... \
        --data-dir D --password-file F --control-port 7201       # a voter
    python -m p2porch.raft.node --voters ... --data-dir D --password-file F --control-port 7204  # replica

The control protocol listens on 127.0.0.1 (``--control-host``: a test namespace's own address): one
JSON object per line in, one per line out.
Requests: {"op": "status"} | {"op": "raw"} | {"op": "state"} | {"op": "services"}
| {"op": "propose", "cmd": hex}
| {"op": "compact"} | {"op": "heartbeat_gap"} | {"op": "init"}
| {"op": "create", "id": str, "pad": label bytes (large entries)}
| {"op": "write_spec", "id": str, "spec": plain spec} (a service created or updated as the API writes it,
after the spec field gate: ``command_gate.admit_spec``)
| {"op": "bench", "count": N, "concurrency": K, "prefix": str} | {"op": "gc"} (the collector's figures)
| {"op": "add_voter" | "remove_voter", "addr": str}
| {"op": "advertisements", "members": {node id: command versions or null}} (tests: what gossip tells a
daemon's store, the write gate's input: raft/command_gate.py). Answers carry "ok" and, on failure,
"error" (and "message").
When the store is up the process prints one JSON line {"ready": true, ...} on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from .. import gc_freeze
from ..errors import P2POrchError
from ..model import ServiceSpec
from ..model.placement import NAME_RE
from ..model.spec import RESERVED_NAMES
from . import command_gate, dumps, journal, pre_vote_elections
from . import commands as C
from .bridge import RAFT_SWITCH_INTERVAL_S
from .election_timeout import lost_leader_delay_s
from .store import RaftStore, StoreConfig, open_raft_store

MAX_LINE_BYTES = 1 << 20


async def _handle(store: RaftStore, req: dict[str, Any]) -> dict[str, Any]:
    op = req.get("op")
    timeout_s = float(req.get("timeout_s", 5.0))
    if op == "status":
        dumps = {"dumps": store.dumps_written, "dump_pid": store.dump_child_pid}
        return {"ok": True, "status": store.status().to_dict() | dumps | {"forwarding": store.forwarding()}}
    if op == "heartbeat_gap":  # the longest pause between this leader's append rounds since last asked
        return {"ok": True, "gap_s": store.take_longest_heartbeat_gap()}
    if op == "raw":  # pysyncobj's own status and our filter counters, for diagnosis
        raw = {str(k): str(v) for k, v in store._so.getStatus().items()}
        guard = store._so._SyncObj__transport.guard_stats  # what the Raft port refused (transport_guard)
        raw["guard"] = json.dumps({k: v for k, v in vars(guard).items() if not k.startswith("last_")})
        strangers = store._so._SyncObj__transport.stranger_stats  # raft traffic outside the configuration
        raw["strangers"] = json.dumps(strangers.as_dict())
        raw["undecodable_commands"] = str(store.undecodable_commands)  # applied as no-ops (fsm.py)
        raw["leaders_kept"] = str(store._so.leaders_kept)  # a replica's (replica_leader.py)
        appends = getattr(store._so, "_appends", None)
        raw["dropped_overlaps"] = str(getattr(store, "dropped_overlaps", getattr(appends, "dropped", None)))
        raw["acked_overlaps"] = str(getattr(appends, "acked_overlaps", None))
        raft_log = store._so._SyncObj__raftLog  # entries written and durable here (journal.py)
        durable = getattr(raft_log, "durable_index", None)
        raw["journal"] = json.dumps({"durable": durable, "last": raft_log[-1][1] if len(raft_log) else 0})
        return {"ok": True, "raw": raw}
    if op == "state":
        return {"ok": True, "state": store.snapshot().to_dict()}
    if op == "compact":  # a full dump (log compaction) now, as pysyncobj does every 5,000 entries
        store._so.force_dump()  # kept until a dump covers it (raft/forced_dump.py)
        return {"ok": True}
    if op == "services":
        state = store.snapshot()
        return {"ok": True, "version": state.version, "ids": sorted(state.services)}
    if op == "propose":
        result = await store.propose(bytes.fromhex(req["cmd"]), timeout_s)
        return {"ok": True, "result": result}
    if op == "init":
        cmd = C.InitCluster(at=time.time(), cluster_id=str(req.get("cluster_id", "p2rf"))).encode()
        result = await store.propose(cmd, timeout_s)
        done = result["ok"] or result.get("error") == "ConflictError"
        return {"ok": done, "result": result}
    if op == "create":
        sid = str(req["id"])
        pad = int(req.get("pad", 0))  # > 0: a large entry (>= 64 KiB travels as a pysyncobj transmission)
        result = await store.propose(_create(sid, pad=pad), timeout_s)
        return {"ok": bool(result["ok"]), "result": result}
    if op == "write_spec":  # as the API's service create/update: the spec field gate, then the write
        spec, sid = ServiceSpec.from_dict(req["spec"]), str(req["id"])
        current = store.snapshot().services.get(sid)
        command_gate.admit_spec(spec, current.spec if current else None, store.command_readers)
        if current is None:
            write: C.Command = C.CreateService(at=time.time(), service_id=sid, spec=spec)
        else:
            write = C.UpdateService.of(current, at=time.time(), spec=spec)
        return {"ok": True, "result": await store.propose(write.encode(), timeout_s)}
    if op == "gc":  # bench/raft_rss_hours.py: what the collector holds and froze
        return {"ok": True, "gc": gc_freeze.figures()}
    if op == "bench":
        return await _bench(store, int(req["count"]), int(req["concurrency"]), str(req.get("prefix", "b")))
    if op == "advertisements":
        members = {str(node): adv for node, adv in dict(req["members"]).items()}
        store.command_readers = lambda: members
        return {"ok": True}
    if op in ("add_voter", "remove_voter"):
        await getattr(store, op)(str(req["addr"]), timeout_s)
        return {"ok": True}
    return {"ok": False, "error": f"unknown op {op!r}"}


def _create(service_id: str, *, pad: int = 0) -> bytes:
    """A create_service command for a minimal service named like its id (a hash when the id is not a DNS
    label, so distinct ids keep distinct names); ``pad`` bytes of label make the entry large."""
    name = service_id
    if not NAME_RE.match(name) or name in RESERVED_NAMES:
        name = "s" + hashlib.sha256(service_id.encode()).hexdigest()[:20]
    labels = (("pad", "x" * pad),) if pad > 0 else ()
    spec = ServiceSpec(name=name, image="p2porch/bench", labels=labels)
    return C.CreateService(at=time.time(), service_id=service_id, spec=spec).encode()


async def _bench(store: RaftStore, count: int, concurrency: int, prefix: str) -> dict[str, Any]:
    """Commit ``count`` writes from ``concurrency`` writers inside this process; per-write latencies."""
    latencies: list[float] = []
    errors: list[str] = []
    next_i = 0

    async def writer() -> None:
        nonlocal next_i
        while next_i < count:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            try:
                await store.write(_create(f"{prefix}{i}"), 10.0)
            except P2POrchError as exc:
                errors.append(f"{type(exc).__name__}: {exc.message}")
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(writer)
    return {
        "ok": not errors,
        "elapsed_s": time.perf_counter() - t0,
        "latencies_s": latencies,
        "errors": errors[:10],
    }


Handler = Callable[[RaftStore, dict[str, Any]], Awaitable[dict[str, Any]]]


async def handle(store: RaftStore, req: dict[str, Any]) -> dict[str, Any]:
    """Answer one control request (the ops of the module docstring)."""
    return await _handle(store, req)


async def serve_client(store: RaftStore, stream: trio.abc.Stream, handler: Handler = handle) -> None:
    """Serve one control connection: JSON lines in, one answer per line out (``handler`` answers)."""
    buf = b""
    async with stream:
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return
            if not data:
                return
            buf += data
            if len(buf) > MAX_LINE_BYTES:
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("request must be an object")
                    answer = await handler(store, req)
                except P2POrchError as exc:
                    answer = {"ok": False, "error": type(exc).__name__, "message": exc.message}
                except (ValueError, KeyError, TypeError) as exc:
                    answer = {"ok": False, "error": "BadRequest", "message": str(exc)}
                try:
                    await stream.send_all(json.dumps(answer).encode() + b"\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return


async def run(config: StoreConfig, control_port: int, control_host: str = "127.0.0.1") -> None:
    async with open_raft_store(config) as store:
        listeners = await trio.open_tcp_listeners(control_port, host=control_host)
        port = listeners[0].socket.getsockname()[1]
        print(json.dumps({"ready": True, "control_port": port, "self": config.self_addr}), flush=True)
        await trio.serve_listeners(functools.partial(serve_client, store), listeners)


def arg_parser(prog: str = "python -m p2porch.raft.node") -> argparse.ArgumentParser:
    """The store process's arguments (a process built on it adds its own)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--self", dest="self_addr", default=None, help="ip:port (omit for a replica)")
    parser.add_argument("--voters", required=True, help="comma-separated ip:port of the voters")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--password-file", required=True, type=Path)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument(
        "--control-host", default="127.0.0.1", help="test namespaces only: never a public address"
    )
    parser.add_argument("--tick-period-s", type=float, default=None)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--dump-gate", type=Path, default=None, help="tests only: dump children wait for this file to exist"
    )
    parser.add_argument(
        "--sync-hold",
        type=Path,
        default=None,
        help="tests only: the journal worker's syncs wait while this exists",
    )
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="benchmarks only: no freeze after a slow full collection"
    )
    parser.add_argument(
        "--lost-leader-delay",
        choices=("width", "window"),
        default="width",
        help="benchmarks only: after a dropped leader connection wait one draw over the election window's "
        "width (the rule) or its minimum + width (the rule before the tenth round)",
    )
    return parser


def store_config(args: argparse.Namespace) -> StoreConfig:
    """The store configuration of parsed :func:`arg_parser` arguments (logging set up as asked)."""
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    config = StoreConfig(
        self_addr=args.self_addr,
        voters=tuple(a for a in args.voters.split(",") if a),
        data_dir=args.data_dir,
        password=args.password_file.read_text().strip(),
    )
    if args.tick_period_s is not None:
        config = dataclasses.replace(config, tick_period_s=args.tick_period_s)
    return config


def gate_dumps(gate: Path | None) -> None:
    """Tests only: every dump child waits until ``gate`` exists before it encodes (polling: no lock), so
    a test can kill a child, or its parent, in the middle of a dump."""
    if gate is None:
        return
    encode = dumps.encode_dump

    def gated(head: dict[str, Any], state: dict[str, Any]) -> bytes:
        while not gate.exists():
            time.sleep(0.01)
        return encode(head, state)

    dumps.encode_dump = gated


def use_daemon_switch_interval(freeze: bool = True) -> None:
    """For a store process's entry point (this module's, ``testing.control_member``'s and
    ``testing.replica_host``'s): the GIL switch interval ``p2porch daemon`` sets (cli/daemon.py) and its
    freeze after a slow full collection (gc_freeze.py), so the benchmarks run the daemon's settings
    (``freeze`` False: no freeze, a benchmark's baseline) with its young generation's threshold after
    one (``P2PORCH_GC_YOUNG`` sets a baseline's)."""
    sys.setswitchinterval(RAFT_SWITCH_INTERVAL_S)
    if freeze:
        gc_freeze.install(young=gc_freeze.young_threshold(os.environ))


def lost_leader_rule(rule: str) -> None:
    """Benchmarks only: the wait after a dropped leader connection (``lost_leader_delay_s``): ``width``
    (the rule: one draw over the election window's width) or ``window`` (minimum + width: the rule before
    the tenth round)."""
    if rule == "window":
        pre_vote_elections.lost_leader_delay_s = functools.partial(lost_leader_delay_s, wait_minimum=True)


def hold_worker_syncs(hold: Path | None) -> None:
    """Tests only: the journal worker's fdatasync (a leader's own entries) waits while ``hold`` exists
    (polling: no lock), so a test can kill a leader whose entries are sent but not yet durable."""
    if hold is None:
        return
    sync = journal.background_fdatasync

    def held(fd: int) -> None:
        while hold.exists():
            time.sleep(0.01)
        sync(fd)

    journal.background_fdatasync = held


def main(argv: list[str] | None = None) -> None:
    args = arg_parser().parse_args(argv)
    use_daemon_switch_interval(freeze=not args.no_gc_freeze)
    lost_leader_rule(args.lost_leader_delay)
    gate_dumps(args.dump_gate)
    hold_worker_syncs(args.sync_hold)
    trio.run(run, store_config(args), args.control_port, args.control_host)


if __name__ == "__main__":
    main()
