"""Idle daemons' memory over an hour, with and without gc_freeze on the same sandbox (root; JSON lines).

    python bench/daemon_rss_hours.py [--name p2el] [--subnet 10.49.0.0/24] [--minutes 50] [--out FILE]

A 3-node sandbox (own dockerd and daemon per node) formed under the shared lock
(``/tmp/p2porch-integration.lock``); then n3's daemon is stopped and started again with
``P2PORCH_GC_FREEZE=0`` (``gc_freeze.wanted``: no freeze after a slow full collection), so n2 (a
follower with the freeze, the daemon's default) and n3 (a follower without) idle side by side, n1 leads.
Then the lock is released and the cluster idles. Every daemon runs with the wakeup profiler
(``P2PORCH_PROFILE``, ``p2porch/wakeups.py``), whose report carries the collector's figures
(``gc_freeze.figures``: objects per generation, frozen objects, freezes, collections). Every
``--sample-s`` each daemon's RSS, PSS, anonymous MB and CPU seconds and its last report's collector
figures are printed as one JSON line (and appended to ``--out``); the last line is a summary per node
(first, last and max RSS, the slope after ``--warmup-s``). The sandbox is removed at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402
from raft_rss_hours import LOCK, emit, memory, sampling_parser, series  # noqa: E402

from p2porch import gc_freeze  # noqa: E402
from p2porch.sandbox.cluster import wait_ready  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox  # noqa: E402
from p2porch.sandbox.system import stop_pid  # noqa: E402
from p2porch.wakeups import ENV_EVERY, ENV_PATH  # noqa: E402

NO_FREEZE_NODE = "n3"


def collector(profile_dir: Path, pid: int) -> dict[str, Any] | None:
    try:
        return json.loads((profile_dir / f"{pid}.json").read_text()).get("gc")
    except (OSError, ValueError):
        return None


def summary(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    names = sorted(samples[0]["daemons"]) if samples else []
    return {
        name: {"freeze": name != NO_FREEZE_NODE}
        | series([(s["t_s"], s["daemons"][name]) for s in samples if name in s["daemons"]], warmup_s)
        for name in names
    }


def main() -> None:
    parser = sampling_parser()
    parser.add_argument("--name", default="p2el")
    parser.add_argument("--subnet", default="10.49.0.0/24")
    args = parser.parse_args()
    profile_dir = Path(tempfile.mkdtemp(prefix="p2el-profile-"))
    os.environ[ENV_PATH] = str(profile_dir / "{pid}.json")  # inherited by every daemon the sandbox starts
    os.environ[ENV_EVERY] = str(max(5.0, args.sample_s / 2))
    sb = Sandbox(args.name, subnet=args.subnet)
    with contextlib.ExitStack() as stack:
        stack.callback(sb.down)
        lock = None if args.no_lock else stack.enter_context(open(LOCK, "a"))  # noqa: SIM115
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        hosts = sb.up(3)
        benchkit.init_and_join(sb, hosts)
        wait_ready(hosts[0], 3, timeout_s=180)
        pid = next(s.daemon_pid for s in sb.ls() if s.node == NO_FREEZE_NODE)
        assert pid is not None
        stop_pid(pid)
        os.environ[gc_freeze.ENV] = "0"
        sb.up(3)  # starts n3's daemon again (the others run): without the freeze
        del os.environ[gc_freeze.ENV]
        wait_ready(hosts[0], 3, timeout_s=180)
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)  # from here on the sandbox idles: no lock
        daemons = {s.node: s.daemon_pid for s in sb.ls() if s.daemon_pid is not None}
        emit({"formed": True, "daemons": daemons, "no_freeze": NO_FREEZE_NODE}, args.out)
        t0 = time.monotonic()
        samples: list[dict[str, Any]] = []
        while (now := time.monotonic()) - t0 <= args.minutes * 60:
            sample: dict[str, Any] = {"t_s": round(now - t0, 1), "load": os.getloadavg()[0], "daemons": {}}
            for name, daemon_pid in daemons.items():
                with contextlib.suppress(OSError):
                    sample["daemons"][name] = memory(daemon_pid) | {"gc": collector(profile_dir, daemon_pid)}
            samples.append(sample)
            emit(sample, args.out)
            time.sleep(max(0.0, t0 + len(samples) * args.sample_s - time.monotonic()))
        emit({"summary": summary(samples, args.warmup_s), "samples": len(samples)}, args.out)


if __name__ == "__main__":
    main()
