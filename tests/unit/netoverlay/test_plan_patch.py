"""The kept overlay plan (netoverlay/plan_patch.py): a change of peers planned alone gives what a full
``plan_overlay`` over the new peer set gives, its operations are ``diff_overlay``'s and its allow-list
difference is the full list's; a change without conflicts is never planned in full."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.netoverlay.diff import KernelState, LinkState, diff_overlay, diff_peers, entries_applied
from p2porch.netoverlay.plan import (
    LocalNode,
    OverlayPeer,
    OverlayPlan,
    OverlaySettings,
    diff_members,
    plan_overlay,
    plan_vxlan_filter,
)
from p2porch.netoverlay.plan_patch import KeptPlan

LOCAL = LocalNode("n05", "10.80.0.5", "10.241.5.0/24", "eth0")
SETTINGS = OverlaySettings(cluster_cidr="10.241.0.0/16")

# small pools, so that random peers collide: same subnet, nested subnets, the local lease, a shared
# underlay address (with or without the same port), bad and outside addresses, the local node's id
SUBNETS = [f"10.241.{i}.0/24" for i in range(1, 9)] + [
    "10.241.4.0/23",
    "10.241.6.128/25",
    "10.241.5.0/24",
    "10.242.1.0/24",
    "10.241.7.0/31",
    "not-a-subnet",
]
UNDERLAYS = [f"10.80.0.{i}" for i in range(1, 9)] + ["10.80.0.5", "bad"]
IDS = [f"n{i:02d}" for i in range(1, 10)]

peers_st = st.builds(
    OverlayPeer,
    st.sampled_from(IDS),
    st.sampled_from(UNDERLAYS),
    st.sampled_from(SUBNETS),
    st.sampled_from([0, 0, 4789, 4800]),
)
# a step: (node id, its new input or None) for one to three peers at once
steps_st = st.lists(
    st.dictionaries(st.sampled_from(IDS), st.one_of(st.none(), peers_st), min_size=1, max_size=3),
    max_size=25,
)


def kernel_of(plan: OverlayPlan) -> KernelState:
    """The device as a pass that applied ``plan`` leaves it."""
    link = plan.link
    device = LinkState(
        link.name, "vxlan", link.vni, link.port, link.local, link.underlay_dev, link.mac, False, True
    )
    base = KernelState(device, frozenset({plan.address}))
    state = entries_applied(base, diff_overlay(base, plan))
    assert state is not None
    return state


def full(peers: dict[str, OverlayPeer]) -> OverlayPlan:
    return plan_overlay(LOCAL, list(peers.values()), SETTINGS, "eth0")


def check_step(kept: KeptPlan, peers: dict[str, OverlayPeer], change: dict[str, OverlayPeer | None]) -> bool:
    """Apply ``change`` to ``kept`` and to ``peers``; True when it was planned alone."""
    before = full(peers)
    for node_id, peer in change.items():
        if peer is None:
            peers.pop(node_id, None)
        else:
            peers[node_id] = peer.__class__(node_id, peer.underlay_addr, peer.subnet, peer.vxlan_port)
    changed = {n: peers.get(n) for n in change}
    after = full(peers)
    delta = kept.delta(changed)
    assert kept.plan() == before, "delta changed the kept plan"
    if delta is None:
        return False
    ops = diff_peers(after.link.name, kernel_of(before), delta.removed, delta.added)
    assert ops == diff_overlay(kernel_of(before), after)
    assert delta.allow == diff_members(
        plan_vxlan_filter(after, SETTINGS).sources, plan_vxlan_filter(before, SETTINGS).sources
    )
    kept.apply(delta)
    assert kept.plan() == after
    assert kept.sources() == plan_vxlan_filter(after, SETTINGS).sources
    assert kept.peers() == peers
    return True


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(IDS), peers_st, max_size=6), steps_st)
def test_a_change_planned_alone_is_the_full_plan_of_the_new_set(
    initial: dict[str, OverlayPeer], steps: list[dict[str, OverlayPeer | None]]
) -> None:
    peers = {n: OverlayPeer(n, p.underlay_addr, p.subnet, p.vxlan_port) for n, p in initial.items()}
    kept = KeptPlan(LOCAL, SETTINGS, "eth0", peers.values())
    assert kept.plan() == full(peers)
    for change in steps:
        if not check_step(kept, peers, change):  # a conflict: the caller plans in full
            kept = KeptPlan(LOCAL, SETTINGS, "eth0", peers.values())
            assert kept.plan() == full(peers)


def lease(i: int) -> str:
    return f"10.{240 + i // 256}.{i % 256}.0/24"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["join", "leave", "move"]), st.integers(1, 300)), max_size=40))
def test_joins_leaves_and_address_changes_without_conflicts_are_never_planned_in_full(
    steps: list[tuple[str, int]],
) -> None:
    wide = OverlaySettings(cluster_cidr="10.240.0.0/12")
    local = LocalNode("n0", "10.69.0.1", lease(0), "eth0")
    peers = {f"n{i}": OverlayPeer(f"n{i}", f"10.69.1.{i}", lease(i)) for i in range(1, 20)}
    kept = KeptPlan(local, wide, "eth0", peers.values())
    for what, i in steps:
        node_id = f"n{i}"
        if what == "leave":
            change: OverlayPeer | None = None
        else:
            moved = what == "move" and node_id in peers  # its underlay address changes (a new host)
            change = OverlayPeer(node_id, f"10.69.{2 if moved else 1}.{i}", lease(i))
        delta = kept.delta({node_id: change})
        assert delta is not None, (what, i)
        kept.apply(delta)
        if change is None:
            peers.pop(node_id, None)
        else:
            peers[node_id] = change
        want = plan_overlay(local, list(peers.values()), wide, "eth0")
        assert kept.plan() == want and kept.sources() == plan_vxlan_filter(want, wide).sources


def test_a_join_is_three_operations_and_one_allow_list_member() -> None:
    peers = [OverlayPeer(f"n{i}", f"10.80.0.{i}", f"10.241.{i}.0/24") for i in (1, 2)]
    kept = KeptPlan(LOCAL, SETTINGS, "eth0", peers)
    before = kept.plan()
    delta = kept.delta({"n03": OverlayPeer("n03", "10.80.0.3", "10.241.3.0/24")})
    assert delta is not None
    assert [e.node_id for e in delta.added] == ["n03"] and not delta.removed
    assert delta.allow.add == ("10.80.0.3",) and not delta.allow.remove
    assert len(diff_peers("p2p-vx0", kernel_of(before), delta.removed, delta.added)) == 3
    # a second peer behind the same address on another port (a NAT): one more entry, no new member
    kept.apply(delta)
    delta = kept.delta({"n04": OverlayPeer("n04", "10.80.0.3", "10.241.4.0/24", 4800)})
    assert delta is not None and len(delta.added) == 1 and not delta.allow
    # a peer whose subnet overlaps a planned one: which is skipped depends on the order, planned in full
    assert kept.delta({"n00": OverlayPeer("n00", "10.80.0.9", "10.241.2.0/23")}) is None
