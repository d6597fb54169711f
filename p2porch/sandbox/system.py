"""Thin helpers around host commands used by the sandbox (shell).

Owns running external programs and checking prerequisites. It must never kill processes by name
pattern: everything it stops is identified by pid or by the network namespace it created.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from ..errors import SandboxError

# Debian package that provides each program the sandbox needs.
REQUIRED_PROGRAMS: dict[str, str] = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "busybox": "busybox-static",
    "iptables": "iptables",
    "ipset": "ipset",  # the network isolation's address sets (netoverlay/policy_firewall.py)
}


def check_prerequisites() -> None:
    """Refuse clearly when not root or when a required program is missing."""
    if os.geteuid() != 0:
        raise SandboxError(
            "the sandbox needs root (network namespaces, dockerd): run it with sudo or as root"
        )
    missing = sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items() if find_program(prog) is None})
    if missing:
        raise SandboxError(
            "missing programs for the sandbox; install them with: apt-get install -y " + " ".join(missing)
        )
    busybox = find_program("busybox")
    if busybox is not None and not _is_static(busybox):
        raise SandboxError(
            "busybox is not statically linked; install it with: apt-get install -y busybox-static"
        )


def find_program(name: str) -> str | None:
    """Locate a program on PATH or in the sbin directories root normally has."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _is_static(path: str) -> bool:
    with open(path, "rb") as handle:
        data = handle.read(1 << 20)
    # A dynamically linked ELF names its interpreter (PT_INTERP) early in the file.
    return b"/lib64/ld-linux" not in data and b"/lib/ld-linux" not in data and b"ld-musl" not in data


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_bytes: bytes | None = None,
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capturing output; raise SandboxError with its stderr when it fails and check=True."""
    try:
        proc = subprocess.run(
            list(argv), input=input_bytes, capture_output=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError as exc:
        raise SandboxError(f"program not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"command timed out after {timeout_s:.0f} s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace").strip()
        raise SandboxError(f"command failed ({proc.returncode}): {' '.join(argv)}: {detail}")
    return proc


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] != "Z"


def read_pid(path: str) -> int | None:
    """The pid in a pid file, or None when the file is missing or garbage."""
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def stop_pid(pid: int, *, timeout_s: float = 15.0) -> None:
    """SIGTERM a process, wait for it, then SIGKILL it if it is still there."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
