"""The WAN between the sites of a multi-site sandbox: a userspace Ethernet hub with delay and loss.

This machine's kernel has no ``sch_netem`` (``tc qdisc ... netem`` fails with "Specified qdisc kind is
unknown"), so the WAN is emulated here instead: each site router has a persistent TAP device ``wan0``
(made with ``ip tuntap``); this process attaches to all of them and forwards every Ethernet frame to
the router(s) it is for (MAC learning, flooding unknown and broadcast destinations) after half the
configured round trip, dropping each frame with the configured probability (seeded RNG).

:class:`WanSchedule` is the pure part (which frame goes where, when, or is lost); :func:`serve` is the
shell (namespaces, TAP file descriptors, a ``select`` loop). It only ever touches the TAP devices it is
given, inside namespaces that exist; it stops on SIGTERM. Run: ``python -m p2porch.sandbox.wanlink
--tap NETNS:DEV ... --delay-ms 40 --loss-percent 1 --pid-file F``.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import time
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65536
MAX_QUEUED = 20000  # frames in flight; beyond that new frames are dropped (bounded memory)


@dataclass
class WanSchedule:
    """Decides, for each frame from port ``i``, which ports get it and when (pure; seeded)."""

    ports: int
    one_way_delay_s: float
    loss: float  # probability in 0..1, per frame and destination
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    macs: dict[bytes, int] = field(default_factory=dict)  # learned source MAC -> port
    dropped: int = 0
    forwarded: int = 0

    def route(self, now: float, port: int, frame: bytes) -> list[tuple[float, int]]:
        """(deliver_at, destination port) for a frame received on ``port``; lost copies are counted."""
        if len(frame) < 14:
            self.dropped += 1
            return []
        dst, src = frame[0:6], frame[6:12]
        if not src[0] & 1:
            self.macs[src] = port
        known = self.macs.get(dst)
        targets = [known] if known is not None and not dst[0] & 1 else range(self.ports)
        out = []
        for target in targets:
            if target == port:
                continue
            if self.loss and self.rng.random() < self.loss:
                self.dropped += 1
                continue
            self.forwarded += 1
            out.append((now + self.one_way_delay_s, target))
        return out


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tap(netns: str, dev: str) -> int:
    """Attach to the persistent TAP device ``dev`` inside namespace ``netns``; returns its fd."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(f"/var/run/netns/{netns}")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TAP | IFF_NO_PI))
        except OSError:
            os.close(fd)
            raise
        return fd
    finally:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns(home, CLONE_NEWNET)
        os.close(home)


def serve(fds: list[int], schedule: WanSchedule) -> None:
    """Forward frames between the TAP fds per ``schedule`` until SIGTERM/SIGINT."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    queue: list[tuple[float, int, int, bytes]] = []  # (deliver_at, sequence, port, frame)
    sequence = 0
    index = {fd: i for i, fd in enumerate(fds)}
    while not stop:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, port, frame = heapq.heappop(queue)
            try:
                os.write(fds[port], frame)
            except OSError:  # the router's link is down (a cut site) or its queue is full
                schedule.dropped += 1
        timeout = max(0.0, queue[0][0] - now) if queue else 0.5
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            for _ in range(64):  # bounded work per wakeup
                try:
                    frame = os.read(fd, MAX_FRAME)
                except (BlockingIOError, OSError):
                    break
                for deliver_at, port in schedule.route(now, index[fd], frame):
                    if len(queue) >= MAX_QUEUED:
                        schedule.dropped += 1
                        continue
                    sequence += 1
                    heapq.heappush(queue, (deliver_at, sequence, port, frame))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2porch.sandbox.wanlink", description=__doc__)
    parser.add_argument("--tap", action="append", required=True, metavar="NETNS:DEV")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="round trip between two sites")
    parser.add_argument("--loss-percent", type=float, default=0.0, help="per frame and direction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pid-file")
    args = parser.parse_args(argv)
    fds = [open_tap(*spec.split(":", 1)) for spec in args.tap]
    schedule = WanSchedule(
        len(fds), args.delay_ms / 2000.0, args.loss_percent / 100.0, random.Random(args.seed)
    )
    if args.pid_file:
        with open(args.pid_file, "w") as handle:
            handle.write(str(os.getpid()))
    serve(fds, schedule)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
