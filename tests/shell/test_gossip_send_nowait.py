"""The transport's send without await: an IP address is sent at once and arrives sealed; a host name,
or garbage, is left to the awaiting path (False) without a lookup or an exception."""

from __future__ import annotations

import trio

from p2porch.gossip.keyring import Keyring, derive_gossip_key
from p2porch.gossip.messages import Ack
from p2porch.gossip.transport import Transport


def test_send_packet_nowait_sends_to_an_ip_and_leaves_names_to_the_async_path() -> None:
    async def main() -> None:
        key = Keyring(derive_gossip_key(b"s" * 32))
        sender = Transport(key, {}, 1.0, name="a")
        receiver = Transport(key, {}, 1.0, name="b")
        await sender.bind("127.0.0.1", 0)
        target = await receiver.bind("127.0.0.1", 0)
        got: list[tuple[str, list[object]]] = []
        arrived = trio.Event()

        async def handler(src: str, msgs: list[object]) -> None:
            got.append((src, msgs))
            arrived.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver.serve_udp, handler)
            assert sender.send_packet_nowait(target, [Ack(7)])
            with trio.fail_after(5):
                await arrived.wait()
            nursery.cancel_scope.cancel()
        assert got == [(sender.addr, [Ack(7)])]
        assert sender.metrics["udp_packets_out"] == 1
        assert not sender.send_packet_nowait("localhost:7946", [Ack(8)])  # a name: resolved by trio
        assert not sender.send_packet_nowait("garbage", [Ack(9)])
        assert sender.metrics["udp_packets_out"] == 1
        sender.close()
        receiver.close()

    trio.run(main)
