"""A stack whose service's health check is off (``test: ["NONE"]``) and tuned (``interval: 5s``) deploys
(review r52a, 2): Compose and the engine ignore the settings of a disabled check (docker stack deploy
sends them, the engine takes them), and p2porch refuses them on a check that is off. Main passed the
plan and the dry run, then created ``shop-api`` and was refused on ``web`` half-way through the deploy;
now the file's check is stored as ``{cmd: [NONE]}`` alone (stack/deploy.py), a pid joiner's folded as a
sidecar too, and a deploy body that still carries such a check (an API client's resolved specs) is
refused by the plan, before any write."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio

from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.errors import ConfigError
from p2porch.model.container import HealthSpec
from p2porch.raft import commands as C
from p2porch.stack import load_stack
from p2porch.stack.compose import StackDefinition, StackService
from p2porch.stack.names import stack_labels
from p2porch.testing.memstore import MemoryManager

OFF_TUNED = """
services:
  api:
    image: p2porch/busybox:1
  web:
    image: p2porch/busybox:1
    healthcheck:
      test: ["NONE"]
      interval: 5s
      retries: 2
"""
JOINER = """
services:
  api:
    image: p2porch/busybox:1
  probe:
    image: p2porch/busybox:1
    pid: "service:api"
    healthcheck:
      test: ["NONE"]
      timeout: 2s
"""
OFF = HealthSpec(("NONE",))


def stack_ops() -> tuple[StackOps, MemoryManager]:
    manager = MemoryManager()
    return StackOps(ServiceOps(manager, logs=None)), manager  # type: ignore[arg-type]


def test_a_file_check_off_with_settings_deploys_with_the_check_alone() -> None:
    ops, _ = stack_ops()
    definition = load_stack("shop", OFF_TUNED, lambda path: "")
    assert definition.by_name()["shop-web"].spec["health"] == OFF.to_dict()  # main: interval 5s, retries 2
    planned = ops.dry_run(definition)["services"]
    done = trio.run(ops.apply, definition)["services"]
    assert [s["action"] for s in planned] == [s["action"] for s in done] == ["created", "created"]
    assert ops.services.find("shop-web").spec.health == OFF


def test_a_pid_joiner_folded_as_a_sidecar_keeps_its_check_off_without_settings() -> None:
    ops, _ = stack_ops()
    definition = load_stack("shop", JOINER, lambda path: "")
    trio.run(ops.apply, definition)
    (sidecar,) = ops.services.find("shop-api").spec.sidecars
    assert sidecar.health == OFF  # main: refused at the create (sidecars[0].health.timeout)


def body_spec(health: dict[str, Any]) -> dict[str, Any]:
    labels = stack_labels("shop", "web")
    return {"name": "shop-web", "image": "p2porch/busybox:1", "labels": labels, "health": health}


@pytest.mark.parametrize("exists", [False, True])
def test_a_resolved_spec_with_an_off_check_tuned_is_refused_by_the_plan_before_any_write(exists) -> None:
    """A deploy body (not from a Compose file) with ``api`` then ``web`` carrying ``{test: NONE, interval:
    5s}``: main's plan passed it (dry run: both created) and the deploy wrote ``shop-api`` before the
    create or update of ``shop-web`` refused it."""
    ops, manager = stack_ops()
    api = load_stack("shop", "services:\n  api:\n    image: p2porch/busybox:1\n", lambda path: "")
    if exists:  # the update's check: merged into the stored spec, then refused the same
        web = StackService("web", body_spec({"test": ["CMD", "true"]}))
        trio.run(ops.apply, StackDefinition("shop", (web,)))
    tuned_off = StackService("web", body_spec({"test": ["NONE"], "interval": "5s"}))
    definition = StackDefinition("shop", (*api.services, tuned_off))
    writes = manager.writes
    for attempt in (ops.dry_run, lambda d: trio.run(ops.apply, d)):
        with pytest.raises(ConfigError) as refused:
            attempt(definition)
        assert refused.value.field == "services.web.healthcheck.interval"  # main: health.interval
    assert manager.writes == writes  # main: shop-api created


@pytest.mark.parametrize(
    "check,field",
    [
        ('{test: ["NONE"], interval: banana}', "interval"),
        ("{test: NONE, start_interval: soon}", "start_interval"),
        ("{disable: true, timeout: 1fortnight}", "timeout"),
        ("{disable: true, retries: x}", "retries"),
        ('{test: ["NONE"], retries: -1}', "retries"),
    ],
)
def test_a_file_check_off_has_its_settings_checked_before_they_are_dropped(check: str, field: str) -> None:
    """The settings of a check that is off are dropped (review r52a, 2) but still checked (review r52d,
    4): main dropped them unread, ``interval: banana`` deployed. compose-go refuses such a file."""
    text = f"services:\n  web:\n    image: p2porch/busybox:1\n    healthcheck: {check}\n"
    with pytest.raises(ConfigError) as refused:
        load_stack("shop", text, lambda path: "")
    assert refused.value.field == f"services.web.healthcheck.{field}"


def test_a_file_check_off_with_valid_settings_or_retries_0_is_the_check_alone() -> None:
    text = (
        "services:\n  web:\n    image: p2porch/busybox:1\n"
        "    healthcheck: {disable: true, test: [CMD, x], interval: 2s, retries: 0}\n"
    )
    assert load_stack("shop", text, lambda path: "").by_name()["shop-web"].spec["health"] == OFF.to_dict()


def test_a_sidecar_check_off_tuned_is_refused_naming_its_compose_key() -> None:
    """A deploy body whose sidecar carries a tuned check that is off: the refusal names the Compose key
    (``x-p2porch-sidecars[0]``), not the spec's (review r52d, 5: main said ``services.web.sidecars[0]``)."""
    ops, manager = stack_ops()
    sidecar = {"name": "probe", "image": "p2porch/busybox:1", "health": {"test": ["NONE"], "timeout": "2s"}}
    web = StackService("web", {**body_spec({"test": ["CMD", "true"]}), "sidecars": [sidecar]})
    with pytest.raises(ConfigError) as refused:
        ops.dry_run(StackDefinition("shop", (web,)))
    assert refused.value.field == "services.web.x-p2porch-sidecars[0].health.timeout"
    assert manager.writes == 0


