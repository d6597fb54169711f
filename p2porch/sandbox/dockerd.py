"""One dockerd per network namespace, with its own paths (shell).

Owns starting a default-configured dockerd inside an existing namespace with ``nsenter --net``
(not ``ip netns exec``, which remounts /sys and breaks dockerd), waiting until it answers, importing
the sandbox's busybox image, and stopping it by pid. It never touches a dockerd it did not start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from ..errors import SandboxError
from .system import find_program, pid_alive, read_pid, run, stop_pid

# The one image every sandbox dockerd holds: busybox-static's binary with its applets.
BUSYBOX_IMAGE = "p2porch/busybox:latest"
BUSYBOX_APPLET_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin")


@dataclass(frozen=True)
class DockerdPaths:
    """Every path one sandboxed dockerd owns."""

    run_dir: str  # sockets, pid files, exec root (under /run)
    data_dir: str  # data root (image layers, containers)

    @property
    def socket(self) -> str:
        return os.path.join(self.run_dir, "docker.sock")

    @property
    def host_url(self) -> str:
        return "unix://" + self.socket

    @property
    def pidfile(self) -> str:
        return os.path.join(self.run_dir, "docker.pid")

    @property
    def exec_root(self) -> str:
        return os.path.join(self.run_dir, "exec")

    @property
    def data_root(self) -> str:
        return os.path.join(self.data_dir, "docker")

    @property
    def log_file(self) -> str:
        return os.path.join(self.data_dir, "dockerd.log")


def start_dockerd(netns: str, paths: DockerdPaths, *, cgroup_parent: str, timeout_s: float = 60.0) -> int:
    """Start dockerd in ``netns`` (idempotent: returns the pid of one already running there)."""
    existing = read_pid(paths.pidfile)
    if existing is not None and pid_alive(existing) and docker_ping(paths):
        return existing
    os.makedirs(paths.run_dir, mode=0o700, exist_ok=True)
    os.makedirs(paths.data_dir, mode=0o700, exist_ok=True)
    if existing is not None and not pid_alive(existing):
        os.unlink(paths.pidfile)
    argv = [
        find_program("nsenter") or "nsenter",
        f"--net=/var/run/netns/{netns}",
        find_program("dockerd") or "dockerd",
        "--host",
        paths.host_url,
        "--data-root",
        paths.data_root,
        "--exec-root",
        paths.exec_root,
        "--pidfile",
        paths.pidfile,
        "--cgroup-parent",
        cgroup_parent,
    ]
    with open(paths.log_file, "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"dockerd in {netns} exited with {proc.returncode}: {_tail(paths.log_file)}")
        if docker_ping(paths):
            return proc.pid
        time.sleep(0.2)
    stop_pid(proc.pid)
    raise SandboxError(f"dockerd in {netns} did not answer within {timeout_s:.0f} s: {_tail(paths.log_file)}")


def stop_dockerd(paths: DockerdPaths) -> None:
    """Remove every container of this dockerd, then stop it by its pid file."""
    pid = read_pid(paths.pidfile)
    if pid is None or not pid_alive(pid):
        return
    if docker_ping(paths):
        ids = docker(paths, "ps", "-aq", check=False).stdout.decode().split()
        if ids:
            docker(paths, "rm", "-f", *ids, check=False, timeout_s=60)
    stop_pid(pid, timeout_s=30)


def docker(
    paths: DockerdPaths,
    *args: str,
    check: bool = True,
    input_bytes: bytes | None = None,
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run the docker CLI against this dockerd."""
    return run(
        [find_program("docker") or "docker", "-H", paths.host_url, *args],
        check=check,
        input_bytes=input_bytes,
        timeout_s=timeout_s,
    )


def docker_ping(paths: DockerdPaths) -> bool:
    if not os.path.exists(paths.socket):
        return False
    try:
        return (
            docker(paths, "version", "--format", "{{.Server.Version}}", check=False, timeout_s=10).returncode
            == 0
        )
    except SandboxError:  # a dockerd still starting may not answer within the timeout: not up yet
        return False


def ensure_busybox_image(paths: DockerdPaths) -> None:
    """Import a busybox-static image under BUSYBOX_IMAGE unless this dockerd already has it."""
    if docker(paths, "image", "inspect", BUSYBOX_IMAGE, check=False).returncode == 0:
        return
    docker(
        paths, "import", "--change", 'CMD ["/bin/sh"]', "-", BUSYBOX_IMAGE, input_bytes=busybox_rootfs_tar()
    )


def busybox_rootfs_tar() -> bytes:
    """A tar stream of a minimal root filesystem: busybox-static plus a link for every applet."""
    busybox = find_program("busybox")
    if busybox is None:
        raise SandboxError("busybox is missing; install it with: apt-get install -y busybox-static")
    with tempfile.TemporaryDirectory(prefix="p2porch-rootfs-") as root:
        for sub in (*BUSYBOX_APPLET_DIRS, "etc", "tmp", "root", "proc", "sys", "dev", "var/www"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
        applets = run([busybox, "--list-full"]).stdout.decode().split()
        for applet in applets:
            target = os.path.join(root, applet)
            if applet == "bin/busybox" or os.path.lexists(target):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink("/bin/busybox", target)
        with open(os.path.join(root, "etc", "passwd"), "w") as handle:
            handle.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        with open(os.path.join(root, "etc", "group"), "w") as handle:
            handle.write("root:x:0:\nnogroup:x:65534:\n")
        return run(["tar", "-C", root, "--numeric-owner", "-c", "."]).stdout


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, errors="replace") as handle:
            return " | ".join(handle.read().strip().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
