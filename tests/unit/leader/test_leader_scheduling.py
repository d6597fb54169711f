"""The leader's scheduling round, driven through the real FSM (pure)."""

import random
from collections import Counter

from p2porch.leader.scheduling import node_status_updates, plan_round
from p2porch.model import Node, NodeStatus, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator


def reports_of(items):
    return tuple(C.TaskStatusReport.from_wire(r, i) for i, r in enumerate(items))


GIB = 1024**3


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def cluster(nodes: int = 3) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    for i in range(1, nodes + 1):
        node = Node(
            f"id{i}",
            f"n{i}",
            f"10.0.0.{i}",
            7947,
            7946,
            role="voter",
            cpu_nanos=2 * 10**9,
            memory_bytes=4 * GIB,
        )
        state = run(state, C.AddNode(at=1.0, node=node).encode())
    return state


def with_service(state: ClusterState, **spec) -> ClusterState:
    service_spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", **spec})
    return run(state, C.CreateService(at=2.0, service_id="s1", spec=service_spec).encode())


def update_service(state: ClusterState, at: float, **changes) -> ClusterState:
    """Change fields of service s1 (``spec=`` a dict of spec changes, or bookkeeping fields)."""
    service = state.services["s1"]
    if "spec" in changes:
        changes["spec"] = ServiceSpec.from_dict({**service.spec.to_dict(), **changes["spec"]})
    return run(state, C.UpdateService.of(service, at=at, **changes).encode())


def report_stopped(state: ClusterState, tasks: list, at: float) -> ClusterState:
    """Each task's node reports its container stopped (state ``shutdown``)."""
    for t in tasks:
        report = reports_of([{"task_id": t.task_id, "state": "shutdown"}])
        state = run(state, C.ReportTaskStates(at=at, node_id=t.node_id, reports=report).encode())
    return state


def commit_round(state: ClusterState, now: float, orchestrator: Orchestrator) -> tuple[ClusterState, int]:
    plan = plan_round(state, now, orchestrator)
    if plan.empty:
        return state, 0
    return run(
        state, C.PutTasks(at=now, items=tuple(plan.items), expected_version=state.version).encode()
    ), len(plan.items)


def test_six_replicas_spread_two_per_node_and_the_plan_is_stable():
    orchestrator = Orchestrator(random.Random(1))
    state, changed = commit_round(with_service(cluster(), replicas=6), 3.0, orchestrator)
    assert changed == 6
    tasks = list(state.tasks.values())
    assert sorted(t.slot for t in tasks) == [1, 2, 3, 4, 5, 6]
    assert Counter(t.node_id for t in tasks) == {"id1": 2, "id2": 2, "id3": 2}
    assert all(t.state == "assigned" and t.template_hash and t.desired_state == "running" for t in tasks)
    state, changed = commit_round(state, 4.0, orchestrator)
    assert changed == 0  # nothing more to do: no churn


def test_unplaceable_tasks_stay_pending_with_an_explanation():
    orchestrator = Orchestrator(random.Random(2))
    state, _ = commit_round(with_service(cluster(), replicas=2, reserve_memory="64G"), 3.0, orchestrator)
    tasks = list(state.tasks.values())
    assert len(tasks) == 2 and all(t.node_id is None and t.state == "pending" for t in tasks)
    assert all("3 nodes" in t.message and "memory" in t.message for t in tasks)
    # Once a node has room, the pending tasks are placed.
    big = state.nodes["id1"]
    state = run(state, C.UpdateNode(at=5.0, node_id=big.node_id, memory_bytes=200 * GIB).encode())
    state, _ = commit_round(state, 6.0, orchestrator)
    assert {t.node_id for t in state.tasks.values()} == {"id1"}


def test_scale_down_removes_highest_slots_and_finished_tasks_are_forgotten():
    orchestrator = Orchestrator(random.Random(3))
    state, _ = commit_round(with_service(cluster(), replicas=4), 3.0, orchestrator)
    state = update_service(state, 4.0, spec={"replicas": 2})
    state, _ = commit_round(state, 5.0, orchestrator)
    running = sorted(t.slot for t in state.tasks.values() if t.desired_state == "running")
    assert running == [1, 2]
    stopped = [t for t in state.tasks.values() if t.desired_state == "shutdown"]
    assert sorted(t.slot for t in stopped) == [3, 4]
    # The agents report the containers stopped; the slots are beyond replicas, so history is kept
    # up to HISTORY_PER_SLOT per slot and nothing is removed yet.
    state = report_stopped(state, stopped, 6.0)
    state, _ = commit_round(state, 7.0, orchestrator)
    assert len(state.tasks) == 4


