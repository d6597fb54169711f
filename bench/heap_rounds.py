"""An idle leader's Raft rounds at an accelerated pace in one process, glibc's heap sampled (JSON lines).

    python bench/heap_rounds.py [--recv into|alloc] [--rounds 200000] [--every 20000] [--trim-every 5000]

Three real pysyncobj voters (``RaftBridge`` with p2porch's guarded transport, ``testing/raft_bridges.py``)
on loopback, ticked by this thread with pysyncobj's append period cut to 0 (a heartbeat every tick: the
idle leader's round, ~1,000 times faster than the daemon's 0.2 s), and a UDP pair standing in for
gossip's datagrams (one probe and its answer per round). ``--recv alloc`` receives as main did before
this bench (``sock.recv(65536)`` per Raft read, ``recvfrom(65535)`` per datagram: CPython allocates the
full size and shrinks it to the message), ``--recv into`` as the transports do now (``recv_into`` a
reused buffer). Like the daemon (``memtrim.py``) the process shares one malloc arena and trims every
``--trim-every`` rounds. Every ``--every`` rounds one line: glibc's ``mallinfo2`` (the brk heap's
bytes from the system, in use and free; mmapped bytes), RSS, CPU seconds. Run both modes one after
the other in the same window and compare the heap's growth per 100,000 rounds (~5.5 h of an idle
leader's heartbeats at 0.2 s). Measured (docs/performance.md, "The idle leader's heap"): flat in both
modes, the Raft round alone in one thread does not fragment the heap: the daemon's growth needs its
other threads' allocations between a big buffer's malloc and free (``bench/malloc_sites.py`` finds those).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2porch import memtrim  # noqa: E402
from p2porch.raft import transport_guard  # noqa: E402
from p2porch.testing.raft_bridges import elect_leader, loopback_voters, tick  # noqa: E402

DATAGRAM = b"g" * 180  # a SWIM probe's size


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mallinfo2() -> dict[str, int]:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return {
        "heap_bytes": info.arena,  # the main arena's bytes from the system (brk)
        "in_use_bytes": info.uordblks,
        "free_bytes": info.fordblks,
        "free_chunks": info.ordblks,
        "mmapped_bytes": info.hblkhd,
    }


def process_read_alloc(self: Any) -> bool:
    """The Raft read as main had it: ``recv(size)`` allocates ``size`` bytes and shrinks them."""
    sock = self._TcpConnection__socket
    size = self._TcpConnection__recvBufferSize
    try:
        incoming = sock.recv(size)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
            self.disconnect()
        return False
    if not incoming:
        self.disconnect()
        return False
    self._buffer().extend(incoming)
    return len(incoming) == size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recv", choices=("into", "alloc"), default="into")
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=20_000)
    parser.add_argument("--trim-every", type=int, default=5_000)
    args = parser.parse_args()
    memtrim.limit_malloc_arenas()
    reads = [0]
    read = (
        process_read_alloc
        if args.recv == "alloc"
        else transport_guard.GuardedTcpConnection._TcpConnection__processRead
    )

    def counted_read(self: Any) -> bool:
        reads[0] += 1
        return read(self)

    transport_guard.GuardedTcpConnection._TcpConnection__processRead = counted_read  # type: ignore[attr-defined]
    a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    scratch = memoryview(bytearray(65535))

    def datagram(sock: socket.socket) -> bytes:
        if args.recv == "alloc":
            return sock.recvfrom(65535)[0]
        count, _ = sock.recvfrom_into(scratch, 65535)
        return bytes(scratch[:count])

    with loopback_voters(3) as nodes:
        leader = elect_leader(nodes)
        for so in nodes:
            so._SyncObj__conf.appendEntriesPeriod = 0.0  # a heartbeat round on every tick
        tick(nodes, rounds=1000)
        memtrim.trim_heap(collect=True, freeze=True)  # as the daemon's first trim
        started_cpu = time.process_time()
        for n in range(1, args.rounds + 1):
            tick(nodes)
            a.sendto(DATAGRAM, b.getsockname())
            datagram(b)
            b.sendto(DATAGRAM, a.getsockname())
            datagram(a)
            if n % args.trim_every == 0:
                memtrim.trim_heap(collect=True)
            if n % args.every == 0:
                record = {
                    "recv": args.recv,
                    "rounds": n,
                    "leader_rounds": leader.rounds_sent,
                    "raft_reads": reads[0],
                }
                record |= mallinfo2()
                record |= {
                    "rss_mb": round(memtrim.rss_mb(), 2),
                    "cpu_s": round(time.process_time() - started_cpu, 2),
                }
                print(json.dumps(record), flush=True)
    a.close()
    b.close()


if __name__ == "__main__":
    main()
