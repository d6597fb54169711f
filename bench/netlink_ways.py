"""CPU per peer entry of four ways to program a peer's FDB entry, neighbour and route (diagnostic; root).

    python bench/netlink_ways.py [--peers 1] [--rounds 40]

In an anonymous network namespace of its own (``unshare -n``, gone with the process), with a VXLAN
device, one process alternates, round after round, between: ``IPRoute`` one request each (main before
the eleventh round), ``IPBatch`` through its synchronous calls and one send, ``IPBatch`` compiled in one
run of its event loop and one send (``netoverlay/netlink_batch.py``), and pyroute2's message classes
(``rtmsg``/``ndmsg`` fields set here, ``encode()``) and one send. Every way sends ``--peers`` new peers'
entries per pass and reads every answer. Prints one JSON line: user+sys CPU ms per entry for each way.
docs/performance.md, "The eleventh round".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NLM_F = {"request": 0x1, "ack": 0x4, "replace": 0x100, "create": 0x400, "append": 0x800}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(peers: int, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, ROOT)
    from pyroute2.netlink.rtnl import RTM_NEWNEIGH, RTM_NEWROUTE
    from pyroute2.netlink.rtnl.ndmsg import ndmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    from p2porch.netoverlay.netlink_classes import load, load_batch

    iproute_class, _ = load()
    batch_class, _ = load_batch()
    for cmd in (
        "link add vx0 type vxlan id 42 dstport 4789",
        "link set vx0 up",
        "addr add 10.99.0.1/24 dev vx0",
    ):
        subprocess.run(["ip", *cmd.split()], check=True)
    ipr, ipb = iproute_class(), batch_class()
    index = ipr.link_lookup(ifname="vx0")[0]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, 0))
    counter = iter(range(1, 1 << 20))

    def new_peers() -> list[tuple[str, str, str]]:
        """(MAC, /24 prefix, underlay address) of ``peers`` peers not programmed yet."""
        out = []
        for _ in range(peers):
            i = next(counter)
            mac = f"02:00:00:{i // 65536:02x}:{i // 256 % 256:02x}:{i % 256:02x}"
            out.append((mac, f"10.{100 + i // 250}.{i % 250}", f"192.168.{i // 250}.{i % 250 + 1}"))
        return out

    def requests(batch: list[tuple[str, str, str]]) -> list[tuple[str, str, dict[str, Any]]]:
        fdb = [("fdb", "append", {"ifindex": index, "lladdr": m, "dst": d}) for m, _, d in batch]
        neigh = [
            ("neigh", "replace", {"dst": f"{n}.1", "lladdr": m, "ifindex": index, "state": "permanent"})
            for m, n, _ in batch
        ]
        route = [
            ("route", "replace", {"dst": f"{n}.0/24", "gateway": f"{n}.1", "oif": index, "flags": ["onlink"]})
            for _, n, _ in batch
        ]
        return fdb + neigh + route

    def send_and_check(data: bytes, count: int) -> None:
        sock.send(data)
        for _ in range(count):  # one answer per datagram
            answer = sock.recv(65536)
            if struct.unpack_from("=i", answer, 16)[0] != 0:
                raise SystemExit(f"an entry failed: {answer!r}")

    def iproute_requests(batch: list[tuple[str, str, str]]) -> None:
        for method, command, arguments in requests(batch):
            getattr(ipr, method)(command, **arguments)

    def ipbatch_sync(batch: list[tuple[str, str, str]]) -> None:
        reqs = requests(batch)
        for method, command, arguments in reqs:
            getattr(ipb, method)(command, **arguments)
        data = bytes(ipb.batch)
        ipb.reset()
        send_and_check(data, len(reqs))

    def ipbatch_one_run(batch: list[tuple[str, str, str]]) -> None:
        reqs, core = requests(batch), ipb.asyncore

        async def compile_all() -> None:
            for method, command, arguments in reqs:
                await getattr(core, method)(command, **arguments)

        core.event_loop.run_until_complete(compile_all())
        data = bytes(ipb.batch)
        ipb.reset()
        send_and_check(data, len(reqs))

    def message_classes(batch: list[tuple[str, str, str]]) -> None:
        out = bytearray()
        new = NLM_F["request"] | NLM_F["ack"] | NLM_F["create"]
        for mac, _, dst in batch:  # bridge fdb append: NUD_NOARP|NUD_PERMANENT, NTF_SELF
            msg = ndmsg()
            msg["family"], msg["ifindex"], msg["state"], msg["flags"] = socket.AF_BRIDGE, index, 0xC0, 0x2
            msg["attrs"] = [("NDA_LLADDR", mac), ("NDA_DST", dst)]
            msg["header"]["type"], msg["header"]["flags"] = RTM_NEWNEIGH, new | NLM_F["append"]
            msg.encode()
            out += msg.data
        for mac, net, _ in batch:
            msg = ndmsg()
            msg["family"], msg["ifindex"], msg["state"] = socket.AF_INET, index, 0x80
            msg["attrs"] = [("NDA_DST", f"{net}.1"), ("NDA_LLADDR", mac)]
            msg["header"]["type"], msg["header"]["flags"] = RTM_NEWNEIGH, new | NLM_F["replace"]
            msg.encode()
            out += msg.data
        for _, net, _ in batch:  # proto static, type unicast, onlink
            msg = rtmsg()
            msg["family"], msg["dst_len"], msg["table"], msg["proto"], msg["type"], msg["flags"] = (
                socket.AF_INET, 24, 254, 4, 1, 4
            )  # fmt: skip
            msg["attrs"] = [("RTA_DST", f"{net}.0"), ("RTA_GATEWAY", f"{net}.1"), ("RTA_OIF", index)]
            msg["header"]["type"], msg["header"]["flags"] = RTM_NEWROUTE, new | NLM_F["replace"]
            msg.encode()
            out += msg.data
        send_and_check(bytes(out), 3 * len(batch))

    ways: list[Callable[[list[tuple[str, str, str]]], None]] = [
        iproute_requests,
        ipbatch_sync,
        ipbatch_one_run,
        message_classes,
    ]
    for way in ways:  # warm up
        way(new_peers())
    spent = dict.fromkeys((way.__name__ for way in ways), 0.0)
    for _ in range(rounds):
        for way in ways:
            batch = new_peers()
            before = cpu()
            way(batch)
            spent[way.__name__] += cpu() - before
    routes = len(ipr.get_routes(oif=index, table=254))
    if routes < (rounds + 1) * len(ways) * peers:
        raise SystemExit(f"only {routes} routes landed")
    entries = rounds * peers * 3
    return {
        "peers_per_pass": peers,
        "cpu_ms_per_entry": {name: round(s / entries * 1000, 3) for name, s in spent.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    if os.environ.get("P2PORCH_NETLINK_WAYS_NETNS") != "1":  # in a namespace of our own, then measure there
        env = {**os.environ, "P2PORCH_NETLINK_WAYS_NETNS": "1"}
        os.execvpe("unshare", ["unshare", "-n", sys.executable, *sys.argv], env)
    print(json.dumps({"load": os.getloadavg()[0], **measure(args.peers, args.rounds)}))


if __name__ == "__main__":
    main()
