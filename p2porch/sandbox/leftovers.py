"""What a sandbox host leaves running once its daemon and dockerd are stopped (shell).

Owns stopping the processes of one host's containers and of its network namespace, and removing the
host's cgroup directories and mounts. A container's processes are found in the cgroup parent the host's
dockerd puts every container under (``/p2porch-<sandbox>-n<K>``, in each mounted cgroup hierarchy), not
in the host's namespace: a container has its own network namespace, and once dockerd was killed (a
crash test, ``scripts/demo.sh``) nothing removes its containers, and the shims stopped below leave
their children to init. It must never touch a cgroup but such a parent, never signal a pid it did not
read from that cgroup (and see still in it, through a pidfd) or from ``ip netns pids`` of the host's
namespace, never signal pid 0, 1 or itself, and never match processes by name.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from .system import find_program, pid_alive, run, stop_pid

MOUNTINFO = "/proc/self/mountinfo"
KILL_WITHIN_S = 10.0  # a container that forks while it is killed takes a few rounds; then we give up
SANDBOX_NAME = r"[a-z][a-z0-9]{0,5}"  # the rule for a sandbox name (sandbox.NAME_RE)
PARENT_RE = re.compile(rf"p2porch-{SANDBOX_NAME}-n[0-9]+")  # the only cgroup parent a sandbox creates


def stop_host_leftovers(netns: str, cgroup_parent: str) -> set[int]:
    """Kill every process under ``cgroup_parent`` (while their shims may still reap them), stop what
    still runs in ``netns`` (containerd, shims, test servers), then remove the empty cgroups; returns
    the pids under ``cgroup_parent`` that survived SIGKILL (empty when all are gone)."""
    survivors = kill_cgroup_processes(cgroup_parent)
    out = run([find_program("ip") or "ip", "netns", "pids", netns], check=False).stdout.decode().split()
    for pid in [int(p) for p in out if p.isdigit()]:
        stop_pid(pid, timeout_s=5)
    remove_cgroup_dirs(cgroup_parent)
    return survivors


def hierarchies(mountinfo: str = MOUNTINFO) -> list[str]:
    """The mount point of every mounted cgroup hierarchy (v1 and v2)."""
    found = []
    try:
        with open(mountinfo) as handle:
            for line in handle:
                fields = line.split()
                fstype = fields[fields.index("-") + 1] if "-" in fields else ""
                if fstype in ("cgroup", "cgroup2") and fields[4] not in found:
                    found.append(fields[4])
    except FileNotFoundError:
        return []
    return found


def cgroup_dirs(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> list[str]:
    """The directory of ``cgroup_parent`` in every mounted cgroup hierarchy where it exists. Only a
    parent a sandbox creates (``/p2porch-<sandbox>-n<K>``) is accepted, else ValueError: any other
    (``/``, ``.``, ``/docker``, ``system.slice``) would have its processes killed."""
    relative = cgroup_parent.removeprefix("/")
    if not PARENT_RE.fullmatch(relative):
        raise ValueError(f"not a cgroup parent of a sandbox host: {cgroup_parent!r}")
    paths = [os.path.join(point, relative) for point in hierarchies(mountinfo)]
    return [path for path in paths if os.path.isdir(path)]


def cgroup_host_indexes(sandbox: str, mountinfo: str = MOUNTINFO) -> list[int]:
    """The host number K of every ``p2porch-<sandbox>-n<K>`` cgroup in a mounted hierarchy (a host
    of an earlier run whose cgroups outlived its namespace and directories)."""
    pattern = re.compile(rf"p2porch-{re.escape(sandbox)}-n([0-9]+)")
    found: set[int] = set()
    for point in hierarchies(mountinfo):
        try:
            names = os.listdir(point)
        except OSError:
            continue
        found.update(int(m.group(1)) for m in map(pattern.fullmatch, names) if m)
    return sorted(found)


def cgroup_pids(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> set[int]:
    """Every live pid in ``cgroup_parent`` or any cgroup below it, but 0, 1 and our own."""
    pids: set[int] = set()
    for top in cgroup_dirs(cgroup_parent, mountinfo):
        for root, _dirs, files in os.walk(top):
            if "cgroup.procs" not in files:
                continue
            try:
                with open(os.path.join(root, "cgroup.procs")) as handle:
                    pids.update(int(p) for p in handle.read().split() if p.isdigit())
            except OSError:
                continue  # removed while we walked
    return {pid for pid in pids if pid > 1 and pid != os.getpid() and pid_alive(pid)}


def thaw(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> None:
    """Thaw every cgroup under and of ``cgroup_parent`` (``docker pause`` freezes a container's): a
    frozen task does not act on SIGKILL until thawed. v1: freezer.state; v2: cgroup.freeze."""
    for top in cgroup_dirs(cgroup_parent, mountinfo):
        for root, _dirs, files in os.walk(top):
            for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                if name in files:
                    try:
                        with open(os.path.join(root, name), "w") as handle:
                            handle.write(value)
                    except OSError:
                        pass  # removed while we walked, or not ours to write: the kill below tells


def kill_cgroup_processes(
    cgroup_parent: str, within_s: float = KILL_WITHIN_S, mountinfo: str = MOUNTINFO, proc: str = "/proc"
) -> set[int]:
    """Thaw, then SIGKILL every process under ``cgroup_parent`` until none is left (or ``within_s``
    passed); returns the pids still alive (empty when all are gone). SIGKILL at once: the engine that
    would have stopped them gracefully is gone, and a container's pid 1 ignores SIGTERM without a handler."""
    deadline = time.monotonic() + within_s
    while pids := cgroup_pids(cgroup_parent, mountinfo):
        if time.monotonic() >= deadline:
            return pids
        thaw(cgroup_parent, mountinfo)
        for pid in pids:
            kill_if_under(pid, cgroup_parent, proc)
        time.sleep(0.05)
    return set()


def kill_if_under(pid: int, cgroup_parent: str, proc: str = "/proc") -> bool:
    """SIGKILL ``pid`` through a pidfd if the process it names is (still) under ``cgroup_parent``: a
    pid read from cgroup.procs may have exited and been given to another process since. True if sent."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone; or no pidfd here: it is not signalled, and down names it as a survivor
        return False
    try:
        if not in_cgroup(pid, cgroup_parent, proc):
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False  # exited since
    finally:
        os.close(fd)


def in_cgroup(pid: int, cgroup_parent: str, proc: str = "/proc") -> bool:
    """Whether /proc/<pid>/cgroup names ``cgroup_parent`` or a cgroup below it in some hierarchy."""
    parent = "/" + cgroup_parent.strip("/")
    try:
        with open(os.path.join(proc, str(pid), "cgroup")) as handle:
            paths = [line.rstrip("\n").split(":", 2)[-1] for line in handle]
    except OSError:
        return False
    return any(path == parent or path.startswith(parent + "/") for path in paths)


def remove_cgroup_dirs(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> None:
    """Remove the (empty) cgroups under and of ``cgroup_parent``, deepest first; a busy one stays."""
    for top in cgroup_dirs(cgroup_parent, mountinfo):
        below = [root for root, _dirs, _files in os.walk(top)]
        for path in sorted(below, key=len, reverse=True):
            try:
                os.rmdir(path)
            except OSError:
                pass


def unmount_under(path: str, mountinfo: str = MOUNTINFO) -> None:
    """Lazily unmount every mount point below ``path`` (deepest first)."""
    prefix = os.path.realpath(path).rstrip("/") + "/"
    try:
        with open(mountinfo) as handle:
            points = [line.split()[4] for line in handle]
    except FileNotFoundError:
        return
    for point in sorted((p for p in points if (p + "/").startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
