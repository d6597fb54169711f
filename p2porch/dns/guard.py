"""Who the DNS server serves how much (pure): recursion only for the cluster's own clients, and
response-rate limiting (RRL) per source network against reflection and amplification.

`ClientPolicy` says which source addresses are the cluster's clients (loopback, the node's bridge
subnet, the overlay, cluster members): only they get names outside the cluster domain forwarded, and
they are exempt from RRL. `ResponseRateLimiter` gives every other source /24 (IPv6: /56) a token
bucket of `rate` responses per second (`burst` at most); past it, every `slip`-th response is replaced
by an empty truncated one (TC: a real client retries over TCP, which cannot be spoofed) and the rest
are dropped. Keys are raw address bytes, so the UDP fast path never decodes an address.
It never does I/O and never reads the clock (the server passes `now`).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: Final = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
V4_KEY_BYTES: Final = 3  # a /24
V6_KEY_BYTES: Final = 7  # a /56
ALLOW, DROP, SLIP = 0, 1, 2
_QR_TC_RA: Final = (0x80 | 0x02, 0x80)


def source_key(host: str) -> bytes:
    """RRL key of a textual source address: its /24 (IPv4) or /56 (IPv6) as bytes."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    packed = ip.packed
    return packed[:V4_KEY_BYTES] if len(packed) == 4 else packed[:V6_KEY_BYTES]


def _key_network(key: bytes) -> IPNetwork:
    if len(key) == V4_KEY_BYTES:
        return ipaddress.IPv4Network((key + b"\0", 24))
    return ipaddress.IPv6Network((key + b"\0" * 9, 56))


class ClientPolicy:
    """The cluster's own clients: fixed networks plus member addresses (replaced on membership changes)."""

    def __init__(
        self, networks: Iterable[str | IPNetwork] = (), members: Iterable[str] = (), *, loopback: bool = True
    ) -> None:
        given = [ipaddress.ip_network(n, strict=False) for n in networks if n]
        self.networks: list[IPNetwork] = [*LOOPBACK, *given] if loopback else given
        self.members: frozenset[IPAddress] = frozenset()
        self.set_members(members)
        self._prefix_cache: dict[bytes, bool] = {}

    def set_members(self, addresses: Iterable[str]) -> None:
        parsed: set[IPAddress] = set()
        for text in addresses:
            try:
                parsed.add(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                continue
        self.members = frozenset(parsed)

    def is_client(self, host: str) -> bool:
        """True if `host` may have foreign names resolved (forwarded) by this server."""
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip in self.members or any(ip in net for net in self.networks)

    def is_client_prefix(self, key: bytes) -> bool:
        """True if the whole source network `key` is inside the clients' networks (exempt from RRL)."""
        known = self._prefix_cache.get(key)
        if known is None:
            net = _key_network(key)
            known = any(
                net.version == allowed.version and net.subnet_of(allowed)  # type: ignore[arg-type]
                for allowed in self.networks
            )
            if len(self._prefix_cache) >= 65536:
                self._prefix_cache.clear()
            self._prefix_cache[key] = known
        return known


class ResponseRateLimiter:
    """Token bucket per source network for everyone who is not a client; see the module docstring."""

    def __init__(
        self,
        policy: ClientPolicy,
        *,
        rate: float = 100.0,
        burst: float = 200.0,
        slip: int = 2,
        max_keys: int = 65536,
    ) -> None:
        if rate <= 0 or burst < 1 or slip < 0 or max_keys < 1:
            raise ValueError("RRL needs rate > 0, burst >= 1, slip >= 0 and max_keys >= 1")
        self.policy = policy
        self.rate = rate
        self.burst = burst
        self.slip = slip
        self.max_keys = max_keys
        self.limited = 0
        self.slipped = 0
        self._buckets: dict[bytes, list[float]] = {}
        self._exempt: set[bytes] = set()

    def check(self, key: bytes, now: float) -> int:
        """ALLOW, DROP or SLIP (answer with an empty TC response) for one response to network `key`."""
        if key in self._exempt:  # the clients' networks: one set lookup on the hot path
            return ALLOW
        bucket = self._buckets.get(key)
        if bucket is None:
            if self.policy.is_client_prefix(key):
                if len(self._exempt) >= 4096:
                    self._exempt.clear()
                self._exempt.add(key)
                return ALLOW
            if len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = [self.burst, now]
        elif bucket[1] != now:
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1:
            bucket[0] -= 1
            return ALLOW
        self.limited += 1
        if self.slip and self.limited % self.slip == 0:
            self.slipped += 1
            return SLIP
        return DROP

    def tracked(self) -> int:
        return len(self._buckets)


def truncated_reply(query: bytes) -> bytes | None:
    """An empty response with TC set and the question echoed (no EDNS), or None if `query` is unusable."""
    if len(query) < 12 or query[2] & 0x80:
        return None
    (qdcount,) = struct.unpack_from(">H", query, 4)
    end = 12
    if qdcount == 1:
        while end < len(query) and query[end] != 0:
            if query[end] & 0xC0:
                return None
            end += 1 + query[end]
        end += 5  # root label + qtype + qclass
        if end > len(query):
            return None
    flags = bytes(((query[2] & 0x79) | _QR_TC_RA[0], _QR_TC_RA[1]))
    counts = struct.pack(">HHHH", 1 if qdcount == 1 else 0, 0, 0, 0)
    return query[:2] + flags + counts + query[12:end]
