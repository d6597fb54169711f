"""The agent makes the node's Docker network before its first container start on it (member/agent.py
``MeasuredExecutor`` with ``NodeBridge``, netoverlay/bridge.py): once, not for a task on the host's
network unless it resolves through the node's DNS (on the network's gateway; best effort), and again
after a start on it failed (the network deleted by hand). A network that cannot be made is the start's
error (as an engine's), and one it made wakes the rules' owners for a full pass."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from p2porch.agent.model import TaskAssignment
from p2porch.agent.plan import StartOutcome
from p2porch.context import LocalBoard
from p2porch.errors import OverlayError
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
        self.refuses = ""  # dockerd's answer to a network it will not make

    def inspect(self, name: str) -> dict[str, Any] | None:
        return {"Name": name} if name in self.networks else None

    def ensure(self, spec: Any) -> str:
        self.calls.append("ensure")
        if self.down:
            raise OverlayError("cannot reach the Docker engine: connection refused")
        if self.refuses:
            raise OverlayError(f"docker network {spec.name}: {self.refuses}")
        made = spec.name not in self.networks
        self.networks.add(spec.name)
        return "created" if made else "unchanged"

    def remove(self, name: str) -> bool:
        self.calls.append("remove")
        existed = name in self.networks
        self.networks.discard(name)
        return existed

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


def executor(engine: Engine, board: LocalBoard | None = None) -> MeasuredExecutor:
    board = board or LocalBoard()
    overlay = OverlayReconciler(
        LocalNode("n1", "10.80.0.1", "10.241.1.0/24"),
        Driver(),  # type: ignore[arg-type]
        network=engine,  # type: ignore[arg-type]
        blocking=inline,
        on_bridge_made=board.engine_answers_again,  # as member/overlay.py's run_overlay
    )
    board.overlay = overlay
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


async def test_an_engine_down_fails_the_start_with_its_error_and_the_next_one_tries_again() -> None:
    engine = Engine()
    engine.down = True
    agent = executor(engine)
    outcome = await agent.start(TASK)  # the task's error, not "container no longer exists" a pass later
    assert outcome == StartOutcome(
        None, f"docker network {NETWORK}: cannot reach the Docker engine: connection refused"
    )
    engine.down = False
    assert (await agent.start(TASK)).error == "" and engine.calls == ["ensure", "ensure", "start t1"]


async def test_a_network_dockerd_refuses_is_the_start_error() -> None:
    engine = Engine()
    engine.refuses = "Pool overlaps with other one on this address space"
    outcome = await executor(engine).start(TASK)
    assert outcome.container is None
    assert outcome.error == f"docker network {NETWORK}: Pool overlaps with other one on this address space"


async def test_no_running_overlay_fails_the_start_as_the_engine_would() -> None:
    agent = MeasuredExecutor(
        Engine(),  # type: ignore[arg-type]
        Metrics(),
        bridge=(NETWORK, NodeBridge(SimpleNamespace(overlay=None))),  # type: ignore[arg-type]
    )
    outcome = await agent.start(TASK)
    assert outcome == StartOutcome(
        None,
        f"docker network {NETWORK}: the node's overlay is not running: its Docker network cannot be made",
    )


async def test_a_start_during_the_leave_does_not_make_the_network_again() -> None:
    engine = Engine()
    board = LocalBoard()
    agent = executor(engine, board)
    await agent.start(TASK)
    assert board.overlay is not None and board.overlay.bridge is not None
    await board.overlay.bridge.remove(NETWORK)  # the leave's teardown; the agent still runs
    outcome = await agent.start(replace(TASK, task_id="t2"))
    assert outcome.error == f"docker network {NETWORK}: the node left: its Docker network is not made again"
    assert not engine.networks and engine.calls == ["ensure", "start t1", "remove"]


async def test_the_network_made_wakes_the_policy_and_traffic_loops_once() -> None:
    board = LocalBoard()
    agent = executor(Engine(), board)
    woken = board.engine_back  # the network policy and traffic loops wait on it (a full pass)
    await agent.start(replace(TASK, network="host"))
    assert not woken.is_set()
    await agent.start(TASK)  # made: dockerd's FORWARD accepts for the bridge may sit above their jumps
    assert woken.is_set()
    again = board.engine_back
    await agent.start(replace(TASK, task_id="t2"))
    assert not again.is_set()  # found made: nothing new


async def test_a_host_network_task_resolving_through_the_nodes_dns_has_the_network_made_first() -> None:
    engine = Engine()
    agent = executor(engine)
    host = replace(TASK, network="host", dns_servers=("10.241.1.1",))  # the node's gateway (its DNS)
    assert (await agent.start(host)).error == ""
    assert engine.calls == ["ensure", "start t1"] and engine.networks == {NETWORK}
    down = Engine()
    down.down = True  # best effort: the task starts whatever the network does
    assert (await executor(down).start(replace(host, task_id="t2"))).error == ""
    assert down.calls == ["ensure", "start t2"] and not down.networks
