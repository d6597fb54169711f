"""A replica whose connection drops while the leader's round sends it a chunked entry (a real pysyncobj
leader, our RaftBridge, no tick thread): the round finishes and the replica's indexes go after it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.bridge import RaftBridge
from p2porch.testing.raftprocs import free_ports


class _Owner:
    config = SimpleNamespace(replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5)

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def test_a_replica_dropped_mid_chunk_does_not_fail_the_round() -> None:
    (me,) = (f"127.0.0.1:{p}" for p in free_ports(1))
    conf = SyncObjConf(
        password="p2ie-unit",
        autoTick=False,
        appendEntriesUseBatch=False,
        dynamicMembershipChange=True,
        appendEntriesBatchSizeBytes=64,  # an entry of 64 bytes or more goes in chunks
    )
    so = RaftBridge(_Owner(), me, [], conf)  # type: ignore[arg-type]
    try:
        so._SyncObj__onBecomeLeader()
        replica, other = TCPNode("127.0.0.1:1"), TCPNode("127.0.0.1:2")
        for node in (replica, other):
            so._SyncObj__onReadonlyNodeConnected(node)
        index = so._SyncObj__raftLog[-1][1] + 1
        so._SyncObj__raftLog.add(b"\x00" + b"x" * 500, index, so._SyncObj__raftCurrentTerm)
        sent: list[tuple[str, dict[str, Any]]] = []

        def send(node: Any, message: dict[str, Any]) -> bool:
            sent.append((node.id, message))
            if node == replica and message.get("transmission"):
                so._SyncObj__onReadonlyNodeDisconnected(node)  # the send dropped the connection
            return True

        so._SyncObj__transport.send = send
        so._SyncObj__sendAppendEntries()  # pysyncobj alone: KeyError(replica)
        assert replica not in so._SyncObj__raftNextIndex and replica not in so._SyncObj__raftMatchIndex
        assert so.replicas_dropped_mid_round == 1
        assert any(node_id == other.id and m.get("transmission") == "finish" for node_id, m in sent)
    finally:
        so.destroy()
