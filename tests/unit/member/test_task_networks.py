"""TaskNetworkIndex, PolicyPlanner, ClientScopes' kept address maps and TrafficIndex give exactly what the
full rebuilds give, on seeded random change sequences through the real FSM.

Each step commits a random burst (services created on one or two of three networks, one internal, with
VIP or DNS round robin, ingress ports and links; their networks changed, services removed, tasks placed,
reported with colliding addresses, failed and removed, nodes relabelled or marked down). Compared after
each burst: ``TaskNetworkIndex.update`` with ``task_networks`` (and the very same mapping exactly when no
address changed), ``PolicyPlanner.plan`` with ``plan_policy(policy_input(state))``, a long-lived
``ClientScopes`` fed by the index with a fresh one fed by the full walk, and ``TrafficIndex.update`` with
``traffic_inputs`` (one node unreachable in gossip now and then).
"""

from __future__ import annotations

import random
from functools import partial

import pytest

from p2porch.context import LocalBoard
from p2porch.dns.resolver import Resolver
from p2porch.dns.scope import ClientScopes
from p2porch.member.netviews import DnsScopes, dns_scopes, policy_input, task_networks
from p2porch.member.policy_planner import PolicyPlanner
from p2porch.member.task_networks import TaskNetworkIndex, shared_index
from p2porch.member.traffic_index import TrafficIndex
from p2porch.member.views import dns_zone, traffic_inputs
from p2porch.model import Node, NodeStatus, PortPublish, ServiceSpec, Task, TaskHealth, TaskState
from p2porch.model.netrefs import NetworkAttachment, ServiceLink
from p2porch.netoverlay.netpolicy import plan_policy
from p2porch.raft import commands as C
from p2porch.raft.fields import TaskPut, TaskRemove
from p2porch.raft.fsm import Change, apply_command
from p2porch.raft.state import EMPTY_STATE, ClusterState

NAMES = ["web", "db", "api", "cache", "queue"]
NETWORKS = ["front", "back", "store"]


