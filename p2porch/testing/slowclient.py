"""Slow and large HTTP/1.1 requests on a raw socket, for tests of the API's request deadline.

Owns sending a request head and then one byte at a time (a slowloris of the head or the body) until the
server closes, and posting a large JSON body paced over a given time; both over any connected socket
(unix or TLS). Blocking: tests run them in a thread beside a trio server. It never retries.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

Connect = Callable[[], socket.socket]


def request_head(path: str, length: int, token: str = "") -> bytes:
    """A POST head declaring a JSON body of ``length`` bytes (with a bearer ``token`` when given)."""
    auth = f"authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nhost: p2porch\r\n{auth}"
        f"content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    ).encode()


def trickle(
    connect: Connect, first: bytes, every_s: float = 0.5, limit_s: float = 30.0
) -> tuple[bytes, float]:
    """Send ``first``, then one byte each ``every_s`` until the server closes (or ``limit_s``): (what it
    sent back, seconds until it closed)."""
    sock = connect()
    began = time.monotonic()
    got = b""
    try:
        sock.sendall(first)
        sock.settimeout(every_s)
        while time.monotonic() - began < limit_s:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                try:
                    sock.sendall(b"x")
                except OSError:
                    break
                continue
            except OSError:  # reset, or TLS cut short
                break
            if not data:
                break
            got += data
    finally:
        sock.close()
    return got, time.monotonic() - began


def post_paced(connect: Connect, path: str, body: dict, pace_s: float, token: str = "") -> tuple[int, dict]:
    """POST ``body`` as JSON in 64 KiB pieces spread over ``pace_s``: (status, the JSON answer)."""
    data = json.dumps(body).encode()
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    sock = connect()
    answer = b""
    try:
        sock.settimeout(60)
        sock.sendall(request_head(path, len(data), token))
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pace_s / len(pieces))
        while True:
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(rest) >= length:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(rest)
