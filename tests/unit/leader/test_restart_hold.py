"""A daemon that announced a graceful restart is held ready for a bounded grace (leader/restart_hold.py)."""

from __future__ import annotations

from dataclasses import replace

from p2porch.leader.restart_hold import RELEASE, PastHolds, RestartHolds, Sighting, sightings
from p2porch.leader.scheduling import node_status_updates
from p2porch.model import Node
from p2porch.raft.state import EMPTY_STATE, ClusterState

NOW = 1_800_000_000.0


def cluster(**n2: object) -> ClusterState:
    nodes = {
        "id1": Node("id1", "n1", "10.0.0.1", 7947, 7946, status="ready"),
        "id2": replace(Node("id2", "n2", "10.0.0.2", 7947, 7946, status="ready"), **n2),
    }
    return EMPTY_STATE.evolve(nodes=nodes)


def look(state: ClusterState, n2: Sighting | None, now: float = NOW, cap_s: float = 600.0):  # type: ignore[no-untyped-def]
    seen = {"id1": Sighting("alive", 1)}
    if n2 is not None:
        seen["id2"] = n2
    return RestartHolds(cap_s).plan(state, seen, now)


def test_an_announced_restart_is_recorded_until_the_announced_deadline_and_held() -> None:
    plan = look(cluster(), Sighting("alive", 7, int(NOW) + 30))
    assert plan.updates == {"id2": {"restart_until": NOW + 30, "restart_incarnation": 7}}
    assert plan.held == {"id2"} and plan.wake_at == NOW + 30
    assert plan.why("id2") == "announced a restart"


def test_a_held_node_gossip_declares_dead_stays_ready_until_its_hold_runs_out() -> None:
    held = cluster(restart_until=NOW + 30, restart_incarnation=7)
    for state in ("suspect", "dead"):
        plan = look(held, Sighting(state, 7, int(NOW) + 30), now=NOW + 10)
        assert plan.updates == {} and plan.held == {"id2"} and plan.wake_at == NOW + 30
    plan = look(held, None, now=NOW + 10)  # gossip forgot it (reaped): the hold still bounds it
    assert plan.updates == {} and plan.held == {"id2"}
    # without the hold gossip's dead verdict would mark it down at once (what the leader loop filters)
    assert node_status_updates(held, {"id1": "alive", "id2": "dead"}) == {"id2": "down"}


def test_the_hold_runs_out_a_node_not_back_goes_down_and_is_released() -> None:
    held = cluster(restart_until=NOW + 30, restart_incarnation=7)
    plan = look(held, Sighting("dead", 7, int(NOW) + 30), now=NOW + 30)
    assert plan.updates == {"id2": {"status": "down", **RELEASE}} and plan.held == frozenset()
    assert plan.why("id2") == "its announced restart did not end in time"
    assert look(held, None, now=NOW + 31).updates == {"id2": {"status": "down", **RELEASE}}


def test_a_daemon_back_at_a_newer_incarnation_without_the_announcement_is_released() -> None:
    held = cluster(restart_until=NOW + 30, restart_incarnation=7)
    plan = look(held, Sighting("alive", 9), now=NOW + 10)
    assert plan.updates == {"id2": RELEASE} and plan.held == frozenset()
    assert plan.why("id2") == "back from its restart"
    # alive at the announcement's incarnation: still stopping, still held
    assert look(held, Sighting("alive", 7, int(NOW) + 30), now=NOW + 10).held == {"id2"}
    # alive past the deadline (a stop that hung): released, not marked down (gossip says it is alive)
    assert look(held, Sighting("alive", 7, int(NOW) + 30), now=NOW + 30).updates == {"id2": RELEASE}


def test_a_crash_announces_nothing_and_nothing_is_held() -> None:
    plan = look(cluster(), Sighting("dead", 7))
    assert plan.updates == {} and plan.held == frozenset() and plan.wake_at is None


def test_a_stale_or_replayed_announcement_holds_nothing_past_its_deadline_or_twice() -> None:
    # announced long ago (a replay, a node that never came back): its deadline is past
    assert look(cluster(), Sighting("dead", 7, int(NOW) - 1)).updates == {}
    # the hold ran out and the node went down: the same announcement seen again holds nothing
    down = cluster(status="down")
    assert look(down, Sighting("dead", 7, int(NOW) + 30)).updates == {}
    # a hold already recorded for that incarnation is not extended by seeing it again
    held = cluster(restart_until=NOW + 30, restart_incarnation=7)
    assert look(held, Sighting("dead", 7, int(NOW) + 300), now=NOW + 29).updates == {}
    # a clock far ahead: the leader's cap bounds the hold
    plan = look(cluster(), Sighting("alive", 7, int(NOW) + 86_400), cap_s=600.0)
    assert plan.updates["id2"]["restart_until"] == NOW + 600


def test_a_newer_announcement_is_recorded_again() -> None:
    """The daemon refuted a suspicion while stopping (or restarted again): its new incarnation counts."""
    held = cluster(restart_until=NOW + 30, restart_incarnation=7)
    plan = look(held, Sighting("alive", 8, int(NOW) + 45), now=NOW + 10)
    assert plan.updates == {"id2": {"restart_until": NOW + 45, "restart_incarnation": 8}}