@pytest.mark.parametrize("other", [False, True], ids=["same-file", "a-service-label-changed"])
def test_a_check_stored_off_with_settings_is_left_by_a_redeploy(other: bool) -> None:
    """A service an earlier release stored with ``{cmd: [NONE], interval_s: 5}`` (before the rule): its
    file's check is ``{cmd: [NONE]}`` alone, so the redeploy replaced it, changed the template and rolled
    every task once though the file had not changed (review r52d, 7). The settings never run: kept."""
    ops, manager = stack_ops()
    text = "services:\n  web:\n    image: p2porch/busybox:1\n    healthcheck: {disable: true}\n"
    trio.run(ops.apply, load_stack("shop", text, lambda path: ""))
    service = ops.services.find("shop-web")
    tuned = dataclasses.replace(service.spec, health=HealthSpec(("NONE",), interval_s=5.0))
    trio.run(manager.write, C.UpdateService.of(service, at=1.0, spec=tuned).encode())  # as stored then
    template = ops.services.find("shop-web").spec.template_hash()
    if other:
        text += "    deploy: {labels: {team: shop}}\n"
    definition = load_stack("shop", text, lambda path: "")
    planned, done = ops.dry_run(definition)["services"], trio.run(ops.apply, definition)["services"]
    want = [{"updated": ["service_labels"]}] if other else [{"unchanged": None}]
    assert [{s["action"]: s.get("fields")} for s in planned] == want  # main: ['health'] too
    assert [{s["action"]: s.get("fields")} for s in done] == want
    after = ops.services.find("shop-web")
    assert after.spec.health == tuned.health and after.spec.template_hash() == template  # no task rolls
