"""N hosts on one machine: a network namespace, a dockerd and a p2porch daemon per node (shell).

Owns the root bridge, the veth pairs, the namespaces, the per-node dockerd and p2porch daemon
processes and their directories, all named after the sandbox. ``up`` is idempotent and cleans up
after itself when it fails halfway; ``down`` removes everything ``up`` created and nothing else.
It never touches namespaces, links or processes that do not carry the sandbox's name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from ..config import MAX_RTT_MS
from ..errors import SandboxError
from ..launch import daemon_argv
from . import pacing
from . import sites as site_net
from .dockerd import DockerdPaths, docker, docker_ping, ensure_busybox_image, start_dockerd, stop_dockerd
from .leftovers import SANDBOX_NAME, cgroup_host_indexes, stop_host_leftovers, unmount_under
from .sites import SitePlan
from .system import check_prerequisites, find_program, pid_alive, read_pid, run, stop_pid

RUN_ROOT = "/run/p2porch-sandbox"
DATA_ROOT = "/var/lib/p2porch-sandbox"
DEFAULT_NAME = "p2s"
DEFAULT_SUBNET = "10.77.0.0/24"
MAX_NODES = 50
DOWN_PARALLEL = 8  # hosts torn down at once
#: above this many hosts on one machine, the daemons run Raft with the timing of a CROWDED_RTT_MS round
#: trip: their cores are shared by every host's daemon and engine, and during a formation a process
#: waits its turn for longer than the default election timeout (0.5 s), which set off election storms
#: (docs/performance.md, "`sandbox up --nodes 50`"). The value is chosen when the sandbox is created
#: and kept in its state (``raft_rtt_ms``), so every daemon it ever starts runs the same timing;
#: P2PORCH_RAFT_RTT_MS in the caller's environment wins.
CROWDED_HOSTS = pacing.CROWDED_HOSTS
CROWDED_RTT_MS = pacing.CROWDED_RTT_MS
NAME_RE = re.compile(rf"^{SANDBOX_NAME}$")  # a sandbox name (prefixes links: 15 bytes)


@dataclass(frozen=True)
class SandboxNode:
    """Where one sandbox node lives and how to reach its dockerd and p2porch daemon."""

    name: str  # n1, n2, ...
    netns: str
    address: str  # underlay address inside the namespace (eth0)
    host_veth: str
    run_dir: str
    data_dir: str
    site: int = 0  # 0: the single-bridge sandbox; else the site behind whose NAT the node lives
    public_addr: str = ""  # the node's address as other sites reach it (its router's), else ""
    daemon_flags: tuple[str, ...] = ()  # node options beyond --advertise-addr (multi-site: NAT flags)

    @property
    def dockerd(self) -> DockerdPaths:
        return DockerdPaths(run_dir=self.run_dir, data_dir=self.data_dir)

    @property
    def cgroup_parent(self) -> str:
        return "/p2porch-" + self.netns  # its dockerd's --cgroup-parent: every container of the node

    @property
    def p2porch_socket(self) -> str:
        return os.path.join(self.run_dir, "p2porch.sock")

    @property
    def p2porch_host(self) -> str:
        return "unix://" + self.p2porch_socket

    @property
    def p2porch_pidfile(self) -> str:
        return os.path.join(self.run_dir, "p2porch-daemon.pid")

    @property
    def p2porch_data_dir(self) -> str:
        return os.path.join(self.data_dir, "p2porch")

    @property
    def p2porch_log(self) -> str:
        return os.path.join(self.data_dir, "p2porch.log")

    def env(self) -> dict[str, str]:
        """Environment that points the docker and p2porch CLIs at this node."""
        return {"DOCKER_HOST": self.dockerd.host_url, "P2PORCH_HOST": self.p2porch_host}

    def exec_env(self) -> dict[str, str]:
        """``env()`` plus the node's data dir and name for a daemon `init`/`join` starts (``--no-daemons``;
        it took the machine's /var/lib/p2porch and hostname, shared by every host, kept by `down`)."""
        return {**self.env(), "P2PORCH_NODE_DATA_DIR": self.p2porch_data_dir, "P2PORCH_NODE_NAME": self.name}

    def daemon_pid(self) -> int | None:
        """The pid of the node's running daemon: the one `up` started, or one `init`/`join` started."""
        for path in (self.p2porch_pidfile, os.path.join(self.p2porch_data_dir, "daemon.pid")):
            pid = read_pid(path)
            if pid is not None and pid_alive(pid):
                return pid
        return None