def test_a_node_that_leaves_or_is_down_otherwise_loses_its_hold() -> None:
    held = cluster(restart_until=NOW + 30, restart_incarnation=7)
    assert look(held, Sighting("left", 8)).updates == {"id2": {"status": "down", **RELEASE}}
    leftover = cluster(status="down", restart_until=NOW + 30, restart_incarnation=7)
    assert look(leftover, Sighting("dead", 7)).updates == {"id2": RELEASE}


def test_sightings_read_the_announcement_from_member_meta() -> None:
    class View:
        def __init__(self, state: str, incarnation: int, meta: dict[str, object]) -> None:
            self.state, self.incarnation, self.meta = state, incarnation, meta

    views = {
        "a": View("dead", 3, {"r": 1_800_000_030}),
        "b": View("alive", 1, {"r": "soon"}),
        "c": View("alive", 2, {}),
    }
    assert sightings(views) == {
        "a": Sighting("dead", 3, 1_800_000_030),
        "b": Sighting("alive", 1, 0),  # ill-typed: none
        "c": Sighting("alive", 2, 0),
    }


def test_no_hold_while_a_member_does_not_read_update_node_version_2() -> None:
    """``allowed`` False (raft/command_gate.py): the rule without the hold fields, as with
    restart_grace_s = 0: nothing recorded, nobody held, so gossip's verdicts apply as for a crash; the
    hold and the clear are named as blocked."""
    seen = {"id1": Sighting("alive", 1), "id2": Sighting("dead", 7, int(NOW) + 30)}
    plan = RestartHolds().plan(cluster(), seen, NOW, allowed=False)
    assert (plan.updates, plan.held, plan.wake_at) == ({}, frozenset(), None)
    assert plan.blocked == {"id2": ("hold", 7)}
    recorded = cluster(restart_until=NOW + 30, restart_incarnation=7)  # held before the gate closed
    plan = RestartHolds().plan(recorded, seen, NOW, allowed=False)
    assert (plan.updates, plan.held, plan.blocked) == ({}, frozenset(), {})
    assert plan.wake_at == NOW + 30  # the recorded hold goes inert then: the scheduler looks again
    for state in (cluster(), recorded):
        assert plan.node_updates(node_status_updates(state, {"id1": "alive", "id2": "dead"}), []) == {
            "id2": {"status": "down"}
        }


def test_a_closed_gate_still_writes_the_status_and_names_the_clear_it_blocks() -> None:
    """A hold recorded while the gate was open cannot be cleared (zeroes are hold fields, version 2):
    a {down + clear} goes as {down} (version 1), a clear alone is left out, and both are named."""
    recorded = cluster(restart_until=NOW + 30, restart_incarnation=7)
    down = RestartHolds().plan(recorded, {"id2": Sighting("dead", 7)}, NOW + 30, allowed=False)
    assert down.updates == {"id2": {"status": "down"}} and down.blocked == {"id2": ("clear", 7)}
    assert down.why("id2") == "its announced restart did not end in time"
    back = RestartHolds().plan(recorded, {"id2": Sighting("alive", 9)}, NOW + 40, allowed=False)
    assert (back.updates, back.blocked, back.wake_at) == ({}, {"id2": ("clear", 7)}, None)
    early = RestartHolds().plan(recorded, {"id2": Sighting("alive", 9)}, NOW + 10, allowed=False)
    assert early.blocked == {"id2": ("clear", 7)} and early.wake_at == NOW + 30
    left = RestartHolds().plan(recorded, {"id2": Sighting("left", 7)}, NOW, allowed=False)
    assert left.updates == {"id2": {"status": "down"}}
    gone = RestartHolds().plan(replace(recorded, nodes={}), {}, NOW, allowed=False)
    assert gone.updates == {} and gone.blocked == {}
    # once every member reads version 2 the same look clears it
    assert RestartHolds().plan(recorded, {"id2": Sighting("alive", 9)}, NOW + 40).updates == {"id2": RELEASE}


def test_the_scheduler_plans_on_a_past_hold_as_on_no_hold() -> None:
    """``PastHolds.view``: a ready node whose recorded hold is past is schedulable (its clear may be
    blocked by the gate for long); a hold in force, or a down node's, is left as it is. The same input
    gives the same node records (the incremental planner compares them by identity)."""
    recorded = cluster(restart_until=NOW + 30, restart_incarnation=7)
    past = PastHolds()
    assert past.view(recorded, NOW + 10) is recorded and not recorded.nodes["id2"].schedulable
    view = past.view(recorded, NOW + 30)
    assert view.nodes["id2"].schedulable and view.nodes["id2"].restart_until == 0.0
    assert view.nodes["id1"] is recorded.nodes["id1"] and view.version == recorded.version
    again = past.view(replace(recorded, version=recorded.version + 1), NOW + 31)
    assert again.nodes["id2"] is view.nodes["id2"] and again.version == recorded.version + 1
    down = replace(recorded.nodes["id2"], status="down")
    assert past.view(replace(recorded, nodes={**recorded.nodes, "id2": down}), NOW + 40).nodes["id2"] is down
