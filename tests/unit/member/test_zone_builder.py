"""ZoneBuilder and ZoneCompiler give exactly what the full rebuilds give, on seeded random change sequences.

Each step commits a random burst of commands through the real FSM (services with and without VIPs, stack
aliases whose ``<stack>`` label collides with a service name, ports, shared addresses, tasks placed,
reported, made unhealthy and removed, nodes relabelled to another region or left) and compares
``ZoneBuilder.update(state, changes)`` with ``dns_zone(state)`` and one long-lived ``ZoneCompiler``
with ``compile_zone`` of the same input.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from p2porch.dns.zone import compile_zone
from p2porch.dns.zone_cache import ZoneCompiler
from p2porch.member.views import dns_zone
from p2porch.member.zone_builder import ZoneBuilder
from p2porch.model import Node, NodeStatus, PortPublish, ServiceSpec, Task, TaskHealth, TaskState
from p2porch.raft import commands as C
from p2porch.raft.fields import TaskPut, TaskRemove
from p2porch.raft.fsm import Change, apply_command
from p2porch.raft.state import EMPTY_STATE, ClusterState

NAMES = ["web", "db", "shop", "api", "cache", "shop-api", "shop-db", "other-api", "web-tasks"]
STACKED = {
    "shop-api": ("shop", "api"),
    "shop-db": ("shop", "db"),
    "other-api": ("other", "api"),
    "web-tasks": ("web", "tasks"),  # its alias tasks.web is also web's task list: ZoneCompiler falls back
}


class World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state: ClusterState = EMPTY_STATE
        self.changes: list[Change] = []
        self.next_task = 0
        self.apply(C.InitCluster(at=1.0, cluster_id="c", cluster_cidr="10.240.0.0/16"))
        for i in range(5):
            labels = {"region": self.rng.choice(["r1", "r2"])} if i % 2 else {}
            self.apply(
                C.AddNode(
                    at=1.0, node=Node(f"n{i}", f"node{i}", f"192.168.0.{i + 1}", 7947, 7946, labels=labels)
                )
            )
            self.apply(C.LeaseSubnet(at=1.0, node_id=f"n{i}"))

    def apply(self, cmd: C.Command) -> None:
        self.state, _, changes = apply_command(self.state, cmd)
        self.changes += changes

    def spec(self, name: str) -> ServiceSpec:
        stack = STACKED.get(name)
        labels = (("p2porch.stack", stack[0]), ("p2porch.stack.service", stack[1])) if stack else ()
        ports = (PortPublish(self.rng.choice([80, 53])),) if self.rng.random() < 0.5 else ()
        mode = self.rng.choice(["vip", "dnsrr"])
        return ServiceSpec(name=name, image="x", replicas=3, labels=labels, publish=ports, endpoint_mode=mode)

    def step(self) -> None:
        rng, state = self.rng, self.state
        roll = rng.random()
        services = sorted(state.services)
        tasks = sorted(state.tasks)
        if roll < 0.15 or not services:
            free = [n for n in NAMES if state.service_by_name(n) is None]
            if free:
                name = rng.choice(free)
                self.apply(
                    C.CreateService(at=2.0, service_id=f"s-{name}-{rng.random():.6f}", spec=self.spec(name))
                )
        elif roll < 0.22:
            self.apply(C.RemoveService(at=2.0, service_id=rng.choice(services)))
        elif roll < 0.3:
            sid = rng.choice(services)
            self.apply(C.UpdateService(at=2.0, service_id=sid, spec=self.spec(state.services[sid].name)))
        elif roll < 0.55:
            sid = rng.choice(services)
            node = rng.choice(sorted(state.nodes))
            self.next_task += 1
            task = Task(f"t{self.next_task}", sid, rng.randint(1, 4), node_id=node, state=TaskState.ASSIGNED)
            self.apply(C.PutTasks(at=2.0, items=(TaskPut(task, task_version=0),)))
        elif roll < 0.8 and tasks:
            tid = rng.choice(tasks)
            task = state.tasks[tid]
            address = f"10.240.{rng.randint(0, 3)}.{rng.randint(2, 6)}"  # collisions on purpose
            health = rng.choice([TaskHealth.NONE, TaskHealth.HEALTHY, TaskHealth.UNHEALTHY])
            state_now = rng.choice([TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED])
            report = C.TaskStatusReport(tid, state=state_now, state_at=3.0, address=address, health=health)
            self.apply(C.ReportTaskStates(at=3.0, node_id=task.node_id or "", reports=(report,)))
        elif roll < 0.88 and tasks:
            self.apply(C.PutTasks(at=2.0, items=(TaskRemove(rng.choice(tasks), task_version=None),)))
        elif roll < 0.92:
            self.apply(C.ClaimLeaderEpoch(at=2.0, epoch=state.leader_epoch + 1))  # each leader change
        elif roll < 0.96:
            node = rng.choice(sorted(state.nodes))
            self.apply(C.UpdateNode(at=2.0, node_id=node, labels={"region": rng.choice(["", "r1", "r2"])}))
        elif roll < 0.98:
            node = rng.choice(sorted(state.nodes))
            self.apply(
                C.UpdateNode(
                    at=2.0,
                    node_id=node,
                    status=rng.choice([NodeStatus.LEFT, NodeStatus.READY, NodeStatus.DOWN]),
                )
            )
        else:  # held while its daemon restarts, or released (its tasks leave or rejoin the answers)
            node = rng.choice(sorted(state.nodes))
            until = rng.choice([0.0, 40.0])
            self.apply(
                C.UpdateNode(at=2.0, node_id=node, restart_until=until, restart_incarnation=int(until))
            )

    def take_changes(self) -> list[Change]:
        out, self.changes = self.changes, []
        return out


@pytest.mark.parametrize("seed", range(12))
def test_incremental_zone_equals_full_rebuild(seed: int) -> None:
    world = World(seed)
    builder = ZoneBuilder(("192.168.0.1",), "n1")
    compiler = ZoneCompiler()
    assert builder.update(world.state) == dns_zone(world.state, ("192.168.0.1",), "n1")
    world.take_changes()
    stats: dict[str, Any] = {"partial": 0, "reused": 0}
    for _ in range(150):
        for _ in range(world.rng.randint(1, 4)):  # a burst of commits
            world.step()
        zone = builder.update(world.state, world.take_changes())
        expected = dns_zone(world.state, ("192.168.0.1",), "n1")
        assert zone == expected
        assert builder._made.keys() <= world.state.tasks.keys()  # no entry kept for a removed task
        compiled = compiler.compile(zone)
        assert compiled == compile_zone(expected)
        stats["partial"] += builder.rebuilt_services < len(world.state.services)
        stats["reused"] += compiler.compiled_services < len(zone.services)
    assert stats["partial"] > 50 and stats["reused"] > 50  # the incremental paths were exercised


def test_changes_that_do_not_reach_the_state_rebuild_everything() -> None:
    world = World(1)
    builder = ZoneBuilder()
    builder.update(world.state)
    for _ in range(30):
        world.step()
    world.take_changes()  # lost: the builder must not trust an incomplete stream
    world.step()
    zone = builder.update(world.state, world.take_changes()[-1:][:0])
    assert zone == dns_zone(world.state) and builder.full_rebuilds == 2


def test_a_new_leaders_epoch_rebuilds_no_service_entry() -> None:
    world = World(2)
    for _ in range(60):
        world.step()
    builder = ZoneBuilder(("192.168.0.1",), "n1")
    builder.update(world.state)
    world.take_changes()
    world.apply(C.ClaimLeaderEpoch(at=4.0, epoch=world.state.leader_epoch + 1))
    changes = world.take_changes()
    assert [c.kind for c in changes] == ["cluster"]
    zone = builder.update(world.state, changes)
    assert zone == dns_zone(world.state, ("192.168.0.1",), "n1")
    assert builder.full_rebuilds == 1 and builder.rebuilt_services == 0  # before: 2, every service


class Toggling(World):
    """Services of 10-30 running tasks whose reports mostly flip health (STARTING -> RUNNING answers)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        for name in ("web", "db", "shop-api", "cache"):
            self.apply(C.CreateService(at=2.0, service_id=f"s-{name}", spec=self.spec(name)))
            for _ in range(self.rng.randint(10, 30)):
                self.next_task += 1
                node = self.rng.choice(sorted(self.state.nodes))
                task = Task(f"t{self.next_task}", f"s-{name}", self.rng.randint(1, 12), node_id=node)
                self.apply(C.PutTasks(at=2.0, items=(TaskPut(task, task_version=0),)))
                self.report(
                    task.task_id,
                    TaskHealth.STARTING,
                    f"10.240.{self.next_task // 200}.{self.next_task % 200 + 2}",
                )

    def report(self, task_id: str, health: TaskHealth, address: str | None = None) -> None:
        task = self.state.tasks[task_id]
        report = C.TaskStatusReport(
            task_id, state=TaskState.RUNNING, state_at=3.0, address=address, health=health
        )
        self.apply(C.ReportTaskStates(at=3.0, node_id=task.node_id or "", reports=(report,)))

    def step(self) -> None:
        if self.rng.random() < 0.1:
            super().step()  # now and then anything else (placements, removals, regions, nodes down)
            return
        tid = self.rng.choice(sorted(self.state.tasks))
        health = self.rng.choice(
            [TaskHealth.HEALTHY, TaskHealth.HEALTHY, TaskHealth.UNHEALTHY, TaskHealth.STARTING]
        )
        address = (
            f"10.240.9.{self.rng.randint(2, 9)}" if self.rng.random() < 0.05 else None
        )  # shared at times
        self.report(tid, health, address)


@pytest.mark.parametrize("seed", range(8))
def test_health_toggles_patch_the_compiled_services(seed: int) -> None:
    world = Toggling(seed)
    builder = ZoneBuilder(("192.168.0.1",), "n1")
    compiler = ZoneCompiler()
    builder.update(world.state)
    world.take_changes()
    patched = compiled = lists_patched = lists_made = 0
    for _ in range(150):
        for _ in range(world.rng.randint(1, 6)):
            world.step()
        zone = builder.update(world.state, world.take_changes())
        expected = dns_zone(world.state, ("192.168.0.1",), "n1")
        assert zone == expected
        assert builder._made.keys() <= world.state.tasks.keys()
        assert compiler.compile(zone) == compile_zone(expected)
        patched += compiler.patched_services
        compiled += compiler.compiled_services
        lists_patched += builder.patched_services
        lists_made += builder.rebuilt_services - builder.patched_services
    assert patched > 2 * compiled  # most toggles were patches, not compiles
    assert lists_patched > 2 * lists_made  # and the builder patched the entry lists, not sorted them
