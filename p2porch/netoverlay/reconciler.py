"""Keeps the kernel, the Docker network and the firewall in line with the live peer set (trio shell).

Owns the reconcile loop of one node: after a burst of change notifications (``Debounce``: once they
pause for ``CHANGE_QUIET_S``, at most ``CHANGE_MAX_DELAY_S`` after the first) it plans from the peers
and, when they differ from the last pass's, diffs the plan against the device as the last pass left it
and applies only the difference (a change that moves no peer, e.g. a task's state, costs nothing; one
that moves peers' routes, neighbours or FDB entries reads no kernel state; a link or address change
reads the device first and after, only the link after creating it); every ``resync_interval_s`` it
reads and diffs whatever the peers and also re-checks the Docker network (once wanted: ``bridge.py``, made
on its first container) and iptables rules, so anything deleted by hand comes back (and a failed pass is
retried as a full one). All blocking calls
(pyroute2, docker SDK, iptables) run in worker threads. It never decides who is alive or which subnet a
node leases: the caller passes ``get_peers`` (the daemon adapts Raft leases + gossip).
Cancelling the loop leaves the kernel state in place (a restarted daemon adopts it); only ``teardown``
removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..buckets import RECONCILE_BUCKETS, BucketCounts
from ..debounce import Debounce
from ..errors import OverlayError
from .bridge import LazyBridge
from .diff import (
    CreateLink,
    DeleteLink,
    KernelState,
    Operation,
    created_state,
    describe,
    diff_overlay,
    diff_peers,
    entries_applied,
    own_copy,
    patch_entries,
    programmed_peers,
)
from .dockernet import DockerNetwork
from .driver import NetlinkDriver
from .firewall import Firewall
from .iptables_listing import Listing
from .plan import (
    VXLAN_ALLOW_SET,
    VXLAN_FILTER_CHAIN,
    LocalNode,
    OverlayPeer,
    OverlaySettings,
    VxlanFilter,
    plan_firewall,
    plan_network,
)
from .plan_patch import KeptPlan, PeerDelta

log = logging.getLogger(__name__)

PeerSource = Callable[[], Iterable[OverlayPeer]]
#: the current inputs of the named nodes (None: not a live peer now), plus any other whose input moved
#: without a committed change (gossip's dead set): O(changed), not O(nodes)
ChangedPeers = Callable[[Iterable[str]], Mapping[str, OverlayPeer | None]]
#: committed changes of these kinds may move a peer (by the node id in their key); a ``reset`` moves any
PEER_CHANGE_KINDS = frozenset({"node", "lease"})
CHANGE_QUIET_S = 0.05  # a pass once the change notifications pause this long ...
CHANGE_MAX_DELAY_S = 0.25  # ... or this long after the first of a burst, whichever comes first


@dataclass
class ReconcileCounters:
    """How often the loop ran and what it changed."""

    passes: int = 0
    unchanged: int = 0  # change notifications that moved no peer (no kernel read)
    incremental: int = 0  # passes that applied only peers' entries, without reading the kernel
    patched: int = 0  # of them, passes that planned the changed peers alone (no plan of every peer)
    seconds: float = 0.0  # summed duration of the passes
    durations: BucketCounts = field(default_factory=lambda: BucketCounts(RECONCILE_BUCKETS))
    operations: int = 0
    failures: int = 0
    host_changes: int = 0
    last_pass_at: float | None = None
    last_error: str = ""
    recent_ops: list[str] = field(default_factory=list)


class OverlayReconciler:
    """The overlay of one node: plan + apply, host network, status and teardown."""

    def __init__(
        self,
        local: LocalNode,
        driver: NetlinkDriver,
        *,
        settings: OverlaySettings | None = None,
        network: DockerNetwork | None = None,
        firewall: Firewall | None = None,
        blocking: Callable[..., Awaitable[Any]] = trio.to_thread.run_sync,
        bridge_at_start: bool = False,
        on_bridge_made: Callable[[], None] = lambda: None,
    ) -> None:
        self.local = local
        self._blocking = blocking  # runs the driver's, network's and firewall's blocking calls
        self.driver = driver
        self.settings = settings or OverlaySettings()
        self.network = network
        #: the Docker network, made on first need (``ensure_bridge``) or, with ``bridge_at_start``, at once
        self.bridge = (
            None if network is None else LazyBridge(network, blocking=blocking, wanted=bridge_at_start)
        )
        self.firewall = firewall
        #: called when a start, the warm-up or a full pass's check made the network: dockerd put its
        #: FORWARD accepts for the new bridge on top (the daemon wakes the policy and traffic loops)
        self._on_bridge_made = on_bridge_made
        self.counters = ReconcileCounters()
        self._underlay: tuple[str, int] | None = None
        self._kept: KeptPlan | None = None  # the last pass's plan with its inputs (plan_patch.py)
        self._allow_written = False  # the allow-list set holds the kept plan's sources (trusted)
        self._observed = KernelState()  # the device as the last pass left it: our own copy, patched
        self._moved: set[str] = set()  # node ids named by committed changes since the last pass
        self._moved_all = False  # a change that may move any peer (a reset, or an item of no known kind)
        self._wake = trio.Event()
        self._changes = Debounce(CHANGE_QUIET_S, CHANGE_MAX_DELAY_S)
        self._now = False  # a pass was asked for now (``notify``)
        self._full_now = False  # a full pass, host checks included, was asked for now (``resync``)
        self._bridge_error = ""  # the last host check of the Docker network failed so (the engine down)

    # ----- pieces
    async def underlay(self) -> tuple[str, int]:
        """(device, MTU) of the underlay, looked up once."""
        if self._underlay is None:
            self._underlay = await self._blocking(
                self.driver.underlay, self.local.underlay_addr, self.local.underlay_dev
            )
        return self._underlay

    async def reconcile(self, peers: Iterable[OverlayPeer]) -> list[Operation]:
        """One pass over the kernel: read, plan, diff, apply; returns the operations applied."""
        started = trio.current_time()
        self._moved, self._moved_all = set(), False  # this pass plans every peer
        dev, _ = await self.underlay()
        known = self._written_filter()
        kept = KeptPlan(self.local, self.settings, dev, peers)
        plan = kept.plan()
        for node_id, reason in plan.skipped:
            log.debug("overlay: peer %s skipped: %s", node_id, reason)
        observed = await self._blocking(self.driver.read, self.settings.device)
        ops = diff_overlay(observed, plan)
        if ops:
            created = await self._applied(ops)
            observed = await self._read_after(ops, created)
        self._kept, self._observed = kept, own_copy(observed)
        await self._write_allow_list(known)
        self._count_pass(started, ops)
        return ops

    async def _read_after(self, ops: list[Operation], created: bool) -> KernelState:
        """The device after ``ops``: when they created it (a joiner's first pass; ``created``: the kernel
        said so, not EEXIST), its link read back and its entries the ones just added (issue 19: the whole
        read was ~6 ms of pyroute2 per joiner); else, or when the link is not as created, read whole. A
        device that appeared between the read and the create holds what it holds: read whole."""
        device = self.settings.device
        if created and ops and isinstance(ops[0], CreateLink | DeleteLink):
            link = await self._blocking(self.driver.read_link, device)
            state = created_state(link, ops) if link is not None and link.up else None
            if state is not None:
                return state
        return await self._blocking(self.driver.read, device)

    async def _applied(self, ops: list[Operation]) -> bool:
        """Apply ``ops``; True when they created the device (``NetlinkDriver.apply``)."""
        if not ops:
            return False
        created = bool(await self._blocking(self.driver.apply, ops))
        lines = [describe(op) for op in ops]
        for line in lines:
            log.info("overlay: %s", line)
        self.counters.recent_ops = (self.counters.recent_ops + lines)[-50:]
        return created

    def _count_pass(self, started: float, ops: list[Operation]) -> None:
        self.counters.passes += 1
        took = trio.current_time() - started
        self.counters.seconds += took
        self.counters.durations.observe(took)
        self.counters.operations += len(ops)
        self.counters.last_pass_at = trio.current_time()

    async def reconcile_if_moved(self, peers: Iterable[OverlayPeer]) -> list[Operation] | None:
        """A pass for whatever differs between ``peers`` and the last pass's (None: nothing moved;
        nothing was read). Compares every peer, then plans only the changed ones."""
        wanted = list(peers)
        if self._kept is None:
            return await self.reconcile(wanted)
        return await self.reconcile_changes(self._kept.changes_to(wanted), lambda: wanted)

    async def reconcile_changes(
        self, changed: Mapping[str, OverlayPeer | None], get_peers: PeerSource
    ) -> list[Operation] | None:
        """A pass for the peers in ``changed`` (node id -> current input, None: not a live peer now) in
        O(len(changed)): the kept plan plans them alone (``KeptPlan.delta``), their entries are diffed
        against the device as the last pass left it and applied without reading the kernel, and the
        allow-list gets their addresses' difference. When a changed peer conflicts with another the
        whole set (``get_peers``) is planned and diffed instead. None: nothing moved."""
        self._moved, self._moved_all = set(), False
        kept = self._kept
        if kept is None:
            return await self.reconcile(get_peers())
        delta = kept.delta(changed)
        if delta is None:
            return await self._replan(list(get_peers()))
        if not delta or delta.moves_nothing:
            kept.apply(delta)  # inputs (and skip reasons) only
            self.counters.unchanged += 1
            return None
        started = trio.current_time()
        ops = diff_peers(self.settings.device, self._observed, delta.removed, delta.added)
        await self._applied(ops)  # an error: the loop's retry is a full pass (reads the kernel)
        if not patch_entries(self._observed, ops):  # not our own copy (a teardown reset it): make one
            self._observed = own_copy(self._observed)
            patch_entries(self._observed, ops)
        kept.apply(delta)
        await self._patch_allow_list(delta)
        self.counters.incremental += 1
        self.counters.patched += 1
        self._count_pass(started, ops)
        return ops

    async def _replan(self, peers: list[OverlayPeer]) -> list[Operation] | None:
        """Every peer planned, the plan diffed against the device as the last pass left it (read then,
        plus what it applied): when only peers' routes, neighbours and FDB entries differ they are
        applied without reading the kernel; the resync reads it all."""
        dev, _ = await self.underlay()
        kept = KeptPlan(self.local, self.settings, dev, peers)
        plan = kept.plan()
        previous = self._kept.plan() if self._kept is not None else None
        if plan == previous:
            self._kept = kept
            self.counters.unchanged += 1
            return None
        ops = diff_overlay(self._observed, plan)
        expected = entries_applied(self._observed, ops)
        if previous is None or expected is None:
            return await self.reconcile(peers)
        started = trio.current_time()
        known = self._written_filter()
        await self._applied(ops)  # an error: the loop's retry is a full pass (reads the kernel)
        self._kept, self._observed = kept, own_copy(expected)
        await self._write_allow_list(known)
        self.counters.incremental += 1
        self._count_pass(started, ops)
        return ops

    async def ensure_bridge(self, *, warm: bool = False) -> bool:
        """The node's Docker network, made if no check found it yet (a container start on it needs it;
        ``warm``: the warm-up, ``LazyBridge.warm``); at once, without an engine call, once one did. A
        network it created or recreated has the iptables rules checked against dockerd's chains at once
        (a full pass: ``resync``) and ``on_bridge_made`` called (the other owners of rules in those
        chains); True then."""
        if self.bridge is None or self.bridge.up:
            return False
        _, mtu = await self.underlay()
        spec = plan_network(self.local, self.settings, mtu)
        changed = await (self.bridge.warm(spec) if warm else self.bridge.ensure(spec))
        self._bridge_error = ""
        if changed:
            log.info("overlay: %s%s", changed, " (warm-up)" if warm else "")
            self.counters.host_changes += 1
            self.resync()
            self._on_bridge_made()
        return bool(changed)

    async def ensure_host(self) -> list[str]:
        """Forwarding sysctl, the Docker bridge network (when wanted: ``LazyBridge.check``) and the
        iptables rules; returns what changed."""
        dev, mtu = await self.underlay()
        changes: list[str] = []
        if self.bridge is not None:
            changes += await self._check_bridge(mtu)
        if self.firewall is not None:
            firewall = self.firewall
            await self._blocking(firewall.enable_forwarding)
            # one listing per table for the whole check (issue 19: a process per rule before)
            listings = {t: await self._blocking(firewall.listing, t) for t in ("filter", "nat")}
            vxlan = await self._write_allow_list(None, listing=listings["filter"])
            if self._allow_written:  # the chain exists now, whatever the listing says
                listings["filter"] = listings["filter"].with_chain(VXLAN_FILTER_CHAIN)
            changes += vxlan
            rules = plan_firewall(self.local, self.settings, dev, firewall.forward_chain(listings["filter"]))
            changes += await self._blocking(firewall.ensure, rules, listings)
        for line in changes:
            log.info("overlay: %s", line)
        self.counters.host_changes += len(changes)
        return changes

    async def _check_bridge(self, mtu: int) -> list[str]:
        """The host check of the Docker network (``LazyBridge.check``). An engine that does not answer
        fails neither the pass nor the checks after it (the allow-list, the iptables rules): the error
        stays in ``last_error``, logged once per outage; the network is left wanted and not up, made by
        the full pass of the engine answering again or the next resync (not the loop's 1 s retry)."""
        assert self.bridge is not None
        try:
            changed = await self.bridge.check(plan_network(self.local, self.settings, mtu))
        except OverlayError as exc:
            if not self._bridge_error:
                log.warning("overlay: the Docker network is not made, next full pass tries again: %s", exc)
            self._bridge_error = self.counters.last_error = str(exc)
            return []
        self._bridge_error = ""
        if not changed:
            return []
        self._on_bridge_made()  # made (after a failed warm-up, deleted by hand, a lease move): as a start's
        return [changed]

    def _written_filter(self) -> VxlanFilter | None:
        """The allow-list as written last (trusted), or None when unknown (never written, or a write
        failed: the next write reads the set and the chain)."""
        if not self._allow_written or self._kept is None:
            return None
        return VxlanFilter(self.settings.vxlan_port, self._kept.sources())

    async def _write_allow_list(
        self, known: VxlanFilter | None, *, listing: Listing | None = None
    ) -> list[str]:
        """Make the VXLAN allow-list the kept plan's when it differs from ``known`` (the list written last;
        None: read the set and the chain and repair them, as the first pass and every resync do)."""
        if self.firewall is None or self._kept is None:
            return []
        wanted = VxlanFilter(self.settings.vxlan_port, self._kept.sources())
        if wanted == known:
            return []
        # a list other than the one written last: only the difference goes to the set, over netlink,
        # nothing read; without ``known`` the set and the chain are read and hand edits repaired
        self._allow_written = False  # unknown until the write returns: a failure is read again
        diff, rewritten = await self._blocking(
            partial(self.firewall.vxlan_filter, wanted, known=known, listing=listing)
        )
        self._allow_written = True
        lines = [f"vxlan allow-list {wanted.set_name}: {diff.describe()}"] if diff else []
        if rewritten:
            lines.append(f"vxlan allow-list chain {wanted.chain} written (matches set {wanted.set_name})")
        self._log_allow_list(lines)
        return lines

    async def _patch_allow_list(self, delta: PeerDelta) -> None:
        """The allow-list's difference for changed peers (one netlink request, whatever the peer count)."""
        if self.firewall is None or not delta.allow:
            return
        if not self._allow_written:
            await self._write_allow_list(None)
            return
        self._allow_written = False
        await self._blocking(self.firewall.vxlan_members, delta.allow)
        self._allow_written = True
        self._log_allow_list([f"vxlan allow-list {VXLAN_ALLOW_SET}: {delta.allow.describe()}"])

    def _log_allow_list(self, lines: list[str]) -> None:
        for line in lines:
            log.info("overlay: %s", line)
        self.counters.recent_ops = (self.counters.recent_ops + lines)[-50:]

    def notify(self) -> None:
        """Ask the running loop for a pass now (membership or lease changed)."""
        self._now = True
        self._wake.set()

    def resync(self) -> None:
        """Ask the running loop for a full pass now, the Docker network and iptables checks included (the
        node's Docker engine answers again: a restarted dockerd rewrote its own chains)."""
        self._full_now = True
        self._wake.set()

    def changed(self, change: Any = None) -> None:
        """A committed change came: a pass once the burst it belongs to pauses (``Debounce``). A
        ``raft.fsm.Change`` of a node or lease names the peer it may move; another kind moves none; a
        reset or anything else (None) may move any."""
        kind = getattr(change, "kind", None)
        if kind in PEER_CHANGE_KINDS:
            self._moved.add(change.key)
        elif kind is None or kind == "reset":
            self._moved_all = True
        self._changes.change(trio.current_time())
        self._wake.set()

    # ----- loop
    async def run(
        self,
        get_peers: PeerSource,
        changes: trio.abc.ReceiveChannel[Any] | None = None,
        *,
        resync_interval_s: float = 30.0,
        retry_interval_s: float = 1.0,
        changed_peers: ChangedPeers | None = None,
        task_status: trio.TaskStatus[OverlayReconciler] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """First full pass (errors raise), then: a pass per burst of changes, a full pass every resync
        interval. With ``changed_peers`` a pass looks up and plans only the peers the changes named;
        without it, it compares every peer from ``get_peers``."""
        await self.reconcile(get_peers())
        await self.ensure_host()
        task_status.started(self)
        async with trio.open_nursery() as nursery:
            if changes is not None:
                nursery.start_soon(self._watch, changes)
            next_full = trio.current_time() + resync_interval_s
            failed, retry_at = False, 0.0
            while True:
                deadline = retry_at if failed else next_full
                due = self._changes.due_at()
                with trio.move_on_at(deadline if due is None or failed else min(deadline, due)):
                    await self._wake.wait()
                self._wake = trio.Event()
                now = trio.current_time()
                if failed and now < retry_at:
                    continue  # changes and asks wait for the retry, a full pass that covers them
                full, self._full_now = now >= next_full or self._full_now, False
                asked, self._now = self._now, False
                if not (self._changes.take(now) or asked or full or failed):
                    continue  # a change of a burst that has not paused yet
                try:
                    if full or failed or asked:
                        await self.reconcile(get_peers())
                    elif changed_peers is None or self._moved_all:
                        await self.reconcile_if_moved(get_peers())
                    else:
                        await self.reconcile_changes(changed_peers(self._moved), get_peers)
                    if full:
                        await self.ensure_host()
                        next_full = trio.current_time() + resync_interval_s
                    failed = False
                    self.counters.last_error = self._bridge_error  # a network not made is not a failure
                except OverlayError as exc:
                    # the retry comes after the interval, whatever wakes the loop: a failed full pass
                    # (the engine down) had retried at once, thousands of times a second
                    failed, retry_at = True, trio.current_time() + retry_interval_s
                    if full:
                        next_full = retry_at  # the retry is the full pass, host checks included
                    self.counters.failures += 1
                    self.counters.last_error = str(exc)
                    log.warning("overlay: reconcile failed, retrying in %.1f s: %s", retry_interval_s, exc)

    async def _watch(self, changes: trio.abc.ReceiveChannel[Any]) -> None:
        async for change in changes:
            self.changed(change)

    # ----- leave
    async def teardown(self) -> dict[str, Any]:
        """Remove the device (with its routes, neighbours, FDB), the Docker network and our iptables rules."""
        removed_link = await self._blocking(self.driver.delete_link, self.settings.device)
        removed_network = False
        if self.bridge is not None:
            removed_network = await self.bridge.remove(self.settings.network_name)
        removed_rules = 0
        if self.firewall is not None:
            removed_rules = await self._blocking(self.firewall.remove)
        self._observed = KernelState()
        self._allow_written = False
        log.info(
            "overlay: torn down (link %s, network %s, %d rules)", removed_link, removed_network, removed_rules
        )
        return {"link": removed_link, "network": removed_network, "rules": removed_rules}

    def close(self) -> None:
        """Release the driver's and the firewall's netlink sockets (kernel state stays)."""
        try:
            self.driver.close()
        finally:
            if self.firewall is not None:
                self.firewall.close()

    # ----- status
    def status(self) -> dict[str, Any]:
        """Lease, VTEP and programmed peers, for `p2porch network inspect --overlay` (JSON-able data)."""
        plan, observed = (self._kept.plan() if self._kept else None), self._observed
        link = observed.link
        programmed = set(programmed_peers(observed, plan)) if plan else set()
        dev_mtu = self._underlay
        return {
            "node_id": self.local.node_id,
            "lease": self.local.subnet,
            "cluster_cidr": self.settings.cluster_cidr,
            "vtep": {
                "device": self.settings.device,
                "present": link is not None,
                "mac": link.mac if link else (plan.link.mac if plan else None),
                "address": plan.address if plan else None,
                "local": self.local.underlay_addr,
                "underlay_dev": dev_mtu[0] if dev_mtu else self.local.underlay_dev,
                "vni": self.settings.vni,
                "port": self.settings.vxlan_port,
                "mtu": link.mtu if link else None,
            },
            "network": {
                "name": self.settings.network_name,
                "bridge": self.settings.bridge,
                "up": self.bridge is not None and self.bridge.up,  # made on the node's first container
                "gateway": plan_network(self.local, self.settings, dev_mtu[1]).gateway if dev_mtu else None,
            },
            "peers": [
                {
                    "node_id": p.node_id,
                    "subnet": p.subnet,
                    "underlay_addr": p.underlay_addr,
                    "vtep_mac": p.mac,
                    "programmed": p.node_id in programmed,
                }
                for p in (plan.peers if plan else ())
            ],
            "skipped": [{"node_id": n, "reason": r} for n, r in (plan.skipped if plan else ())],
            "vxlan_allowed_sources": list(written.sources) if (written := self._written_filter()) else None,
            "passes": self.counters.passes,
            "operations": self.counters.operations,
            "failures": self.counters.failures,
            "last_error": self.counters.last_error,
        }


async def run_overlay(
    local: LocalNode,
    get_peers: PeerSource,
    driver: NetlinkDriver,
    *,
    settings: OverlaySettings | None = None,
    network: DockerNetwork | None = None,
    firewall: Firewall | None = None,
    changes: trio.abc.ReceiveChannel[Any] | None = None,
    changed_peers: ChangedPeers | None = None,
    resync_interval_s: float = 30.0,
    bridge_at_start: bool = False,
    on_bridge_made: Callable[[], None] = lambda: None,
    task_status: trio.TaskStatus[OverlayReconciler] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the overlay of ``local`` until cancelled; ``nursery.start`` returns the OverlayReconciler."""
    reconciler = OverlayReconciler(
        local,
        driver,
        settings=settings,
        network=network,
        firewall=firewall,
        bridge_at_start=bridge_at_start,
        on_bridge_made=on_bridge_made,
    )
    try:
        await reconciler.run(
            get_peers,
            changes,
            resync_interval_s=resync_interval_s,
            changed_peers=changed_peers,
            task_status=task_status,
        )
    finally:
        reconciler.close()
