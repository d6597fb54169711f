"""How long a Raft-like thread's ticks take while the leader plans a full round in the same process (JSON).

A leader's Raft thread sends and reads dozens of small messages per tick; each socket call gives the GIL
up and then waits for it while another thread of the process holds it: the planning thread of a full
round (seconds at 100,000 tasks). This reproduces that in one process: a state of ``--services`` x 100
placed and running tasks on ``--nodes`` nodes; a "raft" thread whose tick is ``--sends`` request/answer
exchanges with an echo *process* (no GIL of its own to share), every 50 ms; and the leader's full round
(``IncrementalPlanner.plan`` on a fresh planner) on a worker thread. Printed per variant: the round's
wall time and the ticks' durations while it ran (p50, p99, max). Variants: the GIL switch interval
(CPython's 5 ms, or the Raft bridge's 1 ms) and with or without rests of 2 ms every 10 ms in the round's
checkpoint (``Rests`` below: what ``leader/gil_share.py`` once did; removed from the daemon), or a
checkpoint that yields only while the Raft-like thread is inside a tick (``YieldWhileTicking``).

    python bench/raft_gil.py                          # 1,000 nodes, 100,000 tasks (~1-2 min)
    python bench/raft_gil.py --services 200           # 20,000 tasks
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leader_rounds import cluster, report_running, run  # noqa: E402

from p2porch.leader.incremental import IncrementalPlanner  # noqa: E402
from p2porch.leader.scheduling import no_checkpoint, plan_round, round_commands  # noqa: E402
from p2porch.model import ServiceSpec  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.scheduler import Orchestrator  # noqa: E402

TICK_EVERY_S = 0.05


class Rests:
    """A round's checkpoint that sleeps ``rest_s`` (the GIL released) once ``work_s`` has passed."""

    def __init__(self, work_s: float = 0.01, rest_s: float = 0.002) -> None:
        self.work_s, self.rest_s = work_s, rest_s
        self._since = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self._since >= self.work_s:
            time.sleep(self.rest_s)
            self._since = time.monotonic()


class YieldWhileTicking:
    """A round's checkpoint that gives the GIL up (``time.sleep(rest_s)``; 0: a bare release) only while
    the Raft-like thread is inside a tick (``ticking`` set), i.e. while it may be waiting for the GIL."""

    def __init__(self, ticking: threading.Event, rest_s: float) -> None:
        self.ticking, self.rest_s = ticking, rest_s
        self.yields = 0

    def __call__(self) -> None:
        if self.ticking.is_set():
            self.yields += 1
            time.sleep(self.rest_s)


def echo(sock: socket.socket) -> None:
    while data := sock.recv(4096):
        sock.sendall(data)


def state_of(nodes: int, services: int) -> Any:
    state = cluster(nodes)
    for s in range(services):
        spec = ServiceSpec(name=f"svc{s}", image="bench", replicas=100)
        state = run(state, C.CreateService(at=2.0, service_id=f"s{s}", spec=spec))
    plan = plan_round(state, 2.0, Orchestrator(random.Random(1)))
    for put in round_commands(plan.items, 2.0, state.version):
        state = run(state, put)
    return report_running(state, list(state.tasks), 3.0)


def ticks_during_round(
    state: Any, sends: int, switch_s: float, share: bool, yield_s: float | None = None
) -> dict[str, Any]:
    sys.setswitchinterval(switch_s)
    mine, theirs = socket.socketpair()
    peer = multiprocessing.Process(target=echo, args=(theirs,), daemon=True)
    peer.start()
    theirs.close()
    ticks: list[float] = []
    planning = threading.Event()
    done = threading.Event()
    ticking = threading.Event()

    def raft() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            ticking.set()
            for _ in range(sends):
                mine.sendall(b"x" * 64)
                mine.recv(4096)
            ticking.clear()
            if planning.is_set():
                ticks.append(time.perf_counter() - t0)
            time.sleep(TICK_EVERY_S)

    checkpoint: Any = Rests() if share else no_checkpoint  # rests of 2 ms every 10 ms
    if yield_s is not None:
        checkpoint = YieldWhileTicking(ticking, yield_s)
    planner = IncrementalPlanner(Orchestrator(random.Random(2)), checkpoint=checkpoint)
    thread = threading.Thread(target=raft)
    thread.start()
    time.sleep(0.3)
    planning.set()
    t0 = time.perf_counter()
    plan = planner.plan(state, 4.0)
    took = time.perf_counter() - t0
    planning.clear()
    done.set()
    thread.join()
    mine.close()
    peer.terminate()  # it holds a copy of ``mine`` too: no end of file to see
    peer.join()
    ticks.sort()
    return {
        "switch_interval_ms": switch_s * 1000,
        "gil_share": share,
        "yield_while_ticking_ms": None if yield_s is None else yield_s * 1000,
        "yields": getattr(checkpoint, "yields", None),
        "round_s": round(took, 3),
        "round_items": len(plan.items),
        "ticks": len(ticks),
        "tick_p50_ms": round(ticks[len(ticks) // 2] * 1000, 1) if ticks else None,
        "tick_p99_ms": round(ticks[int(len(ticks) * 0.99)] * 1000, 1) if ticks else None,
        "tick_max_ms": round(ticks[-1] * 1000, 1) if ticks else None,
    }


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--sends", type=int, default=40, help="request/answer exchanges per tick")
    parser.add_argument("--repeat", type=int, default=1, help="run the variants this many times, in turn")
    args = parser.parse_args()
    t0 = time.perf_counter()
    state = state_of(args.nodes, args.services)
    built = time.perf_counter() - t0
    variants: list[tuple[float, bool, float | None]] = [
        (0.005, False, None),
        (0.001, False, None),
        (0.005, True, None),
        (0.001, True, None),
        (0.001, False, 0.0),  # the planner yields (a bare GIL release) while the Raft thread ticks
        (0.001, False, 0.0002),  # ... or sleeps 0.2 ms then
    ]
    if args.repeat > 1:
        variants = variants * args.repeat
    print(f"state of {len(state.tasks)} tasks built in {built:.1f} s", file=sys.stderr)
    results = []
    for switch_s, share, yield_s in variants:
        results.append(ticks_during_round(state, args.sends, switch_s, share, yield_s))
        print(results[-1], file=sys.stderr)
    print(json.dumps({"tasks": len(state.tasks), "build_s": round(built, 1), "variants": results}, indent=1))


if __name__ == "__main__":
    main()