class World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state: ClusterState = EMPTY_STATE
        self.changes: list[Change] = []
        self.next_task = 0
        self.apply(C.InitCluster(at=1.0, cluster_id="c", cluster_cidr="10.240.0.0/16"))
        for i, name in enumerate(NETWORKS):
            self.apply(C.CreateNetwork(at=1.0, network_id=f"net{i}", name=name, internal=name == "store"))
        for i in range(4):
            self.apply(C.AddNode(at=1.0, node=Node(f"n{i}", f"node{i}", f"192.168.0.{i + 1}", 7947, 7946)))
            self.apply(C.LeaseSubnet(at=1.0, node_id=f"n{i}"))

    def apply(self, cmd: C.Command) -> None:
        self.state, _, changes = apply_command(self.state, cmd)
        self.changes += changes

    def spec(self, name: str) -> ServiceSpec:
        nets = self.rng.sample(NETWORKS, self.rng.randint(0, 2))  # none: the default network
        attachments = tuple(
            NetworkAttachment(n, (f"{name}-alias",) if self.rng.random() < 0.3 else ()) for n in nets
        )
        ports = (
            (PortPublish(80, self.rng.choice([8080, 8081]), mode="ingress"),)
            if self.rng.random() < 0.4
            else ()
        )
        mode = self.rng.choice(["vip", "dnsrr"])
        other = self.rng.choice(NAMES)  # a link's alias: its own, another's network alias, a service name
        alias = self.rng.choice(["linked", f"{other}-alias", "web"])
        links = (ServiceLink(other, alias),) if self.rng.random() < 0.4 and other != name else ()
        return ServiceSpec(
            name=name,
            image="x",
            replicas=3,
            networks=attachments,
            publish=ports,
            endpoint_mode=mode,
            links=links,
        )

    def address(self, task: Task) -> str:
        lease = self.state.leases[task.node_id or ""].subnet  # a node's tasks live in its lease
        base = lease.rsplit(".", 1)[0]
        return f"{base}.{self.rng.randint(2, 5)}"  # collisions on purpose

    def step(self) -> None:
        rng, state = self.rng, self.state
        roll = rng.random()
        services = sorted(state.services)
        tasks = sorted(state.tasks)
        if roll < 0.12 or not services:
            free = [n for n in NAMES if state.service_by_name(n) is None]
            if free:
                name = rng.choice(free)
                self.apply(
                    C.CreateService(at=2.0, service_id=f"s-{name}-{rng.random():.6f}", spec=self.spec(name))
                )
        elif roll < 0.17:
            self.apply(C.RemoveService(at=2.0, service_id=rng.choice(services)))
        elif roll < 0.25:
            sid = rng.choice(services)
            self.apply(C.UpdateService(at=2.0, service_id=sid, spec=self.spec(state.services[sid].name)))
        elif roll < 0.45:
            sid = rng.choice(services)
            node = rng.choice(sorted(state.nodes))
            self.next_task += 1
            task = Task(f"t{self.next_task}", sid, rng.randint(1, 4), node_id=node, state=TaskState.ASSIGNED)
            self.apply(C.PutTasks(at=2.0, items=(TaskPut(task, task_version=0),)))
        elif roll < 0.85 and tasks:
            tid = rng.choice(tasks)
            task = state.tasks[tid]
            address = self.address(task) if rng.random() < 0.8 else ""
            state_now = rng.choice(
                [TaskState.STARTING, TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED]
            )
            health = rng.choice([TaskHealth.NONE, TaskHealth.HEALTHY])
            report = C.TaskStatusReport(tid, state=state_now, state_at=3.0, address=address, health=health)
            self.apply(C.ReportTaskStates(at=3.0, node_id=task.node_id or "", reports=(report,)))
        elif roll < 0.93 and tasks:
            self.apply(C.PutTasks(at=2.0, items=(TaskRemove(rng.choice(tasks), task_version=None),)))
        elif roll < 0.95:  # a new leader's epoch claim: a cluster change that touches no task
            self.apply(C.ClaimLeaderEpoch(at=2.0, epoch=state.leader_epoch + 1))
        elif roll < 0.97:
            node = rng.choice(sorted(state.nodes))
            self.apply(C.UpdateNode(at=2.0, node_id=node, labels={"region": rng.choice(["", "r1"])}))
        elif roll < 0.98 or len(state.nodes) >= 12:
            node = rng.choice(sorted(state.nodes))
            self.apply(
                C.UpdateNode(at=2.0, node_id=node, status=rng.choice([NodeStatus.READY, NodeStatus.DOWN]))
            )
        else:  # a join: admitted with its lease (joining), then marked ready
            i = len(state.nodes)
            node = Node(f"n{i}", f"node{i}", f"192.168.0.{i + 1}", 7947, 7946, status=NodeStatus.JOINING)
            self.apply(C.AddNode(at=2.0, node=node))
            self.apply(C.LeaseSubnet(at=2.0, node_id=f"n{i}"))
            if rng.random() < 0.5:
                self.apply(C.UpdateNode(at=2.0, node_id=f"n{i}", status=NodeStatus.READY))

    def take_changes(self) -> list[Change]:
        out, self.changes = self.changes, []
        return out


def _zones(scopes: ClientScopes) -> dict[str, object]:
    return {host: resolver._zone for host, resolver in scopes.by_host.items()}


