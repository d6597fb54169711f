"""A starting node takes the latest configuration in its log, committed or not (``latest_config.py``,
``config_replay.py``).

The pure rule, then a real ``RaftBridge`` (pysyncobj, durable journal, no tick thread) opened on a
journal whose add entry lies past its stored commit index: at start, after its dump is loaded, when
pysyncobj applies the entry later (no change), and when a new leader truncates it (reverted).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.bridge import RaftBridge, install_durable_journal
from p2porch.raft.config_replay import membership_change
from p2porch.raft.journal import DurableJournal
from p2porch.raft.latest_config import latest_configuration
from p2porch.testing.raft_bridges import BridgeTestOwner
from p2porch.testing.raftprocs import free_ports

NOOP = b"\x01"


def change(kind: str, addr: str) -> bytes:
    """A membership entry's command, as pysyncobj writes it."""
    return b"\x02" + pickle.dumps([kind, addr, TCPNode(addr)])


def test_changes_apply_in_log_order_on_top_of_the_start() -> None:
    assert latest_configuration({"a", "b"}, "me", []) == {"a", "b"}
    assert latest_configuration({"a"}, "me", [("add", "c")]) == {"a", "c"}
    assert latest_configuration({"a", "c"}, "me", [("rem", "c")]) == {"a"}
    assert latest_configuration({"a"}, "me", [("add", "c"), ("rem", "c"), ("add", "d")]) == {"a", "d"}
    assert latest_configuration({"a", "c"}, "me", [("add", "c"), ("rem", "x")]) == {"a", "c"}  # no-ops


def test_the_node_itself_is_never_a_partner() -> None:
    assert latest_configuration({"a", "me"}, "me", [("add", "me"), ("rem", "me")]) == {"a"}
    assert latest_configuration({"a"}, None, [("add", "b")]) == {"a", "b"}  # a replica: every voter


def test_membership_change_reads_only_membership_entries() -> None:
    assert membership_change(change("add", "127.0.0.1:1")) == ("add", "127.0.0.1:1")
    assert membership_change(change("rem", "127.0.0.1:1")) == ("rem", "127.0.0.1:1")
    assert membership_change(NOOP) is None
    assert membership_change(b"\x00" + pickle.dumps("regular")) is None


@pytest.fixture
def addrs() -> list[str]:
    return [f"127.0.0.1:{p}" for p in free_ports(3)]  # me, the voter I started with, the voter added


def _journal(path: Path, entries: list[tuple[bytes, int, int]], commit: int) -> None:
    journal = DurableJournal(path)
    for entry in entries:
        journal.add(*entry)
    journal.setRaftCommitIndex(commit)
    journal._destroy()  # a clean stop stores the commit index


@contextmanager
def bridge(
    tmp_path: Path, me: str, partners: list[str], dump: tuple[Any, ...] | None = None
) -> Iterator[RaftBridge]:
    """A voter ``me`` opened on ``tmp_path``'s journal with ``partners`` (and ``dump``'s head: last entry,
    prev entry, configuration)."""
    install_durable_journal()
    conf = SyncObjConf(
        password="p2lc-unit",
        autoTick=False,
        appendEntriesUseBatch=False,
        dynamicMembershipChange=True,
        journalFile=str(tmp_path / "raft.journal"),
        useFork=False,
    )
    if dump is not None:  # the dump's head as pysyncobj gets it: (last entry, prev entry, configuration)
        conf.fullDumpFile = str(tmp_path / "raft.dump")
        conf.serializer = lambda file_name, data: None  # never called here
        conf.deserializer = lambda file_name: dump
    so = RaftBridge(BridgeTestOwner(), me, partners, conf)  # type: ignore[arg-type]
    try:
        yield so
    finally:
        so.destroy()


def voters(so: RaftBridge) -> set[str]:
    return {node.id for node in so._SyncObj__otherNodes}


def test_a_restart_below_an_add_entry_starts_with_the_added_voter(tmp_path: Path, addrs: list[str]) -> None:
    me, a, added = addrs
    _journal(tmp_path / "raft.journal", [(NOOP, 1, 1), (change("add", added), 2, 1), (NOOP, 3, 1)], commit=1)
    with bridge(tmp_path, me, [a]) as so:
        assert so._SyncObj__raftCommitIndex == 1  # the add entry is not known committed
        assert voters(so) == {a, added}
        assert so._SyncObj__raftNextIndex[TCPNode(added)] == 4
        so._SyncObj__raftCommitIndex = 3  # the leader's commit index came: pysyncobj applies the add
        so._SyncObj__applyLogEntries()
        assert so._SyncObj__raftLastApplied == 3
        assert voters(so) == {a, added}  # applying it again changed nothing


def test_a_truncated_uncommitted_add_is_reverted(tmp_path: Path, addrs: list[str]) -> None:
    me, a, added = addrs
    _journal(tmp_path / "raft.journal", [(NOOP, 1, 1), (change("add", added), 2, 1)], commit=1)
    with bridge(tmp_path, me, [a]) as so:
        assert voters(so) == {a, added}
        conflict = {  # a's new leadership never had the add: its entry 2 is of term 2
            "type": "append_entries", "term": 2, "commit_index": 1, "entries": [(NOOP, 2, 2)],
            "prevLogIdx": 1, "prevLogTerm": 1,
        }  # fmt: skip
        so._SyncObj__transport.send = lambda node, message: True
        so._SyncObj__onMessageReceived(TCPNode(a), conflict)
        assert [tuple(e)[1:] for e in so._SyncObj__raftLog] == [(1, 1), (2, 2)]
        assert voters(so) == {a}


def test_a_removal_after_the_dump_applies_on_top_of_the_dump_configuration(
    tmp_path: Path, addrs: list[str]
) -> None:
    me, a, added = addrs
    prev, last = (NOOP, 4, 1), (change("add", added), 5, 1)
    _journal(tmp_path / "raft.journal", [prev, last, (change("rem", a), 6, 1)], commit=5)
    head = {"format": 1, "last": list(last), "prev": list(prev), "cluster": [me, a, added], "state": {}}
    (tmp_path / "raft.dump").write_bytes(msgpack.packb(head, use_bin_type=True))  # as the store writes
    with bridge(tmp_path, me, [a], dump=(last, prev, [me, a, added])) as so:
        so._SyncObj__loadDumpFile(clearJournal=False)  # what pysyncobj's first tick does
        assert so._SyncObj__raftLastApplied == 5
        assert voters(so) == {added}  # the dump's three, less the removal after it
