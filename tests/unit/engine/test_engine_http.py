"""The Engine API client's HTTP framing against a scripted server on a unix socket (no dockerd).

The server answers each connection with fixed bytes, so these tests check what the client does with
real HTTP/1.1 framing: Content-Length and chunked bodies, error bodies (JSON or not), streamed JSON
lines and multiplexed log frames, the version prefix and query of each request, and a blocked stream
read interrupted by ``close()`` from another thread.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator

import pytest

from p2porch.engine.client import EngineClient, EngineError, NotFound, filters_param, negotiate
from p2porch.engine.endpoint import Endpoint


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def response(status: str, body: bytes, content_type: str = "application/json", chunks: int = 0) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nApi-Version: 1.50\r\n"
    if chunks:
        size = max(1, len(body) // chunks)
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked(*parts)
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class ScriptedEngine:
    """A unix-socket server: each accepted connection gets the next answer; requests are recorded."""

    def __init__(self, answers: list[bytes | Callable[[socket.socket], None]]) -> None:
        self.dir = tempfile.mkdtemp(prefix="p2rs-engine-")
        self.path = os.path.join(self.dir, "docker.sock")
        self.requests: list[bytes] = []
        self._answers = list(answers)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for answer in self._answers:
            conn, _ = self._server.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest)
                if callable(answer):
                    answer(conn)
                else:
                    conn.sendall(answer)

    def client(self) -> EngineClient:
        return EngineClient(Endpoint(url=f"unix://{self.path}", socket_path=self.path), timeout_s=5.0)

    def close(self) -> None:
        self._server.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def engine() -> Iterator[Callable[..., ScriptedEngine]]:
    made: list[ScriptedEngine] = []

    def make(*answers: bytes | Callable[[socket.socket], None]) -> ScriptedEngine:
        made.append(ScriptedEngine(list(answers)))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_connect_pings_and_takes_the_engines_version_capped_at_ours(engine) -> None:
    server = engine(response("200 OK", b"OK", "text/plain"))
    client = EngineClient.connect(f"unix://{server.path}", timeout_s=5.0)
    assert client.version == (1, 45)  # the engine says 1.50: ours is the cap
    assert server.requests[0].startswith(b"GET /_ping HTTP/1.1")
    assert negotiate("1.43") == (1, 43)
    with pytest.raises(EngineError, match="needs 1.41"):
        negotiate("1.40")


def test_a_chunked_json_answer_is_decoded_and_the_query_is_sent(engine) -> None:
    listing = [{"Id": "abc", "Labels": {"p2porch.managed": "true"}}]
    server = engine(response("200 OK", json.dumps(listing).encode(), chunks=3))
    got = server.client().containers(all=True, filters={"label": ["p2porch.managed=true"]})
    assert got == listing
    request_line = server.requests[0].split(b"\r\n", 1)[0].decode()
    assert request_line.startswith("GET /v1.45/containers/json?all=1&filters=")
    assert "%22label%22%3A+%5B%22p2porch.managed%3Dtrue%22%5D" in request_line


def test_create_sends_the_body_as_json_and_returns_the_id(engine) -> None:
    server = engine(response("201 Created", b'{"Id":"c0ffee","Warnings":[]}'))
    assert server.client().create_container("web.1.t1", {"Image": "busybox", "Env": ["A=1"]}) == "c0ffee"
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1.45/containers/create?name=web.1.t1 HTTP/1.1")
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"Image": "busybox", "Env": ["A=1"]}


@pytest.mark.parametrize(
    ("status", "body", "content_type", "kind", "message"),
    [
        (
            "404 Not Found",
            b'{"message":"No such container: x"}',
            "application/json",
            NotFound,
            "No such container: x",
        ),
        ("409 Conflict", b'{"message":"name in use"}\n', "application/json", EngineError, "name in use"),
        ("500 Internal Server Error", b"plain failure", "text/plain", EngineError, "plain failure"),
        ("500 Internal Server Error", b"", "text/plain", EngineError, "500 Internal Server Error"),
    ],
)
def test_error_answers_carry_the_status_and_the_engines_message(
    engine, status, body, content_type, kind, message
) -> None:
    server = engine(response(status, body, content_type, chunks=2 if body else 0))
    with pytest.raises(kind) as caught:
        server.client().inspect_container("x")
    assert caught.value.status == int(status.split()[0]) and caught.value.explanation == message
    assert type(caught.value) is kind


def test_an_unreachable_engine_is_status_zero_naming_the_address() -> None:
    client = EngineClient(
        Endpoint(url="unix:///nonexistent/docker.sock", socket_path="/nonexistent/docker.sock")
    )
    with pytest.raises(EngineError, match="unix:///nonexistent/docker.sock") as caught:
        client.info()
    assert caught.value.status == 0


def test_streamed_json_lines_across_chunk_boundaries(engine) -> None:
    events = [{"Type": "container", "Action": "start", "id": str(i)} for i in range(5)]
    body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    server = engine(response("200 OK", body, chunks=7))
    stream = server.client().events({"type": "container"})
    assert list(stream) == events
    stream.close()
    stream.close()  # twice is fine


def test_multiplexed_logs_are_split_into_frames_of_both_streams(engine) -> None:
    frames = [(1, b"out line 1\n"), (2, b"err line\n"), (1, b"partial")]
    body = b"".join(struct.pack(">BxxxL", kind, len(p)) + p for kind, p in frames)
    server = engine(response("200 OK", body, "application/vnd.docker.multiplexed-stream", chunks=5))
    assert list(server.client().logs("abc", follow=False, tail=None)) == [p for _, p in frames]
    assert b"/v1.45/containers/abc/logs?stdout=1&stderr=1&follow=0&tail=all " in server.requests[0]


def test_a_pull_stream_reports_the_registry_error_and_sends_the_auth_header(engine) -> None:
    body = b'{"status":"Pulling from library/nope"}\n{"errorDetail":{"message":"denied"},"error":"denied"}\n'
    server = engine(response("200 OK", body, chunks=2))
    got = list(server.client().pull("nope", "latest", auth_header="eyJ1c2VybmFtZSI6ImEifQ=="))
    assert got[-1]["error"] == "denied"
    assert b"X-Registry-Auth: eyJ1c2VybmFtZSI6ImEifQ==" in server.requests[0]
    assert b"POST /v1.45/images/create?fromImage=nope&tag=latest " in server.requests[0]


def test_an_error_on_a_stream_is_raised_at_once(engine) -> None:
    server = engine(response("404 Not Found", b'{"message":"No such container: gone"}'))
    with pytest.raises(NotFound, match="No such container: gone"):
        server.client().logs("gone", follow=True, tail=10)


def test_close_from_another_thread_ends_a_blocked_stream_read(engine) -> None:
    release = threading.Event()

    def hold_open(conn: socket.socket) -> None:  # headers and one event, then nothing until the test ends
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        conn.sendall(chunked(b'{"Action":"start"}\n')[:-5])
        release.wait(10)

    server = engine(hold_open)
    stream = server.client().events({"type": "container"})
    items = iter(stream)
    assert next(items) == {"Action": "start"}
    ended = threading.Event()

    def drain() -> None:
        try:
            for _ in items:
                pass
        except EngineError:
            pass
        ended.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    assert not ended.wait(0.2)  # blocked on the socket (a wait for an observable state, not a timing check)
    stream.close()
    assert ended.wait(5)
    release.set()


def test_filters_are_json_lists_of_strings() -> None:
    assert json.loads(filters_param({"label": ["a=b"], "type": "container", "dangling": True})) == {
        "label": ["a=b"],
        "type": ["container"],
        "dangling": ["true"],
    }


def test_a_tty_containers_raw_log_stream_comes_as_bytes(engine) -> None:
    server = engine(response("200 OK", b"line 1\nline 2\n", "application/vnd.docker.raw-stream", chunks=2))
    assert b"".join(server.client().logs("tty", follow=False, tail=5)) == b"line 1\nline 2\n"


def test_an_answer_that_says_json_but_is_not_is_an_engine_error(engine) -> None:
    server = engine(response("200 OK", b"{not json"))
    with pytest.raises(EngineError, match="invalid JSON"):
        server.client().info()


def test_unreadable_tls_certificates_are_an_engine_error(tmp_path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    from p2porch.engine.endpoint import parse_endpoint

    endpoint = parse_endpoint("tcp://127.0.0.1:9", {"DOCKER_CERT_PATH": str(tmp_path)})
    with pytest.raises(EngineError, match="cannot reach the Docker engine at tcp://127.0.0.1:9") as caught:
        EngineClient(endpoint).info()
    assert caught.value.status == 0