@pytest.mark.parametrize("seed", range(12))
def test_incremental_task_networks_equal_the_full_walk(seed: int) -> None:
    world = World(seed)
    index = TaskNetworkIndex()
    planner = PolicyPlanner("n1")
    zone = dns_zone(world.state)
    scopes = ClientScopes(Resolver(zone), partial(Resolver))
    clients = index.update(world.state, world.take_changes())
    kept_scopes = DnsScopes()
    data = kept_scopes.update(world.state, clients, index.addresses_of)
    scopes.update(zone, data)
    kept = changed = 0
    linking = services_kept = 0
    for _ in range(200):
        services_before, networks_before = world.state.services, world.state.networks
        for _ in range(world.rng.randint(1, 4)):  # a burst of commits
            world.step()
        burst = world.take_changes()
        before = dict(clients)
        new = index.update(world.state, burst)
        expected = task_networks(world.state)
        assert new == expected
        assert (new is clients) == (before == expected)  # the same object exactly while nothing changed
        assert before == clients  # a mapping once returned is never changed
        kept += new is clients
        changed += new is not clients
        clients = new

        spec = policy_input(world.state, "n1")
        assert planner.plan(world.state, burst) == (plan_policy(spec) if spec is not None else None)

        zone = dns_zone(world.state)
        same_services = world.state.services is services_before and world.state.networks is networks_before
        previous, data = data, kept_scopes.update(world.state, clients, index.addresses_of)
        assert data == dns_scopes(world.state, clients, index.addresses_of)  # kept across bursts: equal
        if same_services:  # a burst of task changes only: the services' part not made again
            assert data.aliases is previous.aliases and data.owners is previous.owners
            services_kept += 1
        assert data.linkers == dns_scopes(world.state).linkers  # the index's addresses, as the full walk's
        linking += bool(data.linkers)
        scopes.update(zone, data)
        full = ClientScopes(Resolver(zone), partial(Resolver))
        full.update(zone, dns_scopes(world.state))
        assert _zones(scopes) == _zones(full)
        assert scopes.by_packed.keys() == full.by_packed.keys()
        assert scopes.scope_count == full.scope_count  # a network set nobody is on any more is dropped
    assert kept > 30 and changed > 30  # both paths were exercised
    assert services_kept > 20  # bursts that changed no service or network
    assert linking > 5  # tasks of linking services were scoped
    assert index.full_rebuilds == 1
    assert planner.plans < 200  # bursts that changed no address reused the plan
    assert planner.full_plans == 1 and planner.full_compares == 0  # the changed addresses only


@pytest.mark.parametrize("seed", range(12))
def test_one_index_shared_by_the_dns_view_and_the_policy_planner(seed: int) -> None:
    """The daemon's DNS view and network policy read one index (``shared_index``), each with its own
    change stream and its own burst boundaries: both see the full walk's mapping, the plan the full
    plan, and the index is built once."""
    world = World(seed)
    index = TaskNetworkIndex()
    planner = PolicyPlanner("n1", index)
    first = world.take_changes()
    assert index.update(world.state, first) == task_networks(world.state)
    planner.plan(world.state, first)
    dns_stream: list[Change] = []
    policy_stream: list[Change] = []
    for _ in range(300):
        for _ in range(world.rng.randint(1, 3)):
            world.step()
        burst = world.take_changes()
        dns_stream += burst
        policy_stream += burst
        if world.rng.random() < 0.5:
            assert index.update(world.state, dns_stream) == task_networks(world.state)
            dns_stream = []
        if world.rng.random() < 0.4:
            spec = policy_input(world.state, "n1")
            assert planner.plan(world.state, policy_stream) == (plan_policy(spec) if spec else None)
            policy_stream = []
    assert index.full_rebuilds == 1 and planner.full_compares == 0


def test_changes_that_do_not_reach_the_state_rebuild_everything() -> None:
    world = World(3)
    index = TaskNetworkIndex()
    index.update(world.state, world.take_changes())
    for _ in range(40):
        world.step()
    world.take_changes()  # lost: the index must not trust an incomplete stream
    world.step()
    assert index.update(world.state, []) == task_networks(world.state)
    assert index.full_rebuilds == 2


@pytest.mark.parametrize("seed", range(12))
def test_incremental_traffic_inputs_equal_the_full_walk(seed: int) -> None:
    world = World(seed)
    index = TrafficIndex("n1")
    assert index.update(world.state, frozenset(), world.take_changes()) == traffic_inputs(world.state, "n1")
    partial_updates = 0
    for step in range(200):
        for _ in range(world.rng.randint(1, 4)):
            world.step()
        unreachable = frozenset({"n2"}) if step % 50 > 40 else frozenset()
        inputs = index.update(world.state, unreachable, world.take_changes())
        assert inputs == traffic_inputs(world.state, "n1", unreachable)
        partial_updates += index.rebuilt_services < len(world.state.services)
    assert partial_updates > 50  # the incremental path was exercised
    assert index.full_rebuilds <= 10  # the unreachable set's 8 changes (and the first); node changes: none


