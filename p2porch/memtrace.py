"""What a daemon's Python heap holds, by allocation site: an opt-in debug aid (dev and bench tool).

``P2PORCH_TRACEMALLOC=/path/{pid}.snap p2porch daemon ...`` starts ``tracemalloc`` when the daemon starts
(``P2PORCH_TRACEMALLOC_FRAMES`` frames per allocation, default 4; ``{pid}`` in the path is replaced by the
process id) and writes a snapshot to the path on every ``SIGUSR2`` (after a garbage collection), and the names
of the modules the process has imported (``sys.modules``, sorted, a JSON list) to ``PATH.modules``. Two
snapshots, the leader's and a voter's, compare with ``tracemalloc.Snapshot.load(a).compare_to(
Snapshot.load(b), "lineno")``; two module lists tell what one imported that the other did not. Tracing costs
memory and CPU of its own: never measure the idle cost with it. It only reads the heap; without the variable
nothing is imported and nothing runs.
"""

from __future__ import annotations

import os
import signal

import trio

__all__ = ["ENV_FRAMES", "ENV_PATH", "dump_on_signal", "start_from_env", "write_snapshot"]

ENV_PATH = "P2PORCH_TRACEMALLOC"
ENV_FRAMES = "P2PORCH_TRACEMALLOC_FRAMES"
DEFAULT_FRAMES = 4


def start_from_env(env: dict[str, str] | None = None) -> str | None:
    """Start tracing when ``ENV_PATH`` is set; returns the snapshot path (``{pid}`` filled in) or None."""
    env = dict(os.environ) if env is None else env
    template = env.get(ENV_PATH, "")
    if not template:
        return None
    try:
        frames = max(1, int(env.get(ENV_FRAMES, "") or DEFAULT_FRAMES))
    except ValueError:
        frames = DEFAULT_FRAMES
    import tracemalloc

    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return template.replace("{pid}", str(os.getpid()))


def write_snapshot(path: str) -> None:
    """Collect garbage, then write the traced heap to ``path`` and the imported modules' names to
    ``path.modules`` (each atomically: a reader never sees half)."""
    import gc
    import json
    import sys
    import tracemalloc

    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]  # tracemalloc's own bookkeeping
    )
    tmp = f"{path}.tmp"
    snapshot.dump(tmp)
    os.replace(tmp, path)
    with open(tmp, "w") as f:
        json.dump(sorted(sys.modules), f)
    os.replace(tmp, f"{path}.modules")


async def dump_on_signal(path: str, signum: int = signal.SIGUSR2) -> None:
    """Write a snapshot to ``path`` on every ``signum`` until cancelled (trio thread)."""
    with trio.open_signal_receiver(signum) as signals:
        async for _ in signals:
            write_snapshot(path)
