"""One daemon's Prometheus metrics: the registry, the instruments its shells update, and pulled sources.

Owns a per-daemon :class:`~prometheus_client.CollectorRegistry` (never the global default, so several
daemons in one process keep apart) with the instruments that shells update as things happen (API
requests, commit latency, scheduling rounds, container starts), and the sources that read counters
components already keep (Raft status, gossip, DNS, overlay) when ``/metrics`` is scraped. It never
adds work to a packet path: the DNS server and gossip transport keep plain integer counters that a
source reads at scrape time. docs/metrics.md lists every metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE", "Metrics", "Source"]

#: every name here is a classic one, so the output is the 0.0.4 text format that every Prometheus reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # no *_created series: they double the output and carry no operational signal

Source = Callable[[], Iterable[Metric]]
"""A function that returns metric families read from a component at scrape time."""

_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _Pulled(Collector):
    """Yields the families of every registered source; a failing source is logged and skipped."""

    def __init__(self, sources: list[Source]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in list(self._sources):
            try:
                yield from source()
            except Exception:  # a scrape must never take a subsystem (or the API) down
                log.exception("metrics source %r failed", source)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families vary with the cluster: no up-front description


class Metrics:
    """One daemon's registry and instruments (see the module docstring); holds no component state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self.api_requests = Counter(
            "p2porch_api_requests",
            "Control API requests by route template, method and HTTP status code",
            ["route", "method", "code"],
            registry=reg,
        )
        self.raft_commit_seconds = Histogram(
            "p2porch_raft_commit_seconds",
            "Time from proposing a command on this node to its result (committed and applied)",
            buckets=_FAST_BUCKETS,
            registry=reg,
        )
        self.scheduler_placements = Counter(
            "p2porch_scheduler_placements",
            "Tasks this node (as leader) assigned to a node in a committed scheduling round",
            registry=reg,
        )
        self.scheduler_round_seconds = Histogram(
            "p2porch_scheduler_round_seconds",
            "Duration of one leader scheduling round (plan and commit)",
            buckets=_FAST_BUCKETS,
            registry=reg,
        )
        self.agent_task_starts = Counter(
            "p2porch_agent_task_starts",
            "Container starts this node's agent attempted, by result (ok | failed | error)",
            ["result"],
            registry=reg,
        )
        self.agent_container_start_seconds = Histogram(
            "p2porch_agent_container_start_seconds",
            "Time to create and start one task's container (image pull included)",
            buckets=_SLOW_BUCKETS,
            registry=reg,
        )
        self._sources: list[Source] = []
        reg.register(_Pulled(self._sources))

    def add_source(self, source: Source) -> None:
        """Read ``source`` at every scrape (it must be cheap and must not block)."""
        self._sources.append(source)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)
