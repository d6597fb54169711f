"""The values docker/cli's list contexts give a ``--format`` field (cli/docker_values.py): states as
``PrettyPrint`` writes them, times as go-units' ``HumanDuration``, ``service ls``'s ingress ``{{.Ports}}``.
Before, the fields printed p2porch's columns: ``running``, ``8s ago``, ``8081->80/tcp (host)``."""

from __future__ import annotations

import argparse

import pytest

from p2porch.cli.docker_values import current_state, human_duration, ingress_ports, pretty
from p2porch.cli.goformat import listing
from p2porch.cli.service_rows import SERVICE_COLUMNS, SERVICE_EXTRA, service_extra, service_row


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),  # Go rounds the hours
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (2 * 365 * 86400, "2 years"),
    ],
)
def test_human_duration_is_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_states_print_as_docker_clis_pretty_print() -> None:
    assert [pretty(s) for s in ("running", "READY", "drain", "", "x", None)] == [
        "Running", "Ready", "Drain", "", "x", "None"
    ]  # fmt: skip
    assert current_state("running", 100.0, now=108.5) == "Running 8 seconds ago"
    assert current_state("shutdown", 100.0, now=100.2) == "Shutdown less than a second ago"
    assert current_state("running", 100.0, now=190.0) == "Running about a minute ago"


def test_service_ls_ports_are_the_ingress_ones_merged_into_ranges() -> None:
    ports = [
        {"published": 8082, "target": 80, "mode": "host"},  # a task's, not the service's
        {"published": 30001, "target": 30001, "protocol": "tcp"},
        {"published": 30000, "target": 30000, "protocol": "tcp"},
        {"published": 30002, "target": 30002},
        {"published": 8080, "target": 80},
        {"published": 53, "target": 53, "protocol": "udp"},
        {"published": None, "target": 9000},  # the swarm picks it on each node: nothing to show
    ]
    assert ingress_ports(ports) == "*:8080->80/tcp, *:30000-30002->30000-30002/tcp, *:53->53/udp"
    assert ingress_ports([]) == ""


def test_service_ls_format_ports_is_dockers_and_the_table_keeps_its_own() -> None:
    ports = [
        {"published": 8081, "target": 80, "mode": "host"},
        {"published": 8080, "target": 80, "mode": "ingress"},
    ]
    view = {"id": "0123456789abcdef", "name": "web", "mode": "replicated", "running": 1, "desired": 1,
            "image": "nginx", "pending": [], "endpoint_ports": ports}  # fmt: skip
    rows, extras = [service_row(view)], [service_extra(view)]
    args = argparse.Namespace(format="{{.Name}} [{{.Ports}}]")
    assert listing(args, SERVICE_COLUMNS, rows, SERVICE_EXTRA, extras) == "web [*:8080->80/tcp]"
    args.format = None
    assert "8081->80/tcp (host),*:8080->80/tcp" in listing(args, SERVICE_COLUMNS, rows, SERVICE_EXTRA, extras)
