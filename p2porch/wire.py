"""Versioned msgpack codec shared by every wire protocol (pure).

A frame is a msgpack map ``{"v": WIRE_VERSION, "t": type, "b": body}``. Decoding never raises
anything but :class:`~p2porch.errors.WireError`, whatever the input bytes are.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import WireError

WIRE_VERSION = 1
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: the packer's first buffer: msgpack's default is 256 KiB, allocated and freed by every ``packb``
#: (gossip packs ~8 messages a second), which fragmented glibc's heap (docs/performance.md, "The idle
#: leader's heap"); 512 bytes come from CPython's small-object allocator and grow for larger frames.
PACK_BUFFER_BYTES = 512


def pack(obj: Any) -> bytes:
    """Serialise plain data (dict/list/str/bytes/int/float/bool/None) to msgpack."""
    try:
        return msgpack.packb(obj, use_bin_type=True, buf_size=PACK_BUFFER_BYTES)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"cannot encode {type(obj).__name__}: {exc}") from exc


def unpack(data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Deserialise msgpack bytes; any malformed or oversized input raises WireError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise WireError(f"frame of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
        )
    except Exception as exc:  # msgpack raises many types (ValueError, ExtraData, FormatError, ...)
        raise WireError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc


def encode_frame(msg_type: str, body: Any) -> bytes:
    """Encode one typed, versioned frame."""
    return pack({"v": WIRE_VERSION, "t": msg_type, "b": body})


def decode_frame(data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> tuple[str, Any]:
    """Decode a frame made by :func:`encode_frame`; returns ``(type, body)``."""
    obj = unpack(data, max_bytes=max_bytes)
    if not isinstance(obj, dict):
        raise WireError(f"frame is a {type(obj).__name__}, not a map")
    version = obj.get("v")
    if version != WIRE_VERSION:
        raise WireError(f"unsupported wire version {version!r} (this node speaks {WIRE_VERSION})")
    msg_type = obj.get("t")
    if not isinstance(msg_type, str) or not msg_type:
        raise WireError("frame has no message type")
    if "b" not in obj:
        raise WireError(f"frame of type {msg_type!r} has no body")
    return msg_type, obj["b"]