def exec_environment(base: Mapping[str, str], node_env: Mapping[str, str], bin_dir: str) -> dict[str, str]:
    """The environment of ``sandbox exec``: the caller's, the node's DOCKER_HOST/P2PORCH_HOST, and the
    directory of this p2porch's interpreter first on PATH, so ``exec n1 -- p2porch status`` finds the same
    p2porch (e.g. ``.venv/bin/p2porch``) when it is not installed system-wide."""
    env = dict(base)
    env.update(node_env)
    path = [entry for entry in env.get("PATH", os.defpath).split(os.pathsep) if entry]
    if bin_dir and bin_dir not in path:
        env["PATH"] = os.pathsep.join([bin_dir, *path])
    return env


def daemon_environment(base: Mapping[str, str], raft_rtt_ms: int | None) -> dict[str, str]:
    """The environment of a sandbox daemon: the caller's, with the sandbox's Raft timing unless the
    caller set P2PORCH_RAFT_RTT_MS itself."""
    env = dict(base)
    if raft_rtt_ms:
        env.setdefault("P2PORCH_RAFT_RTT_MS", str(raft_rtt_ms))
    return env


@dataclass(frozen=True)
class NodeStatus:
    node: str
    netns: str
    address: str
    dockerd_pid: int | None
    dockerd_up: bool
    daemon_pid: int | None
    daemon_up: bool
    containers: int | None
    site: int = 0
    public_addr: str = ""


