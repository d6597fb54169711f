"""What one call of the SWIM state machine (``swim.Swim``) hands back to its shell (pure records).

Owns :class:`Output` (UDP packets to send, push/pull exchanges and TCP pings to start, membership events)
and the request and view records it carries. Plain data: never decides anything, never performs I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .messages import MemberEvent, Packet


class PushPullRequest(NamedTuple):
    """Ask the shell to run a TCP full-state exchange with ``addr`` and feed the reply to ``merge_remote``."""

    addr: str
    join: bool


class TcpPing(NamedTuple):
    """Ask the shell to ping ``target`` at ``addr`` over TCP; on an answer feed ``[Ack(seq)]`` back."""

    addr: str
    seq: int
    target: str


class MemberView(NamedTuple):
    name: str
    addr: str
    state: str
    incarnation: int
    meta: Mapping[str, Any]


class Output:
    """What one call produced: UDP packets, push/pull exchanges to start, membership events."""

    __slots__ = ("events", "packets", "pushpulls", "tcp_pings")

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.pushpulls: list[PushPullRequest] = []
        self.tcp_pings: list[TcpPing] = []
        self.events: list[MemberEvent] = []

    def extend(self, other: Output) -> None:
        self.packets.extend(other.packets)
        self.pushpulls.extend(other.pushpulls)
        self.tcp_pings.extend(other.tcp_pings)
        self.events.extend(other.events)
