"""What a sandbox host leaves running once its daemon and dockerd are stopped (shell).

Owns stopping the processes of one host's containers and of its network namespace, and removing the
host's cgroup directories. A container's processes are found in the cgroup parent the host's dockerd
puts every container under (``/p2porch-<sandbox>-<node>``, in each mounted cgroup hierarchy), not in
the host's namespace: a container has its own network namespace, and once dockerd was killed (a
crash test, ``scripts/demo.sh``) nothing removes its containers, and the shims stopped below leave
their children to init. It must never signal a pid it did not read from that cgroup or from
``ip netns pids`` of the host's namespace, and never match processes by name.
"""

from __future__ import annotations

import os
import signal
import time

from .system import find_program, pid_alive, run, stop_pid

MOUNTINFO = "/proc/self/mountinfo"
KILL_WITHIN_S = 10.0  # a container that forks while it is killed takes a few rounds; then we give up


def stop_host_leftovers(netns: str, cgroup_parent: str) -> None:
    """Kill every process under ``cgroup_parent`` (while their shims may still reap them), stop what
    still runs in ``netns`` (containerd, shims, test servers), then remove the empty cgroups."""
    kill_cgroup_processes(cgroup_parent)
    out = run([find_program("ip") or "ip", "netns", "pids", netns], check=False).stdout.decode().split()
    for pid in [int(p) for p in out if p.isdigit()]:
        stop_pid(pid, timeout_s=5)
    remove_cgroup_dirs(cgroup_parent)


def cgroup_dirs(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> list[str]:
    """The directory of ``cgroup_parent`` in every mounted cgroup hierarchy (v1 and v2) where it exists."""
    relative = cgroup_parent.strip("/")
    if not relative or ".." in relative.split("/"):
        raise ValueError(f"not a cgroup parent: {cgroup_parent!r}")
    found = []
    try:
        with open(mountinfo) as handle:
            for line in handle:
                fields = line.split()
                fstype = fields[fields.index("-") + 1] if "-" in fields else ""
                if fstype in ("cgroup", "cgroup2"):
                    path = os.path.join(fields[4], relative)
                    if os.path.isdir(path) and path not in found:
                        found.append(path)
    except FileNotFoundError:
        return []
    return found


def cgroup_pids(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> set[int]:
    """Every live pid in ``cgroup_parent`` or any cgroup below it."""
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
    return {pid for pid in pids if pid_alive(pid)}


def kill_cgroup_processes(cgroup_parent: str, within_s: float = KILL_WITHIN_S) -> set[int]:
    """SIGKILL every process under ``cgroup_parent`` until none is left (or ``within_s`` passed);
    returns the pids still alive (empty when all are gone). SIGKILL at once: the engine that would
    have stopped them gracefully is gone, and a container's pid 1 ignores SIGTERM without a handler."""
    deadline = time.monotonic() + within_s
    while pids := cgroup_pids(cgroup_parent):
        if time.monotonic() >= deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return set()


def remove_cgroup_dirs(cgroup_parent: str, mountinfo: str = MOUNTINFO) -> None:
    """Remove the (empty) cgroups under and of ``cgroup_parent``, deepest first; a busy one stays."""
    for top in cgroup_dirs(cgroup_parent, mountinfo):
        below = [root for root, _dirs, _files in os.walk(top)]
        for path in sorted(below, key=len, reverse=True):
            try:
                os.rmdir(path)
            except OSError:
                pass
