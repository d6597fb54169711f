"""Per-run secrets for tests and benchmarks (run as root on shared machines).

Owns one private directory (0700, from ``tempfile.mkdtemp``) holding secret files created 0600 with
``O_EXCL | O_NOFOLLOW``; ``close`` (or leaving the ``with`` block) removes the directory and everything
in it. Secrets are drawn from ``secrets`` for every run: nothing is hard-coded, nothing goes on a command
line (pass the file's path instead) and nothing is logged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from types import TracebackType


def new_secret(nbytes: int = 32) -> bytes:
    return secrets.token_bytes(nbytes)


def write_private(path: Path, data: bytes) -> Path:
    """Create ``path`` 0600 (refusing to follow or reuse an existing file) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


class RunSecrets:
    """A 0700 directory of 0600 secret files that exists for one run."""

    def __init__(self, prefix: str = "p2porch-secrets-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.dir, 0o700)

    def write(self, name: str, data: bytes | None = None) -> Path:
        """A new secret file ``name`` holding ``data`` (fresh random bytes when None)."""
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"bad secret file name {name!r}")
        return write_private(self.dir / name, new_secret() if data is None else data)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RunSecrets:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def is_private(path: Path) -> bool:
    """True if ``path`` is readable and writable by its owner only."""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