def test_removed_service_stops_its_tasks_and_they_are_forgotten_once_stopped():
    orchestrator = Orchestrator(random.Random(4))
    state, _ = commit_round(with_service(cluster(), replicas=3), 3.0, orchestrator)
    state = run(state, C.RemoveService(at=4.0, service_id="s1").encode())
    assert all(t.desired_state == "shutdown" for t in state.tasks.values())
    state, _ = commit_round(state, 5.0, orchestrator)
    assert len(state.tasks) == 3  # still running on their nodes: not forgotten yet
    state = report_stopped(state, list(state.tasks.values()), 6.0)
    state, _ = commit_round(state, 7.0, orchestrator)
    assert state.tasks == {}


def test_failed_task_is_replaced_on_its_slot():
    orchestrator = Orchestrator(random.Random(5))
    state, _ = commit_round(with_service(cluster(), replicas=1, restart={"delay": "0s"}), 3.0, orchestrator)
    (task,) = state.tasks.values()
    state = run(
        state,
        C.ReportTaskStates(
            at=4.0,
            node_id=task.node_id,
            reports=reports_of(
                [{"task_id": task.task_id, "state": "failed", "error": "boom", "exit_code": 3}]
            ),
        ).encode(),
    )
    assert state.tasks[task.task_id].exit_code == 3
    state, _ = commit_round(state, 5.0, orchestrator)
    live = [t for t in state.tasks.values() if t.desired_state == "running"]
    assert len(live) == 1 and live[0].slot == 1 and live[0].task_id != task.task_id


def test_tasks_of_a_node_that_left_are_replaced_elsewhere():
    orchestrator = Orchestrator(random.Random(6))
    state, _ = commit_round(with_service(cluster(), replicas=3), 3.0, orchestrator)
    gone = next(t for t in state.tasks.values() if t.node_id == "id2")
    state = run(state, C.UpdateNode(at=4.0, node_id="id2", status="left").encode())
    state, _ = commit_round(state, 5.0, orchestrator)
    assert state.tasks[gone.task_id].desired_state == "shutdown"
    live = [t for t in state.tasks.values() if t.desired_state == "running"]
    assert sorted(t.slot for t in live) == [1, 2, 3]
    assert "id2" not in {t.node_id for t in live}


def test_join_token_rotation_is_replicated_state_and_checked():
    state = cluster(1)
    new_token = f"P2PT-1-{state.cluster_id}-" + "A" * 43
    state = run(state, C.SetJoinToken(at=2.0, join_token=new_token).encode())
    assert state.join_token == new_token
    _, result, _ = apply(
        state, C.SetJoinToken(at=3.0, join_token="P2PT-1-ffffffffffffffff-" + "A" * 43).encode()
    )
    assert not result["ok"] and result["field"] == "join_token"


# ----------------------------------------------------------------------------------- rebalancing


def agents_act(state: ClusterState, now: float) -> ClusterState:
    """Every node's agent starts its assigned tasks and stops those marked shutdown."""
    by_node: dict[str, list[dict]] = {}
    for t in state.tasks.values():
        if t.node_id is None:
            continue
        if t.desired_state == "running" and t.state == "assigned":
            by_node.setdefault(t.node_id, []).append(
                {"task_id": t.task_id, "state": "running", "state_at": now}
            )
        elif t.desired_state == "shutdown" and t.state == "running":
            by_node.setdefault(t.node_id, []).append(
                {"task_id": t.task_id, "state": "shutdown", "state_at": now}
            )
    for node_id, reports in sorted(by_node.items()):
        state = run(state, C.ReportTaskStates(at=now, node_id=node_id, reports=reports_of(reports)).encode())
    return state


def running_per_node(state: ClusterState) -> Counter:
    return Counter(t.node_id for t in state.tasks.values() if t.state == "running")


def add_node(state: ClusterState, i: int) -> ClusterState:
    node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, cpu_nanos=2 * 10**9, memory_bytes=4 * GIB)
    return run(state, C.AddNode(at=10.0, node=node).encode())


def converge(state: ClusterState, orchestrator: Orchestrator, start: float, replicas: int, rounds: int = 40):
    """Alternate scheduling rounds and agent steps; return the state, the rounds used and moves seen."""
    now = start
    moves = 0
    for i in range(rounds):
        before = {t.task_id for t in state.tasks.values() if t.move_to}
        plan = plan_round(state, now, orchestrator)
        if plan.rebalanced:
            state = update_service(state, now, rebalance_requested=0.0)
        elif not plan.empty:
            state = run(
                state, C.PutTasks(at=now, items=tuple(plan.items), expected_version=state.version).encode()
            )
        moves += len({t.task_id for t in state.tasks.values() if t.move_to} - before)
        state = agents_act(state, now + 0.5)
        # start-first: the service never runs fewer tasks than its replicas
        assert sum(running_per_node(state).values()) >= replicas
        if plan.empty and not plan.rebalanced:
            return state, i, moves
        now += 1.0
    raise AssertionError("did not converge")


