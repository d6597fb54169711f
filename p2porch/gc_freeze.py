"""Full garbage collections stop walking a large, long-lived state (shell hook over a pure rule).

CPython's full (generation 2) collection walks every tracked container object and holds the GIL while it
does, the Raft thread's ticks included. A voter holding 100,000 task records has millions of them: at
1,000 x 100,000 each full collection took 0.1-1.9 s and collected almost nothing (issue 19, the tenth
round, docs/performance.md): the state is immutable records, freed by reference counting, not cycles.
:func:`install` adds a ``gc.callbacks`` hook: after a full collection that took at least ``slow_s`` it
calls ``gc.freeze()``, so the survivors move to the permanent generation and the next full collection
walks only what was allocated since (and CPython's rule - a full collection only once the survivors
pending grew by a quarter of the last full one's - keeps them rare). :func:`freeze_after` is the rule
(pure). The price, as with memtrim's first freeze: an object that survived such a collection and later
becomes part of a garbage cycle is never freed; records replaced in the state are freed by reference
counting as before. It never runs a collection. The hook is the one
timer of this process's collections: an ``observer`` (a benchmark's tally, ``testing/gc_pauses.py``) is
given each collection's generation, duration and ``gc`` info instead of timing them again.
``P2PORCH_GC_FREEZE=0`` in a daemon's environment leaves the hook out (benchmarks only: the baseline of
``bench/daemon_rss_hours.py``); :func:`figures` is what benchmarks read of the collector.
:func:`install`'s ``young``: after such a freeze the young generation's threshold is raised to it (a
young collection once that many more container objects were made than freed, ``YOUNG_THRESHOLD`` in
a daemon): CPython's 700 put a leader placing 20,000 tasks through ~1,300 young and ~120 middle
collections, each survivor walked again by the next generation's (the twenty-eighth round). Only a
process whose heap is large (``young_raised``: ``LARGE_HEAP_OBJECTS`` frozen) raises it: an idle daemon
keeps CPython's, so its cyclic garbage (trio's cancelled frames) waits for at most 700 objects.
``P2PORCH_GC_YOUNG`` in the environment sets another (benchmarks: 700 is the baseline, main's collector).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "ENV",
    "SLOW_FULL_COLLECTION_S",
    "Observer",
    "figures",
    "freeze_after",
    "LARGE_HEAP_OBJECTS",
    "YOUNG_ENV",
    "YOUNG_THRESHOLD",
    "install",
    "uninstall",
    "wanted",
    "young_raised",
    "young_threshold",
]

#: a full collection this long or longer freezes its survivors
SLOW_FULL_COLLECTION_S = 0.05
#: "0" here leaves the hook out (benchmarks only)
ENV = "P2PORCH_GC_FREEZE"
#: a young (generation 0) collection once this many more container objects were made than freed
YOUNG_THRESHOLD = 10_000
#: frozen objects from which a slow full collection's freeze raises the young threshold (a large heap)
LARGE_HEAP_OBJECTS = 250_000
#: an integer here (>= 1) sets another threshold (benchmarks: CPython's default 700 is the baseline)
YOUNG_ENV = "P2PORCH_GC_YOUNG"


def wanted(env: Mapping[str, str]) -> bool:
    """Whether a daemon with this environment installs the hook: unless ``P2PORCH_GC_FREEZE=0``."""
    return env.get(ENV, "1").strip() != "0"


def young_threshold(env: Mapping[str, str]) -> int:
    """The young generation's threshold a process with this environment uses: ``YOUNG_THRESHOLD`` unless
    ``P2PORCH_GC_YOUNG`` names another; ConfigError naming the variable when it is not an integer >= 1."""
    raw = env.get(YOUNG_ENV, "").strip()
    if not raw:
        return YOUNG_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{YOUNG_ENV} must be an integer >= 1, got {raw!r}", field=YOUNG_ENV)
    return value


def young_raised(young: int, threshold: int, frozen: int) -> bool:
    """Whether a freeze that left ``frozen`` objects frozen raises the young threshold from ``threshold``
    to ``young``: only a large heap's (``LARGE_HEAP_OBJECTS``; an idle daemon holds ~60,000 after its
    imports, and its start-up collection may be slow on a loaded machine), never lowered."""
    return frozen >= LARGE_HEAP_OBJECTS and threshold < young


#: told of every collection once it ends: its generation, how long it took (s) and ``gc``'s info dict
Observer = Callable[[int, float, dict[str, Any]], None]


def freeze_after(generation: int, took_s: float, slow_s: float = SLOW_FULL_COLLECTION_S) -> bool:
    """Whether the survivors of a collection of ``generation`` that took ``took_s`` are frozen: only
    after a full collection (generation 2) at least ``slow_s`` long (a small heap is left alone)."""
    return generation == 2 and took_s >= slow_s


class _Hook:
    """The ``gc.callbacks`` entry: times each collection, freezes after a slow full one (and raises the
    young threshold to ``young`` then, when given), and tells its ``observer`` (None: nobody) each
    collection's duration. Never runs a collection itself; never lowers a threshold."""

    def __init__(self, slow_s: float, young: int | None = None) -> None:
        self.slow_s = slow_s
        self.young = young  # None: the thresholds are left alone
        self.thresholds = gc.get_threshold()  # at install: uninstall puts them back
        self.started_at: float | None = None  # the collection in progress (None: none seen starting)
        self.freezes = 0
        self.observer: Observer | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self.started_at = now
            return
        if self.started_at is None:  # installed during a collection: its start was not seen
            return
        took, self.started_at = max(0.0, now - self.started_at), None
        generation = int(info.get("generation", -1))
        if self.observer is not None:
            self.observer(generation, took, info)
        if freeze_after(generation, took, self.slow_s):
            gc.freeze()  # the collection is over: its survivors leave the generations it walks
            self.freezes += 1
            now_young = gc.get_threshold()
            if self.young is not None and young_raised(self.young, now_young[0], gc.get_freeze_count()):
                gc.set_threshold(self.young, *now_young[1:])
            log.debug(  # DEBUG: dozens a minute while a state of 100,000 tasks grows
                "gc: a full collection took %.3f s: its survivors frozen (%d objects frozen in all)",
                took,
                gc.get_freeze_count(),
            )


