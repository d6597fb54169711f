"""Cluster events described from Raft changes (pure)."""

from p2porch.control.events import describe_change, leader_event
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, NodeRecord, TaskRecord


def changes_of(state, command):
    new, result, changes = apply(state, command)
    assert result["ok"], result
    return new, changes


def test_node_service_and_task_events():
    state, _ = changes_of(EMPTY_STATE, C.init_cluster(1.0, cluster_id="c"))
    state, (change,) = changes_of(state, C.add_node(1.0, NodeRecord("a", "n1", "10.0.0.1", 7947, 7946)))
    assert describe_change(change, None, state, 5.0) == {
        "at": 5.0,
        "type": "node",
        "action": "joined",
        "node": "n1",
        "role": "replica",
    }
    before = state.nodes["a"]
    state, (change,) = changes_of(state, C.update_node(2.0, "a", status="down"))
    assert describe_change(change, before, state, 6.0)["action"] == "down"
    state, (change,) = changes_of(state, C.create_service(2.0, "s", "web", {}))
    assert describe_change(change, None, state, 7.0)["action"] == "created"
    task = TaskRecord("t1", "s", 1, "a", state="assigned")
    state, (change,) = changes_of(state, C.put_tasks(3.0, [C.task_put(task, task_version=0)]))
    event = describe_change(change, None, state, 8.0)
    assert (event["task"], event["node"], event["state"]) == ("web.1", "n1", "assigned")
    # A re-put of the same observable state is not an event.
    assert describe_change(change, change.record, state, 9.0) is None
    assert leader_event(None, 1.0)["action"] == "lost"


def test_network_events():
    state, _ = changes_of(EMPTY_STATE, C.init_cluster(1.0, cluster_id="c"))
    state, (change,) = changes_of(state, C.create_network(2.0, network_id="n1", name="back"))
    assert describe_change(change, None, state, 3.0) == {
        "at": 3.0,
        "type": "network",
        "action": "created",
        "network": "back",
    }
    before = state.networks["n1"]
    state, (change,) = changes_of(state, C.remove_network(4.0, name="back"))
    assert describe_change(change, before, state, 5.0)["action"] == "removed"
    assert describe_change(change, before, state, 5.0)["network"] == "back"
