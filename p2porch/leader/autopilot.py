"""Autopilot for Raft voters: restore the configured number of voters when voters die (pure).

``next_voter_change`` looks at the committed node records, the leader's current Raft voter set and
which nodes gossip sees alive, and returns the one membership step to take now, or None:

1. ``add``: a node recorded as voter (a joiner, or a replica just promoted) that is not yet in the
   Raft configuration is added once its store runs as a voter of this generation (``runs_as_voter``:
   the shell asks the node, or knows it from ``AdmittedVoters``): adding a voter that is not running
   would stall commits (a 1-voter cluster needs both of 2).
2. ``promote``: fewer than ``target`` voters are healthy (a voter down for less than ``grace_s``
   still counts; so does a node recorded as voter that step 1 has yet to add), e.g. a voter died or
   a forced recovery left a single voter: the first ready, alive replica (by name) is recorded as
   voter; its own node then restarts its store as a voter and step 1 adds it. When no voter is dead,
   not while a node is joining (within ``grace_s``): the joins' admissions fill the free seats.
3. ``demote``: a voter has been down for ``grace_s`` and ``target`` healthy voters exist without it:
   it is recorded as replica (so when it comes back it starts as one); or more than ``target`` voters
   are healthy (a dead voter came back after its replacement, a join raced a promotion): the last one
   by name that is not the leader is; then
4. ``remove``: a Raft voter whose record says replica, or whose node left or was removed, leaves
   the Raft configuration.

Voters are spread over failure domains (the ``region`` label, then ``zone``): a promotion picks the
replica whose domain holds the fewest voters, a demotion of an extra voter the one in the most
crowded domain, and when the domains are uneven by two or more (``rebalance``) a replica of the
emptiest domain is promoted so that the extra-voter demotion then moves a vote across (a swap in
two safe steps). Nodes without these labels all share one domain.

Promoting and adding before demoting keeps the number of healthy voters from dropping; each step is
one write or one configuration change, so a leader that dies halfway leaves a state the next leader
continues from. Raft (and pysyncobj) applies one configuration change at a time. Nothing here
performs I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from ..config import RaftConfig
from ..model import Node, NodeRole, NodeStatus


def voters_target(raft: RaftConfig, node_count: int) -> int:
    """How many voters a cluster of ``node_count`` nodes should have (never more than it has)."""
    wanted = raft.voters_large if node_count >= raft.large_cluster_nodes else raft.voters
    return min(wanted, node_count)


SPREAD_LABELS = ("region", "zone")  # failure domains voters are spread over, widest first


def failure_domain(node: Node) -> tuple[str, ...]:
    """The node's failure domain: its ``region`` and ``zone`` labels ("" when absent)."""
    return tuple(node.labels.get(label, "") for label in SPREAD_LABELS)


def _crowding(voters: Iterable[Node]) -> tuple[Counter[str], Counter[tuple[str, ...]]]:
    """Voters per region and per (region, zone)."""
    voters = list(voters)
    return Counter(failure_domain(n)[0] for n in voters), Counter(failure_domain(n) for n in voters)


def spread_pick(candidates: Iterable[Node], voters: Iterable[Node]) -> Node | None:
    """The candidate whose region, then zone, holds the fewest of ``voters`` (then by name)."""
    regions, zones = _crowding(voters)
    ranked = sorted(
        candidates,
        key=lambda n: (regions[failure_domain(n)[0]], zones[failure_domain(n)], n.name, n.node_id),
    )
    return ranked[0] if ranked else None


def crowded_pick(voters: Iterable[Node], exclude: str) -> Node | None:
    """The voter (not ``exclude``) in the most crowded region, then zone (then last by name)."""
    voters = list(voters)
    regions, zones = _crowding(voters)
    ranked = sorted(
        (n for n in voters if n.raft_addr != exclude),
        key=lambda n: (regions[failure_domain(n)[0]], zones[failure_domain(n)], n.name, n.node_id),
    )
    return ranked[-1] if ranked else None


def uneven_regions(voters: Iterable[Node], replicas: Iterable[Node]) -> Node | None:
    """A replica to promote because its region has two or more voters fewer than the most crowded."""
    voters = list(voters)
    regions, _ = _crowding(voters)
    most = max(regions.values(), default=0)
    candidates = [n for n in replicas if regions[failure_domain(n)[0]] <= most - 2]
    return spread_pick(candidates, voters)


