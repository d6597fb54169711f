"""This node's membership in a cluster: init, join, leave, recover and role switches (shell).

Owns ``cluster.json`` (:mod:`.localstate`), the Raft data directory and the order of the lifecycle
steps, one at a time. The member run itself (store, join port, member services, role watcher) is
:class:`~p2porch.membership.runtime.MemberRuntime`; admitting a joiner is :mod:`.admission`. It never
applies state itself: every change goes through the Raft store as a command.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from ..clock import SYSTEM_CLOCK, Clock
from ..config import Config
from ..context import LocalBoard
from ..errors import AuthError, ConfigError, ConflictError, P2POrchError, ProposalTimeout, RaftError
from ..member.gossip import announce_leave
from ..metrics import Metrics
from ..model import Node, NodeRole, NodeStatus
from ..raft import commands as C
from ..raft.frames import CLUSTER_KEY_BYTES, forget_cluster_key, remember_cluster_key
from ..raft.state import ClusterState
from ..raft.store import RaftStore
from . import join_checks, join_identity, key_rotation, localstate, removal, voter_role
from .addresses import guessed_nat_warning
from .admission import Admissions, local_addresses, node_request
from .handshake import SessionKey
from .join_service import JoinService, MemberHandler, StreamHandler, request_join
from .keys import keys_from_text, new_cluster_keys, new_node_key, unb64
from .localstate import LocalClusterState
from .peer import split_peer
from .recovery import recover_refusal
from .runtime import MemberRuntime, MemberService, no_store_reason
from .token import JoinToken, new_token, parse_given_token, parse_token

log = logging.getLogger(__name__)

__all__ = ["ClusterManager"]

RAFT_DIR = "raft"
ADMISSION_COMMIT_TIMEOUT_S = 10.0  # per write of an admission (the join port gives a join 30 s in all)
GREET_TIMEOUT_S = 0.5  # the joiner's first gossip with the member that admitted it
JOIN_REPLY_TIMEOUT_S = 40.0  # the joiner waits longer than the member works on its request


class ClusterManager:
    """This node's membership lifecycle: init, join, leave, recover, role switches, the join token.

    ``member_services`` are started, all at once, every time this node becomes a member (after init,
    join or a restart) and stopped before it leaves; each is ``fn(ctx, task_status=...)`` with a
    :class:`~p2porch.context.MemberContext`. ``join_streams`` are the streams the join port serves
    to peers (e.g. task logs), ``join_ops`` its other member requests (e.g. task usage). Never holds
    placement or API logic."""

    def __init__(
        self,
        config: Config,
        node_name: str,
        member_services: list[tuple[str, MemberService]] | None = None,
        *,
        join_streams: dict[str, StreamHandler] | None = None,
        join_ops: dict[str, MemberHandler] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self.node_name = node_name
        self.clock = clock
        self.data_dir = config.node.data_dir
        self.raft_dir = Path(self.data_dir) / RAFT_DIR
        self.local: LocalClusterState | None = localstate.load(self.data_dir)
        self.join_service = JoinService(
            self.current_token,
            self._handle_join,
            streams=dict(join_streams or {}),
            member_ops={
                **(join_ops or {}),
                "membership": self._answer_membership,
                key_rotation.KEY_OP: self._answer_keys,
            },
            get_member_key=self._member_key,
            old_epoch_ops=frozenset({key_rotation.KEY_OP}),
        )
        self.runtime = MemberRuntime(
            config,
            self.raft_dir,
            self.join_service,
            list(member_services or []),
            clock,
            save_voters=self._save_voters,
            switch_role=self.switch_role_soon,
            removed=self.removed_soon,
            metrics=self.metrics,
        )
        self._nursery: trio.Nursery | None = None
        self._lock = trio.Lock()  # one init/join/leave/recover/role switch (or admission plan) at a time
        self._admissions = Admissions()  # the admissions of joiners whose writes are in flight

    @property
    def store(self) -> RaftStore | None:
        """The Raft store while this node is a member."""
        return self.runtime.store

    @property
    def board(self) -> LocalBoard:
        """What the member services of the current run publish (health, overlay, gossip, executor)."""
        return self.runtime.board

    # ----- lifecycle
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.runtime.attach(nursery)
            if self.local is not None:
                self.local = self._with_node_key(self.local)
                self.local = await self._role_on_return(self.local)
                log.info(
                    "rejoining cluster %s as %s (%s)",
                    self.local.cluster_id,
                    self.local.node_name,
                    self.local.role,
                )
                await self.runtime.start(self.local)
            task_status.started()
            await trio.sleep_forever()

    async def _role_on_return(self, local: LocalClusterState) -> LocalClusterState:
        """A restarting node asks its peers how the cluster records it now (see voter_role.py)."""
        checked = await voter_role.role_on_return(local, self.join_port)
        if checked != local:
            self._set_aside_old_generation(local, checked)
            localstate.save(self.data_dir, checked)
        return checked

    def _set_aside_old_generation(self, old: LocalClusterState, new: LocalClusterState) -> None:
        """A forced recovery started a new Raft log: keep this node's old one aside, start empty."""
        if new.generation != old.generation and self.raft_dir.exists():
            aside = self.raft_dir.with_name(f"{RAFT_DIR}.generation-{old.generation}-{int(self.clock.now())}")
            self.raft_dir.rename(aside)
            log.warning(
                "the cluster was recovered (generation %d): old Raft log kept in %s", new.generation, aside
            )

    async def _answer_membership(self, request: dict[str, Any]) -> dict[str, Any]:
        return voter_role.membership_answer(self.require_store(), self.local, request)

    async def _answer_keys(self, request: dict[str, Any]) -> dict[str, Any]:
        state, node_id = self.require_store().snapshot(), str(request.get("node_id", ""))
        return {**key_rotation.key_answer(self, request), **removal.member_fields(state, node_id)}

    def _member_key(self, epoch: int) -> tuple[SessionKey, bool] | None:
        """The cluster keys a member's hello names (current epoch, or a kept older one)."""
        local = self.local
        keys = local.keys_of_epoch(epoch) if local is not None else None
        return None if keys is None or local is None else (keys, epoch == local.key_epoch)

    def _with_node_key(self, local: LocalClusterState) -> LocalClusterState:
        """A node from before key rotations has no node key yet: make one (published once it runs)."""
        if local.node_key:
            return local
        local = replace(local, node_key=new_node_key())
        localstate.save(self.data_dir, local)
        return local

    def _save_voters(self, local: LocalClusterState) -> None:
        """The recorded voters changed (the role watcher saw it): remember them for the next start."""
        localstate.save(self.data_dir, local)
        self.local = local

    def switch_role_soon(self, expected: LocalClusterState, local: LocalClusterState) -> None:
        """Restart the member services with the store in ``local.role`` and ``local.generation`` (called
        from inside them); skipped if this node's state is no longer ``expected`` by then (a recover,
        leave or another switch came first)."""
        assert self._nursery is not None
        self._nursery.start_soon(self._switch_role, expected, local)

    def removed_soon(self, expected: LocalClusterState, why: str) -> None:
        """The cluster removed this node (``why``: who says so): leave it, as Swarm's removed node does."""
        assert self._nursery is not None
        self._nursery.start_soon(self._leave_removed, expected, why)

    async def _leave_removed(self, expected: LocalClusterState, why: str) -> None:
        async with self._lock:
            if self.local is not expected:
                return
            log.error("%s (%s): stopping its tasks and leaving", removal.REMOVED_MESSAGE, why)
            await removal.stop_node_work(self.board)
            await self._abandon_membership()
            removal.save_marker(self.data_dir, expected, why, self.clock.now())

    async def _switch_role(self, expected: LocalClusterState, local: LocalClusterState) -> None:
        async with self._lock:
            if self.local is not expected:
                return
            await self.runtime.stop()
            if local.key_epoch != expected.key_epoch:
                self.runtime.key_switched_at = self.clock.monotonic()
            try:
                self._set_aside_old_generation(expected, local)
                localstate.save(self.data_dir, local)
                self.local = local
                await self.runtime.start(local, joining=voter_role.holds_elections(expected, local))
                log.info("running as %s now (generation %d)", local.role, local.generation)
            except Exception as exc:  # never take the daemon down: go back to how it ran before
                log.error("restarting as %s failed (%r): running as %s again", local.role, exc, expected.role)
                localstate.save(self.data_dir, expected)
                self.local = expected
                await self.runtime.start(expected)

    async def recover(self, body: dict[str, Any]) -> dict[str, Any]:
        """``recover --force-new-cluster``: after quorum loss, restart the cluster from this node's state
        as its only voter, in a new Raft generation (see docs/failure-model.md for the risks)."""
        if not body.get("force_new_cluster"):
            raise ConfigError(
                "recover discards the Raft log of every other node and keeps only this node's state: "
                "confirm with --force-new-cluster",
                field="--force-new-cluster",
            )
        async with self._lock:
            if self.local is None:
                raise ConflictError("this node is not part of a cluster", field="cluster")
            store = self.require_store()
            status, state = store.status(), store.snapshot()
            if status.has_quorum:
                raise ConflictError(
                    f"the cluster has a quorum (leader {status.leader}): recovering would throw its "
                    "log away; nothing was changed",
                    field="--force-new-cluster",
                )
            if not state.initialized:
                raise ConflictError("this node holds no cluster state to recover from", field="cluster")
            lost = await self._lost_voters(self.local, state)  # or refused: voters answer
            old, now = self.local, self.clock.now()
            new = replace(old, role="voter", voters=(old.raft_addr,), generation=state.generation + 1)
            restored = voter_role.recovered_state(state, old.node_id, lost, now)  # lost voters: down

            async def restore(fresh: RaftStore) -> None:
                await fresh.wait_leader(timeout_s=15)
                restore_command = C.RestoreState(at=now, state=restored).encode()
                await fresh.write(restore_command, timeout_s=self.config.raft.commit_timeout_s)
                localstate.save(self.data_dir, new)  # right after the new log holds the state

            await self.runtime.stop()
            backup = self.raft_dir.with_name(f"{RAFT_DIR}.before-recovery-{int(now)}")
            try:
                self.raft_dir.rename(backup)
                self.local = new
                await self.runtime.start(new, prepare=restore)
            except BaseException:
                with trio.CancelScope(shield=True):  # put everything back as it was
                    await self.runtime.stop()
                    if backup.exists():
                        shutil.rmtree(self.raft_dir, ignore_errors=True)
                        backup.rename(self.raft_dir)
                    localstate.save(self.data_dir, old)
                    self.local = old
                    await self.runtime.start(old)
                raise
            log.warning(
                "recovered cluster %s from this node's state as its only voter (generation %d); "
                "old Raft log kept in %s",
                new.cluster_id,
                new.generation,
                backup,
            )
            return {
                "cluster_id": new.cluster_id,
                "generation": new.generation,
                "state_version": state.version,
                "nodes": len(state.nodes),
                "old_raft_log": str(backup),
            }

    async def _lost_voters(self, local: LocalClusterState, state: ClusterState) -> frozenset[str]:
        """Ask the recorded voters first (this node's view cannot tell a partition from quorum loss):
        refuse if they answer as ``recover_refusal`` says, else the Raft addresses of those that did not."""
        voters = tuple(sorted(set(voter_role.recorded_voters(state)) | set(local.voters)))
        answers: dict[str, dict[str, Any] | None] = {}
        async with trio.open_nursery() as nursery:
            for voter in voters:
                if voter != local.raft_addr:

                    async def ask(voter: str = voter) -> None:
                        host = voter.rpartition(":")[0]
                        answers[voter] = await voter_role.ask_node(local, host, self.join_port, local.node_id)

                    nursery.start_soon(ask)
        reason = recover_refusal(local.raft_addr, voters, state.generation, answers)
        if reason is not None:
            raise ConflictError(
                f"{reason}; recovering would throw their log away: nothing was changed",
                field="--force-new-cluster",
            )
        return frozenset(voter for voter, answer in answers.items() if answer is None)

    async def rotate_keys(self) -> dict[str, Any]:
        """``cluster rotate-keys``: a new cluster key epoch for every current member."""
        return await key_rotation.rotate_keys(self)

    # ----- helpers
    @property
    def join_port(self) -> int:
        """The join port peers listen on (this node's setting; 0 = closed here, peers use the default)."""
        return self.runtime.join_port

    def current_token(self) -> JoinToken | None:
        """The join token (a cluster made before keys were separated: its old cluster token)."""
        if self.local is None or self.store is None:
            return None
        join_token = self.store.snapshot().join_token or self.local.token
        return parse_token(join_token) if join_token else None

    async def rotate_token(self) -> JoinToken:
        """A new join token: the old one admits nobody any more; members keep their cluster keys."""
        if self.local is None:
            raise ConflictError("this node is not part of a cluster", field="cluster")
        token = new_token(self.local.cluster_id)
        await self.write(C.SetJoinToken(at=self.clock.now(), join_token=str(token)).encode())
        return token

    def require_store(self) -> RaftStore:
        store = self.store
        if store is None or self.local is None:
            why = removal.REMOVED_MESSAGE if removal.load_marker(self.data_dir) else ""
            why = why or no_store_reason(self.local is not None)
            raise ConflictError(why, field="cluster")
        return store

    def snapshot(self) -> ClusterState:
        return self.require_store().snapshot()

    async def write(self, command: bytes) -> Any:
        return await self.require_store().write(command, timeout_s=self.config.raft.commit_timeout_s)

    def _refuse_if_member(self, joining: str | None = None) -> None:
        """``joining``: the join token's cluster (the same join run again is told it has nothing to do)."""
        if self.local is not None:
            again = joining == self.local.cluster_id
            raise ConflictError(
                f"this node is already part of cluster {self.local.cluster_id}"
                + (" (it joined): nothing to do" if again else "; run `p2porch leave` first"),
                field="cluster",
            )
        if self.raft_dir.exists() and any(self.raft_dir.iterdir()):
            raise ConflictError(
                f"data dir {self.data_dir} already holds Raft state ({self.raft_dir}); "
                "nothing was changed. Use another --data-dir, or remove that directory "
                "to discard the old cluster's state",
                field="node.data_dir",
            )

    # ----- init / join / leave
    async def init(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            self._refuse_if_member()
            token = parse_given_token(body["token"]) if body.get("token") else new_token()
            keys = new_cluster_keys(token.cluster_id)  # random: the join token only admits joins
            node_id, node_key = secrets.token_hex(8), new_node_key()
            addrs = local_addresses(self.config, body)
            me = node_request(self.config, self.node_name, body, node_id, node_key, addrs)
            raft_addr = f"{me['addr']}:{me['raft_port']}"
            local = LocalClusterState(
                cluster_id=token.cluster_id,
                node_id=node_id,
                node_name=me["name"],
                role="voter",
                raft_addr=raft_addr,
                listen_addr=addrs.listen_addr,
                gossip_port=addrs.gossip_port,
                voters=(raft_addr,),
                key_epoch=keys.epoch,
                cluster_key=keys.to_text(),
                node_key=node_key,
            )
            self.local = local
            try:
                await self.runtime.start(local)
                store = self.require_store()
                await store.wait_leader(timeout_s=15)
                now = self.clock.now()
                init = C.InitCluster(
                    at=now,
                    cluster_id=token.cluster_id,
                    domain=join_checks.domain(body.get("domain") or self.config.dns.domain),
                    cluster_cidr=join_checks.cluster_cidr(
                        body.get("cluster_cidr") or self.config.overlay.cluster_cidr
                    ),
                    subnet_prefix_len=self.config.overlay.subnet_prefixlen,
                )
                me_voter = C.AddNode(at=now, node=Node(**{**me, "role": NodeRole.VOTER}))
                first = [init, C.SetJoinToken(at=now, join_token=str(token)), me_voter]
                first.append(C.LeaseSubnet(at=now, node_id=node_id))  # one Raft entry, in this order
                await store.write_together([c.encode() for c in first], self.config.raft.commit_timeout_s)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._abandon_membership()
                raise
            localstate.save(self.data_dir, local)
            removal.clear_marker(self.data_dir)
            log.info("initialised cluster %s", token.cluster_id)
            warning = guessed_nat_warning(
                addrs, bool(body.get("listen_addr") or self.config.node.listen_addr)
            )
            return {
                "cluster_id": token.cluster_id,
                "node_id": node_id,
                "token": str(token),
                "join_addr": f"{me['addr']}:{me['join_port']}",
                **({"warning": warning} if warning else {}),
            }

    async def join(self, body: dict[str, Any]) -> dict[str, Any]:
        received = self.clock.monotonic()
        async with self._lock:
            peer = str(body.get("peer") or "")
            if not peer:
                raise ConfigError("join needs PEER[:PORT]", field="PEER")
            host, port = split_peer(peer, self.join_port)
            token = parse_given_token(str(body.get("token") or ""))
            self._discard_unfinished_join(token.cluster_id)
            self._refuse_if_member(joining=token.cluster_id)
            # the same id and key on every attempt: a retry is recognised as this node (admission_plan.py)
            node_id, node_key = join_identity.identity_for(self.data_dir, token.cluster_id)
            addrs = local_addresses(self.config, body)
            me = node_request(self.config, self.node_name, body, node_id, node_key, addrs)
            if body.get("behind_nat"):
                me["behind_nat"] = True
            started = self.clock.monotonic()
            reply = await request_join(host, port, token, me, timeout_s=JOIN_REPLY_TIMEOUT_S)
            admitted = self.clock.monotonic()
            try:
                cluster_id = str(reply["cluster_id"])
                keys = keys_from_text(cluster_id, reply["key_epoch"], reply["cluster_key"])
                local = LocalClusterState(
                    cluster_id=cluster_id,
                    node_id=node_id,
                    node_name=me["name"],
                    role=str(reply["role"]),
                    raft_addr=f"{me['addr']}:{me['raft_port']}",
                    listen_addr=addrs.listen_addr,
                    gossip_port=addrs.gossip_port,
                    voters=tuple(str(v) for v in reply["voters"]),
                    generation=int(reply.get("generation", 0)),
                    key_epoch=keys.epoch,
                    cluster_key=keys.to_text(),
                    node_key=node_key,
                )
                raft_password = keys.raft_password(local.generation)
                if reply.get("raft_key"):  # no PBKDF2 for the store's frames (an older member sends none)
                    raft_key = unb64(reply["raft_key"], CLUSTER_KEY_BYTES, "raft_key")
                    remember_cluster_key(raft_password, raft_key)
            except (KeyError, TypeError, ValueError, AuthError) as exc:
                raise AuthError(f"join: malformed reply from {peer}: {exc}") from exc
            self.local = local
            try:
                await self.runtime.start(local, joining=True, greeting=True)
                running = self.clock.monotonic()
                async with trio.open_nursery() as nursery:  # the greeting may speed the record up
                    nursery.start_soon(self._greet, str(reply.get("gossip_seed") or ""))
                    await self._wait_for_self(node_id, timeout_s=30)
            except BaseException:
                forget_cluster_key(raft_password)  # the next attempt derives it (the key may be why)
                with trio.CancelScope(shield=True):  # left in gossip: never added as a voter (AdmittedVoters)
                    await announce_leave(self.board.gossip)
                    await self._abandon_membership()
                raise
            localstate.save(self.data_dir, local)
            join_identity.forget(self.data_dir)
            removal.clear_marker(self.data_dir)
            done = self.clock.monotonic()
            log.info(
                "joined cluster %s as %s in %.3f s (admitted %.3f, member services %.3f, own record %.3f; "
                "before the handshake %.3f)",
                local.cluster_id,
                local.role,
                done - started,
                admitted - started,
                running - admitted,
                done - running,
                started - received,
            )
            return {"cluster_id": local.cluster_id, "node_id": node_id, "role": local.role}

    async def _greet(self, seed: str) -> None:
        """Gossip with the member that admitted this node (``seed``: its gossip address), at once: it sees
        this node alive, so the leader marks it ready (and a voter is added) without waiting for that
        member's next seed round (best effort: the seed rounds cover a failure); then set the board's
        ``greeting``, which the gossip service's own first seeding waits for (issue 19)."""
        board = self.board
        if seed:
            with trio.move_on_after(GREET_TIMEOUT_S):
                while board.gossip is None:
                    await trio.sleep(0.01)
                try:
                    await board.gossip.join([seed])
                except Exception as exc:  # never fail a join for it
                    log.debug("gossip greeting to %s failed: %r", seed, exc)
        if board.greeting is not None:  # (a cancelled join drops the board with it)
            board.greeting.set()

    def _discard_unfinished_join(self, cluster_id: str) -> None:
        """Raft state left by an earlier attempt to join ``cluster_id`` that never completed (the daemon
        died midway: no ``cluster.json``, a pending join identity) goes: nothing can start from it, and
        the same join run again must not be refused for it."""
        if self.local is not None or not join_identity.pending(self.data_dir, cluster_id):
            return
        if self.raft_dir.exists() and any(self.raft_dir.iterdir()):
            log.warning("discarding %s, left by an unfinished join of cluster %s", self.raft_dir, cluster_id)
            shutil.rmtree(self.raft_dir, ignore_errors=True)

    async def _wait_for_self(self, node_id: str, timeout_s: float) -> None:
        """Until this node's own record has replicated here: woken by each applied change, no polling."""
        store = self.require_store()
        with trio.move_on_after(timeout_s):
            async with store.subscribe() as changes:
                while node_id not in store.snapshot().nodes:
                    await changes.receive()
                return
        raise RaftError(
            f"joined, but this node's record did not replicate here within {timeout_s:.0f} s; "
            "run the same join again"
        )

    async def _abandon_membership(self) -> None:
        """Stop member services and discard local cluster state (the cluster forgets us separately)."""
        await self.runtime.stop()
        self.local = None
        localstate.remove(self.data_dir)
        shutil.rmtree(self.raft_dir, ignore_errors=True)

    async def leave(self, body: dict[str, Any]) -> dict[str, Any]:
        """Leave the cluster: stop this node's tasks and overlay, tell the cluster, stop the store.

        The final write marks the node ``left``; the store stops right after it, so this node can never
        campaign once the leader has dropped it from the voters (see ``autopilot.py``).
        """
        force = bool(body.get("force"))
        async with self._lock:
            if self.local is None:
                raise ConflictError("this node is not part of a cluster", field="cluster")
            local = self.local
            others = self._other_members(local)
            if not others and not force:
                raise ConflictError(
                    "this is the last node of the cluster: leaving destroys the cluster and its "
                    "state; use `p2porch leave --force` to do it anyway",
                    field="--force",
                )
            await removal.stop_node_work(self.board)
            if others:
                try:
                    now = self.clock.now()
                    await self.write(C.ReleaseSubnet(at=now, node_id=local.node_id).encode())
                    left = C.UpdateNode(at=now, node_id=local.node_id, status=NodeStatus.LEFT)
                    await self.write(left.encode())
                except P2POrchError as exc:
                    if not force:
                        raise
                    log.warning("leave --force: the cluster was not told (%s); leaving anyway", exc.message)
            await announce_leave(self.board.gossip)  # the others show it left at once, not alive
            await self._abandon_membership()
            return {"left": local.cluster_id, "node_id": local.node_id}

    def _other_members(self, local: LocalClusterState) -> list[Node]:
        state = self.require_store().snapshot()
        return [n for n in state.nodes.values() if n.node_id != local.node_id and n.status != NodeStatus.LEFT]

    # ----- member side of a join
    async def _handle_join(self, request: dict[str, Any], source: str) -> dict[str, Any]:
        """A verified joiner (``source``: the address its connection comes from) asks to join. Admissions
        are planned one at a time under the membership lock (so never during an init, leave, recover or
        role switch) and committed concurrently (``Admissions``)."""
        return await self._admissions.admit(
            self._member, self._admission_write, self.config, self.clock, request, source, self._lock
        )

    def _member(self) -> tuple[RaftStore, LocalClusterState]:
        store = self.require_store()
        assert self.local is not None
        return store, self.local

    async def _admission_write(self, commands: list[bytes]) -> Any:
        """An admission's writes, in one Raft entry: more time than other writes (joins arrive in bursts,
        when the cluster is busiest); a timeout tells the joiner to run the same join again (safe)."""
        timeout_s = max(self.config.raft.commit_timeout_s, ADMISSION_COMMIT_TIMEOUT_S)
        try:
            return await self.require_store().write_together(commands, timeout_s=timeout_s)
        except ProposalTimeout as exc:
            raise ProposalTimeout(
                f"the cluster did not commit this node's admission within {timeout_s:.0f} s (it is busy); "
                "the admission may still complete: run the same join again"
            ) from exc
