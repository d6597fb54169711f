"""One daemon's Prometheus metrics: the instruments its shells update, and pulled sources.

Owns one daemon's instruments (never a process-global registry, so several daemons in one process
keep apart) that shells update as things happen (API requests, commit latency, scheduling rounds,
container starts), and the sources that read counters components already keep (Raft status, gossip,
DNS, overlay) when ``/metrics`` is scraped. The instruments are plain numbers under a lock: an idle
daemon that nobody scrapes never imports ``prometheus_client`` (:mod:`p2porch.promclient`, imported by
:meth:`Metrics.render`). It never adds work to a packet path: the DNS server and gossip transport keep
plain integer counters that a source reads at scrape time. docs/metrics.md lists every metric.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from .buckets import BucketCounts

if TYPE_CHECKING:
    from .promclient import CollectorRegistry, Metric

log = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE", "Counter", "Histogram", "Metrics", "Source"]

#: every name here is a classic one, so the output is the 0.0.4 text format that every Prometheus reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Source = Callable[[], Iterable["Metric"]]
"""A function that returns metric families read from a component at scrape time."""

_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _CounterChild:
    """One label combination of a :class:`Counter`."""

    def __init__(self, parent: Counter, key: tuple[str, ...]) -> None:
        self._parent, self._key = parent, key

    def inc(self, amount: float = 1.0) -> None:
        self._parent.add(self._key, amount)


class Counter:
    """A monotonic counter, optionally by labels (``labels(...).inc()``); exposed as ``NAME_total``."""

    def __init__(self, name: str, doc: str, labelnames: Iterable[str] = ()) -> None:
        self.name, self.doc, self.labelnames = name, doc, tuple(labelnames)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {} if self.labelnames else {(): 0.0}

    def labels(self, *values: str) -> _CounterChild:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        return _CounterChild(self, tuple(str(v) for v in values))

    def inc(self, amount: float = 1.0) -> None:
        if self.labelnames:
            raise ValueError(f"{self.name} is counted by labels {self.labelnames}")
        self.add((), amount)

    def add(self, key: tuple[str, ...], amount: float) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def values(self) -> dict[tuple[str, ...], float]:
        with self._lock:
            return dict(self._values)

    def family(self) -> Metric:
        from .promclient import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for key, value in self.values().items():
            family.add_metric(list(key), value)
        return family


class Histogram:
    """Observations in fixed ``le`` buckets with their count and sum (no labels); thread-safe."""

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...]) -> None:
        self.name, self.doc = name, doc
        self._lock = threading.Lock()
        self._counts = BucketCounts(buckets)

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts.observe(value)

    def snapshot(self) -> BucketCounts:
        with self._lock:
            return BucketCounts(self._counts.bounds, list(self._counts.counts), self._counts.total)

    def family(self) -> Metric:
        from .promclient import HistogramMetricFamily, floatToGoString

        counts = self.snapshot()
        family = HistogramMetricFamily(self.name, self.doc)
        buckets = [(floatToGoString(bound), float(n)) for bound, n in counts.cumulative()]
        family.add_metric([], buckets, sum_value=counts.total)
        return family


class Metrics:
    """One daemon's instruments and sources (see the module docstring); holds no component state."""

    def __init__(self) -> None:
        self.api_requests = Counter(
            "p2porch_api_requests",
            "Control API requests by route template, method and HTTP status code",
            ["route", "method", "code"],
        )
        self.api_request_timeouts = Counter(
            "p2porch_api_request_timeouts",
            "Control API requests answered 408 because their body was still arriving api.request_timeout_s "
            "after their head, by listener (unix | tls)",
            ["listener"],
        )
        self.raft_commit_seconds = Histogram(
            "p2porch_raft_commit_seconds",
            "Time from proposing a command on this node to its result (committed and applied)",
            _FAST_BUCKETS,
        )
        self.scheduler_placements = Counter(
            "p2porch_scheduler_placements",
            "Tasks this node (as leader) assigned to a node in a committed scheduling round",
        )
        self.restart_holds_gated = Counter(
            "p2porch_restart_holds_gated",
            "Restart holds and hold clears this node (as leader) decided but did not write because some "
            "member does not read update_node version 2 (the command-version gate), each counted once, "
            "by what (hold | clear)",
            ["what"],
        )
        self.scheduler_round_seconds = Histogram(
            "p2porch_scheduler_round_seconds",
            "Duration of one leader scheduling round (plan and commit)",
            _FAST_BUCKETS,
        )
        self.agent_task_starts = Counter(
            "p2porch_agent_task_starts",
            "Container starts this node's agent attempted, by result (ok | failed | error)",
            ["result"],
        )
        self.endpoint_drains = Counter(
            "p2porch_endpoint_drains",
            "Load-balanced tasks this node's agent drained before stopping them, by how the wait ended "
            "(acknowledged: every live node's rules dropped the task; bound: drain_max_s passed first)",
            ["outcome"],
        )
        self.connection_drains = Counter(
            "p2porch_connection_drains",
            "Load-balanced tasks whose open TCP connections this node's agent waited for before stopping "
            "them, by how the wait ended (ended: none left open; bound: drain_max_s passed first)",
            ["outcome"],
        )
        self.listen_waits = Counter(
            "p2porch_listen_waits",
            "Started tasks this node's agent held as starting until they listened on their TCP ingress "
            "target ports (listening; bound: listen_max_s passed first; gone: the process ended)",
            ["outcome"],
        )
        self.conntrack_flushed = Counter(
            "p2porch_conntrack_flushed",
            "Conntrack entries this node deleted because the backend they were DNATed to left its "
            "ingress/VIP rules, by protocol (udp: every flow; tcp: connections the backend never answered)",
            ["protocol"],
        )
        self.agent_container_start_seconds = Histogram(
            "p2porch_agent_container_start_seconds",
            "Time to create and start one task's container (image pull included)",
            _SLOW_BUCKETS,
        )
        self._instruments: tuple[Counter | Histogram, ...] = (
            self.api_requests,
            self.api_request_timeouts,
            self.raft_commit_seconds,
            self.scheduler_placements,
            self.restart_holds_gated,
            self.scheduler_round_seconds,
            self.agent_task_starts,
            self.endpoint_drains,
            self.connection_drains,
            self.listen_waits,
            self.conntrack_flushed,
            self.agent_container_start_seconds,
        )
        self._sources: list[Source] = []
        self._registry: CollectorRegistry | None = None

    def add_source(self, source: Source) -> None:
        """Read ``source`` at every scrape (it must be cheap and must not block)."""
        self._sources.append(source)

    def collect(self) -> Iterator[Metric]:
        """The instruments' families, then every source's; a failing source is logged and skipped."""
        for instrument in self._instruments:
            yield instrument.family()
        for source in list(self._sources):
            try:
                yield from source()
            except Exception:  # a scrape must never take a subsystem (or the API) down
                log.exception("metrics source %r failed", source)

    def render(self) -> bytes:
        """Every family in the Prometheus text exposition format (imports prometheus_client once)."""
        from .promclient import generate_latest

        return generate_latest(self.registry())

    def registry(self) -> CollectorRegistry:
        """A registry (built on first use) that collects this daemon's families."""
        if self._registry is None:
            from .promclient import CollectorRegistry

            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(_Collected(self))
        return self._registry


class _Collected:
    """The registry's one collector: :meth:`Metrics.collect` (no up-front description)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.collect()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families vary with the cluster
