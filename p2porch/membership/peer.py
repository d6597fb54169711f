"""``PEER[:PORT]`` of ``p2porch join`` (pure): the one parser the CLI (before it starts a daemon) and the
daemon (before it dials) share. Never resolves or dials anything."""

from __future__ import annotations

from ..errors import ConfigError


def split_peer(peer: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` of ``PEER[:PORT]``; a missing host or a port that is not 1-65535 raises
    ConfigError naming ``PEER``."""
    host, sep, port_text = peer.strip().partition(":")
    if not host:
        raise ConfigError(f"PEER {peer!r}: expected HOST[:PORT], e.g. 10.0.0.1:7948", field="PEER")
    if not sep:
        return host, default_port
    if (
        not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5)
        or not 1 <= int(port_text) <= 65535
    ):
        raise ConfigError(f"PEER {peer!r}: the port must be a number from 1 to 65535", field="PEER")
    return host, int(port_text)
