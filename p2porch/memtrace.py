"""What a daemon's Python heap holds, by allocation site: an opt-in debug aid (dev and bench tool).

``P2PORCH_TRACEMALLOC=/path/{pid}.snap p2porch daemon ...`` starts ``tracemalloc`` when the daemon starts
(``P2PORCH_TRACEMALLOC_FRAMES`` frames per allocation, default 4; ``{pid}`` in the path is replaced by the
process id) and writes a snapshot to the path on every ``SIGUSR2`` (after a garbage collection), and the names
of the modules the process has imported (``sys.modules``, sorted, a JSON list) to ``PATH.modules``. Two
snapshots, the leader's and a voter's, compare with ``tracemalloc.Snapshot.load(a).compare_to(
Snapshot.load(b), "lineno")``; two module lists tell what one imported that the other did not. Tracing costs
memory and CPU of its own: never measure the idle cost with it. It only reads the heap; without the variable
nothing is imported and nothing runs.

``P2PORCH_MALLOC_STATS=/path/{pid}`` (with or without tracing) makes the same ``SIGUSR2`` also write what
the allocators hold: glibc's ``malloc_info`` XML (arenas' system bytes, free chunks by size, mmapped
blocks) to ``PATH.malloc.xml`` and CPython's ``sys._debugmallocstats()`` (obmalloc arenas, pools and
blocks in use and free) to ``PATH.pymalloc.txt``; ``malloc_totals``/``pymalloc_totals`` read their
headline figures. Both tell memory held in use from memory held free (fragmentation) outside
tracemalloc's reach. With ``P2PORCH_GC_CENSUS=1`` as well, each ``SIGUSR2`` then runs a full collection
that keeps what it finds (``gc.DEBUG_SAVEALL``) and writes ``PATH.garbage.json``: how many objects of
cyclic garbage the daemon held, by type and, for frames, coroutines and tracebacks, by code location;
then frees them and writes the statistics again to ``PATH.after.*``. It changes what it measures (the
collection frees the garbage): the statistics before it are the daemon's own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import types
from typing import Any

import trio

log = logging.getLogger(__name__)

__all__ = [
    "ENV_FRAMES",
    "ENV_PATH",
    "ENV_CENSUS",
    "ENV_STATS",
    "census_garbage",
    "dump_on_signal",
    "malloc_totals",
    "pymalloc_totals",
    "start_from_env",
    "stats_from_env",
    "write_malloc_stats",
    "write_snapshot",
]

ENV_PATH = "P2PORCH_TRACEMALLOC"
ENV_STATS = "P2PORCH_MALLOC_STATS"
ENV_CENSUS = "P2PORCH_GC_CENSUS"
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


def stats_from_env(env: dict[str, str] | None = None) -> str | None:
    """The allocator statistics' path prefix (``{pid}`` filled in) when ``ENV_STATS`` is set, else None."""
    env = dict(os.environ) if env is None else env
    template = env.get(ENV_STATS, "")
    return template.replace("{pid}", str(os.getpid())) if template else None


@functools.cache
def _libc() -> Any:
    """The C library, loaded once (a ``CDLL`` is cyclic garbage once dropped: the census would count it)."""
    import ctypes

    return ctypes.CDLL(None)


def write_malloc_stats(prefix: str) -> None:
    """Write glibc's ``malloc_info`` to ``prefix.malloc.xml`` (when the C library has it) and
    ``sys._debugmallocstats()`` to ``prefix.pymalloc.txt`` (each atomically). The latter prints on the C
    stderr: file descriptor 2 points at the file meanwhile (the GIL is held: no Python thread logs)."""
    import ctypes
    import sys

    libc = _libc()
    tmp = f"{prefix}.tmp"
    if hasattr(libc, "malloc_info"):
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        stream = libc.fopen(tmp.encode(), b"w")
        if stream:
            libc.malloc_info(0, stream)
            libc.fclose(stream)
            os.replace(tmp, f"{prefix}.malloc.xml")
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.dup2(fd, 2)
        sys._debugmallocstats()
        libc.fflush(None)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    os.replace(tmp, f"{prefix}.pymalloc.txt")


