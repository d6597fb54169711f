"""The standard-library client of the unix socket against the real API server (hypercorn): JSON bodies,
query strings, a streamed (chunked) answer read line by line, and a socket nothing listens on."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from p2porch.api.client import ApiClient
from p2porch.api.server import Endpoint, serve_api
from p2porch.api.unix_http import UnixConnection, request_target
from p2porch.errors import DaemonError, DaemonUnreachable, NotFoundError


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="p2uh-", dir="/tmp"))  # unix socket paths must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_request_target_leaves_out_absent_parameters() -> None:
    assert request_target("/v1/x") == "/v1/x"
    assert request_target("/v1/x", {"a": "1 2", "b": None, "c": 3}) == "/v1/x?a=1+2&c=3"


async def echo(body: dict[str, Any], params: dict[str, str]) -> Any:
    return {"body": body, "name": params["name"]}


async def missing(body: dict[str, Any], params: dict[str, str]) -> Any:
    raise NotFoundError("no such thing", field="name")


async def numbers(body: dict[str, Any], params: dict[str, str]) -> Any:
    @asynccontextmanager
    async def opener() -> AsyncIterator[AsyncIterator[Any]]:
        async def items() -> AsyncIterator[Any]:
            for index in range(3):
                yield {"n": index, "pad": "x" * 5000}  # several chunks, each bigger than a read
                await trio.sleep(0.01)

        yield items()

    return opener


async def test_requests_and_a_stream_over_the_unix_socket(socket_dir: Path) -> None:
    socket_path = str(socket_dir / "api.sock")
    endpoints = [
        Endpoint("POST", "/echo/{name}", echo, "echo"),
        Endpoint("GET", "/missing", missing, "404"),
        Endpoint("GET", "/numbers", numbers, "stream", streaming=True),
    ]

    def drive() -> tuple[Any, Any, list[Any]]:
        client = ApiClient(f"unix://{socket_path}", timeout_s=10)
        try:
            posted = client.post("/echo/a", {"k": ["v", 1]})
            with pytest.raises(NotFoundError) as refused:
                client.get("/missing", q="1")
            streamed = list(client.stream("/numbers"))
        finally:
            client.close()
        return posted, refused.value.field, streamed

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, endpoints, socket_path)
        posted, field, streamed = await trio.to_thread.run_sync(drive)
        nursery.cancel_scope.cancel()

    assert posted == {"body": {"k": ["v", 1]}, "name": "a"}
    assert field == "name"
    assert [item["n"] for item in streamed] == [0, 1, 2] and len(streamed[2]["pad"]) == 5000


def test_a_socket_nothing_listens_on_is_unreachable(socket_dir: Path) -> None:
    client = ApiClient(f"unix://{socket_dir / 'none.sock'}", timeout_s=2)
    with pytest.raises(DaemonUnreachable, match="is it running"):
        client.post("/cluster/join", {})
    with pytest.raises(DaemonUnreachable):
        list(client.stream("/events"))


async def test_the_connection_is_kept_and_replaced_once_the_daemon_closed_it(socket_dir: Path) -> None:
    socket_path = str(socket_dir / "api.sock")
    endpoints = [Endpoint("POST", "/echo/{name}", echo, "echo")]
    client = ApiClient(f"unix://{socket_path}", timeout_s=10)
    transport = client._unix
    assert transport is not None

    def twice() -> tuple[Any, bool]:
        client.post("/echo/a", {})
        first = transport._kept
        client.post("/echo/b", {})
        return first, transport._kept is first

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_api, endpoints, socket_path)
            first, reused = await trio.to_thread.run_sync(twice)
            nursery.cancel_scope.cancel()  # the daemon goes away: the kept connection is closed by it
        assert first is not None and reused
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_api, endpoints, socket_path)  # the daemon is back
            again = await trio.to_thread.run_sync(lambda: client.post("/echo/c", {"x": 1}))
            nursery.cancel_scope.cancel()
        assert again == {"body": {"x": 1}, "name": "c"}
        assert transport._kept is not first
    finally:
        client.close()


def _one_answer(socket_path: str, answer: bytes) -> threading.Thread:
    """A socket that reads one request, writes ``answer`` and closes (a daemon that stops mid-answer)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(1)

    def serve() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "answer",
    [
        CHUNKED + b'9\r\n{"n": 0}\n\r\n' + b'20\r\n{"n": 1, "pa',  # cut inside a chunk
        b"HTTP/1.1 500 Internal\r\nContent-Length: 50\r\n\r\n{",  # an error body cut short
    ],
    ids=["mid-chunk", "error-body"],
)
def test_a_stream_the_daemon_breaks_off_is_a_daemon_error(socket_dir: Path, answer: bytes) -> None:
    socket_path = str(socket_dir / "api.sock")
    thread = _one_answer(socket_path, answer)
    client = ApiClient(f"unix://{socket_path}", timeout_s=5)
    got: list[Any] = []
    with pytest.raises(DaemonError, match="broke off") as broke:
        got.extend(client.stream("/events"))
    thread.join(5)
    assert not isinstance(broke.value, DaemonUnreachable)  # it was reached: `init` must not start one
    assert got == ([{"n": 0}] if answer.startswith(CHUNKED) else [])


def test_a_socket_we_may_not_use_is_denied_not_unreachable(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-root user and the daemon's 0600 socket (root is never refused, so the refusal is injected
    # where connect(2) returns it): the daemon may be running, and `init`/`join` must not start another.
    def refused(self: UnixConnection) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(UnixConnection, "connect", refused)
    client = ApiClient(f"unix://{socket_dir / 'api.sock'}", timeout_s=2)
    for attempt in (lambda: client.post("/cluster/join", {}), lambda: list(client.stream("/events"))):
        with pytest.raises(DaemonError, match="no permission") as denied:
            attempt()
        assert not isinstance(denied.value, DaemonUnreachable)


async def test_a_kept_connection_is_checked_in_a_process_with_many_files_open(socket_dir: Path) -> None:
    socket_path = str(socket_dir / "api.sock")
    endpoints = [Endpoint("POST", "/echo/{name}", echo, "echo")]
    files = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]  # the socket's descriptor > 1023
    client = ApiClient(f"unix://{socket_path}", timeout_s=10)
    try:

        def twice() -> list[Any]:
            return [client.post("/echo/a", {}), client.post("/echo/b", {})]  # the second checks the first

        async with trio.open_nursery() as nursery:
            await nursery.start(serve_api, endpoints, socket_path)
            answers = await trio.to_thread.run_sync(twice)
            nursery.cancel_scope.cancel()
        assert [a["name"] for a in answers] == ["a", "b"]
    finally:
        client.close()
        for fd in files:
            os.close(fd)


async def test_a_name_with_a_space_question_mark_hash_or_percent_arrives_whole(socket_dir: Path) -> None:
    """``service rm 'web?x'`` sent DELETE /v1/services/web?x: the daemon removed ``web``; a space broke
    the request ("URL can't contain control characters")."""
    socket_path = str(socket_dir / "api.sock")
    endpoints = [Endpoint("POST", "/echo/{name}", echo, "echo")]
    names = ["web?x=1", "my web", "a#b", "100%", "ü"]

    def drive() -> list[str]:
        client = ApiClient(f"unix://{socket_path}", timeout_s=10)
        try:
            return [client.post(f"/echo/{name}", {})["name"] for name in names]
        finally:
            client.close()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, endpoints, socket_path)
        echoed = await trio.to_thread.run_sync(drive)
        nursery.cancel_scope.cancel()
    assert echoed == names
