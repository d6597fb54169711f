"""Raft traffic with voters outside this node's configuration (shell, a pysyncobj transport mixin).

pysyncobj 0.3.17's transport drops every incoming connection from an address outside its
configuration and dials only nodes inside it (the node with the higher address dials). A voter whose
log lacks the add of a node X (it was down while X was added) therefore never heard X once X led: no
append, no commit index, never the entry that would have added X. Raft answers an RPC whatever the
configuration (thesis 4.1: a server accepts AppendEntries from a leader outside its configuration);
pysyncobj's own handlers do, only its transport refused. :class:`OutsideConfiguration`:

- accepts an incoming connection whose peer names an address outside the configuration, once the
  connection is authenticated (the session frames prove the peer holds the cluster password, as for
  any Raft peer) and only while this node neither leads nor hears a connected, live leader (a removed
  voter dialling the cluster is refused as before, so it learns it was removed; a pointer to a voter
  that went silent is no live leader), as a *stranger*; once this node leads or hears a live leader,
  the strangers but the leader it follows are closed; a
  stranger's ``append_entries`` (entries, heartbeats, snapshots)
  of the current term or a higher one reach pysyncobj (which then follows that leader, as Raft
  requires), every other message (votes, pre-votes, forwarded commands, answers, older terms' appends)
  is dropped and counted: a node outside the configuration never gets this node's vote, and a removed
  voter stays as harmless as before; only the answers to its appends are sent to a stranger (a proposal
  forwarded to it would commit with its answer dropped, then be retried and commit again);
- on the leader, dials a voter of its configuration that should dial the leader (its address is higher)
  but has not been connected for :data:`REVERSE_DIAL_AFTER_S`: a voter missing the leader in its
  configuration never dials it. A node that knows the dialler and is the one to dial refuses such a
  connection (pysyncobj's one connection per pair stays as it was);
- once the configuration adds a stranger (its log reached the add entry), the connection becomes the
  node's own if the stranger is the side pysyncobj dials from, else it is closed and pysyncobj dials.

Never changes the configuration: only the log does (pysyncobj's appends, ``config_replay``).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from pysyncobj.monotonic import monotonic
from pysyncobj.node import TCPNode
from pysyncobj.tcp_connection import CONNECTION_STATE

log = logging.getLogger(__name__)

__all__ = ["MAX_STRANGERS", "REVERSE_DIAL_AFTER_S", "OutsideConfiguration", "StrangerStats"]

MAX_STRANGERS = 16  # authenticated connections from outside the configuration kept at once (oldest go)
REVERSE_DIAL_AFTER_S = 2.0  # a voter that should dial the leader and has not for this long is dialled
REVERSE_DIAL_EVERY_S = 1.0
STRANGER_LOG_EVERY_S = 60.0
_READONLY = "readonly"


class StrangerStats:
    """Counters (Raft thread writes, anyone reads)."""

    def __init__(self) -> None:
        self.accepted = 0  # connections taken from addresses outside the configuration
        self.appends = 0  # their append_entries handed to pysyncobj
        self.dropped = 0  # their other messages, and appends of a term older than this node's
        self.withheld = 0  # messages this node would have sent them but their appends' answers
        self.promoted = 0  # strangers the configuration added (the connection kept or redialled)
        self.closed = 0  # strangers closed once this node led or heard a live leader of its own
        self.reverse_dials = 0  # the leader dialled a voter that should dial it
        self.refused_reverse = 0  # a known node dialled this node, which is the one to dial it

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class OutsideConfiguration:
    """Mixed into the guarded TCP transport, before pysyncobj's ``TCPTransport``: owns the connections
    of strangers and the leader's reverse dials; never touches the configuration or a message's
    content."""

    _syncObj: Any
    _selfNode: Any
    _nodes: set[Any]
    _nodeAddrToNode: dict[str, Any]
    _connections: dict[Any, Any]
    _unknownConnections: set[Any]
    frame_key: bytes | None

    if TYPE_CHECKING:  # pysyncobj's TCPTransport, the next class in the transport's MRO

        def _shouldConnect(self, node: Any) -> bool: ...  # noqa: N802
        def _onMessageReceived(self, node: Any, message: Any) -> None: ...  # noqa: N802
        def _onNodeConnected(self, node: Any) -> None: ...  # noqa: N802
        def _onNodeDisconnected(self, node: Any) -> None: ...  # noqa: N802

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.strangers: dict[str, tuple[Any, Any, float]] = {}  # address -> (node, conn, accepted at)
        self.stranger_stats = StrangerStats()
        self._not_dialling_since: dict[Any, float] = {}
        self._reverse_at: dict[Any, float] = {}
        self._reverse_conns: dict[Any, Any] = {}  # node -> the connection the leader dialled to it
        self._stranger_logged: dict[str, float] = {}
        super().__init__(*args, **kwargs)

    def _outgoing_connection(self, node: Any) -> Any:  # the guarded transport's
        raise NotImplementedError

    # -- incoming ----------------------------------------------------------------------------------------

    def _onIncomingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802 (pysyncobj's)
        keyed = not (self._syncObj.encryptor and not conn.sendRandKey)  # past the connection-key exchange
        if keyed and isinstance(message, str) and message != _READONLY:
            node = self._nodeAddrToNode.get(message)
            if node is None:
                if self._accept_stranger(conn, message):
                    return
            elif self._shouldConnect(node):
                # we dial that node: this is its reverse dial, which we do not need (we know it)
                self.stranger_stats.refused_reverse += 1
                self._unknownConnections.discard(conn)
                conn.disconnect()
                return
        super()._onIncomingMessageReceived(conn, message)  # type: ignore[misc]
        self._close_superseded_reverse(conn, message)

    def _accept_stranger(self, conn: Any, addr: str) -> bool:
        if self._selfNode is None or self.frame_key is None or not getattr(conn, "authenticated", False):
            return False
        if addr == self._selfNode.address:  # a peer naming this node's own address: never ours to take
            return False
        if self._syncObj_says("_isLeader") or self._hears_own_leader():
            # it hears a leader of its own configuration: no stranger's appends needed, and a removed voter
            # dialling it must be refused as before (else it looks connected to a leader, never learns it
            # was removed and never restarts as a replica: test_multisite_cut)
            return False
        try:
            node = TCPNode(addr)
        except (ValueError, TypeError):
            return False
        old = self.strangers.pop(addr, None)
        if old is not None:
            self._drop_stranger(old)
        while len(self.strangers) >= MAX_STRANGERS:
            oldest = min(self.strangers, key=lambda a: self.strangers[a][2])
            self._drop_stranger(self.strangers.pop(oldest))
        self._unknownConnections.discard(conn)
        self._connections[node] = conn
        self.strangers[addr] = (node, conn, monotonic())
        conn.setOnMessageReceivedCallback(functools.partial(self._on_stranger_message, node))
        self.stranger_stats.accepted += 1
        log.debug("raft: connection from %s, outside the configuration: only its appends are taken", addr)
        return True

    def _hears_own_leader(self) -> bool:
        """A connected leader that is live (``leader_live``: an append within the pre-vote hold). A
        pointer to a voter that no longer leads is not enough: a voter cut off while its leader was
        deposed still names it, connected again once the cut heals, and would refuse the new leader
        until a pre-vote refusal carrying a higher term cleared the pointer (never, when only that old
        voter answers it at the same term)."""
        leader = self._syncObj_says("_getLeader")
        conn = None if leader is None else self._connections.get(leader)
        if conn is None or conn.state != CONNECTION_STATE.CONNECTED:
            return False
        live = self._syncObj_says("leader_live")
        return live is None or bool(live)  # None: a host without pre-votes (the shell tests' default)

    def _drop_stranger(self, entry: tuple[Any, Any, float]) -> None:
        node, conn, _ = entry
        if self._connections.get(node) is conn:
            del self._connections[node]
        conn.disconnect()

    def _on_stranger_message(self, node: Any, message: Any) -> None:
        if not (isinstance(message, dict) and message.get("type") == "append_entries"):
            self.stranger_stats.dropped += 1
            return
        term = getattr(self._syncObj, "raftCurrentTerm", None)
        if isinstance(term, int) and not (isinstance(message.get("term"), int) and message["term"] >= term):
            # an older term's leader (a voter removed while cut off): pysyncobj would ignore its append,
            # but its election bookkeeping (pre_vote_elections) would still count it as a leader heard
            self.stranger_stats.dropped += 1
            return
        self.stranger_stats.appends += 1
        now = monotonic()
        if now - self._stranger_logged.get(node.address, -STRANGER_LOG_EVERY_S) >= STRANGER_LOG_EVERY_S:
            self._stranger_logged[node.address] = now
            log.warning(
                "raft: %s sends appends (term %s) but is outside this node's configuration: taking them "
                "until this node's log reaches its configuration",
                node.address,
                message.get("term"),
            )
        self._onMessageReceived(node, message)

    def send(self, node: Any, message: Any) -> bool:
        """To a stranger only the answer to its appends (``next_node_idx``) goes out. A proposal forwarded
        to it (it leads, outside this node's configuration) would commit while its answer, a stranger's
        message, is dropped: failed as ``MISSING_LEADER`` and retried, it would commit again."""
        entry = self.strangers.get(str(getattr(node, "address", "")))
        answer = isinstance(message, dict) and message.get("type") == "next_node_idx"
        if entry is not None and self._connections.get(node) is entry[1] and not answer:
            self.stranger_stats.withheld += 1
            return False
        return bool(super().send(node, message))  # type: ignore[misc]

    def _onDisconnected(self, conn: Any) -> None:  # noqa: N802
        for addr, (node, stranger_conn, _) in list(self.strangers.items()):
            if stranger_conn is conn:
                del self.strangers[addr]
                if self._connections.get(node) is conn:
                    del self._connections[node]
                self._unknownConnections.discard(conn)
                if node == self._syncObj_says("_getLeader"):  # a lost leader: forwards, election deadline
                    self._onNodeDisconnected(node)
                return
        super()._onDisconnected(conn)  # type: ignore[misc]

    def _syncObj_says(self, method: str) -> Any:  # noqa: N802
        """pysyncobj's ``_isLeader()``/``_getLeader()`` (None on a host without them: the tests')."""
        ask = getattr(self._syncObj, method, None)
        return None if ask is None else ask()

    # -- the configuration adds a stranger ----------------------------------------------------------------

    def addNode(self, node: Any) -> None:  # noqa: N802
        entry = self.strangers.pop(str(getattr(node, "address", "")), None)
        if entry is None:
            super().addNode(node)  # type: ignore[misc]
            return
        _, conn, _ = entry
        if self._connections.get(node) is conn:
            del self._connections[node]
        self.stranger_stats.promoted += 1
        keep = conn.state == CONNECTION_STATE.CONNECTED and not self._shouldConnect(node)
        if not keep:  # pysyncobj dials it from here: its own connection, not the stranger's
            conn.disconnect()
            super().addNode(node)  # type: ignore[misc]
            return
        super().addNode(node)  # type: ignore[misc]  # creates nothing: it is the dialler
        self._connections[node] = conn
        conn.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
        self._onNodeConnected(node)

    # -- the leader dials a voter that should dial it -----------------------------------------------------

    def _onTick(self) -> None:  # noqa: N802
        super()._onTick()  # type: ignore[misc]
        self._close_needless_strangers()
        self._reverse_dials(monotonic())

    def _close_needless_strangers(self) -> None:
        """Once this node leads or hears a live leader, close every stranger but the leader it follows: one
        taken while it heard none (an election, a gap) would otherwise stay, and a removed voter whose
        connection stays looks connected to its old leader (test_multisite_cut)."""
        if not self.strangers or not (self._syncObj_says("_isLeader") or self._hears_own_leader()):
            return
        leader = self._syncObj_says("_getLeader")
        for addr, entry in list(self.strangers.items()):
            if entry[0] != leader:
                del self.strangers[addr]
                self._drop_stranger(entry)
                self.stranger_stats.closed += 1

    def _reverse_dials(self, now: float) -> None:
        if self._selfNode is None or not self._syncObj_says("_isLeader"):
            if self._not_dialling_since:
                self._not_dialling_since.clear()
                self._reverse_at.clear()
            return
        for node in [n for n, c in self._reverse_conns.items() if self._connections.get(n) is not c]:
            del self._reverse_conns[node]
        for node in self._nodes:
            if self._shouldConnect(node):  # we dial it anyway
                continue
            conn = self._connections.get(node)
            if conn is not None and conn.state != CONNECTION_STATE.DISCONNECTED:
                self._not_dialling_since.pop(node, None)
                continue
            since = self._not_dialling_since.setdefault(node, now)
            waited, dialled = now - since, now - self._reverse_at.get(node, -1e9)
            if waited < REVERSE_DIAL_AFTER_S or dialled < REVERSE_DIAL_EVERY_S:
                continue
            self._reverse_at[node] = now
            self.stranger_stats.reverse_dials += 1
            dial = self._outgoing_connection(node)
            self._connections[node] = dial
            self._reverse_conns[node] = dial
            log.debug("raft: dialling %s, a voter not connected for %.1f s", node.address, now - since)
            dial.connect(node.ip, node.port)

    def _close_superseded_reverse(self, conn: Any, message: Any) -> None:
        """A voter this leader dialled dialled it itself: keep its connection (pysyncobj's), close ours."""
        node = self._nodeAddrToNode.get(message) if isinstance(message, str) else None
        if node is None or self._connections.get(node) is not conn:
            return
        self._not_dialling_since.pop(node, None)
        dialled = self._reverse_conns.pop(node, None)
        if dialled is not None and dialled is not conn:
            dialled.disconnect()  # no longer in _connections: its disconnect touches nothing

    def destroy(self) -> None:
        for entry in list(self.strangers.values()):
            self._drop_stranger(entry)
        self.strangers.clear()
        super().destroy()  # type: ignore[misc]
