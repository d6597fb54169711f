"""How a sandbox paces its own formation on one machine (pure: no I/O, clocks and readers injected).

Owns the decisions that differ between a small sandbox and a crowded one (more than ``CROWDED_HOSTS``
hosts sharing this machine's cores): the Raft timing its daemons run with, how many joins are in
flight at once and how often a failed one is tried again, when the machine has the headroom to start
the next join, and the neighbour-table limits the hosts need. It never reads /proc, sleeps on its own
or starts anything: the shell (``cluster.py``, ``sandbox.py``) passes in what it measured.

Why a crowded sandbox is paced (docs/performance.md, "`sandbox up --nodes 50`"): every join makes
every member apply the admission and rebuild its views (~0.1 s of CPU per member per join at 50 hosts),
so a formation costs O(hosts²) CPU. Started as fast as the joins return, 50 hosts put 80-160 threads
in the run queue of 2 cores for two minutes, and a voter's Raft thread waiting its turn behind them is
how elections came back. Pacing starts a join only while the run queue is short, so the same work is
spread out instead of queued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: above this many hosts on one machine a sandbox is "crowded": its daemons and engines share the
#: cores, and its formation is paced and its Raft timing relaxed (see the module docstring)
CROWDED_HOSTS = 20
#: the round trip a crowded sandbox's daemons assume (``raft.rtt_ms``): heartbeat 0.5 s, elections
#: after 2.5-6 s (raft/timing.py). Scheduling delays on an oversubscribed machine act like a WAN's.
CROWDED_RTT_MS = 250


@dataclass(frozen=True)
class JoinPacing:
    """How a formation runs its joins.

    ``parallel`` joins in flight at most; a join starts only once the machine's run queue, averaged
    over a short sample, is at most ``max_runnable_per_core`` threads per core above the baseline (the
    run queue measured before the formation: other work on the machine, the idle hosts) (0: never
    wait), and waits for that at most ``max_wait_s`` (then starts anyway: a busy machine slows a
    formation, never stalls it); a failed join is tried ``attempts`` times in all, ``retry_s`` x
    attempt apart.
    """

    parallel: int
    max_runnable_per_core: float
    max_wait_s: float
    attempts: int
    retry_s: float


SMALL = JoinPacing(parallel=8, max_runnable_per_core=0.0, max_wait_s=0.0, attempts=3, retry_s=1.0)
CROWDED = JoinPacing(parallel=4, max_runnable_per_core=3.0, max_wait_s=15.0, attempts=5, retry_s=3.0)


def is_crowded(hosts: int) -> bool:
    return hosts > CROWDED_HOSTS


def join_pacing(hosts: int) -> JoinPacing:
    """The pacing of a formation of ``hosts`` hosts on this machine."""
    return CROWDED if is_crowded(hosts) else SMALL


def default_rtt_ms(hosts: int) -> int:
    """The ``raft.rtt_ms`` a new sandbox of ``hosts`` hosts gives its daemons (0: the LAN defaults)."""
    return CROWDED_RTT_MS if is_crowded(hosts) else 0


def runnable_from_loadavg(text: str) -> int:
    """Threads runnable right now from /proc/loadavg's fourth field (``running/total``), less the
    reader itself; ValueError on anything else."""
    fields = text.split()
    if len(fields) < 4 or "/" not in fields[3]:
        raise ValueError(f"not a /proc/loadavg line: {text!r}")
    running = int(fields[3].split("/", 1)[0])
    return max(running - 1, 0)


def mean(samples: Sequence[int]) -> float:
    return sum(samples) / len(samples) if samples else 0.0


def has_headroom(runnable_samples: Sequence[int], cores: int, pacing: JoinPacing, baseline: float) -> bool:
    """True when the mean of the sampled run-queue lengths allows another join to start."""
    if pacing.max_runnable_per_core <= 0 or not runnable_samples:
        return True
    return mean(runnable_samples) <= baseline + pacing.max_runnable_per_core * max(cores, 1)


@dataclass
class HeadroomWait:
    """The outcome of one :func:`wait_for_headroom`: seconds waited and whether the wait timed out."""

    waited_s: float
    timed_out: bool


def wait_for_headroom(
    pacing: JoinPacing,
    cores: int,
    sample: Callable[[], Sequence[int]],
    now: Callable[[], float],
    sleep: Callable[[float], None],
    baseline: float = 0.0,
    poll_s: float = 0.5,
) -> HeadroomWait:
    """Block (through ``sleep``) until ``sample()`` shows headroom over ``baseline`` or
    ``pacing.max_wait_s`` has passed.

    ``sample`` returns a few run-queue readings taken just now (it may itself take a moment); ``now``
    and ``sleep`` are the clock, injected so tests run it on a fake one."""
    started = now()
    if pacing.max_runnable_per_core <= 0:
        return HeadroomWait(0.0, False)
    while True:
        if has_headroom(sample(), cores, pacing, baseline):
            return HeadroomWait(now() - started, False)
        waited = now() - started
        if waited >= pacing.max_wait_s:
            return HeadroomWait(waited, True)
        sleep(min(poll_s, pacing.max_wait_s - waited))


#: neighbour-table limits (net.ipv4.neigh.default.gc_thresh1/2/3) a sandbox of more than
#: NEIGHBOUR_HOSTS hosts needs: the table is shared by every namespace, and a full mesh of N hosts
#: holds ~N² underlay entries plus as many on the overlay's VXLAN devices (the default gc_thresh3,
#: 1024, overflows near 20 hosts: "neighbour table overflow", then lost ARP replies)
NEIGHBOUR_HOSTS = 20


def neighbour_limits(hosts: int) -> dict[str, int]:
    """The gc_thresh values ``hosts`` hosts need, or {} when the kernel defaults are enough."""
    if hosts <= NEIGHBOUR_HOSTS:
        return {}
    need = 4 * hosts * hosts  # underlay + overlay mesh, with headroom for containers' entries
    third = max(16384, 1 << (need - 1).bit_length())
    return {"gc_thresh1": third // 4, "gc_thresh2": third // 2, "gc_thresh3": third}


def limits_to_raise(current: dict[str, int], wanted: dict[str, int]) -> dict[str, int]:
    """The limits to write: those below what is wanted (a limit already higher is left as it is)."""
    return {key: value for key, value in wanted.items() if current.get(key, 0) < value}
