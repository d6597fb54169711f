"""The agent makes the node's Docker network before its first container start on it (member/agent.py
``MeasuredExecutor`` with ``NodeBridge``, netoverlay/bridge.py): once, not for a task on the host's
network, and again after a start on it failed (the network deleted by hand)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from p2porch.agent.model import TaskAssignment
from p2porch.agent.plan import StartOutcome
from p2porch.errors import ExecutorError, OverlayError
from p2porch.member.agent import MeasuredExecutor
from p2porch.member.overlay import NodeBridge
from p2porch.metrics import Metrics
from p2porch.netoverlay.plan import LocalNode, OverlaySettings
from p2porch.netoverlay.reconciler import OverlayReconciler

NETWORK = OverlaySettings().network_name
TASK = TaskAssignment("t1", "web", "s1", 1, "n1", "busybox", network=NETWORK)


class Engine:
    """One Docker engine: its networks (``DockerNetwork``'s calls) and container starts, which fail
    while the node's network is missing, as dockerd's do ("network p2porch not found")."""

    def __init__(self) -> None:
        self.networks: set[str] = set()
        self.calls: list[str] = []
        self.down = False

    def inspect(self, name: str) -> dict[str, Any] | None:
        return {"Name": name} if name in self.networks else None

    def ensure(self, spec: Any) -> str:
        self.calls.append("ensure")
        if self.down:
            raise OverlayError("docker network p2porch: cannot reach the Docker engine")
        made = spec.name not in self.networks
        self.networks.add(spec.name)
        return "created" if made else "unchanged"

    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        self.calls.append(f"start {assignment.task_id}")
        if assignment.network == NETWORK and NETWORK not in self.networks:
            return StartOutcome(None, f"network {NETWORK} not found")
        return StartOutcome(None)


class Driver:
    def underlay(self, address: str, dev: str | None = None) -> tuple[str, int]:
        return "eth0", 1500

    def close(self) -> None:
        pass


async def inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def executor(engine: Engine) -> MeasuredExecutor:
    overlay = OverlayReconciler(
        LocalNode("n1", "10.80.0.1", "10.241.1.0/24"),
        Driver(),  # type: ignore[arg-type]
        network=engine,  # type: ignore[arg-type]
        blocking=inline,
    )
    board = SimpleNamespace(overlay=overlay)
    return MeasuredExecutor(engine, Metrics(), bridge=(NETWORK, NodeBridge(board)))  # type: ignore[arg-type]


async def test_the_first_start_on_the_network_makes_it_once() -> None:
    engine = Engine()
    agent = executor(engine)
    assert (await agent.start(replace(TASK, network="host"))).error == ""  # the host's: no network
    assert engine.calls == ["start t1"] and not engine.networks
    for task_id in ("t2", "t3"):
        assert (await agent.start(replace(TASK, task_id=task_id))).error == ""
    assert engine.calls == ["start t1", "ensure", "start t2", "start t3"]


async def test_a_start_that_failed_on_a_network_deleted_by_hand_has_it_made_again() -> None:
    engine = Engine()
    agent = executor(engine)
    await agent.start(TASK)
    engine.networks.clear()  # docker network rm p2porch
    assert (await agent.start(replace(TASK, task_id="t2"))).error == f"network {NETWORK} not found"
    assert (await agent.start(replace(TASK, task_id="t3"))).error == ""  # checked again: made
    assert engine.calls == ["ensure", "start t1", "start t2", "ensure", "start t3"]


async def test_an_engine_down_fails_the_start_and_the_next_one_tries_again() -> None:
    engine = Engine()
    engine.down = True
    agent = executor(engine)
    with pytest.raises(ExecutorError, match="cannot reach the Docker engine"):
        await agent.start(TASK)
    engine.down = False
    assert (await agent.start(TASK)).error == "" and engine.calls == ["ensure", "ensure", "start t1"]


async def test_no_running_overlay_fails_the_start_as_the_engine_would() -> None:
    agent = MeasuredExecutor(
        Engine(),  # type: ignore[arg-type]
        Metrics(),
        bridge=(NETWORK, NodeBridge(SimpleNamespace(overlay=None))),  # type: ignore[arg-type]
    )
    with pytest.raises(ExecutorError, match="overlay is not running"):
        await agent.start(TASK)