def test_opt_in_rebalance_moves_tasks_onto_a_new_node_start_first_one_at_a_time():
    orchestrator = Orchestrator(random.Random(7))
    state = with_service(cluster(2), replicas=6, rebalance=True)
    state, _, moves = converge(state, orchestrator, 3.0, replicas=0)
    assert running_per_node(state) == {"id1": 3, "id2": 3} and moves == 0
    state = add_node(state, 3)
    state, _, moves = converge(state, orchestrator, 100.0, replicas=6)
    assert running_per_node(state) == {"id1": 2, "id2": 2, "id3": 2}
    assert moves == 2
    live = [t for t in state.tasks.values() if t.desired_state == "running"]
    assert sorted(t.slot for t in live) == [1, 2, 3, 4, 5, 6] and not any(t.move_to for t in live)
    moved = [t for t in state.tasks.values() if t.desired_state == "shutdown"]
    assert len(moved) == 2 and all("rebalance" in t.message for t in moved)


def test_without_opt_in_nothing_moves_until_the_operator_asks_and_the_request_clears():
    orchestrator = Orchestrator(random.Random(8))
    state = with_service(cluster(2), replicas=4)
    state, _, _ = converge(state, orchestrator, 3.0, replicas=0)
    state = add_node(state, 3)
    state, _, moves = converge(state, orchestrator, 100.0, replicas=4)
    assert moves == 0 and running_per_node(state) == {"id1": 2, "id2": 2}
    state = update_service(state, 200.0, rebalance_requested=200.0)
    state, _, moves = converge(state, orchestrator, 201.0, replicas=4)
    assert moves == 1 and sorted(running_per_node(state).values()) == [1, 1, 2]
    assert state.services["s1"].rebalance_requested == 0.0


def test_a_move_whose_replacement_fails_is_cancelled_and_the_old_task_keeps_running():
    orchestrator = Orchestrator(random.Random(9))
    state = with_service(cluster(2), replicas=2, rebalance=True)
    state = update_service(state, 2.5, spec={"replicas": 2})
    state, _, _ = converge(state, orchestrator, 3.0, replicas=0)
    # pile both tasks onto id1 by draining id2, then reactivate it: the rebalance moves one back
    state = run(state, C.UpdateNode(at=50.0, node_id="id2", availability="drain").encode())
    state, _, _ = converge(state, orchestrator, 51.0, replicas=2)
    assert running_per_node(state) == {"id1": 2}
    state = run(state, C.UpdateNode(at=80.0, node_id="id2", availability="active").encode())
    plan = plan_round(state, 81.0, orchestrator)
    state = run(state, C.PutTasks(at=81.0, items=tuple(plan.items), expected_version=state.version).encode())
    (old,) = [t for t in state.tasks.values() if t.move_to == "id2"]
    plan = plan_round(state, 82.0, orchestrator)
    state = run(state, C.PutTasks(at=82.0, items=tuple(plan.items), expected_version=state.version).encode())
    (replacement,) = [
        t
        for t in state.tasks.values()
        if t.slot == old.slot and t.desired_state == "running" and t is not old and t.task_id != old.task_id
    ]
    assert replacement.node_id == "id2"
    state = run(
        state,
        C.ReportTaskStates(
            at=83.0,
            node_id="id2",
            reports=reports_of([{"task_id": replacement.task_id, "state": "rejected"}]),
        ).encode(),
    )
    plan = plan_round(state, 84.0, orchestrator)
    state = run(state, C.PutTasks(at=84.0, items=tuple(plan.items), expected_version=state.version).encode())
    assert state.tasks[old.task_id].move_to is None and state.tasks[old.task_id].desired_state == "running"
    assert state.tasks[replacement.task_id].desired_state == "shutdown"
    # the failure holds the service back for the cool-down: no new move straight away
    plan = plan_round(state, 85.0, orchestrator)
    assert not any(item["op"] == "put" and item["task"].get("move_to") for item in plan.items)


