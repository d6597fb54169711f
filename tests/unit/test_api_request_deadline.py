"""The API's request deadline (api/deadline.py) as ASGI, on trio's autojump clock: a body still arriving
``timeout_s`` after the head is a 408 (the app cancelled, counted once); a body in time, a request without
a body, a handler slower than the deadline once its body is in, and a stream that lasts past it are not; a
deadline that fires as the last chunk arrives fails the request before the app sees the body."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from p2porch.api.deadline import RequestDeadline

TIMEOUT_S = 10.0


def scope(headers: list[tuple[bytes, bytes]], version: str = "1.1") -> dict:
    return {"type": "http", "http_version": version, "method": "POST", "path": "/v1/x", "headers": headers}


def trickle(chunks: int, every_s: float):
    """An ASGI receive: ``chunks`` one-byte body chunks, one each ``every_s`` seconds, then the end."""
    sent = 0

    async def receive() -> dict:
        nonlocal sent
        await trio.sleep(every_s)
        sent += 1
        return {"type": "http.request", "body": b"x", "more_body": sent < chunks}

    return receive


async def reading_app(scope, receive, send) -> None:
    """Reads the whole body, then answers with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def run(app, headers, receive, version: str = "1.1") -> tuple[list[dict], int]:
    sent: list[dict] = []
    timeouts = 0

    def counted() -> None:
        nonlocal timeouts
        timeouts += 1

    async def send(message: dict) -> None:
        sent.append(message)

    await RequestDeadline(app, TIMEOUT_S, counted)(scope(headers, version), receive, send)
    return sent, timeouts


async def test_a_body_sent_one_byte_a_second_is_cut_at_the_deadline(autojump_clock: trio.testing.MockClock):
    began = trio.current_time()
    sent, timeouts = await run(reading_app, [(b"content-length", b"100")], trickle(100, 1.0))
    assert trio.current_time() - began == pytest.approx(TIMEOUT_S)
    assert timeouts == 1 and sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    error = json.loads(sent[1]["body"])
    assert error["error"] == "ConfigError" and error["field"] == "body" and "10 s" in error["message"]


async def test_a_chunked_body_is_bounded_too(autojump_clock: trio.testing.MockClock):
    sent, timeouts = await run(reading_app, [(b"transfer-encoding", b"chunked")], trickle(1000, 0.5))
    assert timeouts == 1 and sent[0]["status"] == 408


async def test_an_http2_body_declared_by_no_header_is_bounded_too(autojump_clock: trio.testing.MockClock):
    sent, timeouts = await run(reading_app, [], trickle(1000, 0.5), version="2")
    assert timeouts == 1 and sent[0]["status"] == 408


async def test_a_body_that_arrives_in_time_is_served(autojump_clock: trio.testing.MockClock):
    sent, timeouts = await run(reading_app, [(b"content-length", b"9")], trickle(9, 1.0))
    assert timeouts == 0 and sent[0]["status"] == 200 and sent[1]["body"] == b"9"


async def test_a_deadline_firing_as_the_last_chunk_arrives_fails_before_the_app_sees_the_body(
    autojump_clock: trio.testing.MockClock,
):
    async def last_chunk_as_the_deadline_fires() -> dict:
        autojump_clock.jump(TIMEOUT_S)  # the deadline passes while the chunk is handed over:
        await trio.lowlevel.cancel_shielded_checkpoint()  # as trio's channels do, the run loop fires it here
        return {"type": "http.request", "body": b"x", "more_body": False}

    queued: list[bytes] = []

    async def proposes(scope, receive, send) -> None:
        queued.append((await receive())["body"])  # a proposal queued: it may commit
        await trio.sleep(0)  # before: cancelled here, after the proposal, and answered 408
        await send({"type": "http.response.start", "status": 200, "headers": []})

    sent, timeouts = await run(proposes, [(b"content-length", b"1")], last_chunk_as_the_deadline_fires)
    assert queued == [] and timeouts == 1 and sent[0]["status"] == 408


async def test_a_slow_handler_after_its_body_is_not_cut(autojump_clock: trio.testing.MockClock):
    async def slow(scope, receive, send) -> None:
        await receive()
        await trio.sleep(5 * TIMEOUT_S)  # a proposal waiting for its commit
        await send({"type": "http.response.start", "status": 200, "headers": []})

    sent, timeouts = await run(slow, [(b"content-length", b"1")], trickle(1, 0.1))
    assert timeouts == 0 and sent[0]["status"] == 200


async def test_a_response_started_before_the_body_is_not_cut(autojump_clock: trio.testing.MockClock):
    async def streams(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(5):
            await trio.sleep(TIMEOUT_S)
            await send({"type": "http.response.body", "body": b"{}\n", "more_body": True})

    sent, timeouts = await run(streams, [(b"content-length", b"5")], trickle(5, 100.0))
    assert timeouts == 0 and len(sent) == 6


async def test_a_request_without_a_body_has_no_deadline(autojump_clock: trio.testing.MockClock):
    async def long_poll(scope, receive, send) -> None:
        await trio.sleep(5 * TIMEOUT_S)
        await send({"type": "http.response.start", "status": 200, "headers": []})

    for headers in ([], [(b"content-length", b"0")]):
        sent, timeouts = await run(long_poll, headers, trickle(1, 0.0))
        assert timeouts == 0 and sent[0]["status"] == 200
