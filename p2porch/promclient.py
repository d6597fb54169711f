"""The only door to ``prometheus_client`` (shell of the metrics): imported when ``/metrics`` is scraped.

prometheus_client loads ~1.2 MB at import (its exposition module brings ``http.server``,
``urllib.request``, ``wsgiref``, ``gzip``), which an idle daemon that nobody scrapes never needs. So
:class:`p2porch.metrics.Metrics` keeps its instruments as plain numbers, and the metric families,
the registry and the text exposition come from here, imported inside the functions that build a
scrape. Nothing imported at daemon start may import this module (``tests/unit/test_daemon_imports.py``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "Collector",
    "CollectorRegistry",
    "CounterMetricFamily",
    "GaugeMetricFamily",
    "HistogramMetricFamily",
    "Metric",
    "floatToGoString",
    "generate_latest",
]
