"""Evidence of a request that failed through the ingress mesh (helpers of ``test_ingress.py``).

``traced_get`` makes one request and keeps its client source port, whatever happened; ``conntrack_of``
reads a node's conntrack entry of one client tuple (which backend it was DNATed to, in which state) and
the node's unanswered entries; ``RuleSampler`` records, per node, when the set of DNAT targets in its
nat table changed. A failure's report names the request (time, source port, phase), what the same
source port got before (a reused tuple), the node's entry for it and the backend sets' timeline.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from p2porch.sandbox.sandbox import SandboxNode
from p2porch.sandbox.system import find_program

#: run in a node's namespace: print its entry of one original tuple and every TCP entry without a reply
CONNTRACK_SCRIPT = r"""
import socket, sys
from p2porch.netoverlay.netlink_classes import load_conntrack
from p2porch.netoverlay.conntrack_flush import _entry_of
Conntrack, Tuple, NetlinkError, Entry = load_conntrack()
saddr, daddr, sport, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ct = Conntrack()
wanted = Tuple(proto=socket.IPPROTO_TCP, saddr=saddr, daddr=daddr, sport=sport, dport=dport)
try:
    m = ct.entry("get", tuple_orig=wanted)
    print("entry:", m and _entry_of(Entry, m), "timeout", m and m.get_attr("CTA_TIMEOUT"))
except NetlinkError as exc:
    print("entry: none", exc)
for m in ct.dump(status=0, status_mask=2):
    e = _entry_of(Entry, m)
    if e.tuple_orig.proto == socket.IPPROTO_TCP:
        print("unanswered:", e, "timeout", m.get_attr("CTA_TIMEOUT"))
ct.close()
"""


def _in_netns(node: SandboxNode, argv: list[str], timeout_s: float = 20) -> str:
    nsenter = find_program("nsenter") or "nsenter"
    result = subprocess.run(
        [nsenter, f"--net=/var/run/netns/{node.netns}", *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return (result.stdout + result.stderr).strip()


def conntrack_of(node: SandboxNode, client: str, sport: int, dport: int) -> str:
    """``node``'s conntrack entry of ``client:sport -> node:dport`` and its unanswered TCP entries."""
    argv = [sys.executable, "-c", CONNTRACK_SCRIPT, client, node.address, str(sport), str(dport)]
    return _in_netns(node, argv)


class TracedError(OSError):
    """A failed request, with the client source port it used (0: none was bound) and its phase."""

    def __init__(self, exc: BaseException, sport: int, phase: str) -> None:
        super().__init__(f"{exc} (sport {sport}, {phase})")
        self.sport = sport
        self.phase = phase


def traced_get(address: str, port: int, path: str, timeout_s: float = 3.0) -> tuple[int, str]:
    """GET ``path`` as urllib would (HTTP/1.1, ``Connection: close``, a new connection): (source port,
    body); a failure raises ``TracedError`` naming the source port and the phase (connect, response)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    sport, phase = 0, "connect"
    try:
        try:
            sock.connect((address, port))
        finally:
            sport = sock.getsockname()[1]
        phase = "response"
        conn = http.client.HTTPConnection(address, port, timeout=timeout_s)
        conn.sock = sock
        conn.request("GET", path, headers={"Connection": "close"})
        body = conn.getresponse().read().decode()
        return sport, body
    except OSError as exc:
        raise TracedError(exc, sport, phase) from exc
    finally:
        sock.close()


@dataclass
class RuleSampler:
    """Samples each node's nat DNAT targets every ``interval_s``; keeps (time, node, targets) on change."""

    nodes: list[SandboxNode]
    interval_s: float = 0.3
    changes: list[tuple[float, str, tuple[str, ...]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        last: dict[str, tuple[str, ...]] = {}
        while not self._stop.is_set():
            for node in self.nodes:
                text = _in_netns(node, ["iptables", "-w", "-t", "nat", "-S"], 10)
                targets = tuple(sorted(set(re.findall(r"--to-destination (\S+)", text))))
                if last.get(node.name) != targets:
                    last[node.name] = targets
                    self.changes.append((time.time(), node.name, targets))
            self._stop.wait(self.interval_s)

    def timeline(self) -> str:
        return "\n".join(f"{stamp(t)} {name}: {' '.join(targets)}" for t, name, targets in self.changes)


def stamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