def malloc_totals(xml_text: str) -> dict[str, int]:
    """Headline bytes of a ``malloc_info`` XML, the whole process's (after the last heap): free chunks
    (``total_fast``, ``total_rest``), blocks mmapped on their own (``total_mmap``, in use), bytes taken
    from the system (``system_current``) and the arenas' count."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_text)
    out = {"heaps": len(root.findall("heap"))}
    for node in root.findall("total"):
        out[f"total_{node.get('type')}_bytes"] = int(node.get("size", "0"))
        out[f"total_{node.get('type')}_count"] = int(node.get("count", "0"))
    for node in root.findall("system"):
        out[f"system_{node.get('type')}_bytes"] = int(node.get("size", "0"))
    for node in root.findall("aspace"):
        out[f"aspace_{node.get('type')}_bytes"] = int(node.get("size", "0"))
    return out


def pymalloc_totals(text: str) -> dict[str, int]:
    """Headline figures of ``sys._debugmallocstats()``: obmalloc arenas, pools and bytes (``# name = N``)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("#"):
            key = "_".join(name.strip("# ").split())
            with contextlib.suppress(ValueError):
                out[key] = int(value.strip().replace(",", ""))
    return out


def _where(obj: object) -> str | None:
    """The code location of a frame, coroutine, generator or traceback (None for other objects, a
    weak proxy included: only the exact types are looked into)."""
    kind = type(obj)
    frame: Any = (
        obj
        if kind is types.FrameType
        else getattr(obj, "tb_frame", None)
        if kind is types.TracebackType
        else getattr(obj, "cr_frame", None)
        if kind is types.CoroutineType
        else getattr(obj, "gi_frame", None)
        if kind is types.GeneratorType
        else None
    )
    if frame is None:
        return None
    code = frame.f_code
    filename = code.co_filename.rsplit("site-packages/", 1)[-1]
    return f"{filename}:{code.co_name}:{frame.f_lineno}"


def _size(obj: object) -> int:
    """``sys.getsizeof``, 0 where the object cannot tell (a dead weak proxy raises)."""
    import sys

    try:
        return sys.getsizeof(obj)
    except Exception:
        return 0


def census_garbage(prefix: str, top: int = 40) -> dict[str, object]:
    """Run a full collection that keeps its garbage, count it by type and code location into
    ``prefix.garbage.json``, free it, and write the allocators' statistics to ``prefix.after``."""
    import gc
    import json
    from collections import Counter

    flags = gc.get_debug()
    counts_before = gc.get_count()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        found = gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(flags)
    by_type: Counter[str] = Counter()
    bytes_by_type: Counter[str] = Counter()
    by_where: Counter[str] = Counter()
    for obj in garbage:
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        by_type[name] += 1
        bytes_by_type[name] += _size(obj)
        where = _where(obj)
        if where is not None:
            by_where[where] += 1
    obj = None
    census: dict[str, object] = {
        "collected": found,
        "objects": len(garbage),
        "shallow_bytes": sum(bytes_by_type.values()),
        "count_before": list(counts_before),
        "frozen": gc.get_freeze_count(),
        "stats": gc.get_stats(),
        "by_type": [[n, c, bytes_by_type[n]] for n, c in by_type.most_common(top)],
        "by_where": by_where.most_common(top),
    }
    garbage.clear()  # the last references this function holds
    gc.collect()  # the kept garbage, now unreachable again, is freed
    tmp = f"{prefix}.garbage.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(census))  # ``json.dump`` would leave cyclic garbage of its own (closures)
    os.replace(tmp, f"{prefix}.garbage.json")
    write_malloc_stats(f"{prefix}.after")
    return census


async def dump_on_signal(
    path: str | None, signum: int = signal.SIGUSR2, stats: str | None = None, census: bool = False
) -> None:
    """On every ``signum`` until cancelled (trio thread): a snapshot to ``path`` (when tracing), the
    allocators' statistics to ``stats`` (when given), then a garbage census (``census``, with ``stats``)."""
    with trio.open_signal_receiver(signum) as signals:
        async for _ in signals:
            try:
                if stats is not None:
                    write_malloc_stats(stats)  # first: the snapshot's collection would change what it shows
                    if census:
                        census_garbage(stats)
                if path is not None:
                    write_snapshot(path)
            except Exception:  # a debug aid never stops the daemon
                log.exception("memtrace: the dump failed")
