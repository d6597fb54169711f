"""CPython's obmalloc arenas of a running process, each with its resident pages (root; JSON lines).

    python bench/pymalloc_arenas.py PID [PID ...] [--every-s 60] [--count 1] [--out F]

Reads the process's ``arenas`` table (``Objects/obmalloc.c`` of CPython 3.11: 1 MiB arenas cut into 16 KiB
pools) through ``/proc/PID/mem`` at the addresses the interpreter's symbol table gives (``nm``: the
interpreter or its ``libpython`` must keep its symbols, as pyenv's build does), and each arena's resident
pages from ``/proc/PID/pagemap``. Nothing is called inside the process and it is never stopped (the read
races with the allocator: a field may be one allocation old). Per arena: its start, the anonymous mapping
(``maps`` start) holding it, pools carved so far (``pool_address``: obmalloc hands out an arena's pools in
address order and never touches a pool before it carves it), pools free (``nfreepools``: carved and given
back plus never carved) and resident KB. The anonymous mappings that hold no arena are listed by start with
their resident KB, so two samples tell whether a growing mapping is an arena being carved or something else
(a thread stack, glibc's mmapped blocks). Used for #19's idle RSS growth (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ARENA_SIZE = 1 << 20  # CPython 3.11, 64-bit: ARENA_BITS 20
POOL_SIZE = 1 << 14  # POOL_BITS 14
PAGE = 4096
ARENA_OBJECT = struct.Struct("<QQIIQQQ")  # address, pool_address, nfreepools, ntotalpools, 3 pointers
SYMBOLS = ("arenas", "maxarenas", "narenas_currently_allocated", "ntimes_arena_allocated", "PyType_Type")
POOL_HEADER = struct.Struct("<QQQQIIII")  # ref.count, freeblock, nextpool, prevpool, arenaindex, szidx, ...
POOL_OVERHEAD = 48
TP_NAME, TP_FLAGS, HAVE_GC = 24, 168, 1 << 14  # PyTypeObject's tp_name and tp_flags offsets (3.11, 64-bit)
GC_HEAD = 16  # a tracked object's PyGC_Head comes before it
MANAGED_DICT = 1 << 4  # a class instance's dict and values pointers come before its PyGC_Head


def interpreter_image(pid: int) -> tuple[str, int]:
    """The file holding obmalloc's symbols (``libpython*.so`` if mapped, else the executable) and its load
    base (the start of its mapping at file offset 0)."""
    images: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[2] == "00000000" and fields[5].startswith("/"):
            images.setdefault(fields[5], int(fields[0].split("-")[0], 16))
    exe = str(Path(f"/proc/{pid}/exe").resolve())
    for path, base in images.items():
        if re.search(r"/libpython3[.\d]*\.so", path):
            return path, base
    return exe, images[exe]


def symbol_offsets(path: str) -> dict[str, int]:
    """Offsets of ``SYMBOLS`` in ``path`` (``nm``); a missing one means a stripped interpreter."""
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] in SYMBOLS:
            found[fields[2]] = int(fields[0], 16)
    missing = [s for s in SYMBOLS if s not in found]
    if missing:
        raise SystemExit(f"{path}: no symbol {', '.join(missing)} (a stripped interpreter)")
    return found


def anon_mappings(pid: int) -> list[tuple[int, int]]:
    """(start, end) of every anonymous read-write mapping but the brk heap and the main stack."""
    spans = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[1].startswith("rw"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            spans.append((start, end))
    return spans


def resident_kb(pagemap: Any, start: int, end: int) -> int:
    """KB of [start, end) present in memory (``pagemap`` bit 63) or swapped (bit 62)."""
    pagemap.seek(start // PAGE * 8)
    raw = pagemap.read((end - start) // PAGE * 8)
    entries = struct.unpack(f"<{len(raw) // 8}Q", raw)
    return sum(1 for e in entries if e >> 62) * PAGE // 1024


def sample(pid: int, offsets: dict[str, int], base: int) -> dict[str, Any]:
    """One reading of ``pid``'s arenas and of its other anonymous mappings."""
    with open(f"/proc/{pid}/mem", "rb") as mem, open(f"/proc/{pid}/pagemap", "rb") as pagemap:

        def read(symbol: str, fmt: str) -> int:
            mem.seek(base + offsets[symbol])
            value: int = struct.unpack(fmt, mem.read(struct.calcsize(fmt)))[0]
            return value

        table, count = read("arenas", "<Q"), read("maxarenas", "<I")
        mem.seek(table)
        raw = mem.read(count * ARENA_OBJECT.size)
        spans = anon_mappings(pid)
        holders: dict[int, list[int]] = {}
        arenas = []
        for i in range(count):
            address, pool_address, nfree, ntotal, *_ = ARENA_OBJECT.unpack_from(raw, i * ARENA_OBJECT.size)
            if not address:
                continue
            first_pool = -(-address // POOL_SIZE) * POOL_SIZE
            vma = next((s for s, e in spans if s <= address < e), 0)
            holders.setdefault(vma, []).append(address)
            arenas.append(
                {
                    "start": f"{address:x}",
                    "vma": f"{vma:x}",
                    "carved": (pool_address - first_pool) // POOL_SIZE,
                    "total": ntotal,
                    "free": nfree,
                    "kb": resident_kb(pagemap, address, address + ARENA_SIZE),
                }
            )
        others = {f"{s:x}": resident_kb(pagemap, s, e) for s, e in spans if s not in holders}
    return {
        "pid": pid,
        "t": round(time.time(), 1),
        "allocated": read_counter(pid, offsets, base, "narenas_currently_allocated"),
        "allocated_total": read_counter(pid, offsets, base, "ntimes_arena_allocated"),
        "arenas_kb": sum(a["kb"] for a in arenas),
        "arenas": arenas,
        "other_anon_kb": {k: v for k, v in others.items() if v >= 64},
    }


def read_counter(pid: int, offsets: dict[str, int], base: int, symbol: str) -> int:
    """One ``size_t`` counter of obmalloc."""
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(base + offsets[symbol])
        value: int = struct.unpack("<Q", mem.read(8))[0]
        return value


class Memory:
    """Reads of another process's memory (``/proc/PID/mem``) that return None where nothing is mapped."""

    def __init__(self, mem: Any, type_type: int) -> None:
        self.mem, self.type_type, self.names = mem, type_type, {}  # type: dict[int, str]

    def word(self, address: int) -> int | None:
        try:
            self.mem.seek(address)
            raw = self.mem.read(8)
        except (OSError, ValueError, OverflowError):
            return None
        return struct.unpack("<Q", raw)[0] if len(raw) == 8 else None

    def type_name(self, candidate: int | None) -> tuple[str, int] | None:
        """(name, tp_flags) when ``candidate`` points at a type (whose type is ``type`` or a metatype)."""
        if not candidate or candidate % 8:
            return None
        meta = self.word(candidate + 8)
        if meta is None or (meta != self.type_type and self.word(meta + 8) != self.type_type):
            return None
        if candidate not in self.names:
            pointer = self.word(candidate + TP_NAME)
            try:
                self.mem.seek(pointer or 0)
                self.names[candidate] = self.mem.read(64).split(b"\0")[0].decode(errors="replace")
            except (OSError, ValueError, OverflowError):
                return None
        return self.names[candidate], self.word(candidate + TP_FLAGS) or 0

    def block_kind(self, block: int) -> str:
        """What a live block holds: ``TYPE`` (an object), ``TYPE:"text"`` (an ASCII str) or ``raw``."""
        plain = self.type_name(self.word(block + 8))
        if plain and not plain[1] & HAVE_GC:
            if plain[0] == "str":
                self.mem.seek(block + 48)
                text = self.mem.read(24).split(b"\0")[0].decode(errors="replace")
                return f"str:{text!r}"
            return plain[0]
        tracked = self.type_name(self.word(block + GC_HEAD + 8))
        if tracked and tracked[1] & HAVE_GC and not tracked[1] & MANAGED_DICT:
            return tracked[0]
        instance = self.type_name(self.word(block + 2 * GC_HEAD + 8))
        if instance and instance[1] & MANAGED_DICT:
            return instance[0]
        return "raw"


def census(pid: int, arena: dict[str, Any], type_type: int, top: int = 8) -> list[dict[str, Any]]:
    """Each carved pool of ``arena`` (a ``sample`` row): its block size and its live blocks by kind."""
    from collections import Counter

    pools = []
    with open(f"/proc/{pid}/mem", "rb") as mem:
        reader = Memory(mem, type_type)
        address = int(arena["start"], 16)
        first_pool = -(-address // POOL_SIZE) * POOL_SIZE
        for index in range(arena["carved"]):
            pool = first_pool + index * POOL_SIZE
            mem.seek(pool)
            count, freeblock, _, _, _, szidx, nextoffset, _ = POOL_HEADER.unpack(mem.read(POOL_HEADER.size))
            size = (szidx + 1) * 16
            free, cursor = set(), freeblock
            while cursor and pool <= cursor < pool + POOL_SIZE and cursor not in free and len(free) < 1024:
                free.add(cursor)
                cursor = reader.word(cursor) or 0
            kinds: Counter[str] = Counter()
            end = min(nextoffset, POOL_SIZE - size + 1) if count else 0  # an empty pool holds nothing
            for offset in range(POOL_OVERHEAD, end, size):
                if pool + offset not in free:
                    kinds[reader.block_kind(pool + offset)] += 1
            pools.append({"pool": index, "size": size, "used": count, "kinds": dict(kinds.most_common(top))})
    return pools


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pids", nargs="+", type=int)
    parser.add_argument("--every-s", type=float, default=60.0)
    parser.add_argument("--count", type=int, default=1, help="samples per process (0: until killed)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--census", action="store_true", help="live blocks by type in arenas being carved")
    args = parser.parse_args()
    where = {pid: interpreter_image(pid) for pid in args.pids}
    offsets = {pid: symbol_offsets(path) for pid, (path, _) in where.items()}
    taken = 0
    while args.count == 0 or taken < args.count:
        for pid in args.pids:
            record = sample(pid, offsets[pid], where[pid][1])
            if args.census:
                type_type = where[pid][1] + offsets[pid]["PyType_Type"]
                carving = [a for a in record["arenas"] if a["carved"] < a["total"]]
                record["census"] = {a["start"]: census(pid, a, type_type) for a in carving}
            line = json.dumps(record)
            print(line, flush=True)
            if args.out is not None:
                with args.out.open("a") as f:
                    f.write(line + "\n")
        taken += 1
        if args.count == 0 or taken < args.count:
            time.sleep(args.every_s)


if __name__ == "__main__":
    sys.exit(main())