@pytest.mark.parametrize("seed", range(8))
def test_traffic_backends_follow_health_toggles_per_task(seed: int) -> None:
    world = World(seed)
    for _ in range(120):  # services with tasks, some running
        world.step()
    index = TrafficIndex("n1")
    index.update(world.state, frozenset(), world.take_changes())
    per_task = 0
    for _ in range(150):
        toggled: set[str] = set()
        if world.rng.random() < 0.15:
            world.step()  # now and then anything else
        else:
            for tid in world.rng.sample(sorted(world.state.tasks), min(4, len(world.state.tasks))):
                task = world.state.tasks[tid]
                health = world.rng.choice([TaskHealth.HEALTHY, TaskHealth.UNHEALTHY, TaskHealth.STARTING])
                address = task.address or world.address(task)
                report = C.TaskStatusReport(
                    tid, state=TaskState.RUNNING, state_at=3.0, address=address, health=health
                )
                world.apply(C.ReportTaskStates(at=3.0, node_id=task.node_id or "", reports=(report,)))
                toggled.add(tid)
        changes = world.take_changes()
        assert index.update(world.state, frozenset(), changes) == traffic_inputs(world.state, "n1")
        if toggled and {c.kind for c in changes} == {"task"}:
            assert index.remade_tasks <= len(toggled)  # the changed tasks only, not their services
            per_task += 1
    assert per_task > 80  # (a node change in a step recomputes everything: full_rebuilds > 1)


def test_a_sharer_behind_the_index_gets_its_own_state_and_the_others_stay_exact() -> None:
    world = World(5)
    index = TaskNetworkIndex()
    index.update(world.state, world.take_changes())
    for _ in range(30):
        world.step()
    older, older_changes = world.state, world.take_changes()
    for _ in range(30):
        world.step()
    newer_changes = world.take_changes()
    assert index.update(world.state, older_changes + newer_changes) == task_networks(world.state)
    assert index.update(older, older_changes) == task_networks(older)  # behind: rebuilt for it
    for _ in range(5):
        world.step()
    assert index.update(world.state, world.take_changes()) == task_networks(world.state)


def test_the_board_holds_one_index() -> None:
    board = LocalBoard()
    assert shared_index(board) is shared_index(board) is board.task_networks


def test_changed_since_names_every_address_that_differs_and_forgets_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the network policy follows: every address whose networks differ between a generation's
    mapping and the current one (one that changed and changed back may be named too); unknown (None)
    past the history the index keeps, and the planner then compares whole mappings and still plans
    exactly."""
    monkeypatch.setattr("p2porch.member.task_networks.KEPT_GENERATIONS", 4)
    world = World(7)
    index = TaskNetworkIndex()
    planner = PolicyPlanner("n1", index)
    first = dict(index.update(world.state, world.take_changes()))
    seen = {index.generation: first}  # generation 1: the first rebuild
    planner.plan(world.state, ())
    for _ in range(150):
        world.step()
        current = index.update(world.state, world.take_changes())
        seen[index.generation] = dict(current)
        for generation, mapping in seen.items():
            changed = index.changed_since(generation)
            if index.generation - generation > 4:
                assert changed is None
            else:
                differ = {a for a in mapping.keys() | current.keys() if mapping.get(a) != current.get(a)}
                assert changed is not None and differ <= changed  # an address changed back may be named
        if world.rng.random() < 0.1:  # now and then the planner falls behind the kept history
            spec = policy_input(world.state, "n1")
            assert planner.plan(world.state, ()) == (plan_policy(spec) if spec is not None else None)
    assert planner.full_compares > 0 and index.full_rebuilds == 1
