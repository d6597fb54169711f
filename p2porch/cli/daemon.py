"""``p2porch daemon``: the daemon's configuration from file, environment and flags, and running it (shell)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .localfiles import read_flag_text
from .util import (
    EXIT_OK,
    command,
)

DEFAULT_CONFIG_FILE = "/etc/p2porch/p2porch.toml"
ADVERTISED_PORTS = ("gossip", "raft", "join", "vxlan")
DEFAULT_PORTS = {"gossip": "UDP/TCP 7946", "raft": "TCP 7947", "join": "TCP 7948", "vxlan": "UDP 4789"}


def add_daemon_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    daemon = command(sub, common, "daemon", "Run the p2porch daemon in the foreground", cmd_daemon)
    add_node_options(daemon)
    daemon.add_argument(
        "--config", metavar="FILE", help=f"configuration file (default {DEFAULT_CONFIG_FILE} when it exists)"
    )
    daemon.add_argument("--log-format", choices=["human", "json"], help="log line format (default human)")
    daemon.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info)"
    )
    daemon.add_argument("--pid-file", metavar="FILE", help="write the daemon's pid here (removed on exit)")


def add_node_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--advertise-addr", metavar="IP", help="address other nodes reach this one at")
    p.add_argument(
        "--listen-addr",
        metavar="IP",
        help="address to bind (default: the advertise address if it is local, else the default route's)",
    )
    for kind in ADVERTISED_PORTS:
        p.add_argument(
            f"--advertise-{kind}-port",
            metavar="PORT",
            type=int,
            help=f"public port a NAT forwards to this node's {kind} port, {DEFAULT_PORTS[kind]} unless "
            "configured (default: the same port)",
        )
    p.add_argument(
        "--gossip-profile",
        choices=["fast-lan", "lan", "wan", "local"],
        help="gossip timing: wan for sites tens of ms apart (default fast-lan; docs/multi-site.md)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="state directory (default /var/lib/p2porch)")
    p.add_argument("--docker-host", metavar="URL", help="Docker engine of this node (default: DOCKER_HOST)")
    p.add_argument("--name", metavar="NAME", help="node name (default: host name)")
    p.add_argument("--label", metavar="K=V", action="append", default=[], help="node label (repeatable)")
    p.add_argument(
        "--api-addr",
        metavar="HOST:PORT",
        help="also serve the API over TCP with TLS here (off by default; clients need an access token)",
    )
    p.add_argument(
        "--api-cert", metavar="FILE", help="operator server certificate (default: the cluster CA's)"
    )
    p.add_argument("--api-key", metavar="FILE", help="private key of --api-cert")
    p.add_argument("--api-ca", metavar="FILE", help="CA bundle of --api-cert that `cluster ca` gives clients")


def node_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The node.* config keys given as CLI flags."""
    from ..config import parse_labels

    labels = parse_labels(args.label, field="--label") if getattr(args, "label", None) else None
    ports = {f"node.advertise_{k}_port": getattr(args, f"advertise_{k}_port", None) for k in ADVERTISED_PORTS}
    return {
        **ports,
        "node.listen_addr": getattr(args, "listen_addr", None),
        "gossip.preset": getattr(args, "gossip_profile", None),
        "node.advertise_addr": getattr(args, "advertise_addr", None),
        "node.data_dir": getattr(args, "data_dir", None),
        "node.docker_host": getattr(args, "docker_host", None),
        "node.name": getattr(args, "name", None),
        "node.labels": labels,
        "api.addr": getattr(args, "api_addr", None),
        "api.cert": _abs(getattr(args, "api_cert", None)),
        "api.key": _abs(getattr(args, "api_key", None)),
        "api.ca": _abs(getattr(args, "api_ca", None)),
    }


