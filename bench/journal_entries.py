"""The Raft entries of a node's journal, counted by kind and by the commands they carry (diagnostic).

    python bench/journal_entries.py DATA_DIR/.../raft.journal [--joins N]

Reads the file as it is (never opens it through the journal class, which syncs and truncates): each
record of ``p2porch.raft.journal`` is an entry, whose first byte is pysyncobj's command type (regular,
no-op, membership, version); a regular entry is the pickled call of the store's one replicated method
with one msgpack batch of encoded commands (``raft/fsm.py``, ``encode_batch``). Reported: entries and
their bytes on disk (record header included) by kind, the commands by tag, the entries by the set of
tags they carry (``AddNode+LeaseSubnet``), and with ``--joins`` the same per join. Used by
``bench/joins.py`` on the leader's journal after a formation; prints one JSON line. Only for a journal
this machine wrote (pickle).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections import Counter
from typing import Any

from p2porch.raft import commands as C
from p2porch.raft.journal import _HEADER, MAGIC

KINDS = {0: "regular", 1: "no-op", 2: "membership", 3: "version"}


def records(data: bytes) -> list[tuple[int, bytes, int]]:
    """``(index, command, bytes on disk)`` of every whole record of a journal file's content."""
    if not data.startswith(MAGIC):
        raise ValueError("not a p2porch journal")
    out, pos = [], len(MAGIC)
    while pos + _HEADER.size <= len(data):
        length, _crc, index, _term = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if end > len(data):
            break  # a torn tail
        out.append((index, data[pos + _HEADER.size : end], end - pos))
        pos = end
    return out


def command_tags(command: bytes) -> list[str]:
    """The tags of the commands a regular entry carries, in order (``?`` for what does not decode)."""
    call = pickle.loads(command[1:])  # noqa: S301 (a journal this machine's daemon wrote)
    batch = call[1][0] if isinstance(call, tuple) and len(call) > 1 and call[1] else b""
    tags = []
    for item in C.decode(batch) if isinstance(batch, bytes) else []:
        try:
            plain = C.decode(item)
            tags.append(str(plain.get("t") or plain.get("op") or "?"))
        except Exception:  # a malformed item is counted, not fatal
            tags.append("?")
    return tags


def summary(data: bytes, joins: int = 0) -> dict[str, Any]:
    """Entries and bytes by kind, commands by tag and entries by their tags (module docstring)."""
    kinds: Counter[str] = Counter()
    kind_bytes: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    found = records(data)
    for _index, command, size in found:
        kind = KINDS.get(command[0], f"type {command[0]}") if command else "empty"
        kinds[kind] += 1
        kind_bytes[kind] += size
        if kind == "regular":
            carried = command_tags(command)
            tags.update(carried)
            shapes["+".join(sorted(set(carried)))] += 1
        else:
            shapes[kind] += 1
    total = sum(size for _i, _c, size in found)
    out: dict[str, Any] = {
        "first_index": found[0][0] if found else None,  # > 1: compacted, entries before it not counted
        "entries": len(found),
        "bytes": total,
        "entries_by_kind": dict(kinds),
        "bytes_by_kind": dict(kind_bytes),
        "commands": dict(tags.most_common()),
        "entries_by_commands": dict(shapes.most_common()),
    }
    if joins:
        out["entries_per_join"] = round(len(found) / joins, 2)
        out["bytes_per_join"] = round(total / joins)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("journal")
    parser.add_argument("--joins", type=int, default=0, help="divide by this many joins")
    args = parser.parse_args()
    with open(args.journal, "rb") as handle:
        json.dump(summary(handle.read(), args.joins), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
