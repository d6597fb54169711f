"""Several sites behind NAT on one machine: the address plan (pure) and the routers and WAN (shell).

A multi-site sandbox has ``sites`` site networks and one WAN transit network, all inside network
namespaces this module names after the sandbox (nothing is attached to the root namespace, so
nothing can leave the machine):

- ``<name>-r<s>``: site ``s``'s router: a bridge ``lan`` with the site's gateway ``.254`` and one veth
  per node of the site, its WAN uplink ``wan0`` (a TAP device) with the public address ``.s`` of the
  transit subnet (``wan_subnet``), ``MASQUERADE`` out and ``DNAT`` port forwards in for the p2porch
  ports only;
- the WAN itself: :mod:`.wanlink`, one process forwarding frames between the routers' TAPs with half
  the configured round trip of delay and the configured loss (this kernel has no ``tc netem``);
- the node namespaces themselves are the sandbox's (``<name>-n<i>``): node ``i`` lives in site
  ``(i - 1) // nodes_per_site + 1`` at the site-local address ``.j``.

Every node of a site shares its router's public address: node ``j`` of a site is reached at the
public port ``port + 100 * (j - 1)`` of each p2porch port (gossip UDP+TCP, Raft, join, VXLAN), the
way a cloud NAT gateway forwards ports. Forwards apply to traffic from the LAN side too (hairpin,
source-NATed to the public address), so nodes of the same site reach each other at their public
addresses as well. Nothing else is forwarded.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import SandboxError
from .system import find_program, run

PORT_STRIDE = 100  # node j of a site: public port = port + PORT_STRIDE * (j - 1)
MAX_NODES_PER_SITE = 20  # keeps every public port below the next service's range
MAX_SITES = 8
# (kind, local port, protocols) of every port a node must be reachable at
P2PORCH_PORTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("gossip", 7946, ("udp", "tcp")),
    ("raft", 7947, ("tcp",)),
    ("join", 7948, ("tcp",)),
    ("vxlan", 4789, ("udp",)),
)
DEFAULT_WAN_SUBNET = "10.78.0.0/24"
SITE_STEP = 1 << 16  # site s's subnet: the WAN's /24 plus s in the second octet


def parse_delay_ms(text: str) -> float:
    """``40ms``, ``0.04s`` or ``40`` (milliseconds) as milliseconds; SandboxError when malformed."""
    raw = text.strip().lower()
    scale = 1.0
    if raw.endswith("ms"):
        raw = raw[:-2]
    elif raw.endswith("s"):
        raw, scale = raw[:-1], 1000.0
    try:
        value = float(raw) * scale
    except ValueError as exc:
        raise SandboxError(f"--wan-delay: {text!r} is not a delay such as 40ms") from exc
    if not 0 <= value <= 10_000:
        raise SandboxError(f"--wan-delay: {text!r} must be between 0 and 10s")
    return value


def parse_loss_percent(text: str) -> float:
    """``1%`` or ``1`` as a percentage in 0..100; SandboxError when malformed."""
    raw = text.strip().rstrip("%")
    try:
        value = float(raw)
    except ValueError as exc:
        raise SandboxError(f"--wan-loss: {text!r} is not a percentage such as 1%") from exc
    if not 0 <= value <= 100:
        raise SandboxError(f"--wan-loss: {text!r} must be between 0% and 100%")
    return value


@dataclass(frozen=True)
class SitePlan:
    """Where every site, router and node of a multi-site sandbox lives (pure; no I/O)."""

    name: str
    sites: int
    nodes_per_site: int
    wan_subnet: ipaddress.IPv4Network
    wan_delay_ms: float = 0.0  # round trip between two sites (each router's egress gets half)
    wan_loss_percent: float = 0.0  # on each router's egress

    @classmethod
    def build(
        cls,
        name: str,
        sites: int,
        nodes_per_site: int,
        wan_subnet: str | None = None,
        wan_delay_ms: float = 0.0,
        wan_loss_percent: float = 0.0,
    ) -> SitePlan:
        if not 1 <= sites <= MAX_SITES:
            raise SandboxError(f"--sites must be between 1 and {MAX_SITES}")
        if not 1 <= nodes_per_site <= MAX_NODES_PER_SITE:
            raise SandboxError(f"--nodes-per-site must be between 1 and {MAX_NODES_PER_SITE}")
        text = wan_subnet or DEFAULT_WAN_SUBNET
        try:
            net = ipaddress.IPv4Network(text)
        except ValueError as exc:
            raise SandboxError(f"invalid sandbox subnet {text!r}: {exc}") from exc
        if net.prefixlen != 24:
            raise SandboxError(f"--subnet {text}: a multi-site sandbox takes a /24 (the WAN transit)")
        if int(net.network_address) + SITE_STEP * sites > int(ipaddress.IPv4Address("223.255.255.255")):
            raise SandboxError(f"--subnet {text}: no room for {sites} site subnets after it")
        return cls(name, sites, nodes_per_site, net, wan_delay_ms, wan_loss_percent)

    # ----- naming
    def router_netns(self, site: int) -> str:
        return f"{self.name}-r{site}"

    @property
    def node_count(self) -> int:
        return self.sites * self.nodes_per_site

    def site_of(self, index: int) -> tuple[int, int]:
        """(site, position in the site) of sandbox node ``index`` (1-based both)."""
        if not 1 <= index <= self.node_count:
            raise SandboxError(f"node n{index} is not in this {self.sites}-site sandbox")
        return (index - 1) // self.nodes_per_site + 1, (index - 1) % self.nodes_per_site + 1

    def site_subnet(self, site: int) -> ipaddress.IPv4Network:
        """Site ``s``'s private subnet: the WAN transit's /24 moved up ``s`` in the second octet
        (WAN 10.40.0.0/24: site 1 is 10.41.0.0/24, site 2 10.42.0.0/24)."""
        return ipaddress.IPv4Network((int(self.wan_subnet.network_address) + SITE_STEP * site, 24))

    def site_gateway(self, site: int) -> str:
        return str(self.site_subnet(site).network_address + 254)

    def public_addr(self, site: int) -> str:
        """The router's WAN address: every node of the site is reached there."""
        return str(self.wan_subnet.network_address + site)

    def private_addr(self, index: int) -> str:
        site, position = self.site_of(index)
        return str(self.site_subnet(site).network_address + position)

    def public_port(self, index: int, port: int) -> int:
        return port + PORT_STRIDE * (self.site_of(index)[1] - 1)

    def region(self, site: int) -> str:
        return f"s{site}"

    def daemon_flags(self, index: int) -> list[str]:
        """The node options a daemon behind this NAT needs (bind here, advertise the router's forwards)."""
        site, _ = self.site_of(index)
        flags = [
            "--advertise-addr",
            self.public_addr(site),
            "--listen-addr",
            self.private_addr(index),
            "--label",
            f"region={self.region(site)}",
        ]
        for kind, port, _protos in P2PORCH_PORTS:
            flags += [f"--advertise-{kind}-port", str(self.public_port(index, port))]
        return flags

    # ----- router rules (iptables argument lists, table first)
    def nat_rules(self, site: int) -> list[list[str]]:
        """The router's NAT: masquerade out of the WAN, forward only the p2porch ports in (and hairpin)."""
        public = self.public_addr(site)
        lan = str(self.site_subnet(site))
        rules = [
            ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"],
            # hairpin: a node reaching a neighbour at the public address must get the answer back via us
            [
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                lan,
                "-d",
                lan,
                "-o",
                "lan",
                "-j",
                "SNAT",
                "--to-source",
                public,
            ],
        ]
        for index in range(1, self.node_count + 1):
            if self.site_of(index)[0] != site:
                continue
            private = self.private_addr(index)
            for _kind, port, protos in P2PORCH_PORTS:
                for proto in protos:
                    rules.append(
                        ["-t", "nat", "-A", "PREROUTING", "-d", public, "-p", proto, "--dport",
                         str(self.public_port(index, port)), "-j", "DNAT", "--to-destination",
                         f"{private}:{port}"]
                    )  # fmt: skip
        # The WAN hop is a TAP read by a userspace process, which gets no checksum-offload metadata: a
        # UDP packet still carrying a partial checksum (VXLAN from a veth) would arrive corrupt, and
        # the far router's conntrack would call it INVALID and never forward it. Fill it in here.
        rules.append(
            [
                "-t",
                "mangle",
                "-A",
                "POSTROUTING",
                "-o",
                "wan0",
                "-p",
                "udp",
                "-j",
                "CHECKSUM",
                "--checksum-fill",
            ]
        )
        return rules

    @staticmethod
    def cut_rules() -> list[list[str]]:
        """What a cut site's router drops: everything it would forward to or from the WAN, silently
        (a cut cable or a dead provider link answers nothing; an unreachable error would end
        connections at once, which real cuts do not). Its LAN and the hairpin keep working."""
        return [["FORWARD", "-i", "wan0", "-j", "DROP"], ["FORWARD", "-o", "wan0", "-j", "DROP"]]

    def to_json(self) -> dict:
        return {
            "sites": self.sites,
            "nodes_per_site": self.nodes_per_site,
            "wan_subnet": str(self.wan_subnet),
            "wan_delay_ms": self.wan_delay_ms,
            "wan_loss_percent": self.wan_loss_percent,
        }


