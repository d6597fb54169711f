"""bench/journal_entries.py counts a journal's entries by kind and by the commands they carry."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.raft.fsm import encode_batch
from p2porch.raft.journal import DurableJournal
from p2porch.testing.bench_module import load_bench


def bench_module() -> Any:
    return load_bench("journal_entries")


def regular(*commands: C.Command) -> bytes:
    """A regular entry as pysyncobj journals the store's replicated call: type 0, the pickled call."""
    return b"\x00" + pickle.dumps((0, (encode_batch([c.encode() for c in commands]),), {}))


def test_entries_and_commands_of_a_journal_written_by_the_journal_class(tmp_path: Path) -> None:
    node = Node("id2", "n2", "10.0.0.2", 7947, 7946)
    entries = [
        b"\x01",  # a new leader's no-op
        regular(C.AddNode(at=1.0, node=node), C.LeaseSubnet(at=1.0, node_id="id2")),
        regular(C.UpdateNode(at=2.0, node_id="id2", status="ready")),
        b"\x02" + pickle.dumps(["add", "10.0.0.2:7947", None]),
    ]
    journal = DurableJournal(tmp_path / "raft.journal")
    for index, command in enumerate(entries, start=1):
        journal.add(command, index, 1)
    data = (tmp_path / "raft.journal").read_bytes()
    out = bench_module().summary(data, joins=2)
    assert out["entries"] == 4 and out["first_index"] == 1
    assert out["entries_by_kind"] == {"no-op": 1, "regular": 2, "membership": 1}
    assert out["commands"] == {"add_node": 1, "lease_subnet": 1, "update_node": 1}
    assert out["entries_by_commands"]["add_node+lease_subnet"] == 1
    assert out["bytes"] == len(data) - 8  # every record, header included; the file's magic apart
    assert out["entries_per_join"] == 2.0
    assert bench_module().summary(data[:-3])["entries"] == 3  # a torn tail is not an entry
