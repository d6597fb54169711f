"""Compose links through the trio DNS server on loopback: two querying sources, each a task of a service
that links the same alias to a different service, get different answers for it (UDP with both fast
paths, TCP, and dig); a third task, of a service without links, does not resolve it."""

from __future__ import annotations

import shutil
import subprocess
from functools import partial

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import trio

from p2porch.dns import mmsg
from p2porch.dns import server as server_mod
from p2porch.dns.resolver import Resolver
from p2porch.dns.scope import ClientScopes, ScopeData
from p2porch.dns.server import serve_dns
from p2porch.dns.zone import TaskEntry, ZoneData

EXPORTER_0, EXPORTER_1, PLAIN = "127.0.0.2", "127.0.0.3", "127.0.0.4"  # the querying tasks' addresses

ZONE = ZoneData(
    domain="p2p",
    services={
        "chat-tinode-0": [TaskEntry(1, "10.240.1.10")],
        "chat-tinode-1": [TaskEntry(1, "10.240.1.11")],
        "chat-exporter-0": [TaskEntry(1, EXPORTER_0)],
        "chat-exporter-1": [TaskEntry(1, EXPORTER_1)],
        "chat-web": [TaskEntry(1, PLAIN)],
    },
    nodes={"n1": "10.0.0.1"},
)
BACK = frozenset({"chat_default"})
SCOPES = ScopeData(
    services_by_network={"chat_default": frozenset(ZONE.services)},
    clients={EXPORTER_0: BACK, EXPORTER_1: BACK, PLAIN: BACK},
    links={
        "chat-exporter-0": (("tinode.host", "chat-tinode-0"),),
        "chat-exporter-1": (("tinode.host", "chat-tinode-1"),),
    },
    linkers={EXPORTER_0: "chat-exporter-0", EXPORTER_1: "chat-exporter-1"},
)


def _addresses(reply: dns.message.Message) -> tuple[int, list[str]]:
    found = sorted(rd.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)
    return reply.rcode(), found


async def _ask(addr: tuple[str, int], name: str, source: str, *, tcp: bool = False) -> tuple[int, list[str]]:
    query = dns.message.make_query(name, "A")
    send = dns.query.tcp if tcp else dns.query.udp
    reply = await trio.to_thread.run_sync(
        lambda: send(query, addr[0], timeout=5, port=addr[1], source=source)
    )
    return _addresses(reply)


def _dig(addr: tuple[str, int], name: str, source: str) -> list[str]:
    out = subprocess.run(
        ["dig", "+short", "+tries=1", "+time=3", "-b", source, "-p", str(addr[1]), f"@{addr[0]}", name, "A"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return sorted(out.stdout.split())


@pytest.fixture(params=["mmsg", "plain"])
def udp_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's UDP loop: batched recvmmsg/sendmmsg, or the portable recvfrom/sendto one."""
    if request.param == "mmsg" and not mmsg.available():
        pytest.skip("recvmmsg/sendmmsg not available here")
    monkeypatch.setattr(server_mod, "USE_MMSG", request.param == "mmsg")
    return str(request.param)


async def test_each_linking_task_resolves_the_alias_to_its_own_target(
    nursery: trio.Nursery, udp_loop: str
) -> None:
    default = Resolver(ZONE)
    scopes = ClientScopes(default, Resolver)
    scopes.update(ZONE, SCOPES)
    serve = partial(serve_dns, default, [("127.0.0.1", 0)], [], timeout_s=1.0, scopes=scopes)
    addr = (await nursery.start(serve))[0]
    for _ in range(2):  # the second round is answered from each scope's cache
        assert await _ask(addr, "tinode.host", EXPORTER_0) == (dns.rcode.NOERROR, ["10.240.1.10"])
        assert await _ask(addr, "tinode.host", EXPORTER_1) == (dns.rcode.NOERROR, ["10.240.1.11"])
        assert await _ask(addr, "tinode.host.p2p", EXPORTER_1) == (dns.rcode.NOERROR, ["10.240.1.11"])
        assert (await _ask(addr, "tinode.host.p2p", PLAIN))[0] == dns.rcode.NXDOMAIN
    assert await _ask(addr, "tinode.host", EXPORTER_0, tcp=True) == (dns.rcode.NOERROR, ["10.240.1.10"])
    assert await _ask(addr, "tinode.host", EXPORTER_1, tcp=True) == (dns.rcode.NOERROR, ["10.240.1.11"])
    if shutil.which("dig"):
        assert await trio.to_thread.run_sync(_dig, addr, "tinode.host", EXPORTER_0) == ["10.240.1.10"]
        assert await trio.to_thread.run_sync(_dig, addr, "tinode.host", EXPORTER_1) == ["10.240.1.11"]
