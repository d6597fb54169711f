"""Reading a local file or stream with a size bound (a leaf: file I/O only, nothing of p2porch's).

Owns the one bounded read behind every reader of a file the operator names on the CLI's machine (flag
files in ``cli/localfiles``, Compose files and their env files in ``stack/source``, secret and config
values in ``cli/secret``): at most ``limit`` bytes are read (one more to tell), so ``/dev/zero``, a FIFO
fed forever or a huge file costs a bounded read, never the machine's memory; and the one strict UTF-8
decoding (a BOM skipped) that says where the first bad byte is. It never words an error for the
operator: each caller turns :class:`TooLargeError`, :class:`NotUtf8Error` and the ``OSError`` or
``ValueError`` of ``open`` into its own error type, exit code and message.
"""

from __future__ import annotations

from typing import BinaryIO

__all__ = ["NotUtf8Error", "TooLargeError", "decode_utf8", "read_bounded"]


class TooLargeError(Exception):
    """The file or stream holds more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class NotUtf8Error(Exception):
    """The bytes are not UTF-8: ``byte`` at ``offset`` (0-based), on ``line`` (1-based)."""

    def __init__(self, line: int, byte: int, offset: int) -> None:
        super().__init__(f"line {line}: byte 0x{byte:02x} at offset {offset} is not UTF-8")
        self.line, self.byte, self.offset = line, byte, offset


def read_bounded(source: str | BinaryIO, limit: int) -> bytes:
    """At most ``limit`` bytes of the file at path ``source``, or of the open binary stream ``source``
    (standard input), to its end.

    Raises TooLargeError past ``limit``, and what ``open`` raises for a path: OSError when the OS
    refuses it (missing, a directory, a symlink loop), ValueError when it holds a NUL byte."""
    if isinstance(source, str):
        with open(source, "rb") as handle:
            data = handle.read(limit + 1)
    else:
        data = source.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(limit)
    return data


def decode_utf8(data: bytes) -> str:
    """``data`` as strict UTF-8 (a leading BOM skipped); raises NotUtf8Error naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NotUtf8Error(line, data[exc.start], exc.start) from None
