"""Parsed IPv4 addresses, cached: the hot paths (DNS scopes, network policy) parse the same task addresses
after every burst of commits (pure).

``ipaddress.IPv4Address(text)`` costs ~1-2 µs; the policy plan parsed each of the cluster's task
addresses several times per rebuild. :func:`address` returns the same immutable object for the same text
(an LRU of ``CACHE_SIZE`` texts, above the 100,000 tasks the control plane is measured with). Never
raises on bad text (None), never does I/O.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

CACHE_SIZE = 1 << 18


@lru_cache(maxsize=CACHE_SIZE)
def address(text: str) -> ipaddress.IPv4Address | None:
    """``text`` parsed, or None when it is not an IPv4 address."""
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def host32(text: str) -> str:
    """``a.b.c.d/32`` in canonical form; raises ``ValueError`` like ``ipaddress`` on bad text."""
    ip = address(text)
    if ip is None:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return _host32(ip)


@lru_cache(maxsize=CACHE_SIZE)
def _host32(ip: ipaddress.IPv4Address) -> str:
    return f"{ip}/32"


def sort_key(text: str) -> int:
    """The address's number (raises ``ValueError`` on bad text, as sorting by ``IPv4Address`` did)."""
    ip = address(text)
    if ip is None:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int(ip)
