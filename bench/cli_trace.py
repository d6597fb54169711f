"""A ``p2porch`` command line with wall-clock marks, for ``bench/joins.py --trace`` (diagnostic only).

    python bench/cli_trace.py join PEER --token T

Runs the CLI exactly as ``python -m p2porch`` does and, on exit, writes one JSON line to stderr:
``t_main`` (this script's first line ran: interpreter and site start-up done), ``t_imported`` (the CLI
modules imported), ``t_send`` / ``t_recv`` (the request to the local daemon written / its answer read)
and ``t_exit`` (all ``time.time()``), plus the process's own CPU (``cpu_s``, user + sys). It changes
nothing the command does.
"""

import time

T_MAIN = time.time()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

from p2porch.api import unix_http  # noqa: E402
from p2porch.cli.main import build_parser, command_word  # noqa: E402

marks: dict[str, float] = {"t_main": T_MAIN}
_request = unix_http.UnixHttp.request


def traced(self, method, path, **kwargs):  # type: ignore[no-untyped-def]
    marks.setdefault("t_send", time.time())
    try:
        return _request(self, method, path, **kwargs)
    finally:
        marks["t_recv"] = time.time()


def run() -> int:
    unix_http.UnixHttp.request = traced  # type: ignore[method-assign]
    build_parser(command_word(sys.argv[1:]))  # the CLI's own imports, as main() does them first
    marks["t_imported"] = time.time()
    from p2porch.cli.main import main

    try:
        return main()
    finally:
        marks["t_exit"] = time.time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 4)
        sys.stderr.write("\n" + json.dumps({"trace": marks}) + "\n")


if __name__ == "__main__":
    sys.exit(run())
