"""`service update` with a flag whose stored field carries its unit (``--update-delay 4s`` is stored as
``update.delay_s``): the change replaces the stored value instead of being refused as "given twice".

Each case goes the way a user's command does: the CLI's parser and ``spec_changes``, then ServiceOps over
the real FSM in memory (no Raft). Found by the h25 CLI walk: every such flag exited 2 on any service.
"""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import build_parser
from p2porch.cli.service_spec_flags import spec_changes
from p2porch.control.service_ops import ServiceOps
from p2porch.control.spec_merge import merge_spec
from p2porch.testing.memstore import MemoryManager

SERVICE = {
    "name": "web",
    "image": "p2porch/busybox:latest",
    "replicas": 0,
    "health": {"cmd": "true", "interval": "3s", "timeout": "3s", "start_period": "1s"},
    "restart": {"delay": "2s", "window": "5s"},
    "update": {"delay": "1s", "monitor": "2s"},
    "rollback": {"delay": "1s", "monitor": "2s"},
    "reserve_cpu": "0.1",
    "reserve_memory": "32M",
    "limit_cpu": "1",
    "limit_memory": "64M",
    "stop_grace_period": "3s",
}
JOB = {
    "name": "nightly",
    "image": "p2porch/busybox:latest",
    "mode": "replicated-job",
    "schedule": {"cron": "0 2 * * *", "starting_deadline": "10s"},
}
GIB = 1024**3

CASES = [
    (SERVICE, ["--update-delay", "4s"], ("update", "delay_s"), 4.0),
    (SERVICE, ["--update-monitor", "7s"], ("update", "monitor_s"), 7.0),
    (SERVICE, ["--rollback-delay", "5s"], ("rollback", "delay_s"), 5.0),
    (SERVICE, ["--rollback-monitor", "6s"], ("rollback", "monitor_s"), 6.0),
    (SERVICE, ["--restart-delay", "9s"], ("restart", "delay_s"), 9.0),
    (SERVICE, ["--restart-window", "1m"], ("restart", "window_s"), 60.0),
    (SERVICE, ["--health-interval", "2s"], ("health", "interval_s"), 2.0),
    (SERVICE, ["--health-timeout", "1s"], ("health", "timeout_s"), 1.0),
    (SERVICE, ["--health-start-period", "8s"], ("health", "start_period_s"), 8.0),
    (SERVICE, ["--stop-grace-period", "5s"], ("stop_grace_period_s",), 5.0),
    (SERVICE, ["--reserve-cpu", "0.5"], ("reserve_cpu_nanos",), 500_000_000),
    (SERVICE, ["--limit-cpu", "2"], ("limit_cpu_nanos",), 2_000_000_000),
    (SERVICE, ["--reserve-memory", "48M"], ("reserve_memory_bytes",), 48 * 1024**2),
    (SERVICE, ["--limit-memory", "1G"], ("limit_memory_bytes",), GIB),
    (JOB, ["--starting-deadline", "30s"], ("schedule", "starting_deadline_s"), 30.0),
    # before: "placement_prefs: given twice (as placement_preferences)" on every service
    (
        SERVICE,
        ["--placement-pref", "spread=node.labels.zone"],
        ("placement_preferences",),
        ["spread=node.labels.zone"],
    ),
]


def _get(spec: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        spec = spec[key]
    return spec


@pytest.mark.parametrize(("base", "flag", "path", "expected"), CASES, ids=[c[1][0] for c in CASES])
async def test_update_flag_replaces_the_stored_field(
    base: dict[str, Any], flag: list[str], path: tuple[str, ...], expected: Any
) -> None:
    ops = ServiceOps(MemoryManager(), logs=None)  # type: ignore[arg-type]
    await ops.create(dict(base))
    changes = spec_changes(build_parser().parse_args(["service", "update", base["name"], *flag]))
    updated = await ops.update(base["name"], changes)
    assert _get(updated["spec"], path) == expected


def test_merge_keeps_the_other_fields_of_a_section() -> None:
    current = {"update": {"parallelism": 2, "delay_s": 1.0, "monitor_s": 5.0, "max_delay": 0}}
    merged = merge_spec(current, {"update": {"delay": "4s"}})
    assert merged == {"update": {"parallelism": 2, "monitor_s": 5.0, "max_delay": 0, "delay": "4s"}}


def test_merge_health_test_replaces_cmd() -> None:
    merged = merge_spec(
        {"health": {"cmd": ["CMD-SHELL", "true"], "retries": 3}}, {"health": {"test": "false"}}
    )
    assert merged == {"health": {"retries": 3, "test": "false"}}
