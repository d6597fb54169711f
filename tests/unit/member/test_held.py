"""Whether a node's tasks take traffic while its daemon is away (member/held.py, pure)."""

from __future__ import annotations

from dataclasses import replace

from p2porch.member.held import data_path_out, hold_serves, next_hold_end
from p2porch.model import Node
from p2porch.raft.state import ClusterState

HELD = Node("h", "n2", "10.0.0.2", 7947, 7946, restart_until=100.0, restart_incarnation=4)


def cluster(*nodes: Node) -> ClusterState:
    return ClusterState(cluster_id="x", nodes={n.node_id: n for n in nodes})


def test_a_hold_serves_until_its_deadline_while_ready_with_its_engine_reachable():
    assert hold_serves(HELD, 0.0) and hold_serves(HELD, 99.99)
    assert not hold_serves(HELD, 100.0)  # ran out: the daemon was not back in time
    assert hold_serves(HELD)  # the committed record alone (the DNS zone): the leader ends it
    assert not hold_serves(replace(HELD, engine_down_at=50.0), 10.0)  # its containers' health unknown
    assert not hold_serves(replace(HELD, status="down"), 10.0)
    assert not hold_serves(replace(HELD, restart_until=0.0, restart_incarnation=0), 10.0)  # not held


def test_gone_nodes_are_out_unless_held_and_serving():
    live = Node("a", "n1", "10.0.0.1", 7947, 7946)
    lost = Node("l", "n3", "10.0.0.3", 7947, 7946)
    state = cluster(live, HELD, lost)
    # gossip calls the held daemon dead (it stopped): its containers serve on, the crashed one's do not
    assert data_path_out(state, {"h", "l"}, 50.0) == {"l"}
    assert data_path_out(state, set(), 50.0) == set()
    # the hold ran out: inert, the node follows gossip as one never held (dead: out; back and ready with
    # the hold still recorded, its clear blocked by the command-version gate: it serves)
    assert data_path_out(state, {"h", "l"}, 100.0) == {"h", "l"}
    assert data_path_out(state, {"l"}, 100.0) == {"l"}
    assert data_path_out(state, set(), 100.0) == set()
    # a gossip leave (a host shutting down) of a node that is not held: out at once
    assert data_path_out(state, {"a"}, 50.0) == {"a"}
    # a name gossip knows that is not in the state (removed): out, as before
    assert data_path_out(state, {"zz"}, 50.0) == {"zz"}
    engine_down = cluster(live, replace(HELD, engine_down_at=40.0))
    assert data_path_out(engine_down, {"h"}, 50.0) == {"h"}
    assert data_path_out(engine_down, set(), 50.0) == {"h"}
    assert data_path_out(engine_down, set(), 100.0) == set()  # past: as a node never held


def test_the_next_hold_end_is_the_earliest_hold_still_serving():
    other = replace(HELD, node_id="k", restart_until=70.0)
    state = cluster(HELD, other, Node("a", "n1", "10.0.0.1", 7947, 7946))
    assert next_hold_end(state, 10.0) == 70.0
    assert next_hold_end(state, 70.0) == 100.0  # that one ran out
    assert next_hold_end(state, 100.0) is None
    assert next_hold_end(cluster(replace(HELD, engine_down_at=1.0)), 10.0) is None