def test_a_target_that_always_rejects_gets_one_attempt_per_cool_down_not_churn():
    from p2porch.scheduler.rebalance import FAILURE_COOLDOWN_S

    orchestrator = Orchestrator(random.Random(10))
    state = with_service(cluster(2), replicas=2, rebalance=True)
    state = run(state, C.UpdateNode(at=1.0, node_id="id2", availability="drain").encode())
    state, _, _ = converge(state, orchestrator, 3.0, replicas=0)
    assert running_per_node(state) == {"id1": 2}
    state = run(state, C.UpdateNode(at=50.0, node_id="id2", availability="active").encode())
    attempts = set()
    now = 51.0
    for _ in range(200):
        plan = plan_round(state, now, orchestrator)
        if not plan.empty:
            state = run(
                state, C.PutTasks(at=now, items=tuple(plan.items), expected_version=state.version).encode()
            )
        for t in state.tasks.values():  # id2's engine refuses every container; id1 runs its tasks
            if t.node_id == "id2" and t.state == "assigned":
                attempts.add(t.task_id)
                state = run(
                    state,
                    C.ReportTaskStates(
                        at=now,
                        node_id="id2",
                        reports=reports_of([{"task_id": t.task_id, "state": "rejected"}]),
                    ).encode(),
                )
        state = agents_act(state, now + 0.5)
        assert running_per_node(state)["id1"] == 2  # the tasks being moved never stop
        now += 1.0
    assert 2 <= len(attempts) <= 200 / FAILURE_COOLDOWN_S + 1, len(attempts)


def test_a_joiner_becomes_ready_only_once_gossip_sees_it_alive():
    joiner = Node("j1", "joiner", "10.0.0.9", 7947, 7946, status=NodeStatus.JOINING)
    state = ClusterState(cluster_id="c", nodes={"j1": joiner})
    assert node_status_updates(state, {}) == {}  # never gossiped: stays joining, gets no tasks
    assert node_status_updates(state, {"j1": "suspect"}) == {}
    assert node_status_updates(state, {"j1": "alive"}) == {"j1": "ready"}


def test_a_spec_that_breaks_the_parser_is_recorded_invalid_and_others_are_scheduled(monkeypatch):
    """A committed spec the parser chokes on (any exception) is a fact recorded as an invalid service
    (model/committed.py), never a stored spec that stalls the leader's round: the round skips it."""
    import p2porch.model.committed as committed

    real = committed.ServiceSpec.from_dict

    def parse(data):
        if data.get("name") == "broken":
            raise TypeError("'<' not supported between instances of 'int' and 'str'")
        return real(data)

    state = with_service(cluster(), replicas=2)
    broken = ServiceSpec.from_dict({"name": "broken", "image": "busybox", "replicas": 2})
    command = C.CreateService(at=2.0, service_id="s2", spec=broken).encode()
    monkeypatch.setattr(committed.ServiceSpec, "from_dict", staticmethod(parse))
    after, result, _ = apply(state, command)
    assert result["ok"] and "TypeError" in after.services["s2"].invalid
    plan = plan_round(after, 3.0, Orchestrator(random.Random(1)))
    assert {item.task.service_id for item in plan.items} == {"s1"} and len(plan.items) == 2
    assert list(plan.skipped) == ["s2"]


def test_a_start_first_update_keeps_the_spread_when_other_services_load_some_nodes():
    """The task a start-first replacement replaces is on its way out: spread must not count it, or the
    replacement goes to the least loaded node and the service piles up there (found walking the CLI:
    4 replicas on 4 nodes ended on 2 of them after one update)."""
    orchestrator = Orchestrator(random.Random(11))
    state = with_service(
        cluster(4), replicas=4, env={"V": "1"}, update={"order": "start-first", "parallelism": 1}
    )
    load = ServiceSpec.from_dict(
        {"name": "load", "image": "busybox", "replicas": 6, "constraints": ["node.id!=id3", "node.id!=id4"]}
    )
    state = run(state, C.CreateService(at=2.0, service_id="s2", spec=load).encode())
    state, _, _ = converge(state, orchestrator, 3.0, replicas=0)

    def web_per_node(state: ClusterState) -> Counter:
        return Counter(
            t.node_id for t in state.tasks.values() if t.service_id == "s1" and t.desired_state == "running"
        )

    assert web_per_node(state) == {"id1": 1, "id2": 1, "id3": 1, "id4": 1}
    state = update_service(state, 50.0, spec={"env": {"V": "2"}})
    current = state.services["s1"].spec.template_hash()
    for step in range(120):  # one round and one agent step a second, past each batch's 5 s monitor
        state, _ = commit_round(state, 51.0 + step, orchestrator)
        state = agents_act(state, 51.5 + step)
    live = [t for t in state.tasks.values() if t.service_id == "s1" and t.desired_state == "running"]
    assert len(live) == 4 and all(t.template_hash == current and t.state == "running" for t in live)
    assert web_per_node(state) == {"id1": 1, "id2": 1, "id3": 1, "id4": 1}
