"""Service virtual addresses: which VIP a service gets, decided inside the FSM (pure, deterministic).

A service in ``vip`` endpoint mode owns one address of ``VIP_CIDR`` for its whole life: the FSM picks it
when the service is created (or switched to vip), keeps it across updates and frees it with the service.
The pick starts at a hash of the service id and probes upwards past taken addresses, so every replica of
the log computes the same address and a removed service's address can be reused later. No I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

VIP_CIDR = "10.239.0.0/16"  # outside the default cluster CIDR 10.240.0.0/16; never routed off a node


def allocate_vip(service_id: str, taken: Iterable[str], cidr: str = VIP_CIDR) -> str:
    """The first free address at or after the service id's hash slot; "" if the range is full."""
    net = ipaddress.IPv4Network(cidr)
    usable = net.num_addresses - 2  # no network or broadcast address
    if usable <= 0:
        return ""
    used = set(taken)
    start = int.from_bytes(hashlib.sha256(service_id.encode()).digest()[:8], "big") % usable
    for step in range(usable):
        address = str(net.network_address + 1 + (start + step) % usable)
        if address not in used:
            return address
    return ""