def _abs(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def load_daemon_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> Any:
    from ..engine.endpoint import parse_endpoint

    env = dict(os.environ) if env is None else env
    path = getattr(args, "config", None)
    toml_text = None
    if path or os.path.exists(DEFAULT_CONFIG_FILE):
        path = path or DEFAULT_CONFIG_FILE
        toml_text = read_flag_text(path, "--config")
    host = getattr(args, "host", None) or env.get("P2PORCH_HOST")
    overrides = node_overrides(args)
    overrides["api.socket"] = host
    overrides["log.format"] = getattr(args, "log_format", None)
    overrides["log.level"] = getattr(args, "log_level", None)
    from ..config import load_config  # here: a local command that starts no daemon never loads it

    config = load_config(toml_text=toml_text, toml_path=path, env=env, overrides=overrides)
    # an engine address p2porch cannot use (ssh://) stops the daemon at once, naming the setting
    parse_endpoint(config.node.docker_host or None, env)
    return config


def cmd_daemon(args: argparse.Namespace) -> int:
    from ..lazyimport import defer_daemon_modules

    defer_daemon_modules()  # first (cli.main did it for `p2porch daemon`): modules an idle daemon never runs

    from .. import gc_freeze
    from ..daemon import Daemon
    from ..logs import setup_logging
    from ..raft.bridge import RAFT_SWITCH_INTERVAL_S  # loaded with the daemon anyway

    # The process's GIL switch interval, set here and nowhere else (a library never changes this
    # process-wide setting): 1 ms instead of CPython's 5 ms, so that the Raft thread, which gives the GIL up
    # on every socket call, gets it back sooner from a CPU-bound leader round or member view (raft/bridge.py
    # RAFT_SWITCH_INTERVAL_S; docs/performance.md "The GIL hand-off, measured").
    sys.setswitchinterval(RAFT_SWITCH_INTERVAL_S)
    config = load_daemon_config(args)
    setup_logging(config.log.format, config.log.level)
    # a full collection walks the whole state (seconds at 100,000 tasks, GIL held): after a slow one its
    # survivors are frozen, so the next walks only what is new, and fewer young collections follow
    # (gc_freeze.py; the tenth and twenty-eighth rounds)
    young = gc_freeze.young_threshold(os.environ)
    hook = gc_freeze.install(young=young) if gc_freeze.wanted(os.environ) else None
    try:
        return _run_daemon(Daemon(config, pid_file=args.pid_file))
    finally:
        gc_freeze.uninstall(hook)  # the process ends here; an in-process caller (tests) gets its gc back


def _run_daemon(daemon: Any) -> int:
    from ..cpu_sampler import start_from_env as start_cpu_sampler

    sampler = start_cpu_sampler()  # debug aid (cpu_sampler.py): None unless P2PORCH_CPU_PROFILE is set
    try:
        return _run_with_aids(daemon)
    finally:
        if sampler is not None:
            sampler.stop()  # its thread joined, the totals written (an in-process caller goes on)


def _run_with_aids(daemon: Any) -> int:
    import signal

    import trio

    from ..memtrace import ENV_CENSUS, dump_on_signal, start_from_env, stats_from_env
    from ..wakeups import profiler_from_env

    snapshot_path = start_from_env()  # debug aid (memtrace.py): None unless P2PORCH_TRACEMALLOC is set
    stats_path = stats_from_env()  # likewise, P2PORCH_MALLOC_STATS
    census = os.environ.get(ENV_CENSUS, "") == "1"  # with the statistics: a garbage census on SIGUSR2
    aided = snapshot_path is not None or stats_path is not None

    async def run_with_snapshots() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dump_on_signal, snapshot_path, signal.SIGUSR2, stats_path, census)
            await daemon.run()
            nursery.cancel_scope.cancel()

    # without the debug aid, no nursery: the daemon's own errors (ConfigError, ...) reach main() as they are,
    # not wrapped in an ExceptionGroup
    trio.run(run_with_snapshots if aided else daemon.run, instruments=profiler_from_env())
    return EXIT_OK