# ----------------------------------------------------------------------------- shell
def _ip() -> str:
    return find_program("ip") or "ip"


def _netns_exists(netns: str) -> bool:
    out = run([_ip(), "netns", "list"], check=False).stdout.decode()
    return any(line.split()[0] == netns for line in out.splitlines() if line.split())


def _ensure_netns(netns: str) -> None:
    if not _netns_exists(netns):
        run([_ip(), "netns", "add", netns])
    run([_ip(), "-n", netns, "link", "set", "lo", "up"])


def _sysctl(netns: str, key: str, value: str) -> None:
    run([_ip(), "netns", "exec", netns, "sysctl", "-q", "-w", f"{key}={value}"])


def ensure_router(plan: SitePlan, site: int) -> None:
    """Site ``site``'s router namespace: LAN bridge, WAN uplink (a TAP the WAN emulator serves), NAT
    and port forwards."""
    router = plan.router_netns(site)
    _ensure_netns(router)
    ns = [_ip(), "-n", router]
    if run([*ns, "link", "show", "lan"], check=False).returncode != 0:
        run([*ns, "link", "add", "lan", "type", "bridge"])
    run([*ns, "addr", "replace", f"{plan.site_gateway(site)}/24", "dev", "lan"])
    run([*ns, "link", "set", "lan", "up"])
    if run([*ns, "link", "show", "wan0"], check=False).returncode != 0:
        run([*ns, "tuntap", "add", "dev", "wan0", "mode", "tap"])
    run([*ns, "addr", "replace", f"{plan.public_addr(site)}/{plan.wan_subnet.prefixlen}", "dev", "wan0"])
    run([*ns, "link", "set", "wan0", "up"])
    _sysctl(router, "net.ipv4.ip_forward", "1")
    _sysctl(router, "net.ipv4.conf.all.rp_filter", "0")
    iptables = find_program("iptables") or "iptables"
    nsexec = [_ip(), "netns", "exec", router, iptables, "-w"]
    run([*nsexec, "-t", "nat", "-F"])
    run([*nsexec, "-t", "mangle", "-F"])
    for rule in plan.nat_rules(site):
        run([*nsexec, *rule])