@dataclass(frozen=True, slots=True)
class VoterChange:
    """One membership step: ``add`` / ``remove`` the Raft voter ``addr``, or ``promote`` ``node_id``."""

    kind: str  # add | promote | demote | remove
    addr: str
    node_id: str | None
    reason: str


def next_voter_change(
    nodes: Iterable[Node],
    raft_voters: Collection[str],
    alive: Collection[str],
    runs_as_voter: Collection[str],
    now: float,
    *,
    target: int,
    grace_s: float,
    self_addr: str,
) -> VoterChange | None:
    """The next step towards ``target`` healthy voters (see the module docstring), or None."""
    records = sorted(nodes, key=lambda n: (n.name, n.node_id))
    members = [n for n in records if n.status != NodeStatus.LEFT]
    by_addr = {n.raft_addr: n for n in members}

    for addr in sorted(raft_voters):
        if addr == self_addr:
            continue
        node = by_addr.get(addr)
        if node is None:
            return VoterChange("remove", addr, None, "its node left the cluster")
        if node.role != NodeRole.VOTER:
            return VoterChange("remove", addr, node.node_id, f"{node.name} was demoted")

    for n in members:
        if n.role == NodeRole.VOTER and n.raft_addr not in raft_voters and n.raft_addr in runs_as_voter:
            return VoterChange("add", n.raft_addr, n.node_id, "runs as a voter")

    def down_for_good(n: Node) -> bool:
        return n.status != NodeStatus.READY and now - n.status_at >= grace_s

    in_config = [n for n in members if n.raft_addr in raft_voters]
    dead = [n for n in in_config if n.raft_addr != self_addr and down_for_good(n)]
    counted = [n for n in in_config if not down_for_good(n)]  # ready, or down for less than the grace
    coming = [  # recorded as voter, not added yet, and not given up on
        n
        for n in members
        if n.role == NodeRole.VOTER and n.raft_addr not in raft_voters and not down_for_good(n)
    ]
    if dead and len(counted) >= target:
        victim = dead[0]
        return VoterChange("demote", victim.raft_addr, victim.node_id, f"{victim.name} is down")
    if not dead and not coming and len(counted) > target:
        extra = crowded_pick(in_config, exclude=self_addr)
        if extra is not None:
            return VoterChange(
                "demote", extra.raft_addr, extra.node_id, f"{len(counted)} voters, target {target}"
            )
    healthy_replicas = [
        n
        for n in members
        if n.role == NodeRole.REPLICA and n.status == NodeStatus.READY and n.node_id in alive
    ]
    if len(counted) + len(coming) >= target:
        if dead or coming or len(counted) != target:
            return None
        spread = uneven_regions(counted, healthy_replicas)
        if spread is None:
            return None
        return VoterChange("promote", spread.raft_addr, spread.node_id, "spreads voters over regions")
    if not dead and any(n.status == NodeStatus.JOINING and not down_for_good(n) for n in members):
        # short of the target with no voter dead: joins are under way, and their admissions hand out the
        # free voter seats (an admission in flight is not in the records yet); a promotion now raced
        # one and made a voter too many, demoted and restarted as a replica again (issue 19, joins)
        return None
    why = f"replaces voter {dead[0].name}" if dead else f"{len(counted)} of {target} voters"
    pick = spread_pick(healthy_replicas, [*counted, *coming])
    if pick is not None:
        return VoterChange("promote", pick.raft_addr, pick.node_id, why)
    return None  # no replica to promote: keep a dead voter, it may come back


def next_check_s(
    nodes: Iterable[Node],
    raft_voters: Collection[str],
    now: float,
    *,
    grace_s: float,
    check_s: float,
    quiet_s: float,
) -> float:
    """How long the autopilot may wait for a committed change or a gossip change before it looks again.

    ``check_s`` while a node recorded as voter is not in the configuration yet (whether it runs as a
    voter is asked, not committed); until the next grace deadline of a node that is down (a voter down
    for good, a coming voter given up on: time alone changes the decision); ``quiet_s`` otherwise (a
    safety net: every other input is a commit or a gossip change, which wake the loop)."""
    wait = quiet_s
    for n in nodes:
        if n.status == NodeStatus.LEFT:
            continue
        if n.role == NodeRole.VOTER and n.raft_addr not in raft_voters:
            wait = min(wait, check_s)
        if n.status != NodeStatus.READY and now - n.status_at < grace_s:
            wait = min(wait, n.status_at + grace_s - now)
    return max(0.0, wait)


