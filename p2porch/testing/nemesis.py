"""A seeded nemesis for sandbox clusters: kill -9 and restart, pause, partition, link down (tests only).

Owns the faults a history test injects into the p2porch daemons of a :class:`~p2porch.sandbox.sandbox.Sandbox`
and the record of every fault (kind, node, its Raft role at the time, start and end). One fault at a time,
on the Raft leader about half the time and on any other node (followers, replicas) otherwise; every
choice comes from one ``random.Random(seed)``. ``heal_all`` undoes whatever is active, also after an error:
killed daemons are restarted from the command line they ran with, paused ones continued, drop rules
deleted, links brought up. It never touches processes, rules or links of other sandboxes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..sandbox.sandbox import Sandbox, SandboxNode
from ..sandbox.system import find_program, pid_alive, read_pid

log = logging.getLogger(__name__)

FAULT_KINDS = ("kill", "pause", "partition", "linkdown")
RULE_TAG = "p2porch-nemesis"


@dataclass
class Fault:
    """One injected fault; ``end`` is when it was healed (monotonic seconds)."""

    kind: str
    node: str
    role: str  # leader | follower | replica | unknown, when the fault started
    start: float
    end: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "node": self.node,
            "role": self.role,
            "start": round(self.start, 3),
            "end": None if self.end is None else round(self.end, 3),
        }


@dataclass
class _Active:
    fault: Fault
    heal: Callable[[], None]


def _ip() -> str:
    return find_program("ip") or "ip"


def _iptables_in(node: SandboxNode, *args: str) -> int:
    argv = [_ip(), "netns", "exec", node.netns, find_program("iptables") or "iptables", "-w", *args]
    return subprocess.run(argv, capture_output=True, check=False, timeout=20).returncode


def _drop_rules(node: SandboxNode, action: str) -> None:
    """Insert (-I) or delete (-D) the rules that drop everything on the node's underlay (eth0)."""
    for chain, direction in (("INPUT", "-i"), ("OUTPUT", "-o")):
        rule = [chain, direction, "eth0", "-m", "comment", "--comment", RULE_TAG, "-j", "DROP"]
        if action == "-D":
            while _iptables_in(node, "-D", *rule) == 0:
                pass
        else:
            _iptables_in(node, "-I", rule[0], "1", *rule[1:])


def _set_link(node: SandboxNode, state: str) -> None:
    subprocess.run(
        [_ip(), "link", "set", node.host_veth, state], capture_output=True, check=False, timeout=20
    )