def wanlink_argv(plan: SitePlan, python: str, pid_file: str) -> list[str]:
    """The command that runs the WAN emulator between every site router (see wanlink.py)."""
    argv = [python, "-m", "p2porch.sandbox.wanlink", "--pid-file", pid_file]
    for site in range(1, plan.sites + 1):
        argv += ["--tap", f"{plan.router_netns(site)}:wan0"]
    return argv + ["--delay-ms", f"{plan.wan_delay_ms:g}", "--loss-percent", f"{plan.wan_loss_percent:g}"]


def attach_node(plan: SitePlan, index: int, node_netns: str, router_veth: str) -> None:
    """Plug node ``index``'s namespace into its site's LAN (its ``eth0``; the other end in the router)."""
    site, _ = plan.site_of(index)
    router = plan.router_netns(site)
    node = [_ip(), "-n", node_netns]
    if run([*node, "link", "show", "eth0"], check=False).returncode != 0:
        run([_ip(), "-n", router, "link", "del", router_veth], check=False)
        run([_ip(), "-n", router, "link", "add", router_veth, "type", "veth", "peer", "name", "eth0",
             "netns", node_netns])  # fmt: skip
    ns = [_ip(), "-n", router]
    run([*ns, "link", "set", router_veth, "master", "lan"])
    run([*ns, "link", "set", router_veth, "up"])
    run([*node, "link", "set", "lo", "up"])
    run([*node, "addr", "replace", f"{plan.private_addr(index)}/24", "dev", "eth0"])
    run([*node, "link", "set", "eth0", "up"])
    run([*node, "route", "replace", "default", "via", plan.site_gateway(site)])


def set_site_cut(plan: SitePlan, site: int, cut: bool) -> None:
    """Cut site ``site`` off the WAN (its router silently drops every WAN packet) or heal it; its LAN
    keeps working. Idempotent both ways."""
    iptables = find_program("iptables") or "iptables"
    nsexec = [_ip(), "netns", "exec", plan.router_netns(site), iptables, "-w"]
    for chain, *match in plan.cut_rules():  # filter table
        present = run([*nsexec, "-C", chain, *match], check=False).returncode == 0
        if cut and not present:
            run([*nsexec, "-I", chain, "1", *match])
        elif not cut:
            while run([*nsexec, "-D", chain, *match], check=False).returncode == 0:
                pass


def remove_sites(name: str) -> list[str]:
    """Delete every router namespace of sandbox ``name`` (whatever state they are in)."""
    removed = []
    out = run([_ip(), "netns", "list"], check=False).stdout.decode()
    for line in out.splitlines():
        netns = line.split()[0] if line.split() else ""
        rest = netns[len(name) + 1 :] if netns.startswith(f"{name}-") else ""
        if rest.startswith("r") and rest[1:].isdigit():
            run([_ip(), "netns", "del", netns], check=False)
            removed.append(netns)
    return removed
