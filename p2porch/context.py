"""The narrow typed context member services and leader loops receive instead of the manager (shell helper).

A :class:`MemberContext` holds the store interface, this node's identity, the board the member services
publish on (health, overlay, gossip view, executor), an injected clock and the one remote question the
autopilot asks. Each service also receives its own config section from the daemon. Nothing here
decides anything; :mod:`p2porch.membership` builds one context per member run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .clock import Clock
from .metrics import Metrics

if TYPE_CHECKING:
    from .agent.executor import Executor
    from .agent.usage import UsageBook
    from .dns.resolver import Resolver
    from .dns.server import ServerCounters
    from .gossip.runner import GossipHandle
    from .netoverlay.reconciler import OverlayReconciler
    from .netoverlay.traffic_apply import TrafficApplier
    from .raft.command_gate import Readers
    from .raft.pacer import TickLateness
    from .raft.state import ClusterState
    from .raft.status import RaftStatus

__all__ = ["ClusterStore", "LocalBoard", "LocalNode", "MemberAsk", "MemberContext", "VoterControl"]

#: how long a node's engine version waits for the next update of its gossip metadata to ride with
ENGINE_META_HOLD_S = 2.0


class ClusterStore(Protocol):
    """The replicated store as services use it: committed snapshots, a change stream, conditional writes.

    :class:`~p2porch.raft.store.RaftStore` implements it; so does the memory store of the simulator."""

    tick_lateness: TickLateness  # how late its Raft thread ticks (the leader's self-pacing reads it)
    command_readers: Readers | None  # every member's advertisement: the spec field gate's input (None: none)

    def snapshot(self) -> ClusterState: ...

    def status(self) -> RaftStatus: ...

    def role_event(self) -> trio.Event: ...

    def leader_event(self) -> trio.Event: ...

    def subscribe(
        self, max_buffer: float = ...
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Any]]: ...

    async def write(self, command: bytes, timeout_s: float = 5.0) -> Any: ...

    async def write_together(self, commands: list[bytes], timeout_s: float = 5.0) -> list[Any]: ...

    async def propose_together(
        self, commands: list[bytes], timeout_s: float = 5.0
    ) -> list[dict[str, Any]]: ...


class VoterControl(Protocol):
    """Raft configuration changes (the leader's autopilot only)."""

    async def add_voter(self, addr: str, timeout_s: float = 10.0) -> None: ...

    async def remove_voter(self, addr: str, timeout_s: float = 10.0) -> None: ...


@dataclass(frozen=True)
class LocalNode:
    """This node as its member services need to know it."""

    node_id: str
    node_name: str
    advertise_addr: str  # where peers reach this node (a NAT's public address)
    raft_addr: str
    role: str  # voter | replica: how this node's store runs
    generation: int
    gossip_key: bytes = field(repr=False)
    previous_gossip_key: bytes | None = field(default=None, repr=False)  # accepted briefly after a key switch
    #: the secrets/configs master key of each known cluster key epoch (membership.runtime.secrets_keys)
    secrets_keys: Mapping[int, bytes] = field(default_factory=dict, repr=False)
    listen_addr: str = ""  # where its listeners bind ("" = advertise_addr; differs behind NAT)
    gossip_port: int = 0  # advertised gossip port (0 = the configured one; a NAT's forward may differ)
    key_epoch: int = 0  # the cluster key epoch its keys are of (member services restart on a switch)

    @property
    def bind_addr(self) -> str:
        """The local address this node's listeners bind (its own, even behind a NAT)."""
        return self.listen_addr or self.advertise_addr

    @property
    def voter_addr(self) -> str | None:
        """This node's Raft address when its store runs as a voter, else None."""
        return self.raft_addr if self.role == "voter" else None


@dataclass
class LocalBoard:
    """What this node's member services publish while they run, for each other and for the API.

    One board per member run; a service sets its slot when it is up and clears it when it stops.
    It holds handles, never decisions."""

    health: dict[str, str] = field(default_factory=dict)
    overlay: OverlayReconciler | None = None
    traffic: TrafficApplier | None = None  # ingress and VIP rules (member/traffic.py)
    #: the state version this node's ingress/VIP rules reflect, as published in gossip (member/drain_acks.py)
    traffic_index: int = 0
    #: this node's Docker engine version, once the agent read it, as published in gossip (member/agent.py)
    engine_version: str = ""
    #: this node's engine's architecture (``uname -m``), published beside it
    architecture: str = ""
    overlay_ready: trio.Event = field(default_factory=trio.Event)
    resolver: Resolver | None = None
    dns_counters: ServerCounters | None = None
    #: the node's ``member.task_networks.TaskNetworkIndex``, shared by the DNS view and the network policy
    #: (``shared_index``; typed loosely: this layer does not import member)
    task_networks: Any = None
    executor: Executor | None = None
    gossip: GossipHandle | None = None
    #: a joiner's greeting (its first push/pull with the member that admitted it, which teaches its gossip
    #: every member) while it is under way; set when it is over, whatever came of it (None: no greeting)
    greeting: trio.Event | None = None
    membership_changed: trio.Event = field(default_factory=trio.Event)  # set by gossip, wakes the leader
    #: set (and replaced) when gossip sees a member die, come back, leave or join: take it before reading
    #: ``unreachable_nodes()`` and wait on it (member/traffic.py), no change is missed
    reachability_changed: trio.Event = field(default_factory=trio.Event)

    #: set (and replaced) when this node's Docker engine answers again after an outage (a restarted dockerd
    #: may have rewritten the iptables tables) or made the node's network (its FORWARD accepts on top): the
    #: traffic and network policy loops take it before a pass and wait on it, then rewrite their chains in
    #: full at once (member/traffic.py, member/netpolicy.py)
    engine_back: trio.Event = field(default_factory=trio.Event)

    def engine_answers_again(self) -> None:
        """The agent saw its engine answer again after an outage (member/agent.py calls it), or the overlay
        made the node's Docker network (a start, the warm-up or a full pass: the reconciler's
        ``on_bridge_made``, member/overlay.py)."""
        fired, self.engine_back = self.engine_back, trio.Event()
        fired.set()

    def gossip_changed(self) -> None:
        """Gossip saw a member die, come back, leave or join (the gossip member service calls it)."""
        self.membership_changed.set()
        fired, self.reachability_changed = self.reachability_changed, trio.Event()
        fired.set()

    usage: UsageBook | None = None  # this node's tasks' recent CPU/memory (member/stats.py)
    #: this node's cluster events (``control.event_feed.EventFeed``: its kept ones and the live ones, from
    #: the ``events`` member service) for ``/events``; typed loosely: this layer does not import control
    event_feed: Any = None
    #: the autoscaler's latest decision per service id, while this node leads (leader/autoscale_loop.py)
    autoscale: dict[str, dict[str, Any]] = field(default_factory=dict)

    def engine_versions(self) -> dict[str, str]:
        """``node id -> Docker engine version`` as the nodes published it in gossip ("" unknown)."""
        return {name: v if isinstance(v, str) else "" for name, v in self._gossip_meta("e", "").items()}

    def architectures(self) -> dict[str, str]:
        """``node id -> engine architecture`` (``x86_64``) as the nodes published it in gossip."""
        return {name: v if isinstance(v, str) else "" for name, v in self._gossip_meta("p", "").items()}

    def key_epochs(self) -> dict[str, int]:
        """``node id -> cluster key epoch`` the nodes run in, as they published it in gossip (a node
        that publishes none, or an ill-typed one, is absent: unknown)."""
        epochs = self._gossip_meta("k", None).items()
        return {name: v for name, v in epochs if isinstance(v, int) and not isinstance(v, bool)}

    def _gossip_meta(self, key: str, default: Any) -> dict[str, Any]:
        gossip = self.gossip
        if gossip is None:
            return {}
        return {name: member.meta.get(key, default) for name, member in gossip.members().items()}

    def publish_engine_version(self, version: str, architecture: str = "") -> None:
        """Record this node's engine version (and architecture) and, when gossip runs, tell the other
        members: with the next update of this node's metadata (a joiner's first traffic index), within
        ``ENGINE_META_HOLD_S`` (one alive message spread per joiner instead of two: issue 19)."""
        for key, value, attr in (("e", version, "engine_version"), ("p", architecture, "architecture")):
            if not value or value == getattr(self, attr):
                continue
            setattr(self, attr, value)
            gossip = self.gossip
            if gossip is not None:  # not up yet: it starts with the board's values in its metadata
                gossip.set_own_meta(key, value, hold_s=ENGINE_META_HOLD_S)

    def gossip_states(self) -> dict[str, str]:
        """``node id -> alive | suspect | dead | left`` as this node's gossip sees it ({} before it runs)."""
        gossip = self.gossip
        if gossip is None:
            return {}
        return {name: member.state for name, member in gossip.members().items()}

    def unreachable_nodes(self) -> set[str]:
        """Node ids that gossip currently considers dead (the overlay stops programming them)."""
        # every overlay and traffic pass asks: gossip's member list costs O(nodes) (0.6 ms at 1,000)
        return set() if self.gossip is None else self.gossip.dead_names()

    def gone_nodes(self) -> set[str]:
        """Node ids that gossip considers dead or left (the ingress and VIP backends leave them out
        unless held: ``member/held.py``)."""
        return set() if self.gossip is None else self.gossip.gone_names()


MemberAsk = Callable[[str], Awaitable[dict[str, Any] | None]]
"""Ask the member at a host (its join port) how it runs and what it records; None if it does not answer."""


@dataclass(frozen=True)
class MemberContext:
    """Everything a member service or leader loop may use (see the module docstring)."""

    store: ClusterStore
    voter_control: VoterControl
    local: LocalNode
    board: LocalBoard
    clock: Clock
    commit_timeout_s: float
    ask_member: MemberAsk
    metrics: Metrics = field(default_factory=Metrics)  # the daemon's registry (a fresh one in tests)

    async def write(self, command: bytes) -> Any:
        """Commit ``command`` through the store (forwarded to the leader), within the commit timeout."""
        return await self.store.write(command, timeout_s=self.commit_timeout_s)

    def state_changes(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Any]]:
        """A channel with one item per committed change."""
        return self.store.subscribe()
