"""Which Python code makes a running process call glibc's malloc for big blocks (root, gdb; JSON).

    python bench/malloc_sites.py PID [--seconds 20] [--min-bytes 512] [--top 40]

Attaches gdb to ``PID`` (a daemon: its CPython must have debug symbols, as pyenv's build has), counts
every ``malloc``/``realloc``/``calloc`` of at least ``--min-bytes`` for ``--seconds`` by size (rounded up
to a power of two) and by the three innermost Python frames of the thread holding the GIL (read from the
process's memory: nothing is called inside it), then detaches and prints one JSON object: the totals by
size and the ``--top`` sites. Blocks of 512 bytes or less come from CPython's own allocator and are not
seen. Each call stops the process for gdb (tens of µs): the process runs slower meanwhile (sample before
or after a measurement, not during it), and a Raft leader sampled for 20 s may lose its leadership (one
of three did, this bench's first use). This found the idle leader's heap churn (docs/performance.md,
"The idle leader's heap"). The same file is the script gdb runs (``gdb -x``): then ``gdb`` imports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any

PY_ASCII_HEADER = 48  # sizeof(PyASCIIObject) in CPython 3.11: a compact ASCII string's text follows it


def gdb_side() -> None:  # pragma: no cover (runs inside gdb)
    import threading
    import time

    import gdb  # type: ignore[import-not-found]

    min_bytes = int(os.environ["MALLOC_SITES_MIN"])
    seconds = float(os.environ["MALLOC_SITES_SECONDS"])
    sites: Counter[tuple[str, int, str]] = Counter()
    inferior = gdb.selected_inferior()

    def text(ptr: Any) -> str:
        try:
            raw = inferior.read_memory(int(ptr) + PY_ASCII_HEADER, 96).tobytes()
        except gdb.MemoryError:
            return "?"
        return raw.split(b"\0")[0].decode(errors="replace")

    def python_frames(depth: int = 3) -> str:
        state = gdb.parse_and_eval("_PyRuntime.gilstate.tstate_current._value")
        state = state.cast(gdb.lookup_type("PyThreadState").pointer())
        if int(state) == 0:
            return "(no thread holds the GIL)"
        frames, frame = [], state["cframe"]["current_frame"]
        while int(frame) and len(frames) < depth:
            code = frame["f_code"]
            where = "/".join(text(code["co_filename"]).rsplit("/", 2)[-2:])
            frames.append(f"{where}:{text(code['co_name'])}")
            frame = frame["previous"]
        return " < ".join(frames)

    class Counted(gdb.Breakpoint):  # type: ignore[misc]
        def __init__(self, function: str, size: str) -> None:
            super().__init__(function, internal=True)
            self.function, self.size = function, size

        def stop(self) -> bool:
            size = int(gdb.parse_and_eval(self.size))
            if size >= min_bytes:
                sites[(self.function, 1 << (size - 1).bit_length(), python_frames())] += 1
            return False  # never stops: counted only

    Counted("malloc", "$rdi")
    Counted("realloc", "$rsi")
    Counted("calloc", "$rdi * $rsi")

    def interrupt() -> None:
        time.sleep(seconds)
        gdb.post_event(lambda: gdb.execute("interrupt"))

    threading.Thread(target=interrupt, daemon=True).start()
    gdb.execute("continue")
    for (function, size, frames), count in sites.items():
        print("SITE\t" + json.dumps([function, size, frames, count]))
    gdb.execute("detach")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pid", type=int)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--min-bytes", type=int, default=512)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    env = dict(os.environ, MALLOC_SITES_MIN=str(args.min_bytes), MALLOC_SITES_SECONDS=str(args.seconds))
    done = subprocess.run(
        ["gdb", "-p", str(args.pid), "-batch", "-nx", "-x", os.path.abspath(__file__)],
        env=env,
        capture_output=True,
        text=True,
        timeout=args.seconds + 120,
        check=False,
    )
    rows = [
        json.loads(line.split("\t", 1)[1]) for line in done.stdout.splitlines() if re.match(r"SITE\t", line)
    ]
    if not rows and done.returncode:
        sys.exit(f"gdb failed ({done.returncode}): {done.stderr[-2000:]}")
    by_size: Counter[str] = Counter()
    for function, size, _frames, count in rows:
        by_size[f"{function} <= {size}"] += count
    rows.sort(key=lambda row: -row[3])
    print(
        json.dumps(
            {
                "pid": args.pid,
                "seconds": args.seconds,
                "min_bytes": args.min_bytes,
                "calls": sum(row[3] for row in rows),
                "by_size": dict(by_size.most_common()),
                "sites": [
                    {"call": f, "size_up_to": s, "python": p, "count": c} for f, s, p, c in rows[: args.top]
                ],
            }
        )
    )


if __name__ == "__main__":
    try:
        import gdb  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        main()
    else:  # pragma: no cover
        gdb_side()
