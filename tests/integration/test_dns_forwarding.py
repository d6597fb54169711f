"""Forwarding to a real dnsmasq upstream on loopback, and SERVFAIL once it is stopped."""

from __future__ import annotations

import getpass
import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import trio

from p2porch.dns.resolver import Resolver
from p2porch.dns.server import ServerCounters, serve_dns
from p2porch.dns.zone import TaskEntry, ZoneData

DNSMASQ = "/usr/sbin/dnsmasq"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq (dnsmasq-base) not installed"),
]


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on `host` (checked, then released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


class Dnsmasq:
    def __init__(self, proc: subprocess.Popen[bytes], addr: tuple[str, int]) -> None:
        self.proc = proc
        self.addr = addr

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    host = f"127.0.0.{random.randint(2, 250)}"
    port = free_port(host)
    hosts = tmp_path / "hosts"
    hosts.write_text("198.51.100.10 www.upstream.test\n198.51.100.11 www.upstream.test\n")
    hosts.chmod(0o644)
    tmp_path.chmod(0o755)
    cmd = [
        DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}", "--conf-file=/dev/null",
        "--pid-file", f"--port={port}", f"--listen-address={host}", "--bind-interfaces", "--local-ttl=5",
        f"--user={getpass.getuser()}",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Dnsmasq(proc, (host, port))
    try:
        q = dns.message.make_query("www.upstream.test", "A")
        for _ in range(100):
            if proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {proc.stderr.read() if proc.stderr else b''!r}")
            try:
                dns.query.udp(q, host, port=port, timeout=0.1)
                break
            except (dns.exception.Timeout, ConnectionRefusedError):
                continue
        yield server
    finally:
        server.stop()


async def ask(addr: tuple[str, int], name: str, *, tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, "A")
    send = dns.query.tcp if tcp else dns.query.udp
    result: dns.message.Message = await trio.to_thread.run_sync(
        lambda: send(q, addr[0], timeout=5, port=addr[1])
    )
    return result


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rd.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


async def test_forwards_to_dnsmasq_then_servfail_when_it_stops(
    dnsmasq: Dnsmasq, nursery: trio.Nursery
) -> None:
    resolver = Resolver(ZoneData(services={"web": [TaskEntry(1, "10.240.1.2")]}))
    counters = ServerCounters()
    bound = await nursery.start(
        lambda task_status: serve_dns(
            resolver,
            [("127.0.0.1", 0)],
            [dnsmasq.addr],
            timeout_s=1.0,
            counters=counters,
            task_status=task_status,
        )
    )
    addr = bound[0]
    for tcp in (False, True):
        response = await ask(addr, "www.upstream.test", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert addresses(response) == ["198.51.100.10", "198.51.100.11"]
    assert (await ask(addr, "missing.upstream.test")).rcode() in (dns.rcode.NXDOMAIN, dns.rcode.REFUSED)
    assert addresses(await ask(addr, "web.p2p")) == ["10.240.1.2"]
    assert counters.forward_replies == 3

    dnsmasq.stop()
    with trio.fail_after(4):
        for tcp in (False, True):
            response = await ask(addr, "www.upstream.test", tcp=tcp)
            assert response.rcode() == dns.rcode.SERVFAIL
    assert counters.servfail == 2
    assert addresses(await ask(addr, "web.p2p")) == ["10.240.1.2"]  # the cluster domain still answers
