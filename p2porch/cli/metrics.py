"""``p2porch metrics``: print a node's Prometheus metrics (shell)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .util import client_for, command, wants_json

__all__ = ["add_metrics_commands", "samples_of"]


def add_metrics_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    command(
        sub,
        common,
        "metrics",
        "Print this node's metrics in the Prometheus text format (--json: one object per sample)",
        cmd_metrics,
    )


def samples_of(text: str) -> list[dict[str, Any]]:
    """Every sample of a Prometheus text exposition, parsed with prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        {"name": s.name, "labels": dict(s.labels), "value": s.value, "type": family.type}
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def cmd_metrics(args: argparse.Namespace) -> int:
    client = client_for(args)
    try:
        text = client.text("/metrics")
    finally:
        client.close()
    if wants_json(args):
        print(json.dumps(samples_of(text), indent=2))
    else:
        sys.stdout.write(text)
    return 0
