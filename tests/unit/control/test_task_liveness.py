"""``service ls`` counts a task as running only where its node reports it; ``service ps`` says why not."""

from __future__ import annotations

from types import SimpleNamespace

from p2porch.cli.service_rows import service_row, task_row
from p2porch.control.service_ops import ServiceOps
from p2porch.control.service_progress import task_counts
from p2porch.control.task_liveness import counts_as_running, stale_message, unreported_reason
from p2porch.model import Node, Service, ServiceSpec, Task
from p2porch.raft.state import EMPTY_STATE


def _cluster():
    service = Service("s1", ServiceSpec(name="web", image="x", replicas=4))
    nodes = {
        "a": Node("a", "n1"),
        "b": Node("b", "n2", status="down", status_at=5.0),
        "c": Node("c", "n3", engine_down_at=7.0, engine_error="Cannot connect to the Docker engine"),
        "d": Node("d", "n4"),
    }
    tasks = {
        "ta": Task("ta", "s1", 1, "a", state="running"),
        "tb": Task("tb", "s1", 2, "b", state="running"),  # kept on a down node (down_grace_s, a lost site)
        "tc": Task("tc", "s1", 3, "c", state="running"),  # kept while its engine is away (the grace)
        "td": Task("td", "s1", 4, "d", state="running"),
        "tx": Task("tx", "s1", 2, "a", state="starting"),  # b's replacement, not running yet
    }
    state = EMPTY_STATE.evolve(services={"s1": service}, nodes=nodes, tasks=tasks)
    return state, service, tasks


def test_only_tasks_on_nodes_that_report_them_count_as_running() -> None:
    """Swarm's REPLICAS: running tasks on nodes that are up. It showed 4/4 with n2 down and n3's engine
    away (each test line fails on the old count, which took every task in state running)."""
    state, service, tasks = _cluster()
    assert task_counts(state, service, list(tasks.values()), 10.0) == (2, 4)
    view = ServiceOps(SimpleNamespace(), logs=None).view(service, state)  # type: ignore[arg-type]
    assert (view["running"], view["desired"]) == (2, 4)
    assert service_row(view)[3] == "2/4"


def test_the_reason_per_node_state() -> None:
    state, _, tasks = _cluster()
    nodes = state.nodes
    assert [unreported_reason(nodes[n]) for n in "abcd"] == ["", "down", "engine unreachable", ""]
    assert unreported_reason(None) == "removed"
    assert unreported_reason(Node("j", "n9", status="joining")) == "down"
    assert counts_as_running(tasks["ta"], nodes["a"]) and not counts_as_running(tasks["tx"], nodes["a"])
    assert not counts_as_running(tasks["ta"], None)


def test_service_ps_says_which_tasks_are_only_a_last_report() -> None:
    state, service, tasks = _cluster()
    views = {t.task_id: ServiceOps.task_view(t, state, service) for t in tasks.values()}
    assert views["ta"]["message"] == "" and views["td"]["message"] == ""
    assert views["tb"]["message"] == "node n2 down: its last report (unreachable)"
    assert views["tc"]["message"] == "node n3 engine unreachable: its last report"
    assert views["tc"]["state"] == "running"  # the recorded state itself is not made up
    assert [views[t]["last_report"] for t in ("ta", "tb", "tc", "td", "tx")] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert task_row(views["tc"])[-1] == "node n3 engine unreachable: its last report"
    stopped = Task("ty", "s1", 3, "c", state="running", desired_state="shutdown", message="node down")
    assert stale_message(stopped, state.nodes["c"]) == ""  # told to stop: its own message
    gone = Task("tz", "s1", 3, "0123456789abcdef0", state="running")
    assert stale_message(gone, None) == "node 0123456789ab removed: its last report"