class Sandbox:
    """A named sandbox of ``n1..nN`` hosts on the bridge ``<name>-br`` and subnet ``subnet``."""

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        *,
        subnet: str | None = None,
        start_daemons: bool = True,
        api_port: int | None = None,
        sites: int | None = None,
        nodes_per_site: int = 3,
        wan_delay_ms: float = 0.0,
        wan_loss_percent: float = 0.0,
        raft_rtt_ms: int | None = None,
    ):
        """``sites`` N makes a multi-site sandbox (``subnet`` is then its WAN transit, see sites.py).

        ``raft_rtt_ms``: the ``raft.rtt_ms`` every daemon of the sandbox runs with; None: the saved
        sandbox's, else chosen by ``up`` from its host count (``pacing.default_rtt_ms``)."""
        if not NAME_RE.match(name):
            raise SandboxError(
                f"sandbox name {name!r} must be 1-6 lowercase letters/digits, starting with a letter"
            )
        self.name = name
        self.run_root = os.path.join(RUN_ROOT, name)
        self.data_root = os.path.join(DATA_ROOT, name)
        self.state_file = os.path.join(self.run_root, "sandbox.json")
        saved = self._load_state()
        self.plan: SitePlan | None = None
        saved_rtt = saved.get("raft_rtt_ms")
        if raft_rtt_ms is not None and not 0 <= raft_rtt_ms <= MAX_RTT_MS:
            raise SandboxError(f"raft_rtt_ms must be between 0 and {MAX_RTT_MS:.0f}, not {raft_rtt_ms}")
        if raft_rtt_ms is not None and isinstance(saved_rtt, int) and saved_rtt != raft_rtt_ms:
            raise SandboxError(
                f"sandbox {name} already runs its daemons with raft rtt {saved_rtt} ms; run down first"
            )
        self.neighbour_limits_raised: dict[str, int] = {}  # what the last up() wrote
        self.saved_nodes = _int_or_none(saved.get("nodes"))  # hosts of the existing sandbox, if any
        #: the Raft timing of every daemon this sandbox starts (None until up() decides it)
        self.raft_rtt_ms: int | None = raft_rtt_ms if raft_rtt_ms is not None else _int_or_none(saved_rtt)
        saved_sites = saved.get("sites")
        if sites is not None and saved_sites and saved_sites.get("sites") != sites:
            raise SandboxError(
                f"sandbox {name} already exists with {saved_sites['sites']} sites; run down first"
            )
        if sites is not None:
            self.plan = SitePlan.build(name, sites, nodes_per_site, subnet, wan_delay_ms, wan_loss_percent)
        elif isinstance(saved_sites, dict):
            self.plan = SitePlan.build(
                name,
                int(saved_sites["sites"]),
                int(saved_sites["nodes_per_site"]),
                str(saved_sites["wan_subnet"]),
                float(saved_sites.get("wan_delay_ms", 0.0)),
                float(saved_sites.get("wan_loss_percent", 0.0)),
            )
        chosen = subnet or saved.get("subnet") or DEFAULT_SUBNET
        try:
            self.subnet = ipaddress.IPv4Network(chosen)
        except ValueError as exc:
            raise SandboxError(f"invalid sandbox subnet {chosen!r}: {exc}") from exc
        if saved.get("subnet") and subnet and saved["subnet"] != subnet:
            raise SandboxError(f"sandbox {name} already exists with subnet {saved['subnet']}; run down first")
        if self.subnet.num_addresses < 8:
            raise SandboxError(f"sandbox subnet {chosen} is too small")
        self.start_daemons = start_daemons
        self.api_port = api_port or saved.get("api_port")  # each daemon's TLS API on ADDRESS:PORT
        self.bridge = f"{name}-br"

    # ----- naming
    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + self.subnet.num_addresses - 2)

    def node(self, index: int) -> SandboxNode:
        name = f"n{index}"
        if self.plan is not None:
            site, _ = self.plan.site_of(index)
            return SandboxNode(
                name=name,
                netns=f"{self.name}-{name}",
                address=self.plan.private_addr(index),
                host_veth=name,  # inside the router namespace
                run_dir=os.path.join(self.run_root, name),
                data_dir=os.path.join(self.data_root, name),
                site=site,
                public_addr=self.plan.public_addr(site),
                daemon_flags=tuple(self.plan.daemon_flags(index)),
            )
        return SandboxNode(
            name=name,
            netns=f"{self.name}-{name}",
            address=str(self.subnet.network_address + index),
            host_veth=f"{self.name}-{name}h",
            run_dir=os.path.join(self.run_root, name),
            data_dir=os.path.join(self.data_root, name),
        )

    def node_by_name(self, name: str) -> SandboxNode:
        match = re.fullmatch(r"n?(\d+)", name)
        if not match or int(match.group(1)) not in self.existing_indexes():
            have = ", ".join(f"n{i}" for i in self.existing_indexes()) or "none"
            raise SandboxError(f"no sandbox node {name!r} in sandbox {self.name} (nodes: {have})")
        return self.node(int(match.group(1)))

    def existing_indexes(self) -> list[int]:
        """Indexes of this sandbox's namespaces that exist in the kernel."""
        out = run([_ip(), "netns", "list"], check=False).stdout.decode()
        indexes = []
        prefix = f"{self.name}-n"
        for line in out.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(prefix) and ns[len(prefix) :].isdigit():
                indexes.append(int(ns[len(prefix) :]))
        return sorted(indexes)

    # ----- lifecycle
    def up(self, nodes: int | None = None) -> list[SandboxNode]:
        """Bring up ``nodes`` hosts (idempotent); on any failure remove everything and re-raise.

        A multi-site sandbox brings up ``sites x nodes_per_site`` hosts (``nodes`` must be None or that)."""
        check_prerequisites()
        if self.plan is not None:
            if nodes not in (None, self.plan.node_count):
                raise SandboxError("a multi-site sandbox has --sites x --nodes-per-site nodes; omit --nodes")
            nodes = self.plan.node_count
        elif nodes is None:
            nodes = 3
        if not 1 <= nodes <= min(MAX_NODES, self.subnet.num_addresses - 3):
            raise SandboxError(
                f"--nodes must be between 1 and {min(MAX_NODES, self.subnet.num_addresses - 3)}"
            )
        extra = [i for i in self.existing_indexes() if i > nodes]
        if extra:
            raise SandboxError(
                f"sandbox {self.name} already has {max(extra)} nodes; run down first to shrink it"
            )
        try:
            os.makedirs(self.run_root, mode=0o700, exist_ok=True)
            os.makedirs(self.data_root, mode=0o700, exist_ok=True)
            self.settle_timing(nodes)
            if self.plan is None:
                self._ensure_bridge()
            else:
                for site in range(1, self.plan.sites + 1):
                    site_net.ensure_router(self.plan, site)
                self._ensure_wanlink(self.plan)
            self.neighbour_limits_raised = _raise_neighbour_limits(pacing.neighbour_limits(nodes))
            created = []
            for index in range(1, nodes + 1):
                node = self.node(index)
                self._ensure_namespace(node)
                start_dockerd(node.netns, node.dockerd, cgroup_parent=node.cgroup_parent)
                ensure_busybox_image(node.dockerd)
                if self.start_daemons:
                    self._ensure_daemon(node)
                created.append(node)
            return created
        except BaseException:
            with contextlib.suppress(SandboxError):  # survivors are named by the next down; this error stands
                self.down()
            raise

    def settle_timing(self, nodes: int) -> None:
        """Fix the daemons' Raft timing of a new sandbox from its host count (an existing one keeps
        what it was created with, also when it grows: one cluster, one timing) and save the state."""
        if self.raft_rtt_ms is None:
            self.raft_rtt_ms = pacing.default_rtt_ms(nodes)
        os.makedirs(self.run_root, mode=0o700, exist_ok=True)
        self._save_state(nodes)

    def down(self) -> list[str]:
        """Remove every node, link, rule, process, mount and directory of this sandbox; raises
        SandboxError naming the pids and cgroup of processes that survived SIGKILL, once all else went."""
        found = {*self.existing_indexes(), *self._dirs_indexes(), *cgroup_host_indexes(self.name)}
        # hosts are independent: several at a time (a 50-host sandbox took 3-5 minutes one by one,
        # most of it waiting for daemons and engines to exit)
        with ThreadPoolExecutor(max_workers=DOWN_PARALLEL) as pool:
            results = list(pool.map(self._remove_host, [self.node(i) for i in sorted(found)]))
        run([_ip(), "link", "del", self.bridge], check=False)
        self._forward_rule("-D")
        wanlink = read_pid(self.wanlink_pidfile)
        if wanlink is not None:
            stop_pid(wanlink, timeout_s=5)
        site_net.remove_sites(self.name)
        shutil.rmtree(self.run_root, ignore_errors=True)
        shutil.rmtree(self.data_root, ignore_errors=True)
        stuck = [f"{node.cgroup_parent} (pids {' '.join(map(str, sorted(p)))})" for node, p in results if p]
        if stuck:
            raise SandboxError(f"processes survived SIGKILL in cgroup {', '.join(stuck)}; run down again")
        return [node.name for node, _pids in results]

    def _remove_host(self, node: SandboxNode) -> tuple[SandboxNode, set[int]]:
        """Remove one host; returns it with the pids under its cgroup parent that survived SIGKILL."""
        self._stop_daemon(node)
        stop_dockerd(node.dockerd)
        survivors = stop_host_leftovers(node.netns, node.cgroup_parent)
        unmount_under(node.run_dir)
        unmount_under(node.data_dir)
        run([_ip(), "netns", "del", node.netns], check=False)
        run([_ip(), "link", "del", node.host_veth], check=False)
        return node, survivors

    def ls(self) -> list[NodeStatus]:
        out = []
        for index in self.existing_indexes():
            node = self.node(index)
            docker_pid = read_pid(node.dockerd.pidfile)
            docker_up = docker_pid is not None and pid_alive(docker_pid) and docker_ping(node.dockerd)
            containers = None
            if docker_up:
                ps = docker(node.dockerd, "ps", "-q", check=False)
                containers = len(ps.stdout.split()) if ps.returncode == 0 else None
            daemon_pid = node.daemon_pid()
            out.append(
                NodeStatus(
                    node=node.name,
                    netns=node.netns,
                    address=node.address,
                    dockerd_pid=docker_pid,
                    dockerd_up=docker_up,
                    daemon_pid=daemon_pid,
                    daemon_up=daemon_pid is not None,
                    containers=containers,
                    site=node.site,
                    public_addr=node.public_addr,
                )
            )
        return out

    def exec(
        self, node_name: str, argv: Sequence[str], *, capture: bool = False
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside a node's network namespace with DOCKER_HOST and P2PORCH_HOST set."""
        if not argv:
            raise SandboxError("sandbox exec needs a command after --")
        node = self.node_by_name(node_name)
        env = exec_environment(os.environ, node.exec_env(), os.path.dirname(sys.executable))
        return subprocess.run(
            [find_program("nsenter") or "nsenter", f"--net=/var/run/netns/{node.netns}", *argv],
            env=env,
            capture_output=capture,
            check=False,
        )

    def set_site_cut(self, site: int, cut: bool) -> None:
        """Cut a site of a multi-site sandbox off the WAN, or heal it."""
        if self.plan is None or not 1 <= site <= self.plan.sites:
            raise SandboxError(f"sandbox {self.name} has no site {site}")
        site_net.set_site_cut(self.plan, site, cut)

    # ----- pieces
    @property
    def wanlink_pidfile(self) -> str:
        return os.path.join(self.run_root, "wanlink.pid")

    def _ensure_wanlink(self, plan: SitePlan) -> None:
        """Start the WAN emulator between the site routers unless it runs (see wanlink.py)."""
        pid = read_pid(self.wanlink_pidfile)
        if pid is not None and pid_alive(pid):
            return
        argv = site_net.wanlink_argv(plan, sys.executable, self.wanlink_pidfile)
        with open(os.path.join(self.data_root, "wanlink.log"), "ab") as log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 10
        while read_pid(self.wanlink_pidfile) != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_pid(proc.pid)
                raise SandboxError(f"the WAN emulator did not start; see {self.data_root}/wanlink.log")
            time.sleep(0.05)

    def _ensure_bridge(self) -> None:
        if run([_ip(), "link", "show", self.bridge], check=False).returncode != 0:
            run([_ip(), "link", "add", self.bridge, "type", "bridge"])
        run([_ip(), "addr", "replace", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge])
        run([_ip(), "link", "set", self.bridge, "up"])
        # A dockerd in the root namespace sets FORWARD to DROP with bridge netfilter on, which drops
        # frames bridged between our veths: accept them, scoped to our bridge only.
        if self._forward_rule("-C") != 0:
            self._forward_rule("-I")

    def _forward_rule(self, action: str) -> int:
        iptables = find_program("iptables")
        if iptables is None:
            return 1
        argv = [iptables, "-w", action, "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        if action == "-I":
            argv.insert(4, "1")
        if action == "-D":
            while run(argv, check=False).returncode == 0:
                pass
            return 0
        return run(argv, check=False).returncode

    def _ensure_namespace(self, node: SandboxNode) -> None:
        ip = _ip()
        if self.plan is not None:
            if run([ip, "netns", "list"], check=False).stdout.decode().split().count(node.netns) == 0:
                run([ip, "netns", "add", node.netns])
            site_net.attach_node(self.plan, int(node.name[1:]), node.netns, node.host_veth)
            os.makedirs(node.run_dir, mode=0o700, exist_ok=True)
            os.makedirs(node.data_dir, mode=0o700, exist_ok=True)
            return
        if run([ip, "netns", "list"], check=False).stdout.decode().split().count(node.netns) == 0:
            run([ip, "netns", "add", node.netns])
        ns = [ip, "-n", node.netns]
        if run([*ns, "link", "show", "eth0"], check=False).returncode != 0:
            run([ip, "link", "del", node.host_veth], check=False)
            run(
                [
                    ip,
                    "link",
                    "add",
                    node.host_veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    node.netns,
                ]
            )
        run([ip, "link", "set", node.host_veth, "master", self.bridge])
        run([ip, "link", "set", node.host_veth, "up"])
        run([*ns, "link", "set", "lo", "up"])
        run([*ns, "addr", "replace", f"{node.address}/{self.subnet.prefixlen}", "dev", "eth0"])
        run([*ns, "link", "set", "eth0", "up"])
        run([*ns, "route", "replace", "default", "via", self.gateway])
        os.makedirs(node.run_dir, mode=0o700, exist_ok=True)
        os.makedirs(node.data_dir, mode=0o700, exist_ok=True)

    def _ensure_daemon(self, node: SandboxNode) -> None:
        if node.daemon_pid() is not None:
            return
        daemon_args = [
            "--data-dir",
            node.p2porch_data_dir,
            *(() if node.daemon_flags else ("--advertise-addr", node.address)),
            "--docker-host",
            node.dockerd.host_url,
            "--name",
            node.name,
            "--pid-file",
            node.p2porch_pidfile,
            *node.daemon_flags,
        ]
        argv = [
            find_program("nsenter") or "nsenter",
            f"--net=/var/run/netns/{node.netns}",
            *daemon_argv(daemon_args, host=node.p2porch_host),
        ]
        if self.api_port:
            argv += ["--api-addr", f"{node.address}:{self.api_port}"]
        env = daemon_environment(os.environ, self.raft_rtt_ms)
        with open(node.p2porch_log, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxError(
                    f"p2porch daemon on {node.name} exited with {proc.returncode}; see {node.p2porch_log}"
                )
            if os.path.exists(node.p2porch_socket) and read_pid(node.p2porch_pidfile) == proc.pid:
                return
            time.sleep(0.1)
        stop_pid(proc.pid)
        raise SandboxError(f"p2porch daemon on {node.name} did not open its socket; see {node.p2porch_log}")

    def _stop_daemon(self, node: SandboxNode) -> None:
        pid = node.daemon_pid()
        if pid is not None:
            stop_pid(pid, timeout_s=20)

    def _dirs_indexes(self) -> list[int]:
        try:
            names = os.listdir(self.run_root) + os.listdir(self.data_root)
        except FileNotFoundError:
            return []
        return sorted({int(n[1:]) for n in names if re.fullmatch(r"n\d+", n)})

    def _load_state(self) -> dict:
        try:
            with open(self.state_file) as handle:
                data = json.load(handle)
                return data if isinstance(data, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def _save_state(self, nodes: int) -> None:
        with open(self.state_file, "w") as handle:
            data: dict = {
                "subnet": str(self.subnet),
                "nodes": nodes,
                "api_port": self.api_port,
                "raft_rtt_ms": self.raft_rtt_ms,
            }
            if self.plan is not None:
                data["sites"] = self.plan.to_json()
            json.dump(data, handle)


def status_dicts(statuses: list[NodeStatus]) -> list[dict]:
    return [asdict(s) for s in statuses]


def _ip() -> str:
    return find_program("ip") or "ip"


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


NEIGH_SYSCTL = "/proc/sys/net/ipv4/neigh/default"


def _raise_neighbour_limits(wanted: dict[str, int]) -> dict[str, int]:
    """Raise the shared neighbour (ARP) table's limits to ``wanted`` where they are lower; returns what
    was written. They stay raised after ``down`` (another sandbox may need them); a limit that cannot
    be written raises SandboxError (the hosts would lose ARP entries: "neighbour table overflow")."""
    current = {}
    for key in wanted:
        try:
            with open(os.path.join(NEIGH_SYSCTL, key)) as handle:
                current[key] = int(handle.read())
        except (OSError, ValueError):
            current[key] = 0
    raised = pacing.limits_to_raise(current, wanted)
    for key in sorted(raised):
        try:
            with open(os.path.join(NEIGH_SYSCTL, key), "w") as handle:
                handle.write(str(raised[key]))
        except OSError as exc:
            raise SandboxError(
                f"cannot raise net.ipv4.neigh.default.{key} to {raised[key]} ({exc}); "
                f"set it with sysctl, or use fewer than {pacing.NEIGHBOUR_HOSTS + 1} nodes"
            ) from exc
    return raised
