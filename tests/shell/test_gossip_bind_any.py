"""Port 0: the kernel picks a free UDP port whose TCP twin may be taken by another process; the
transport then picks another instead of failing (a real EADDRINUSE from the kernel)."""

from __future__ import annotations

import errno
import socket

import pytest

from p2porch.gossip.keyring import derive_gossip_key
from p2porch.gossip.transport import Transport


async def test_port_zero_tries_again_when_the_tcp_twin_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()  # a TCP listener on a port whose UDP twin is free
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    transport = Transport(derive_gossip_key(b"k"), {}, 1.0, name="a")
    real = transport._bind_pair
    ports: list[int] = []

    async def first_on_the_taken_port(host: str, port: int) -> str:  # the kernel's unlucky pick, made
        ports.append(port)
        return await real(host, busy if len(ports) == 1 else port)

    monkeypatch.setattr(transport, "_bind_pair", first_on_the_taken_port)
    try:
        addr = await transport.bind("127.0.0.1", 0)
        # the kernel's next pick may be unlucky too (its TCP twin held by any other socket on the
        # machine: a tier run, other sandboxes): then it tries again, as it should. ``== [0, 0]`` failed
        # once in a tier run for that reason
        assert ports[:2] == [0, 0] and set(ports) == {0} and not addr.endswith(f":{busy}")
        with pytest.raises(OSError) as info:  # a port asked for by number is never replaced
            await Transport(derive_gossip_key(b"k"), {}, 1.0, name="b").bind("127.0.0.1", busy)
        assert info.value.errno == errno.EADDRINUSE
    finally:
        transport.close()
        taken.close()


async def test_port_zero_tries_as_often_as_the_kernel_picks_taken_twins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two unlucky picks in a row (on a busy machine any socket may hold a TCP twin): a third try."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    transport = Transport(derive_gossip_key(b"k"), {}, 1.0, name="a")
    real = transport._bind_pair
    ports: list[int] = []

    async def twice_on_the_taken_port(host: str, port: int) -> str:
        ports.append(port)
        return await real(host, busy if len(ports) <= 2 else port)

    monkeypatch.setattr(transport, "_bind_pair", twice_on_the_taken_port)
    try:
        addr = await transport.bind("127.0.0.1", 0)
        assert ports == [0, 0, 0] and not addr.endswith(f":{busy}")
    finally:
        transport.close()
        taken.close()