@dataclass
class VoterAnswers:
    """Which nodes answered (join port) that their store runs as a voter, per Raft address: the
    generation they named and when (pure: fed the answers and ``now``; the loop asks).

    An answer is reused for ``ttl_s``: the voters of an 8-way formation wait to be added one at a time,
    and each step asked every waiting voter again, nodes busy starting their member services (issue
    19's staircase). The answer only keeps a voter that is not running out of the configuration (it
    would stall commits); one a second old is as good a guide as one just received, since the node
    can stop between any answer and the add anyway. Never decides a step itself."""

    ttl_s: float
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def note(self, addr: str, generation: int, now: float) -> None:
        """``addr`` answered just now that it runs as a voter of ``generation``."""
        self._seen[addr] = (generation, now)

    def running(self, addrs: Iterable[str], generation: int, now: float) -> set[str]:
        """Those of ``addrs`` that answered for ``generation`` within ``ttl_s`` (older answers go)."""
        self._seen = {a: seen for a, seen in self._seen.items() if now - seen[1] < self.ttl_s}
        return {a for a in addrs if self._seen.get(a, (None, 0.0))[0] == generation}


@dataclass
class AdmittedVoters:
    """The nodes this leader saw recorded as voter while still ``joining``, per node id (pure: fed every
    committed node record, and the committed nodes, the configuration and the term at every look).

    Such a node was admitted as a voter: the autopilot promotes only ready replicas and demotes only
    voters of the configuration, and a joiner opens its store in the role its admission gave it before
    its gossip starts. So once it is ready (gossip saw it), not in the configuration yet and alive in
    this leader's gossip, it runs as a voter without being asked over its join port (issue 19: the ask
    to joiners busy starting their services took up to 1.2 s in an 8-way formation). A join abandoned
    after its gossip started announces its leave (``ClusterManager.join``): not alive here once that
    reaches this node; a joiner that crashed is alive until gossip suspects it (~1 s; a
    ``VoterAnswers`` answer is reused for 2 s). An entry goes once its node is in the configuration,
    no voter, left or gone, or at another Raft address (a later promotion is asked again), and all go
    when the term changes (a role change another leader wrote is never missed). Never decides a step
    itself."""

    _seen: dict[str, str] = field(default_factory=dict)  # node id -> its Raft address when seen joining
    _term: int | None = None

    def observe(self, nodes: Iterable[Node], raft_voters: Collection[str], term: int) -> None:
        """The committed ``nodes`` and Raft configuration as this leader sees them in ``term``."""
        self._at_term(term)
        records = {n.node_id: n for n in nodes}

        def still_waiting(node_id: str, addr: str) -> bool:
            n = records.get(node_id)
            if n is None or n.role != NodeRole.VOTER or n.status == NodeStatus.LEFT:
                return False
            return n.raft_addr == addr and addr not in raft_voters

        self._seen = {node_id: addr for node_id, addr in self._seen.items() if still_waiting(node_id, addr)}
        for n in records.values():
            if n.role == NodeRole.VOTER and n.status == NodeStatus.JOINING and n.raft_addr not in raft_voters:
                self._seen[n.node_id] = n.raft_addr

    def note(self, changed: Iterable[Node], term: int) -> None:
        """Node records as committed, in order, since the last look, seen in ``term`` (a record can be
        ``joining`` only between two looks: the ready mark may commit 0.07 s after the admission)."""
        self._at_term(term)
        for n in changed:
            if n.role == NodeRole.VOTER and n.status == NodeStatus.JOINING:
                self._seen[n.node_id] = n.raft_addr
            elif n.role != NodeRole.VOTER or n.status == NodeStatus.LEFT:
                self._seen.pop(n.node_id, None)

    def _at_term(self, term: int) -> None:
        if term != self._term:
            self._seen, self._term = {}, term

    def running(self, pending: Iterable[Node], alive: Collection[str]) -> set[str]:
        """Raft addresses of those of ``pending`` (voters waiting to be added) seen joining as voters and
        alive in gossip (node ids in ``alive``)."""
        return {
            n.raft_addr for n in pending if self._seen.get(n.node_id) == n.raft_addr and n.node_id in alive
        }
