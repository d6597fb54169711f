"""Decoding of the Engine API's streamed bodies from a blocking binary reader (no sockets here).

``json_lines``: newline-delimited JSON documents (``/events``, ``/images/create`` progress).
``log_frames``: the multiplexed log stream of a container without a TTY (8-byte header: stream, three
zero bytes, big-endian payload size; then the payload). A truncated last frame or line ends the stream;
a line that is not JSON raises ``StreamError`` naming its first bytes (never the whole line).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any, Protocol

FRAME_HEADER = struct.Struct(">BxxxL")
MAX_LINE_BYTES = 16 * 1024 * 1024  # a JSON document longer than this is refused, not buffered


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def read1(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class StreamError(Exception):
    """The engine sent bytes that are not what the endpoint's format says."""


def json_lines(reader: Reader) -> Iterator[Any]:
    """Each JSON document of a newline-delimited stream, until the stream ends."""
    while True:
        line = reader.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES:
            raise StreamError(f"a streamed JSON document is longer than {MAX_LINE_BYTES} bytes")
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise StreamError(f"not JSON in the engine's stream: {line[:80]!r}") from exc


def log_frames(reader: Reader) -> Iterator[bytes]:
    """The payload of each frame of a multiplexed log stream (stdout and stderr alike), in order."""
    while True:
        header = _read_exactly(reader, FRAME_HEADER.size)
        if len(header) < FRAME_HEADER.size:
            return
        _stream, size = FRAME_HEADER.unpack(header)
        payload = _read_exactly(reader, size)
        if payload:
            yield payload
        if len(payload) < size:
            return


def raw_chunks(reader: Reader, size: int = 65536) -> Iterator[bytes]:
    """A TTY container's log stream: bytes as they come (``read1``: never waits to fill ``size``)."""
    while True:
        chunk = reader.read1(size)
        if not chunk:
            return
        yield chunk


def _read_exactly(reader: Reader, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = reader.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
