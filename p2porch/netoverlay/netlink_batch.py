"""Sends rtnetlink requests compiled by pyroute2's ``IPBatch``, many per ``send``, and reads one
acknowledgement per request (blocking shell; used on the overlay driver's thread only).

A request through pyroute2's synchronous ``IPRoute`` costs ~0.7 ms of CPU (an asyncio run per call, the
request filters, the encoder, the answer's parse; docs/performance.md, "The eleventh round"). ``IPBatch``
runs the same filters and encoder into a buffer without sending it, so the messages are the ones
``IPRoute`` would send; this module compiles a chunk in one run of the ``IPBatch``'s asyncio core (its
synchronous calls run the event loop once each), gives each message its own sequence number, sends the
buffer on a plain rtnetlink socket in the driver's network namespace and maps every acknowledgement
back to its request. The overlay's own six requests skip ``IPBatch``: ``netlink_encode`` packs them
directly, the same bytes at a hundredth of the CPU (anything else still goes through ``IPBatch``).
The kernel handles the messages of one send in order and answers each, an error included, whatever
the others' outcome. Owns that socket and the ``IPBatch``; never decides what is sent and never judges
an error code (which codes are benign is the driver's rule).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import Any

from ..errors import OverlayError
from .netlink_classes import load_batch
from .netlink_encode import encode

IPBatch, create_socket = load_batch()

#: requests per send: the socket must hold all their acknowledgements at once (~0.85 KB of receive
#: buffer each; a default 208 KB buffer overflowed at ~250 and the kernel drops the rest: ENOBUFS)
CHUNK = 128
RECEIVE_BUFFER = 1 << 20
ACK_TIMEOUT_S = 5.0
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence number, port id
_ERROR = struct.Struct("=i")  # struct nlmsgerr's error, right after the header: 0 or -errno
_NLMSG_ERROR = 2
_NLM_F_ACK = 4

#: one request as ``IPRoute`` takes it: method ("route", "neigh", "fdb"), command, keyword arguments
Request = tuple[str, str, dict[str, Any]]


class RequestBatch:
    """Compiles requests with ``IPBatch`` and sends them on its own rtnetlink socket in ``netns``."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._compiler: Any = None
        self._socket: socket.socket | None = None
        self._sequence = 0

    def run(self, requests: Sequence[Request]) -> list[int]:
        """Send ``requests`` in order, ``CHUNK`` per send, each chunk's answers read before the next is
        sent; returns each request's errno (0: done). A lost or missing answer closes the socket (the
        next call opens a new one) and raises OverlayError: what was applied is then unknown."""
        codes: list[int] = []
        for start in range(0, len(requests), CHUNK):
            codes += self._run_chunk(requests[start : start + CHUNK])
        return codes

    def close(self) -> None:
        compiler, self._compiler = self._compiler, None
        sock, self._socket = self._socket, None
        try:
            if compiler is not None:
                compiler.close()
        finally:
            if sock is not None:
                sock.close()

    def _run_chunk(self, requests: Sequence[Request]) -> list[int]:
        buffer, first = self._compile(requests)
        sock = self._open()
        try:
            sock.send(buffer)
            answers = read_acks(sock, first, len(requests))
        except OSError as exc:  # ENOBUFS (answers dropped), a timeout, a closed socket
            self._close_socket()
            raise OverlayError(f"netlink batch of {len(requests)} requests: {exc}") from exc
        return [answers[first + n] for n in range(len(requests))]

    def _compile(self, requests: Sequence[Request]) -> tuple[bytes, int]:
        """The chunk's messages, numbered ``first``, ``first + 1``, ... (IPBatch's own numbers repeat
        within 256 requests): packed directly (``netlink_encode``) when every request has a form it
        knows, else compiled by ``IPBatch``."""
        first = (self._sequence + 1) & 0x7FFF_FFFF
        packed: list[bytes] = []
        for n, (method, command, arguments) in enumerate(requests):
            message = encode(method, command, arguments, first + n)
            if message is None:
                return self._compile_with_ipbatch(requests)
            packed.append(message)
        self._sequence = first + len(requests)
        return b"".join(packed), first

    def _compile_with_ipbatch(self, requests: Sequence[Request]) -> tuple[bytes, int]:
        if self._compiler is None:
            self._compiler = IPBatch()
        compiler = self._compiler
        first = self._sequence = (self._sequence + 1) & 0x7FFF_FFFF
        core = compiler.asyncore  # IPBatch's asyncio core: the whole chunk in one run of its event loop

        async def compile_all() -> None:
            for n, (method, command, arguments) in enumerate(requests):
                offset = len(core.batch)
                await getattr(core, method)(command, **arguments)
                length, _, flags, _, _ = _HEADER.unpack_from(core.batch, offset)
                if length != len(core.batch) - offset or not flags & _NLM_F_ACK:
                    raise TypeError(f"{method} {command}: not one acknowledged netlink request")
                struct.pack_into("=I", core.batch, offset + 8, first + n)

        try:
            core.event_loop.run_until_complete(compile_all())
            return bytes(core.batch), first
        finally:
            compiler.reset()
            self._sequence = first + len(requests)

    def _open(self) -> socket.socket:
        if self._socket is None:
            try:
                sock = create_socket(
                    self.netns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE, flags=0
                )
            except FileNotFoundError as exc:
                raise OverlayError(f"network namespace {self.netns!r} does not exist") from exc
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((0, 0))
            sock.settimeout(ACK_TIMEOUT_S)
            self._socket = sock
        return self._socket

    def _close_socket(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


def read_acks(sock: socket.socket, first: int, count: int) -> dict[int, int]:
    """errno by sequence number for ``first`` .. ``first + count - 1`` from netlink acknowledgements on
    ``sock`` (other messages skipped); raises OSError (a timeout) when one does not come."""
    answers: dict[int, int] = {}
    while len(answers) < count:
        data = sock.recv(65536)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, sequence, _ = _HEADER.unpack_from(data, offset)
            if kind == _NLMSG_ERROR and first <= sequence < first + count:
                answers[sequence] = -_ERROR.unpack_from(data, offset + _HEADER.size)[0]
            offset += max((length + 3) & ~3, _HEADER.size)  # NLMSG_ALIGN
    return answers
