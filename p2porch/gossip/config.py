"""Gossip configuration (pure): one frozen dataclass plus memberlist-like LAN/WAN/local presets and
p2porch's default ``fast-lan`` preset.

Owns the protocol knobs and their validation. It never reads files or the environment: the daemon maps
its config section onto :class:`GossipConfig` (``GossipConfig.lan(node_name=..., ...)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class GossipConfig:
    """Every gossip tunable; defaults are memberlist's ``DefaultLANConfig`` (see docs/gossip.md)."""

    node_name: str = ""
    advertise_host: str = "127.0.0.1"
    port: int = 7946  # the port bound here
    bind_host: str = ""  # the address bound here ("" = advertise_host; differs behind NAT)
    advertise_port: int = 0  # the port peers send to (0 = ``port``; a NAT port forward's public port)
    # SWIM failure detector
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 0.5
    indirect_checks: int = 3
    tcp_fallback_ping: bool = True  # memberlist: also try a TCP ping when the UDP probe times out
    # Lifeguard
    suspicion_mult: int = 4
    suspicion_max_timeout_mult: int = 6
    awareness_max_multiplier: int = 8
    # dissemination
    gossip_interval_s: float = 0.2
    gossip_nodes: int = 3
    gossip_to_the_dead_s: float = 30.0
    retransmit_mult: int = 4
    udp_buffer_bytes: int = 1400
    # anti-entropy (TCP)
    push_pull_interval_s: float = 30.0
    tcp_timeout_s: float = 10.0
    # healing after partitions (serf-like reconnect to dead members)
    reconnect_interval_s: float = 10.0
    reconnect_timeout_s: float = 86400.0
    # shell behaviour
    leave_propagate_s: float = 1.0
    join_retry_interval_s: float = 2.0

    @property
    def advertise_addr(self) -> str:
        """The ``host:port`` string peers use to reach this node."""
        return format_addr(self.advertise_host, self.advertise_port or self.port)

    def validate(self) -> GossipConfig:
        """Raise ConfigError naming the first bad key; return self when valid."""
        positive_s = (
            "probe_interval_s",
            "probe_timeout_s",
            "gossip_interval_s",
            "gossip_to_the_dead_s",
            "push_pull_interval_s",
            "tcp_timeout_s",
            "reconnect_interval_s",
            "reconnect_timeout_s",
            "join_retry_interval_s",
        )
        for key in positive_s:
            value = getattr(self, key)
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"gossip.{key} must be a positive number of seconds", field=f"gossip.{key}")
        if self.leave_propagate_s < 0:
            raise ConfigError("gossip.leave_propagate_s must be >= 0", field="gossip.leave_propagate_s")
        if self.probe_timeout_s >= self.probe_interval_s:
            raise ConfigError(
                "gossip.probe_timeout_s must be shorter than gossip.probe_interval_s",
                field="gossip.probe_timeout_s",
            )
        minimums = {
            "indirect_checks": 0,
            "suspicion_mult": 1,
            "suspicion_max_timeout_mult": 1,
            "awareness_max_multiplier": 1,
            "gossip_nodes": 1,
            "retransmit_mult": 1,
            "udp_buffer_bytes": 512,
        }
        for key, minimum in minimums.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"gossip.{key} must be an integer >= {minimum}", field=f"gossip.{key}")
        if not 0 <= self.port <= 65535:
            raise ConfigError("gossip.port must be in 0..65535", field="gossip.port")
        if not 0 <= self.advertise_port <= 65535:
            raise ConfigError("gossip.advertise_port must be in 0..65535", field="gossip.advertise_port")
        if not isinstance(self.node_name, str) or len(self.node_name.encode()) > 128:
            raise ConfigError(
                "gossip.node_name must be a string of at most 128 bytes", field="gossip.node_name"
            )
        return self

    @classmethod
    def lan(cls, **overrides: Any) -> GossipConfig:
        """memberlist DefaultLANConfig: probe 1 s/500 ms, suspicion x4, gossip 200 ms to 3, push/pull 30 s."""
        return dataclasses.replace(cls(), **overrides).validate()

    @classmethod
    def fast_lan(cls, **overrides: Any) -> GossipConfig:
        """p2porch's default: LAN with probe 500 ms / 250 ms and suspicion x5 (docs/gossip.md, *Presets*).

        A crashed node is declared dead in ~3.3 s on 3-10 nodes (memberlist LAN: ~5.5-6.5 s). Measured in
        the simulator with 10 % loss and a node freezing 1.5 s every 10 s: no false death up to 50 nodes,
        1 in 4 runs of 120 s at 100 nodes (LAN: none); for noisier networks or bigger clusters use ``lan``.
        """
        base = cls(probe_interval_s=0.5, probe_timeout_s=0.25, suspicion_mult=5)
        return dataclasses.replace(base, **overrides).validate()

    @classmethod
    def wan(cls, **overrides: Any) -> GossipConfig:
        """memberlist DefaultWANConfig: probe 5 s / 3 s, suspicion x6, gossip 500 ms to 4, push/pull 60 s."""
        base = cls(
            probe_interval_s=5.0,
            probe_timeout_s=3.0,
            suspicion_mult=6,
            gossip_interval_s=0.5,
            gossip_nodes=4,
            gossip_to_the_dead_s=60.0,
            push_pull_interval_s=60.0,
            tcp_timeout_s=30.0,
            reconnect_interval_s=30.0,
        )
        return dataclasses.replace(base, **overrides).validate()

    @classmethod
    def local(cls, **overrides: Any) -> GossipConfig:
        """memberlist DefaultLocalConfig: probe 1 s/200 ms, suspicion x3, gossip 100 ms, 1 indirect check."""
        base = cls(
            probe_interval_s=1.0,
            probe_timeout_s=0.2,
            indirect_checks=1,
            retransmit_mult=2,
            suspicion_mult=3,
            gossip_interval_s=0.1,
            gossip_to_the_dead_s=15.0,
            push_pull_interval_s=15.0,
            tcp_timeout_s=1.0,
            reconnect_interval_s=5.0,
        )
        return dataclasses.replace(base, **overrides).validate()


PRESETS_FASTEST_FIRST = ("fast-lan", "lan", "wan")


def preset_for_rtt(rtt_s: float) -> str:
    """The fastest preset whose probe timeout is at least twice the round trip ``rtt_s`` between the
    farthest members (docs/multi-site.md: in the two-site simulation with 1 % loss and pauses, fast-lan
    had no false death up to 300 ms and some at 500 ms; the factor 2 leaves room for a real daemon)."""
    presets = {"fast-lan": GossipConfig.fast_lan, "lan": GossipConfig.lan, "wan": GossipConfig.wan}
    for name in PRESETS_FASTEST_FIRST:
        if presets[name]().probe_timeout_s >= 2 * rtt_s:
            return name
    return "wan"


def format_addr(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_addr(addr: str) -> tuple[str, int]:
    """Inverse of :func:`format_addr`; raises ConfigError on a malformed address."""
    host, sep, port_text = addr.rpartition(":")
    ascii_digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
    if not sep or not host or not ascii_digits or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"bad gossip address {addr!r} (want host:port)", field="gossip.address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)
