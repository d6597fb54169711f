"""Unit tests of upstream parsing and reply matching."""

from __future__ import annotations

import dns.message
import pytest

from p2porch.dns.upstream import parse_resolv_conf, parse_upstream, question_end, reply_matches
from p2porch.errors import ConfigError


def test_parse_resolv_conf() -> None:
    text = """
    # comment
    search example.com
    nameserver 10.0.0.1
    nameserver 10.0.0.1
    nameserver fe80::1%eth0  # link local
    nameserver not-an-ip
    nameserver
    ;nameserver 10.9.9.9
    options edns0
    nameserver 127.0.0.53
    """
    assert parse_resolv_conf(text) == [("10.0.0.1", 53), ("fe80::1%eth0", 53), ("127.0.0.53", 53)]
    assert parse_resolv_conf("") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", ("1.2.3.4", 53)),
        ("1.2.3.4:5353", ("1.2.3.4", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5300", ("::1", 5300)),
        ("[fe80::1]", ("fe80::1", 53)),
    ],
)
def test_parse_upstream(text: str, expected: tuple[str, int]) -> None:
    assert parse_upstream(text) == expected


@pytest.mark.parametrize("text", ["", "host.example", "1.2.3.4:0", "1.2.3.4:x", "[::1]x", "1.2.3.4:70000"])
def test_parse_upstream_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_upstream(text)


def test_reply_matches_id_flag_and_question() -> None:
    query = dns.message.make_query("Example.com", "A")
    wire = query.to_wire()
    assert question_end(wire) == len(wire)
    reply = dns.message.make_response(query)
    assert reply_matches(wire, reply.to_wire())
    assert not reply_matches(wire, wire)  # QR not set
    reply.id ^= 1
    assert not reply_matches(wire, reply.to_wire())
    other = dns.message.make_response(dns.message.make_query("example.org", "A"))
    other.id = query.id
    assert not reply_matches(wire, other.to_wire())
    assert not reply_matches(b"\x00" * 5, wire)
    assert question_end(b"\x00" * 12) is None