def install(slow_s: float = SLOW_FULL_COLLECTION_S, young: int | None = None) -> _Hook:
    """Freeze the survivors of every slow full collection of this process from now on, and then raise
    the young generation's threshold to ``young`` (None: never; entry points pass
    ``young_threshold(os.environ)``); the hook (tests and benchmarks read ``freezes``;
    ``gc.callbacks.remove(hook)`` takes it out). Once per process: a hook already installed is returned
    as it is."""
    for hook in gc.callbacks:
        if isinstance(hook, _Hook):
            return hook
    hook = _Hook(slow_s, young)
    gc.callbacks.append(hook)
    return hook


def uninstall(hook: _Hook | None) -> None:
    """Take ``hook`` out; what it froze goes back to the collected generations (``gc.unfreeze``), the
    thresholds to what they were at its install."""
    if hook is None:
        return
    if hook in gc.callbacks:
        gc.callbacks.remove(hook)
    if hook.freezes:
        gc.unfreeze()
        gc.set_threshold(*hook.thresholds)


def figures() -> dict[str, Any]:
    """This process's collector, for benchmarks: objects per generation, frozen objects, this hook's
    freezes (None: not installed), and collections, collected and uncollectable objects per generation."""
    hook = next((h for h in gc.callbacks if isinstance(h, _Hook)), None)
    stats = gc.get_stats()
    return {
        "count": list(gc.get_count()),
        "frozen": gc.get_freeze_count(),
        "freezes": hook.freezes if hook is not None else None,
        "collections": [s["collections"] for s in stats],
        "collected": [s["collected"] for s in stats],
        "uncollectable": [s["uncollectable"] for s in stats],
    }
