"""Upstream resolver addresses and reply checks for forwarding (pure).

Parses `/etc/resolv.conf` text and `host[:port]` strings, and checks that an upstream reply
answers the query that was sent (same ID, QR set, same question). No I/O here.
"""

from __future__ import annotations

import ipaddress

from p2porch.errors import ConfigError

DNS_PORT = 53


def parse_resolv_conf(text: str) -> list[tuple[str, int]]:
    """`nameserver` addresses of resolv.conf text, in order, deduplicated, port 53.

    Lines that are not valid IP addresses are ignored, like the C library does.
    """
    out: list[tuple[str, int]] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        host = fields[1]
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            continue
        if (host, DNS_PORT) not in out:
            out.append((host, DNS_PORT))
    return out


def parse_upstream(text: str) -> tuple[str, int]:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353` -> (host, port); raises ConfigError."""
    raw = text.strip()
    host, port = raw, DNS_PORT
    try:
        if raw.startswith("["):
            close = raw.index("]")
            host = raw[1:close]
            rest = raw[close + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(raw)
                port = int(rest[1:])
        elif raw.count(":") == 1:
            host, port_text = raw.split(":")
            port = int(port_text)
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError as exc:
        message = f"invalid DNS upstream {text!r} (want IP or IP:PORT)"
        raise ConfigError(message, field="dns_upstream") from exc
    if not 0 < port < 65536:
        raise ConfigError(f"invalid DNS upstream port in {text!r}", field="dns_upstream")
    return host, port


def question_end(message: bytes) -> int | None:
    """Offset just past the (single, uncompressed) question of `message`, or None if malformed."""
    if len(message) < 12 or message[4:6] != b"\x00\x01":
        return None
    offset = 12
    while True:
        if offset >= len(message):
            return None
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:
            return None
        offset += 1 + length
    offset += 4
    return offset if offset <= len(message) else None


def reply_matches(query: bytes, reply: bytes) -> bool:
    """True if `reply` is a response to `query`: same ID, QR set, same question (any case)."""
    if len(reply) < 12 or reply[:2] != query[:2] or not reply[2] & 0x80:
        return False
    end = question_end(query)
    if end is None:
        return False
    return reply[4:6] == b"\x00\x01" and reply[12:end].lower() == query[12:end].lower()
