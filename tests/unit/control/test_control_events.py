"""Cluster events described from Raft changes (pure)."""

from dataclasses import replace

from p2porch.control.events import describe_change, leader_event
from p2porch.model import Node, ServiceSpec, Task
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def changes_of(state, command):
    new, result, changes = apply(state, command)
    assert result["ok"], result
    return new, changes


def test_node_service_and_task_events():
    state, _ = changes_of(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state, (change,) = changes_of(
        state, C.AddNode(at=1.0, node=Node("a", "n1", "10.0.0.1", 7947, 7946)).encode()
    )
    assert describe_change(change, None, state, 5.0) == {
        "at": 5.0,
        "type": "node",
        "action": "joined",
        "node": "n1",
        "node_id": "a",
        "role": "replica",
    }
    before = state.nodes["a"]
    state, (change,) = changes_of(state, C.UpdateNode(at=2.0, node_id="a", status="down").encode())
    assert describe_change(change, before, state, 6.0)["action"] == "down"
    before = state.nodes["a"]  # the autopilot makes it a voter (Docker: a node update, role.new)
    state, (change,) = changes_of(state, C.UpdateNode(at=2.0, node_id="a", role="voter").encode())
    assert describe_change(change, before, state, 6.5) == {
        "at": 6.5,
        "type": "node",
        "action": "voter",
        "node": "n1",
        "node_id": "a",
        "was": "replica",
    }
    state, (change,) = changes_of(
        state, C.CreateService(at=2.0, service_id="s", spec=ServiceSpec(name="web", image="busybox")).encode()
    )
    assert describe_change(change, None, state, 7.0)["action"] == "created"
    assert describe_change(change, None, state, 7.0)["service_id"] == "s"  # Docker's .Actor.ID
    task = Task("t1", "s", 1, "a", state="assigned")
    state, (change,) = changes_of(
        state, C.PutTasks(at=3.0, items=tuple([C.TaskPut(task, task_version=0)])).encode()
    )
    event = describe_change(change, None, state, 8.0)
    assert (event["task"], event["node"], event["state"]) == ("web.1", "n1", "assigned")
    # A re-put of the same observable state is not an event.
    assert describe_change(change, change.record, state, 9.0) is None
    assert leader_event(None, 1.0)["action"] == "lost"


def test_network_events():
    state, _ = changes_of(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state, (change,) = changes_of(state, C.CreateNetwork(at=2.0, network_id="n1", name="back").encode())
    assert describe_change(change, None, state, 3.0) == {
        "at": 3.0,
        "type": "network",
        "action": "created",
        "network": "back",
        "network_id": "n1",
    }
    before = state.networks["n1"]
    state, (change,) = changes_of(state, C.RemoveNetwork(at=4.0, name="back").encode())
    assert describe_change(change, before, state, 5.0)["action"] == "removed"
    assert describe_change(change, before, state, 5.0)["network"] == "back"


def test_a_removed_services_task_is_named_from_removed_names():
    state, _ = changes_of(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state, _ = changes_of(
        state, C.CreateService(at=2.0, service_id="s", spec=ServiceSpec(name="web", image="busybox")).encode()
    )
    task = Task("t1", "s", 1, None, state="running")
    state, _ = changes_of(state, C.PutTasks(at=3.0, items=tuple([C.TaskPut(task, task_version=0)])).encode())
    version = state.services["s"].version
    remove = C.RemoveService(at=4.0, service_id="s", service_version=version)
    state, changes = changes_of(state, remove.encode())
    (task_change,) = [c for c in changes if c.kind == "task"]
    assert describe_change(task_change, task, state, 5.0)["task"] == "s.1"  # nothing else knows the name
    assert describe_change(task_change, task, state, 5.0, {"s": "web"})["task"] == "web.1"


def test_a_failed_task_is_one_failed_event_not_two():
    """A failed task showed as two ``failed`` events: its failure, then the orchestrator's desired
    ``shutdown`` of it (the state unchanged). One event per state change; a running task told to stop
    is still one (its desired state is news)."""
    state, _ = changes_of(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state, _ = changes_of(
        state, C.CreateService(at=2.0, service_id="s", spec=ServiceSpec(name="web", image="busybox")).encode()
    )
    events, task, version = [], Task("t1", "s", 1, None, state="running"), 0
    for put in (
        task,
        replace(task, state="failed", error="exit 3"),
        replace(task, state="failed", error="exit 3", desired_state="shutdown"),
        replace(task, state="failed", error="exit 3", desired_state="shutdown", message="kept"),
    ):
        before = state.tasks.get("t1")
        state, (change,) = changes_of(
            state, C.PutTasks(at=3.0, items=(C.TaskPut(put, task_version=version),)).encode()
        )
        version = state.tasks["t1"].version
        events.append(describe_change(change, before, state, 4.0))
    assert [e and e["state"] for e in events] == ["running", "failed", None, None]
    stopping = replace(task, desired_state="shutdown")
    state, (change,) = changes_of(
        state, C.PutTasks(at=6.0, items=(C.TaskPut(stopping, task_version=version),)).encode()
    )
    event = describe_change(change, task, state, 6.0)
    assert event is not None and (event["state"], event["desired_state"]) == ("running", "shutdown")


def test_a_job_tasks_desired_state_is_the_one_service_ps_shows():
    """A job's task said ``desired_state=running`` in ``events`` while ``service ps`` (and the web UI)
    showed DESIRED ``complete``, as Swarm's: the event shows what those show (``shutdown`` once told to
    stop before it completed)."""
    state, _ = changes_of(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    spec = ServiceSpec(name="batch", image="busybox", mode="replicated-job")
    state, _ = changes_of(state, C.CreateService(at=2.0, service_id="s", spec=spec).encode())
    events, version = [], 0
    task = Task("t1", "s", 1, None, state="assigned")
    for put in (
        task,
        replace(task, state="running"),
        replace(task, state="complete"),
        replace(task, task_id="t2", slot=2, state="running", desired_state="shutdown"),
    ):
        before = state.tasks.get(put.task_id)
        version = before.version if before else 0
        state, (change,) = changes_of(
            state, C.PutTasks(at=3.0, items=(C.TaskPut(put, task_version=version),)).encode()
        )
        events.append(describe_change(change, before, state, 4.0))
    assert [(e["state"], e["desired_state"]) for e in events] == [
        ("assigned", "complete"),
        ("running", "complete"),
        ("complete", "complete"),
        ("running", "shutdown"),
    ]
