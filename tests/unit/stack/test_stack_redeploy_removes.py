"""A stack redeploy replaces the whole spec, as ``docker stack deploy`` sends the whole ServiceSpec
(review r52d, 3): a setting the file no longer has goes. Before, the deploy merged the file's spec into
the stored one section by section, and the daemon's body leaves ``container`` sparse (``{}`` when all
default) and a health check's ``start_interval`` out when 0: a ``read_only: true`` or a
``start_interval: 2s`` removed from the file stayed, the plan and the apply said "updated" and every
redeploy after said it again. Through StackOps.apply over the FSM in memory."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager

FULL = """
services:
  web:
    image: p2porch/busybox:1
    read_only: true
    user: "1000"
    sysctls: {net.core.somaxconn: 1024}
    logging: {driver: json-file, options: {max-size: 1m}}
    labels: {tier: front}
    healthcheck:
      test: ["CMD", "true"]
      start_interval: 2s
      interval: 7s
    deploy:
      labels: {team: shop}
      resources: {limits: {memory: 64M}, reservations: {cpus: "0.5"}}
      restart_policy: {condition: on-failure, max_attempts: 3}
      update_config: {delay: 4s, parallelism: 2}
      rollback_config: {parallelism: 3}
      placement: {constraints: ["node.role==manager"], preferences: [{spread: node.labels.zone}]}
      x-p2porch: {on_site_loss: replace}
    x-p2porch-autoscale: {min: 1, max: 3, cpu_percent: 70}
"""
BARE = """
services:
  web:
    image: p2porch/busybox:1
    healthcheck:
      test: ["CMD", "true"]
"""


def deploy(ops: StackOps, text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    definition = load_stack("shop", text, lambda path: "")
    planned = ops.dry_run(definition)["services"]
    return planned, trio.run(ops.apply, definition)["services"]


def fresh(text: str) -> ServiceSpec:
    """The spec a first deploy of ``text`` stores (a stack with nothing before)."""
    ops = StackOps(ServiceOps(MemoryManager(), logs=None))  # type: ignore[arg-type]
    deploy(ops, text)
    return ops.services.find("shop-web").spec


@pytest.mark.parametrize("first,then", [(FULL, BARE), (BARE, FULL)], ids=["removed", "added"])
def test_a_redeploy_stores_the_file_as_a_first_deploy_would(first: str, then: str) -> None:
    ops = StackOps(ServiceOps(MemoryManager(), logs=None))  # type: ignore[arg-type]
    deploy(ops, first)
    planned, done = deploy(ops, then)
    assert [s["action"] for s in planned] == [s["action"] for s in done] == ["updated"]
    stored = ops.services.find("shop-web").spec
    # main: read_only, sysctls, logging and start_interval_s kept (container, health merged key by key),
    # autoscale and on_site_loss too (absent from the body: not replaced)
    assert stored.to_dict() == fresh(then).to_dict()
    again, redone = deploy(ops, then)  # main: "updated" ['container', 'health'] at every redeploy
    assert [s["action"] for s in again] == [s["action"] for s in redone] == ["unchanged"]


def test_a_redeploy_keeps_the_force_counter_of_a_service_update_force() -> None:
    """What the cluster owns stays: ``--force``'s counter (a file has none: a redeploy after it is no
    change, and no second roll of every task)."""
    manager = MemoryManager()
    ops = StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]
    deploy(ops, FULL)
    trio.run(ops.services.update, "shop-web", {"force": True})
    assert ops.services.find("shop-web").spec.force_update == 1
    planned, done = deploy(ops, FULL)
    assert [s["action"] for s in planned] == [s["action"] for s in done] == ["unchanged"]
    planned, done = deploy(ops, BARE)
    assert [s["action"] for s in done] == ["updated"]
    assert ops.services.find("shop-web").spec.force_update == 1
    assert manager.commands.count(C.UpdateService.TAG) == 2  # the --force and the BARE redeploy
