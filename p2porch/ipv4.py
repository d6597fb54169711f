"""IPv4 address texts parsed once and cached: the hot paths (DNS scopes, network policy) parse the same
task addresses after every burst of commits (pure).

``ipaddress.IPv4Address(text)`` costs ~1-2 µs and its ``str`` as much again; the policy plan parsed,
printed and compared each of the cluster's task addresses several times per rebuild. Here each text is
parsed once into its number and canonical form (an LRU of ``CACHE_SIZE`` texts, above the 100,000 tasks
the control plane is measured with; ~150 bytes each); membership is a mask test on the number. Never
raises on bad text where it says it returns None, never does I/O.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

CACHE_SIZE = 1 << 18


@lru_cache(maxsize=CACHE_SIZE)
def parsed(text: str) -> tuple[int, str] | None:
    """``(number, canonical text)`` of ``text``, or None when it is not an IPv4 address."""
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        return None
    return int(ip), str(ip)


def number(text: str) -> int:
    """The address's number; ``ValueError`` on bad text (as ``IPv4Address`` raised)."""
    found = parsed(text)
    if found is None:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return found[0]


def packed(text: str) -> bytes | None:
    """The 4 bytes of the address, or None on bad text."""
    found = parsed(text)
    return None if found is None else found[0].to_bytes(4, "big")


def canonical(text: str) -> str | None:
    """``str(IPv4Address(text))``, or None on bad text."""
    found = parsed(text)
    return None if found is None else found[1]


@lru_cache(maxsize=CACHE_SIZE)
def host32(text: str) -> str:
    """``a.b.c.d/32`` in canonical form; ``ValueError`` on bad text."""
    found = parsed(text)
    if found is None:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return found[1] + "/32"


def network_mask(cidr: str) -> tuple[int, int]:
    """``(base, mask)`` of an IPv4 network: ``n & mask == base`` for every address ``n`` inside it."""
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address), int(net.netmask)
