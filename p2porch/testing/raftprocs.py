"""Loopback store processes for fault tests and the benchmark (shell; never used by the daemon).

``LocalCluster`` starts ``python -m p2porch.raft.node`` processes on 127.0.0.1, talks their control
protocol, and kills them by pid only (its own children). ``close()`` kills whatever is still running;
with ``die_with_parent`` the kernel kills them too if this process dies first (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runsecrets import RunSecrets

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the thread that forked it ends (its parent's death).

    The bench starts its members from its main thread, so that is when the bench process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def read_line(stream: Any, timeout_s: float) -> bytes:
    """One line from a child's stdout pipe within ``timeout_s`` (b"" on EOF or when time is up)."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b""
        chunk = os.read(fd, 1)  # byte by byte: nothing beyond the line is taken from the pipe
        if not chunk:
            return line
        line += chunk
    return line


def free_ports(n: int) -> list[int]:
    """``n`` distinct currently-free TCP ports on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ControlClient:
    """One blocking connection to a node's control port (JSON lines)."""

    def __init__(self, port: int, timeout_s: float = 15.0, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def call(self, **req: Any) -> dict[str, Any]:
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        line = self.file.readline()
        if not line:
            raise ConnectionError("control connection closed")
        return json.loads(line)  # type: ignore[no-any-return,unused-ignore]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


@dataclass
class NodeProc:
    name: str
    raft_addr: str | None
    control_port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    control_host: str = "127.0.0.1"
    netns: str | None = None  # run inside this network namespace (ip netns exec)
    _client: ControlClient | None = field(default=None, repr=False)
    _client_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> ControlClient:
        with self._client_lock:
            if self._client is None:
                self._client = ControlClient(self.control_port, host=self.control_host)
            return self._client

    def call(self, **req: Any) -> dict[str, Any]:
        """One request on the node's shared connection; one caller at a time (tests call from several
        threads, and two callers sharing it unlocked lost an answer: the other waited out its timeout)."""
        with self._client_lock:
            try:
                return self.client().call(**req)
            except OSError:  # a timed-out socket refuses every later read: the next call connects again
                self.drop_client()
                raise

    def drop_client(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class LocalCluster:
    """N voters (+ replicas) as separate processes sharing one password.

    On loopback by default; with ``netns`` (one ``(namespace, ip)`` per node, voters first) each node
    runs in its namespace with Raft on ``ip:7947`` and its control port on ``ip:7950``. The password is
    fresh for every cluster unless given, kept in a 0600 file of a 0700 directory
    (``p2porch.testing.runsecrets``) and removed by :meth:`close`.
    """

    RAFT_PORT, CONTROL_PORT = 7947, 7950

    def __init__(
        self,
        root: Path,
        voters: int = 3,
        replicas: int = 0,
        password: str | None = None,
        extra_args: tuple[str, ...] = (),
        netns: list[tuple[str, str]] | None = None,
        module: str = "p2porch.raft.node",
        node_args: Callable[[NodeProc], list[str]] | None = None,
        module_for: Callable[[NodeProc], str] | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.extra_args = tuple(extra_args)
        self.module = module  # the process to run: a store, or a store with more around it
        self.module_for = module_for  # another module for some nodes
        self.die_with_parent = die_with_parent  # only when every start() runs on one long-lived thread
        self.node_args = node_args  # more arguments for one node's process
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        self.secrets = RunSecrets(prefix="p2porch-raft-secrets-")
        self.password_file = self.secrets.write(
            "password", (password if password is not None else secrets.token_urlsafe(32)).encode()
        )
        self.nodes: list[NodeProc] = []
        if netns is not None:
            self.voter_addrs = [f"{ip}:{self.RAFT_PORT}" for _, ip in netns[:voters]]
            for i, (ns, ip) in enumerate(netns[: voters + replicas]):
                name = f"v{i}" if i < voters else f"r{i - voters}"
                raft = self.voter_addrs[i] if i < voters else None
                node = NodeProc(name, raft, self.CONTROL_PORT, self.root / name, control_host=ip, netns=ns)
                self.nodes.append(node)
            return
        ports = free_ports(2 * voters + replicas)
        self.voter_addrs = [f"127.0.0.1:{p}" for p in ports[:voters]]
        for i in range(voters):
            self.nodes.append(NodeProc(f"v{i}", self.voter_addrs[i], ports[voters + i], self.root / f"v{i}"))
        for i in range(replicas):
            self.nodes.append(NodeProc(f"r{i}", None, ports[2 * voters + i], self.root / f"r{i}"))

    def start(
        self,
        node: NodeProc,
        *,
        password_file: Path | None = None,
        wait: bool = True,
        voters: list[str] | None = None,
    ) -> None:
        """Start ``node``'s process; ``voters``: the configuration it starts with (default: every voter
        of the cluster; a joiner's test starts the others without it)."""
        module = self.module_for(node) if self.module_for else self.module
        cmd = [sys.executable, "-m", module, "--voters", ",".join(voters or self.voter_addrs)]
        if node.raft_addr:
            cmd += ["--self", node.raft_addr]
        cmd += [
            "--data-dir",
            str(node.data_dir),
            "--password-file",
            str(password_file or self.password_file),
            "--control-port",
            str(node.control_port),
            "--control-host",
            node.control_host,
            *self.extra_args,
            *(self.node_args(node) if self.node_args else []),
        ]
        if node.netns is not None:
            cmd = ["ip", "netns", "exec", node.netns, *cmd]
        node.log_path = self.root / f"{node.name}.log"
        log = open(node.log_path, "ab")  # noqa: SIM115 (handed to the child)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        root = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
        node.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            preexec_fn=_die_with_parent if self.die_with_parent else None,  # noqa: PLW1509 (no threads race it here)
        )
        log.close()
        if wait:
            self.wait_ready(node)

    def wait_ready(self, node: NodeProc, timeout_s: float = 20.0) -> None:
        assert node.proc is not None and node.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = read_line(node.proc.stdout, timeout_s)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"{node.name} failed to start: {self.log_tail(node)}")
        while time.monotonic() < deadline:
            try:
                node.client()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{node.name} control port not reachable")

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node, wait=False)
        for node in self.nodes:
            self.wait_ready(node)

    def kill(self, node: NodeProc) -> None:
        """SIGKILL one node by its pid and reap it."""
        node.drop_client()
        if node.proc is not None and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGKILL)
            node.proc.wait(timeout=10)
        if node.proc is not None and node.proc.stdout is not None:
            node.proc.stdout.close()

    def pause(self, node: NodeProc, timeout_s: float = 10.0) -> None:
        """SIGSTOP ``node`` and return once every one of its threads is stopped. ``kill`` returns before
        they are: the group stop starts only when the thread the signal went to runs (it may wait for a
        CPU), and the others run on meanwhile (a follower's Raft thread acknowledged one more append)."""
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout_s
        while not all_threads_stopped(node.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{node.name} (pid {node.proc.pid}) not stopped {timeout_s} s after SIGSTOP"
                )
            time.sleep(0.005)

    def resume_all(self) -> None:
        """SIGCONT every live node: a test that SIGSTOPped some never leaves one stopped."""
        for node in self.nodes:
            if node.alive and node.proc is not None:
                os.kill(node.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        """Kill every node and remove the password file and its directory."""
        for node in self.nodes:
            self.kill(node)
        self.secrets.close()

    def log_tail(self, node: NodeProc, lines: int = 20) -> str:
        if node.log_path is None or not node.log_path.exists():
            return ""
        return "\n".join(node.log_path.read_text(errors="replace").splitlines()[-lines:])

    def voters(self) -> list[NodeProc]:
        return [n for n in self.nodes if n.raft_addr]

    def node(self, name: str) -> NodeProc:
        return next(n for n in self.nodes if n.name == name)

    def replicas(self) -> list[NodeProc]:
        return [n for n in self.nodes if not n.raft_addr]

    def leader(self, timeout_s: float = 15.0) -> NodeProc:
        """The live voter that says it leads and that the other live voters agree on."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = [n for n in self.voters() if n.alive]
            views: dict[str, dict[str, Any]] = {}
            for n in live:
                try:
                    views[n.name] = n.call(op="status")["status"]
                except (OSError, ConnectionError, ValueError, KeyError) as exc:
                    views[n.name] = {"error": repr(exc)}
            leaders = [n for n in live if views.get(n.name, {}).get("is_leader")]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.05)
        seen = {name: {k: v.get(k) for k in ("role", "term", "leader", "error")} for name, v in views.items()}
        raise TimeoutError(f"no single leader: {seen}")

    def wait_services(self, node: NodeProc, ids: set[str], timeout_s: float = 15.0) -> set[str]:
        """Wait until ``node`` holds all ``ids``; returns what it holds at the end."""
        deadline = time.monotonic() + timeout_s
        have: set[str] = set()
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ConnectionError, ValueError):
                have = set(node.call(op="services")["ids"])
                if ids <= have:
                    return have
            time.sleep(0.05)
        return have


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is in the stopped state (``T``/``t`` in /proc/PID/task/*/stat)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in ("T", "t"):
                return False
    return True
