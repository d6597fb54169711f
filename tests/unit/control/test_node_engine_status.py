"""What the API's node objects, ``node ls`` and the web UI show of a node whose engine is unreachable:
``status_text`` ``ready (engine unreachable)`` and the engine's since-when and why (the UI had only
``ready``: its node table rendered ``status``, which stays ready while the daemon is up)."""

from __future__ import annotations

from p2porch.cli.node import describe_node, status_cell
from p2porch.model import Node, NodeRole, node_status_text
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE
from p2porch.ui import load_assets

ERROR = "Cannot connect to the Docker engine at unix:///var/run/docker.sock"


def _state():
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i, name in enumerate(("n1", "n2", "n3"), 1):
        node = Node(f"id{i}", name, f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    down = C.UpdateNode(at=5.0, node_id="id3", engine_down_at=4.5, engine_error=ERROR)
    gone = C.UpdateNode(at=5.0, node_id="id2", status="down")
    for command in (down, gone):
        state, result, _ = apply(state, command.encode())
        assert result["ok"], result
    return state


def test_the_api_node_objects_carry_the_status_text_and_the_engine(node_ops) -> None:
    ops, _ = node_ops(_state())
    views = {v["name"]: v for v in ops.nodes()}
    assert [views[n]["status_text"] for n in ("n1", "n2", "n3")] == [
        "ready",
        "down",
        "ready (engine unreachable)",
    ]
    assert views["n3"]["status"] == "ready"  # Docker's field keeps Docker's values
    assert views["n3"]["engine"] == {"reachable": False, "unreachable_since": 4.5, "error": ERROR}
    assert views["n1"]["engine"] == {"reachable": True}
    # Docker's .Description.Platform: Linux, the architecture each node's gossip carries (conftest's board)
    assert [views[n]["platform"]["architecture"] for n in ("n1", "n2", "n3")] == ["", "aarch64", ""]
    assert views["n2"]["platform"]["os"] == "linux"
    assert [status_cell(views[n]) for n in ("n1", "n2", "n3")] == [
        "ready",
        "down",
        "ready (engine unreachable)",
    ]


def test_the_cli_computes_it_from_a_daemon_that_does_not_send_it() -> None:
    older = {"status": "ready", "engine": {"reachable": False, "unreachable_since": 4.5, "error": ERROR}}
    assert status_cell(older) == "ready (engine unreachable)"
    assert status_cell({"status": "ready"}) == "ready"  # no engine view at all: nothing is made up
    assert node_status_text("down", False) == "down"  # a down node is down, whatever its engine was


def test_the_page_renders_the_status_text_with_the_engine_error_on_hover() -> None:
    """The node table's status cell is the API's ``status_text``; the error and since when are its title
    (hover) and a line under it (the browser test, tests/integration/test_web_ui.py, checks it live)."""
    script = load_assets()["app.js"][0].decode()
    assert "nodeStatusCell(n)" in script and "stateCell(n.status)" not in script
    assert "n.status_text || n.status" in script and "title: why" in script and "engine.error" in script


def test_a_node_held_for_its_daemon_restart_reads_ready_restarting(node_ops) -> None:
    state, result, _ = apply(
        _state(), C.UpdateNode(at=6.0, node_id="id1", restart_until=36.0, restart_incarnation=2).encode()
    )
    assert result["ok"], result
    ops, _ = node_ops(state)
    views = {v["name"]: v for v in ops.nodes()}
    assert views["n1"]["status_text"] == "ready (restarting)" and views["n1"]["restart"] == {"until": 36.0}
    assert views["n3"]["restart"] is None
    assert status_cell({"status": "ready", "restart": {"until": 36.0}}) == "ready (restarting)"
    assert "status:       ready (restarting: held until 1970-01-01 00:00:36+00:00)" in describe_node(
        views["n1"]
    )
    assert "restarting" not in describe_node(views["n3"])
    assert node_status_text("down", True, restarting=True) == "down"


def test_a_hold_past_its_deadline_no_longer_reads_restarting(node_ops) -> None:
    """A hold the version gate kept from being cleared is inert once past (member/held.py): ``node ls``
    and ``node inspect`` say ``ready``, not ``ready (restarting)``."""
    state, result, _ = apply(
        _state(), C.UpdateNode(at=0.5, node_id="id1", restart_until=1.5, restart_incarnation=2).encode()
    )
    assert result["ok"], result
    ops, _ = node_ops(state)  # its clock reads 2.0
    view = {v["name"]: v for v in ops.nodes()}["n1"]
    assert view["status_text"] == "ready" and view["restart"] is None
    assert "restarting" not in describe_node(view)
