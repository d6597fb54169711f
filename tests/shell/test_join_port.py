"""The join port against strangers on real loopback sockets (docs/security.md, "Join port")."""

import logging

import trio

from p2porch.membership.join_service import JoinService, loggable, receive_frame, request_join, send_frame
from p2porch.membership.token import new_token

TOKEN = new_token()


async def _start(nursery, **kwargs):
    async def handle(request, source):
        return {"ok": True, "you": request.get("name")}

    service = JoinService(lambda: TOKEN, handle, **kwargs)
    port = await nursery.start(service.serve, "127.0.0.1", 0)
    return service, port


async def _closed(stream):
    """Wait until the peer closed (or reset) the connection."""
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass


def test_loggable_escapes_newlines_and_control_characters_and_bounds_the_length():
    text = "evil\nWARNING forged line\r\x1b[31m" + "x" * 500
    out = loggable(text)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out
    assert out.startswith("evil\\nWARNING forged line\\r\\x1b[31m")
    assert len(out) < 200 and out.endswith("more chars)")


async def test_a_stranger_learns_nothing_about_the_cluster_and_refusals_are_logged_escaped(caplog):
    caplog.set_level(logging.WARNING, logger="p2porch.membership.join_service")
    async with trio.open_nursery() as nursery:
        service, port = await _start(nursery)
        forged = "0" * 16 + "\nCRITICAL p2porch: forged " + "y" * 3000
        for _ in range(20):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await send_frame(stream, "hello", {"cluster_id": forged, "nonce_j": b"n" * 16})
                reply = await receive_frame(stream, "challenge")
            assert reply == {"error": "the token is for another cluster"}
            assert TOKEN.cluster_id not in str(reply)
        assert service.metrics["refused"] == 20
        lines = [r.getMessage() for r in caplog.records if "refused a join attempt" in r.getMessage()]
        assert 1 <= len(lines) <= 6  # rate limited: a burst of 5 (+1 if the clock ticked), not 20
        assert service.metrics["refusals_not_logged"] == 20 - len(lines)
        for line in lines:
            assert "\n" not in line and len(line) < 600 and TOKEN.cluster_id not in line
        # a legitimate joiner still gets in
        assert (await request_join("127.0.0.1", port, TOKEN, {"name": "n2"}, timeout_s=5))["you"] == "n2"
        nursery.cancel_scope.cancel()


async def test_connections_are_capped_and_idle_strangers_are_cut_after_the_auth_deadline():
    async with trio.open_nursery() as nursery:
        service, port = await _start(nursery, auth_timeout_s=1.0, per_source=3, max_connections=5)
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(4)]
        with trio.fail_after(5):
            await _closed(idle[3])  # the fourth from one address is closed at once
        assert service.metrics["rejected_connections"] == 1
        # another address is still served while those three are held open
        other = [await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2") for _ in range(2)]
        third = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.3")
        with trio.fail_after(5):
            await _closed(third)  # the total cap (5) is reached now
        assert service.metrics["rejected_connections"] == 2
        with trio.fail_after(5):
            for stream in idle[:3] + other:
                await _closed(stream)  # cut by the 1 s auth deadline, not the 30 s request timeout
        assert service.metrics["auth_timeouts"] == 5
        assert (await request_join("127.0.0.1", port, TOKEN, {"name": "n2"}, timeout_s=5))["you"] == "n2"
        nursery.cancel_scope.cancel()


async def test_an_oversized_hello_is_refused_before_it_is_read():
    async with trio.open_nursery() as nursery:
        service, port = await _start(nursery)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all((200 * 1024).to_bytes(4, "big") + b"z" * 8192)
        with trio.fail_after(5):
            await _closed(stream)
        assert service.metrics["garbage"] == 1
        nursery.cancel_scope.cancel()


async def test_a_join_to_a_closed_port_says_why_and_what_to_check():
    import socket

    import pytest

    from p2porch.errors import P2POrchError

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(P2POrchError) as caught:
        await request_join("127.0.0.1", port, TOKEN, {"name": "n2"}, timeout_s=5)
    message = caught.value.message
    assert message.startswith(f"join: cannot connect to 127.0.0.1:{port} (Connection refused): ")
    assert "all attempts" not in message and "in a cluster" in message


def test_a_name_that_does_not_resolve_keeps_the_resolvers_words():
    import socket

    from p2porch.membership.join_service import connect_failure

    failure = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert connect_failure(failure) == "Name or service not known"
