"""A ``p2porch`` command's own start-up, paired between trees (issue 19; no root, no sandbox).

    python bench/cli_start.py TREE [TREE ...] [--runs 20] [--compiled]

Each TREE is a checkout with a ``.venv`` (a symlink to another tree's is fine: ``python -m p2porch`` runs
with TREE as its working directory, so TREE's code is imported, see "A pitfall for paired runs" in
docs/performance.md). A unix socket in a temporary directory answers at once, as a daemon would: a join's
and an init's answer, no nodes and no services. For each command (``join``, ``init``, ``node ls``,
``service ls``, ``--help``) the trees run in turn, ``--runs`` times each (A B A B ...); per process its
CPU (user + sys) and peak RSS come from ``wait4``. One more run per tree and command counts the modules
loaded at exit (``-X importtime`` reads wall time, which the shared machine's load swamps: the imports'
time is read as CPU above ``bare_python``, a command's own work besides them being a request). Without
``--compiled`` the bytecode is compiled from source on every run, as the sandbox's daemons and CLIs run here
(``PYTHONDONTWRITEBYTECODE=1``, no ``__pycache__``); with it each tree's bytecode is cached under a
temporary ``PYTHONPYCACHEPREFIX`` (as an installed package has it), written by a warm-up run. Prints one
JSON object: per tree and command ``cpu_ms`` p50 (and min), ``rss_mb`` p50, ``modules``;
``bare_python``: ``python -c pass`` the same way, the floor under every command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from typing import Any

from p2porch.testing.fake_api import serve_unix_api

ANSWERS: dict[str, Any] = {
    "/v1/cluster/join": {"cluster_id": "c1", "role": "replica", "node_id": "n2"},
    "/v1/cluster/init": {
        "cluster_id": "c1",
        "node_id": "n1",
        "join_addr": "10.0.0.1:7948",
        "token": "P2PT-x",
    },
    "/v1/nodes": [],
    "/v1/services": [],
}
COMMANDS: dict[str, list[str]] = {
    "join": ["join", "10.0.0.1", "--token", "P2PT-x"],
    "init": ["init"],
    "node ls": ["node", "ls"],
    "service ls": ["service", "ls"],
    "--help": ["--help"],
}
#: run as ``python -c``: the CLI as ``python -m p2porch`` runs it, then the count of modules at exit (not
#: those registered unexecuted, p2porch/lazyimport.py, that nothing asked a name of)
COUNT = (
    "import atexit, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "ran = lambda m: m is not None and getattr(vars(m).get('__getattr__'), '__name__', '') != 'full_init'\n"
    "atexit.register(lambda: open(out, 'w').write(str(sum(map(ran, sys.modules.values())))))\n"
    "sys.argv[0] = 'p2porch'\n"
    "runpy.run_module('p2porch', run_name='__main__')\n"
)


def run_once(tree: str, argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One CLI process: its CPU ms and peak RSS MB (``wait4``); a failing command ends the bench."""
    proc = subprocess.Popen(
        argv, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(argv)} exited {proc.returncode}: {errors}")
    return (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", nargs="+", help="checkouts with a .venv each (main, a branch)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--compiled", action="store_true", help="cached bytecode, as an installed package")
    args = parser.parse_args()
    trees = [os.path.abspath(t) for t in args.trees]
    scratch = tempfile.mkdtemp(prefix="p2cs-", dir="/tmp")
    try:
        sock = os.path.join(scratch, "api.sock")
        serve_unix_api(sock, lambda method, path: (200, ANSWERS[path]) if path in ANSWERS else (404, {}))
        envs = {}
        for index, tree in enumerate(trees):
            env = {k: v for k, v in os.environ.items() if not k.startswith("P2PORCH_")}
            env["P2PORCH_HOST"] = f"unix://{sock}"
            if args.compiled:
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, f"pyc{index}")
            else:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            envs[tree] = env
        load_start = os.getloadavg()[0]
        result: dict[str, dict[str, Any]] = {tree: {} for tree in trees}
        for name, words in COMMANDS.items():
            samples: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
            for tree in trees:  # a warm-up (the bytecode cache, with --compiled) and the counts
                python = f"{tree}/.venv/bin/python"
                run_once(tree, [python, "-m", "p2porch", *words], envs[tree])
                out = os.path.join(scratch, "modules")
                run_once(tree, [python, "-c", COUNT, out, *words], envs[tree])
                with open(out) as f:
                    modules = int(f.read())
                result[tree][name] = {"modules": modules}
            for _ in range(args.runs):
                for tree in trees:
                    argv = [f"{tree}/.venv/bin/python", "-m", "p2porch", *words]
                    samples[tree].append(run_once(tree, argv, envs[tree]))
            for tree in trees:
                cpu = [c for c, _ in samples[tree]]
                result[tree][name].update(
                    cpu_ms=round(statistics.median(cpu), 1),
                    cpu_ms_min=round(min(cpu), 1),
                    rss_mb=round(statistics.median(r for _, r in samples[tree]), 1),
                )
        tree = trees[0]  # the interpreter alone, the floor of every command (the same in every venv)
        bare = [
            run_once(tree, [f"{tree}/.venv/bin/python", "-c", "pass"], envs[tree]) for _ in range(args.runs)
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        json.dumps(
            {
                "what": "cli_start",
                "runs": args.runs,
                "bytecode": "compiled" if args.compiled else "source",
                "load": [round(load_start, 2), round(os.getloadavg()[0], 2)],
                "bare_python": {
                    "cpu_ms": round(statistics.median(c for c, _ in bare), 1),
                    "rss_mb": round(statistics.median(r for _, r in bare), 1),
                },
                "trees": result,
            }
        )
    )


if __name__ == "__main__":
    main()
