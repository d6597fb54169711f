"""Per-message CPU of the Raft port's framing: pysyncobj's Fernet framing vs p2porch's sealed frames (JSON).

    python bench/raft_frames.py [--rounds 20000] [--cold-rounds 2000] [--evict-mb 16]

For each message kind pysyncobj sends (an idle heartbeat, its answer, a vote request, an append with
one 300-byte entry, an append of 16 entries of 4 KiB; entries are JSON-like commands, compressible)
both framings run in the same process, one after the other. *old* is what pysyncobj 0.3.17 does:
pickle of ``(connection key, message)``, zlib level 3, Fernet ``encrypt_at_time``; the receiver's
``extract_timestamp``, Fernet ``decrypt``, inflate, unpickle. *new* is ``p2porch.raft.frames``:
pickle of the message, zlib only from 1 KiB, AES-256-GCM with a counter nonce; open, unpickle.
One message = seal on the sender + open on the receiver. ``warm_us``: CPU per message in a tight
loop (caches hot). ``cold_us``: the same with ``--evict-mb`` of memory walked between messages (as an
idle Raft thread meets a heartbeat: its code and data evicted by everything that ran in the 100 ms
since the last one), median of ``--cold-rounds``, thread CPU time around the message only. No root,
no network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pysyncobj import pickle as pso_pickle  # noqa: E402
from pysyncobj.encryptor import getEncryptor  # noqa: E402

from p2porch.raft import frames  # noqa: E402

PASSWORD = "raft-frames-bench"


def messages() -> dict[str, Any]:
    def command(i: int) -> bytes:  # a command-like entry: field names, ids, numbers (compressible)
        spec = {
            "t": "put_service",
            "v": 1,
            "b": {
                "id": os.urandom(8).hex(),
                "name": f"web{i}",
                "image": "registry.example/web:1.4",
                "replicas": i % 7,
                "env": {"MODE": "prod", "N": str(i)},
            },
        }
        return json.dumps(spec).encode()

    entry = command(0)[:300].ljust(300, b" ")
    big = [(b"".join(command(i * 100 + j) for j in range(24))[:4096], 1000 + i, 7) for i in range(16)]
    return {
        "heartbeat": {
            "type": "append_entries",
            "term": 7,
            "commit_index": 12345,
            "entries": [],
            "prevLogIdx": 12345,
            "prevLogTerm": 7,
        },
        "answer": {
            "type": "next_node_idx",
            "next_node_idx": 12346,
            "reset": False,
            "success": True,
            "term": 7,
        },
        "vote_request": {"type": "request_vote", "term": 8, "last_log_index": 12345, "last_log_term": 7},
        "append_300b": {
            "type": "append_entries",
            "term": 7,
            "commit_index": 12345,
            "entries": [(entry, 12346, 7)],
            "prevLogIdx": 12345,
            "prevLogTerm": 7,
        },
        "append_64k": {
            "type": "append_entries",
            "term": 7,
            "commit_index": 12345,
            "entries": big,
            "prevLogIdx": 999,
            "prevLogTerm": 7,
        },
    }


class OldFraming:
    """pysyncobj 0.3.17's TcpConnection.send and the receive path it had (Fernet, zlib, pickle)."""

    name = "old"

    def __init__(self) -> None:
        self.fernet = getEncryptor(PASSWORD)
        self.key = os.urandom(32)
        self.last_stamp = 0

    def seal(self, message: Any) -> bytes:
        data = zlib.compress(pso_pickle.dumps((self.key, message)), 3)
        return self.fernet.encrypt_at_time(data, int(time.monotonic()))

    def open(self, frame: bytes) -> Any:
        stamp = self.fernet.extract_timestamp(frame)
        if stamp < self.last_stamp:
            raise ValueError("older frame")
        self.last_stamp = stamp
        inflater = zlib.decompressobj()
        key, message = pso_pickle.loads(inflater.decompress(self.fernet.decrypt(frame), 96 << 20))
        if key != self.key:
            raise ValueError("wrong connection key")
        return message


class NewFraming:
    """p2porch.raft.frames: one session direction after the handshake."""

    name = "new"

    def __init__(self) -> None:
        key = frames.cluster_key(PASSWORD)
        self.sender, self.receiver = frames.FrameChannel(key), frames.FrameChannel(key)
        a, b = os.urandom(32), os.urandom(32)
        self.receiver.open(self.sender.seal(a), 1 << 20)
        self.sender.start_session(own_key=a, peer_key=b)
        self.receiver.start_session(own_key=b, peer_key=a)

    def seal(self, message: Any) -> bytes:
        return self.sender.seal(pso_pickle.dumps(message))

    def open(self, frame: bytes) -> Any:
        return pso_pickle.loads(self.receiver.open(frame, 96 << 20))


def warm_us(framing: OldFraming | NewFraming, message: Any, rounds: int) -> float:
    framing.open(framing.seal(message))
    started = time.process_time()
    for _ in range(rounds):
        framing.open(framing.seal(message))
    return 1e6 * (time.process_time() - started) / rounds


def cold_us(framing: OldFraming | NewFraming, message: Any, rounds: int, evict: bytearray) -> float:
    clock: Callable[[], float] = time.thread_time
    samples = []
    overhead = []
    for _ in range(rounds):
        evict[::64] = evict[1::64]  # touch every cache line: code and data of the last round are gone
        t0 = clock()
        t1 = clock()
        framing.open(framing.seal(message))
        t2 = clock()
        overhead.append(t1 - t0)
        samples.append(t2 - t1)
    return 1e6 * (statistics.median(samples) - statistics.median(overhead))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20000, help="messages per warm measurement")
    parser.add_argument("--cold-rounds", type=int, default=2000, help="messages per cold measurement")
    parser.add_argument("--evict-mb", type=int, default=16, help="memory walked between cold messages")
    args = parser.parse_args()
    evict = bytearray(os.urandom(args.evict_mb << 20))
    out: dict[str, Any] = {"rounds": args.rounds, "cold_rounds": args.cold_rounds, "messages": {}}
    for kind, message in messages().items():
        rounds = max(200, args.rounds // 50) if kind == "append_64k" else args.rounds
        row: dict[str, Any] = {"warm_us": {}, "cold_us": {}, "frame_bytes": {}}
        for framing in (OldFraming(), NewFraming()):
            frame = framing.seal(message)
            assert framing.open(frame) == message
            row["frame_bytes"][framing.name] = len(frame)
            row["warm_us"][framing.name] = round(warm_us(framing, message, rounds), 2)
            cold_rounds = max(50, args.cold_rounds // 10) if kind == "append_64k" else args.cold_rounds
            row["cold_us"][framing.name] = round(cold_us(framing, message, cold_rounds, evict), 2)
        row["cold_speedup"] = round(row["cold_us"]["old"] / row["cold_us"]["new"], 2)
        out["messages"][kind] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
