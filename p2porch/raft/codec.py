"""The command envelope and result maps of the Raft log (pure).

A command on the wire is the msgpack map ``{"t": tag, "v": body version, "b": body}`` (the layout of
``wire.py``'s frames). :class:`Command` is the base of every typed command (``commands.py`` and
``commands_secrets.py``); the FSM answers each with a result map (``ok``/``error``) that
``raise_for_result`` turns back into the registered error. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack

from ..errors import P2POrchError, RaftError, WireError, error_from_dict
from ..wire import MAX_FRAME_BYTES, pack

#: the newest body version this code writes (each command writes its own ``VERSION``: 1, or 2 for
#: ``update_service`` and ``update_node``); 0 is the op-map layout from before typed commands
COMMAND_VERSION = 2
LEGACY_VERSION = 0


def decode(data: bytes) -> Any:
    """Decode msgpack bytes; raises only WireError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_FRAME_BYTES:
        raise WireError(f"command of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types
        raise WireError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every command: proposer time, an optional global version condition and, on the leader's
    own writes, the leader epoch they are fenced by (None: not a leader command, never fenced)."""

    TAG: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1  # the body version this command writes and the newest it reads
    at: float
    expected_version: int | None = None
    leader_epoch: int | None = None

    def body(self) -> dict[str, Any]:
        """The command's own fields in plain form (``at``/``expected_version`` are added by encode)."""
        return {}

    def body_version(self) -> int:
        """The body version these fields are written as (``VERSION``; a command read from an older
        version that means what it meant then writes that version again)."""
        return self.VERSION

    def older_body(self, version: int) -> Command | None:
        """This command written as body ``version`` (older than its own) when one exists with the same
        effect, or None (the gate then refuses the write: ``command_gate.py``)."""
        return None

    def encode(self) -> bytes:
        return encode_command(self)


def encode_command(cmd: Command) -> bytes:
    """The one encoder: ``{"t": tag, "v": cmd.body_version(), "b": body}``."""
    body: dict[str, Any] = {"at": float(cmd.at), **cmd.body()}
    if cmd.expected_version is not None:
        body["expected_version"] = int(cmd.expected_version)
    if cmd.leader_epoch is not None:  # absent otherwise: unfenced commands keep their exact bytes
        body["leader_epoch"] = int(cmd.leader_epoch)
    return pack({"t": cmd.TAG, "v": cmd.body_version(), "b": body})


# --- results ---------------------------------------------------------------------------------------


def ok(version: int, value: Any = None) -> dict[str, Any]:
    return {"ok": True, "version": version, "value": value}


def error(kind: str, message: str, *, field: str | None = None, version: int = 0) -> dict[str, Any]:
    return {"ok": False, "error": kind, "message": message, "field": field, "version": version}


def error_result(exc: P2POrchError, version: int) -> dict[str, Any]:
    return error(type(exc).__name__, exc.message, field=exc.field, version=version)


def error_of(result: Mapping[str, Any]) -> P2POrchError | None:
    """The registered exception a failed result stands for (RaftError if unknown), or None if it succeeded."""
    if result.get("ok"):
        return None
    return error_from_dict(
        {"message": "command failed", **result, "error": str(result.get("error"))}, default=RaftError
    )


def raise_for_result(result: Mapping[str, Any]) -> Any:
    """Return ``result["value"]`` or raise the matching P2POrchError subclass."""
    exc = error_of(result)
    if exc is not None:
        raise exc
    return result.get("value")
