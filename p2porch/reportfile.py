"""Debug reports written whole: a file is replaced atomically, a device or FIFO written in place.

Owns one rule: a profiler's output path may be ``/dev/null``, a FIFO or a terminal; renaming a temporary
file over it would delete the device node (a profile pointed at ``/dev/null`` once replaced the host's
``/dev/null`` with a regular file). Must never rename over a character device or a FIFO, nor write
through a symlink (a planted link is replaced, never followed)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile


def write_report(path: str, text: str) -> None:
    """``text`` at ``path``: written straight into it when ``path`` itself is a character device or a FIFO
    (``/dev/null``), else through a temporary file renamed over it (readers never see half a report)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = 0
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
