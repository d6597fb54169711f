"""Debug reports written whole: a regular file is replaced atomically, anything else written in place.

Owns one rule: a profiler's output path may be ``/dev/null``, a FIFO or a terminal; renaming a temporary
file over it would delete the device node (a profile pointed at ``/dev/null`` once replaced the host's
``/dev/null`` with a regular file). Must never rename over a path that exists and is not a regular file."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile


def write_report(path: str, text: str) -> None:
    """``text`` at ``path``: through a temporary file renamed in place when ``path`` is absent or a regular
    file (readers never see half a report), written straight into it otherwise."""
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
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