class DaemonControl:
    """Kill, restart, pause and continue one sandbox node's p2porch daemon by its pid file."""

    def __init__(self, node: SandboxNode) -> None:
        self.node = node
        self.argv: list[str] | None = None  # the command line of the last daemon seen
        self.started: subprocess.Popen[bytes] | None = None  # the last restart (nsenter execs the daemon)

    def pid(self) -> int | None:
        pid = read_pid(self.node.p2porch_pidfile)
        return pid if pid is not None and pid_alive(pid) else None

    def remember_argv(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        if argv:
            self.argv = argv

    def kill(self) -> None:
        self.remember_argv()
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        """Start the daemon again, in its namespace, with the command line it had (no-op if it runs)."""
        if self.pid() is not None:
            return
        if self.argv is None:
            raise RuntimeError(f"no command line known for the daemon of {self.node.name}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.node.p2porch_pidfile)
        nsenter = find_program("nsenter") or "nsenter"
        with open(self.node.p2porch_log, "ab") as out:
            self.started = subprocess.Popen(
                [nsenter, f"--net=/var/run/netns/{self.node.netns}", *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def running(self) -> bool:
        """The daemon runs, or the one restarted last is still starting."""
        return self.pid() is not None or (self.started is not None and self.started.poll() is None)

    def signal(self, signum: int) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signum)


@dataclass
class Nemesis:
    """Injects one fault at a time on ``nodes`` until stopped; ``faults`` is the record."""

    sandbox: Sandbox
    nodes: Sequence[SandboxNode]
    seed: int
    kinds: Sequence[str] = FAULT_KINDS
    gap_s: tuple[float, float] = (1.0, 3.0)
    length_s: tuple[float, float] = (3.0, 8.0)
    leader_of: Callable[[], str | None] = lambda: None  # name of the current leader, if known
    role_of: Callable[[str], str] = lambda name: "unknown"
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be some of {', '.join(FAULT_KINDS)}, not {unknown}")
        self.rng = random.Random(self.seed)
        self.daemons = {n.name: DaemonControl(n) for n in self.nodes}
        for daemon in self.daemons.values():
            daemon.remember_argv()
        self._active: _Active | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self.errors: list[str] = []

    # --- lifecycle
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float:
        """Stop injecting, heal what is active; returns the monotonic time of the last heal."""
        self._stop.set()
        self._thread.join(timeout=60)
        self.heal_all()
        ends = [f.end for f in self.faults if f.end is not None]
        return max(ends, default=time.monotonic())

    def heal_all(self) -> None:
        with self._lock:
            active, self._active = self._active, None
        if active is not None:
            self._heal(active)
        killed = active.fault.node if active is not None and active.fault.kind == "kill" else None
        for node in self.nodes:  # belt and braces: nothing of ours stays behind
            _drop_rules(node, "-D")
            _set_link(node, "up")
            daemon = self.daemons[node.name]
            daemon.signal(signal.SIGCONT)
            if not daemon.running() and node.name != killed:
                self.errors.append(f"the daemon of {node.name} was not running (it died by itself)")
            with contextlib.suppress(RuntimeError):
                daemon.restart()

    # --- the schedule
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._stop.wait(self.rng.uniform(*self.gap_s)):
                return
            kind = self.rng.choice(list(self.kinds))
            victim = self._victim()
            length = self.rng.uniform(*self.length_s)
            try:
                self._inject(kind, victim)
            except Exception as exc:  # a failed injection is reported, never fatal to the run
                self.errors.append(f"{kind} on {victim.name}: {type(exc).__name__}: {exc}")
                log.exception("nemesis %s on %s failed", kind, victim.name)
            self._stop.wait(length)
            with self._lock:
                active, self._active = self._active, None
            if active is not None:
                self._heal(active)

    def _victim(self) -> SandboxNode:
        leader = None
        if self.rng.random() < 0.5:
            with contextlib.suppress(Exception):
                leader = self.leader_of()
        names = [n.name for n in self.nodes]
        name = leader if leader in names else self.rng.choice(names)
        return next(n for n in self.nodes if n.name == name)

    def _inject(self, kind: str, node: SandboxNode) -> None:
        role = "unknown"
        with contextlib.suppress(Exception):
            role = self.role_of(node.name)
        daemon = self.daemons[node.name]
        heal: Callable[[], None]
        if kind == "kill":
            daemon.kill()
            heal = daemon.restart
        elif kind == "pause":
            daemon.remember_argv()
            daemon.signal(signal.SIGSTOP)
            heal = lambda: daemon.signal(signal.SIGCONT)  # noqa: E731
        elif kind == "partition":
            _drop_rules(node, "-I")
            heal = lambda: _drop_rules(node, "-D")  # noqa: E731
        else:  # linkdown
            _set_link(node, "down")
            heal = lambda: _set_link(node, "up")  # noqa: E731
        fault = Fault(kind, node.name, role, time.monotonic())
        self.faults.append(fault)
        with self._lock:
            self._active = _Active(fault, heal)

    def _heal(self, active: _Active) -> None:
        try:
            active.heal()
        except Exception as exc:
            self.errors.append(f"healing {active.fault.kind} on {active.fault.node}: {exc}")
        active.fault.end = time.monotonic()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for fault in self.faults:
            out[fault.kind] = out.get(fault.kind, 0) + 1
            out[f"on_{fault.role}"] = out.get(f"on_{fault.role}", 0) + 1
        return out
