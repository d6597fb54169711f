"""The daemon's data directory and its exclusive lock (shell).

Owns creating the data dir with mode 0700 and holding ``daemon.lock`` (an flock) for the daemon's
lifetime, so two daemons can never share one data dir. It never deletes anything in the directory.
"""

from __future__ import annotations

import fcntl
import os

from .errors import DaemonError


class DataDirLock:
    """An exclusive flock on ``<data_dir>/daemon.lock`` that records the holder's pid."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, "daemon.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        ensure_private_dir(self.data_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DaemonError(
                f"data dir {self.data_dir} is in use by another p2porch daemon (pid {holder}); "
                "stop it first or choose another --data-dir",
                field="node.data_dir",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def ensure_private_dir(path: str) -> None:
    """Create ``path`` (and parents) and make it 0700."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise DaemonError(f"cannot create data dir {path}: {exc.strerror}", field="node.data_dir") from exc
