"""The join port's request handling over in-memory streams (MockClock): garbage is counted and dropped,
a silent peer is cut off, wrong tokens are refused, and the service keeps answering afterwards."""

import secrets
import struct
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.membership.handshake import NONCE_BYTES, JoinerHandshake
from p2porch.membership.join_service import (
    AUTH_TIMEOUT_S,
    MAX_JOIN_FRAME,
    JoinService,
    receive_frame,
    send_frame,
)
from p2porch.membership.token import new_token
from p2porch.wire import encode_frame

CLUSTER_ID = "0123456789abcdef"
JOIN_TOKEN = new_token(CLUSTER_ID)
MEMBER_TOKEN = new_token(CLUSTER_ID)
TIMEOUT_S = 30.0


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Service:
    """A JoinService whose handlers record what reached them."""

    def __init__(self) -> None:
        self.joins: list[dict[str, Any]] = []
        self.member_requests: list[dict[str, Any]] = []

        async def join(request: dict[str, Any]) -> dict[str, Any]:
            self.joins.append(request)
            return {"welcome": request.get("name")}

        async def membership(request: dict[str, Any]) -> dict[str, Any]:
            self.member_requests.append(request)
            return {"role": "voter"}

        self.service = JoinService(
            lambda: JOIN_TOKEN,
            join,
            member_ops={"membership": membership},
            get_member_token=lambda: MEMBER_TOKEN,
            timeout_s=TIMEOUT_S,
        )

    @property
    def metrics(self) -> dict[str, int]:
        return self.service.metrics


async def connection(svc: Service, client_side: Any) -> None:
    """Serve one connection whose client end ``client_side(stream)`` drives; returns when both are done."""
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(svc.service._serve_connection, server, "10.0.0.9")
        async with client:
            await client_side(client)


async def join(stream: Any, token: Any, request: dict[str, Any], *, member: bool = False) -> dict[str, Any]:
    joiner = JoinerHandshake(token, secrets.token_bytes(NONCE_BYTES), secrets.token_bytes(12), member=member)
    await send_frame(stream, "hello", joiner.hello())
    challenge = await receive_frame(stream, "challenge")
    await send_frame(stream, "request", joiner.on_challenge(challenge, request))
    return joiner.open_reply(await receive_frame(stream, "reply"))


async def read_all(stream: Any) -> bytes:
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


def raw_sender(payload: bytes, answers: list[bytes]) -> Any:
    async def send(stream: Any) -> None:
        await stream.send_all(payload)
        await stream.send_eof()  # the sender is done (a partial frame stays partial)
        answers.append(await read_all(stream))  # until the server closes

    return send


async def test_a_good_join_and_a_member_request_are_answered(autojump_clock: Any) -> None:
    svc = Service()
    replies: list[dict[str, Any]] = []

    async def joiner(stream: Any) -> None:
        replies.append(await join(stream, JOIN_TOKEN, {"name": "n2"}))

    async def member(stream: Any) -> None:
        replies.append(await join(stream, MEMBER_TOKEN, {"op": "membership", "node_id": "x"}, member=True))

    await connection(svc, joiner)
    await connection(svc, member)
    assert replies == [{"welcome": "n2"}, {"role": "voter"}]
    assert svc.joins == [{"name": "n2"}] and svc.member_requests == [{"op": "membership", "node_id": "x"}]
    assert svc.metrics["accepted"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(bytes(range(256)) * 4, id="random bytes"),
        pytest.param(struct.pack(">I", MAX_JOIN_FRAME + 1) + b"x" * 64, id="oversized length"),
        pytest.param(struct.pack(">I", 100) + b"half a frame", id="truncated frame"),
        pytest.param(struct.pack(">I", len(f := encode_frame("request", {}))) + f, id="request before hello"),
        pytest.param(
            struct.pack(">I", len(f := encode_frame("hello", {"cluster_id": 7}))) + f, id="malformed hello"
        ),
        pytest.param(b"GET / HTTP/1.0\r\n\r\n", id="http"),
    ],
)
async def test_garbage_is_counted_and_dropped_and_the_service_keeps_working(
    autojump_clock: Any, payload: bytes
) -> None:
    svc = Service()
    start = trio.current_time()
    answers: list[bytes] = []
    await connection(svc, raw_sender(payload, answers))
    assert trio.current_time() - start < AUTH_TIMEOUT_S  # dropped at once, not after the deadline
    # nothing but (at most) one error frame comes back
    assert answers == [b""] or b"error" in answers[0][:40], answers
    assert svc.metrics["garbage"] + svc.metrics["refused"] == 1 and svc.metrics["accepted"] == 0
    assert svc.joins == [] and svc.member_requests == []
    replies: list[dict[str, Any]] = []

    async def joiner(stream: Any) -> None:
        replies.append(await join(stream, JOIN_TOKEN, {"name": "n3"}))

    await connection(svc, joiner)
    assert replies == [{"welcome": "n3"}]


async def test_a_silent_peer_is_cut_off_after_the_timeout(autojump_clock: Any) -> None:
    svc = Service()
    start = trio.current_time()

    async def silent(stream: Any) -> None:
        await stream.send_all(struct.pack(">I", 100) + b"slow")  # a partial frame, then nothing
        assert await read_all(stream) == b""  # the server closes on us

    await connection(svc, silent)
    assert trio.current_time() - start == pytest.approx(AUTH_TIMEOUT_S)  # the handshake deadline
    assert svc.joins == [] and svc.metrics["accepted"] == 0 and svc.metrics["auth_timeouts"] == 1


async def test_wrong_tokens_are_refused_with_a_reason_and_reach_no_handler(autojump_clock: Any) -> None:
    svc = Service()
    errors: list[str] = []

    async def attempt(token: Any, request: dict[str, Any], member: bool = False) -> None:
        async def side(stream: Any) -> None:
            try:
                await join(stream, token, request, member=member)
            except Exception as exc:  # AuthError from the joiner's side
                errors.append(str(exc))

        await connection(svc, side)

    await attempt(new_token(CLUSTER_ID), {"name": "intruder"})  # right cluster, wrong secret
    await attempt(new_token("fedcba9876543210"), {"name": "elsewhere"})  # another cluster
    # a join token admits a node, nothing more: member requests need the cluster token
    await attempt(JOIN_TOKEN, {"op": "membership"}, member=True)
    assert len(errors) == 3 and "another cluster" in errors[1] and CLUSTER_ID not in errors[1]
    assert svc.joins == [] and svc.member_requests == []
    # refused by the member (other cluster), or dropped once the joiner found the member's proof wrong
    assert svc.metrics["accepted"] == 0 and svc.metrics["refused"] + svc.metrics["garbage"] == 3


async def test_a_join_token_session_cannot_call_member_ops(autojump_clock: Any) -> None:
    svc = Service()
    replies: list[dict[str, Any]] = []

    async def side(stream: Any) -> None:
        replies.append(await join(stream, JOIN_TOKEN, {"op": "membership", "name": "n4"}))

    await connection(svc, side)
    # the request went to the join handler (as a join), never to the member operation
    assert svc.member_requests == [] and svc.joins == [{"op": "membership", "name": "n4"}]
