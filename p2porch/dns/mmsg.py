"""Batched UDP I/O for the DNS hot path: Linux recvmmsg(2)/sendmmsg(2) through ctypes.

`UdpBatch.open(sock, size)` returns None where the calls are not available (not Linux, no libc
symbol, an unexpected struct layout), and the server then uses its plain recvfrom/sendto loop.

One `UdpBatch` owns `size` receive slots. Slot i is `slot_bytes` (64 KiB, any UDP datagram fits)
of an anonymous mmap at `i * slot_bytes`, plus room for the peer's socket address. `recv()` fills
slots 0..n-1 with one syscall; the caller writes each reply into the query's own slot (the 2-byte
ID is already in place), sets its length with `set_reply_len`, and `send(start, end)` sends the
replies of slots start..end-1 back to their senders with one syscall: the `mmsghdr` array used
for receiving is reused as is, its `msg_name` already holds the peer address. `reset(n)` restores
the receive lengths. Only anonymous-mmap pages that are written get memory, so the 4 MiB of a
64-slot batch cost a page or two per slot.

Nothing here blocks: the socket is non-blocking and the calls pass MSG_DONTWAIT.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import errno
import ipaddress
import mmap
import socket
import sys
from typing import Any, Final

SLOT_BYTES: Final = 1 << 16
NAME_BYTES: Final = 128  # sizeof(struct sockaddr_storage)
_MSG_DONTWAIT: Final = 0x40


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _load_calls() -> tuple[Any, Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        recvmmsg = libc.recvmmsg
        sendmmsg = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int
    # The fast path reads msg_len and writes iov_len through integer views: check the layout.
    if (
        ctypes.sizeof(_Mmsghdr) % 8
        or _Mmsghdr.msg_len.offset % 4
        or _Msghdr.msg_namelen.offset % 4
        or ctypes.sizeof(_Iovec) != 16
        or ctypes.sizeof(ctypes.c_size_t) != 8
    ):
        return None
    return recvmmsg, sendmmsg


_CALLS = _load_calls()


def available() -> bool:
    """True where recvmmsg/sendmmsg can be used."""
    return _CALLS is not None


class UdpBatch:
    """Receive/send buffers and `mmsghdr` array of one UDP socket (see the module docstring)."""

    def __init__(self, sock: socket.socket, size: int, calls: tuple[Any, Any]) -> None:
        self.size = size
        self.fd = sock.fileno()
        self._recvmmsg, self._sendmmsg = calls
        self.data = mmap.mmap(-1, size * SLOT_BYTES)
        data_addr = ctypes.addressof(ctypes.c_char.from_buffer(self.data))
        self._names = ctypes.create_string_buffer(size * NAME_BYTES)
        names_addr = ctypes.addressof(self._names)
        self._iovs = (_Iovec * size)()
        self._hdrs = (_Mmsghdr * size)()
        for i in range(size):
            self._iovs[i].iov_base = data_addr + i * SLOT_BYTES
            self._iovs[i].iov_len = SLOT_BYTES
            hdr = self._hdrs[i].msg_hdr
            hdr.msg_name = names_addr + i * NAME_BYTES
            hdr.msg_namelen = NAME_BYTES
            hdr.msg_iov = ctypes.addressof(self._iovs) + i * ctypes.sizeof(_Iovec)
            hdr.msg_iovlen = 1
        self.hdrs_addr = ctypes.addressof(self._hdrs)
        self.hdr_bytes = ctypes.sizeof(_Mmsghdr)
        hdr_u32 = memoryview(self._hdrs).cast("B").cast("I")
        iov_u64 = memoryview(self._iovs).cast("B").cast("Q")
        self._stride32 = self.hdr_bytes // 4
        self._namelen_at = _Msghdr.msg_namelen.offset // 4
        self._len_at = _Mmsghdr.msg_len.offset // 4
        # msg_len of slot i is msg_lens[i]; iov_len of slot i is iov_lens[i]
        self.msg_lens = hdr_u32[self._len_at :: self._stride32]
        self.iov_lens = iov_u64[1::2]
        self._namelens = hdr_u32[self._namelen_at :: self._stride32]
        self._full_lens = memoryview(array.array("Q", [SLOT_BYTES] * size))
        self._full_namelens = memoryview(array.array("I", [NAME_BYTES] * size))
        if self._full_lens.itemsize != 8 or self._full_namelens.itemsize != 4:
            raise ValueError("unexpected array item sizes")

    @classmethod
    def open(cls, sock: socket.socket, size: int) -> UdpBatch | None:
        """A batch for `sock`, or None where recvmmsg/sendmmsg are not available."""
        if _CALLS is None:
            return None
        try:
            return cls(sock, size, _CALLS)
        except (OSError, ValueError, TypeError):
            return None

    def recv(self) -> int:
        """Receive up to `size` datagrams into slots 0..n-1; n, or -errno (-EAGAIN when empty)."""
        n: int = self._recvmmsg(self.fd, self.hdrs_addr, self.size, _MSG_DONTWAIT, None)
        if n < 0:
            return -(ctypes.get_errno() or errno.EIO)
        return n

    def send(self, start: int, end: int) -> int:
        """Send the replies of slots start..end-1; the number of send errors (failed slots skipped)."""
        errors = 0
        sendmmsg = self._sendmmsg
        while start < end:
            sent: int = sendmmsg(self.fd, self.hdrs_addr + start * self.hdr_bytes, end - start, _MSG_DONTWAIT)
            if sent <= 0:
                errors += 1  # the datagram at `start` could not be sent: drop it, go on
                start += 1
            else:
                start += sent
        return errors

    def reset(self, n: int) -> None:
        """Restore receive lengths and address lengths of slots 0..n-1 after a batch."""
        self.iov_lens[:n] = self._full_lens[:n]
        self._namelens[:n] = self._full_namelens[:n]

    def names(self, n: int) -> bytes:
        """The raw `sockaddr_storage` of slots 0..n-1 (NAME_BYTES each): cheap per-batch source keys."""
        return ctypes.string_at(ctypes.addressof(self._names), n * NAME_BYTES)

    def peer(self, i: int) -> Any:
        """The sender of slot i as a Python socket address (for forwarding, rare)."""
        raw = ctypes.string_at(ctypes.addressof(self._names) + i * NAME_BYTES, NAME_BYTES)
        family = int.from_bytes(raw[0:2], sys.byteorder)
        port = int.from_bytes(raw[2:4], "big")
        # ipaddress, not socket.inet_ntop: pysyncobj (imported by the daemon) replaces
        # socket.inet_ntop process-wide with a Windows-only version that raises on Linux.
        if family == socket.AF_INET:
            return str(ipaddress.IPv4Address(raw[4:8])), port
        if family == socket.AF_INET6:
            flowinfo = int.from_bytes(raw[4:8], "big")
            scope_id = int.from_bytes(raw[24:28], sys.byteorder)
            return str(ipaddress.IPv6Address(raw[8:24])), port, flowinfo, scope_id
        raise OSError(errno.EAFNOSUPPORT, f"unexpected peer address family {family}")
