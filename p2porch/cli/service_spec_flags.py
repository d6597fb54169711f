"""The service spec's flags (shell): ``service create|update`` flags, turned into spec fields and
validated before anything reaches the daemon.

Owns the flag set shared by create and update, ``spec_changes`` (the given flags as spec fields) and
``flag_for`` (a spec field back to the flag a user typed, for error messages). Sends nothing: the
commands that use them are in service.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from typing import Any

from ..errors import ConfigError
from ..model import ServiceSpec
from ..model.metadata_limits import check_spec
from ..model.netrefs import host_network_defaults
from ..model.spec import check_endpoint_ports
from .autoscale import add_autoscale_flags, autoscale_changes, autoscale_flag
from .envfile import read_env_files, with_env_files
from .group import GROUP_FLAGS, add_group_flags, group_changes
from .spec_flag_help import describe
from .update_edits import add_edit_flags
from .util import UsageError, duration_arg, negation_of

# spec field (first segment of a ConfigError field) -> the flag a user gave
FLAG_OF_FIELD = {
    "name": "--name",
    "image": "IMAGE",
    "command": "CMD",
    "entrypoint": "--entrypoint",
    "user": "--user",
    "workdir": "--workdir",
    "env": "--env",
    "labels": "--container-label",
    "mode": "--mode",
    "replicas": "--replicas",
    "constraints": "--constraint",
    "placement_preferences": "--placement-pref",
    "placement_prefs": "--placement-pref",
    "strategy": "--strategy",
    "affinities": "--affinity",
    "max_replicas_per_node": "--max-replicas-per-node",
    "reserve_cpu": "--reserve-cpu",
    "reserve_memory": "--reserve-memory",
    "limit_cpu": "--limit-cpu",
    "limit_memory": "--limit-memory",
    "mounts": "--mount",
    "publish": "--publish",
    "stop_grace_period": "--stop-grace-period",
    "rebalance": "--rebalance",
    "service_labels": "--label",
    "endpoint_mode": "--endpoint-mode",
    "ingress_policy": "--ingress-policy",
    "on_site_loss": "--on-site-loss",
    "secrets": "--secret",
    "configs": "--config",
    "networks": "--network",
    "networks_add": "--network-add",
    "networks_rm": "--network-rm",
    "secrets_rm": "--secret-rm",
    "configs_rm": "--config-rm",
    "max_concurrent": "--max-concurrent",
    "schedule": "--schedule",
    "force": "--force",
    **GROUP_FLAGS,
}
#: cron schedule field -> its flag
SCHEDULE_FLAGS = {
    "cron": "--schedule",
    "timezone": "--schedule-timezone",
    "concurrency": "--concurrency",
    "history_limit": "--history-limit",
    "starting_deadline": "--starting-deadline",
    "starting_deadline_s": "--starting-deadline",
}
NESTED = ("health", "restart", "update", "rollback")
#: --flag (argparse dest) -> ContainerOptions key (the engine options of issue 15, Docker's flag names)
CONTAINER_FLAGS = {
    "hostname": "hostname",
    "init": "init",
    "cap_add": "cap_add",
    "cap_drop": "cap_drop",
    "add_host": "extra_hosts",
    "log_driver": "log_driver",
    "log_opt": "log_opts",
    "ulimit": "ulimits",
    "sysctl": "sysctls",
    "read_only": "read_only",
    "security_opt": "security_opt",
    "stop_signal": "stop_signal",
    "shm_size": "shm_size",
    "pids_limit": "pids_limit",
    "device": "devices",
    "group": "groups",
    "dns_option": "dns_options",
    "memory_swap": "memswap_limit",
    "privileged": "privileged",
}
_FLAG_OF_CONTAINER = {v: k for k, v in CONTAINER_FLAGS.items()} | {
    "shm_size_bytes": "shm_size",
    "memswap_limit_bytes": "memory_swap",
}


def flag_for(field: str | None) -> str | None:
    """``constraints[1]`` -> ``--constraint``; ``update.order`` -> ``--update-order``."""
    if not field:
        return None
    head = re.split(r"[.\[]", field, maxsplit=1)[0]
    if head == "autoscale":
        return autoscale_flag(field)
    if head == "schedule" and "." in field:
        return SCHEDULE_FLAGS.get(field.split(".", 1)[1], "--schedule")
    if head == "container" and "." in field:
        key = re.split(r"[.\[]", field.split(".", 1)[1], maxsplit=1)[0]
        return "--" + _FLAG_OF_CONTAINER.get(key, key).replace("_", "-")
    if head in NESTED and "." in field:
        sub = field.split(".", 1)[1].split("[")[0].removesuffix("_s").replace("_", "-")
        return f"--{head}-{'cmd' if sub in ('cmd', 'test') else sub}"
    return FLAG_OF_FIELD.get(head, field)


def add_spec_flags(p: argparse.ArgumentParser, *, create: bool) -> None:
    """Flags shared by create and update; on update a list flag replaces the whole list."""
    d = argparse.SUPPRESS  # unset flags are absent, so update changes only what was given
    p.add_argument("--replicas", type=int, default=d, help="number of tasks (replicated mode)")
    if create:  # as Docker's: the mode is set once (update --mode is refused with the reason, refusals.py)
        p.add_argument(
            "--mode",
            choices=["replicated", "global", "replicated-job", "global-job"],
            default=d,
            help="global: one task per eligible node; *-job: tasks run to completion (docs/scheduler.md)",
        )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=d,
        metavar="N",
        help="replicated-job: tasks at once (default: replicas)",
    )
    p.add_argument("--schedule", default=d, metavar="CRON", help="a job: start one execution per cron tick")
    p.add_argument(
        "--schedule-timezone", default=d, metavar="TZ", help="time zone of --schedule (default UTC)"
    )
    p.add_argument(
        "--concurrency",
        choices=["forbid", "allow", "replace"],
        default=d,
        help="a tick while the previous execution runs: skip it (forbid, default), run both, or replace",
    )
    p.add_argument("--history-limit", type=int, default=d, metavar="N", help="finished executions kept (3)")
    p.add_argument(
        "--starting-deadline",
        default=d,
        metavar="DURATION",
        type=duration_arg,
        help="a tick found due later than this is missed",
    )
    p.add_argument(
        "--constraint",
        action="append",
        default=d,
        metavar="EXPR",
        help="node.labels.K==V, node.name!=N, node.role==voter ... (repeatable)",
    )
    p.add_argument("--placement-pref", action="append", default=d, metavar="spread=node.labels.K")
    p.add_argument("--strategy", choices=["spread", "binpack"], default=d)
    p.add_argument("--affinity", action="append", default=d, metavar="[anti-]affinity=service==S")
    p.add_argument(
        "--max-replicas-per-node",
        "--replicas-max-per-node",  # Docker's spelling
        dest="max_replicas_per_node",
        type=int,
        default=d,
        metavar="N",
        help="at most N tasks of this service per node (0: no limit)",
    )
    p.add_argument("--reserve-cpu", default=d, metavar="CPUS")
    p.add_argument("--reserve-memory", default=d, metavar="BYTES", help="e.g. 512M, 1G")
    p.add_argument("--limit-cpu", default=d, metavar="CPUS")
    p.add_argument("--limit-memory", default=d, metavar="BYTES")
    p.add_argument("--env", "-e", action="append", default=d, metavar="K=V")
    if create:
        p.add_argument(
            "--env-file",
            action="append",
            default=d,
            metavar="FILE",
            help="K=V lines (# comments; K alone: from this environment); --env wins",
        )
    p.add_argument(  # Swarm's meaning: --label is the service's, --container-label its containers'
        "--label",
        "--service-label",
        *(["-l"] if create else []),  # Docker's short form, on create only (its update has --label-add)
        dest="service_label",
        action="append",
        default=d,
        metavar="K=V",
        help="label of the service (service ls --filter label=K)",
    )
    p.add_argument(
        "--container-label", dest="label", action="append", default=d, metavar="K=V", help="container label"
    )
    p.add_argument(
        "--mount",
        action="append",
        default=d,
        metavar="type=bind|volume|tmpfs,source=S,target=T[,readonly][,volume-driver=D][,tmpfs-size=N]",
        help="a bind mount, a named (or anonymous) volume or a tmpfs; more options in README.md",
    )
    p.add_argument(
        "--publish",
        "-p",
        action="append",
        default=d,
        metavar="[HOST:]PORT[/PROTO] or published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]",
        help="served on every node (mode=ingress, the default; without HOST the cluster assigns a port of "
        "30000-32767) or only on the task's node (mode=host; without HOST the engine picks one per task)",
    )
    p.add_argument("--entrypoint", default=d, help="override the image's ENTRYPOINT (a shell word list)")
    p.add_argument("--health-cmd", default=d, help="health check command run with /bin/sh -c")
    p.add_argument("--health-interval", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--health-timeout", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--health-retries", type=int, default=d)
    p.add_argument("--health-start-period", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--no-healthcheck", action="store_true", default=d, help="disable the image's HEALTHCHECK")
    p.add_argument("--restart-condition", choices=["any", "on-failure", "none"], default=d)
    p.add_argument("--restart-delay", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--restart-max-attempts", type=int, default=d)
    p.add_argument("--restart-window", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--update-parallelism", type=int, default=d)
    p.add_argument("--update-delay", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--update-order", choices=["stop-first", "start-first"], default=d)
    p.add_argument("--update-failure-action", choices=["pause", "continue", "rollback"], default=d)
    p.add_argument("--update-monitor", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--stop-grace-period", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--user", "-u", default=d, metavar="USER[:GROUP]", help="user the command runs as")
    p.add_argument("--workdir", "-w", default=d, metavar="DIR", help="working directory of the command")
    p.add_argument("--hostname", default=d, help="container host name")
    p.add_argument("--init", action="store_true", default=d, help="run an init inside the container")
    p.add_argument("--cap-add", action="append", default=d, metavar="CAP", help="add a Linux capability")
    p.add_argument("--cap-drop", action="append", default=d, metavar="CAP", help="drop a Linux capability")
    p.add_argument("--add-host", action="append", default=d, metavar="HOST:IP", help="extra /etc/hosts entry")
    p.add_argument("--log-driver", default=d, metavar="DRIVER", help="the engine's logging driver")
    p.add_argument("--log-opt", action="append", default=d, metavar="K=V", help="logging driver option")
    p.add_argument("--ulimit", action="append", default=d, metavar="NAME=SOFT[:HARD]")
    p.add_argument("--sysctl", action="append", default=d, metavar="K=V", help="namespaced kernel parameter")
    p.add_argument("--read-only", action="store_true", default=d, help="read-only root filesystem")
    p.add_argument(
        "--privileged",
        action="store_true",
        default=d,
        help="run the task's main container privileged: every capability and host device, root on the node "
        "(a p2porch extension: docker service create has no such flag; --privileged=false turns it off)",
    )
    p.add_argument("--security-opt", action="append", default=d, metavar="OPT")
    p.add_argument("--stop-signal", default=d, metavar="SIGNAL", help="signal that stops the container")
    p.add_argument("--shm-size", default=d, metavar="BYTES", help="size of /dev/shm, e.g. 64M")
    p.add_argument(
        "--pids-limit",
        "--limit-pids",
        dest="pids_limit",
        default=d,
        metavar="N",
        help="most processes per container (-1: none)",
    )
    p.add_argument(
        "--memory-swap",
        default=d,
        metavar="BYTES",
        help="memory plus swap, e.g. 1G (-1: unlimited swap); needs --limit-memory",
    )
    p.add_argument("--device", action="append", default=d, metavar="HOST[:CONTAINER[:RWM]]", help="a device")
    p.add_argument(
        "--group", action="append", default=d, metavar="GROUP", help="supplementary group (name/id)"
    )
    p.add_argument(
        "--dns-option", action="append", default=d, metavar="OPT", help="resolver option, e.g. ndots:2"
    )
    p.add_argument(
        "--endpoint-mode",
        choices=["vip", "dnsrr"],
        default=d,
        help="vip (default): the name resolves to one virtual address balanced per connection; dnsrr: to the "
        "task addresses",
    )
    p.add_argument(
        "--ingress-policy",
        choices=["cluster", "local"],
        default=d,
        help="cluster (default): any healthy task answers an ingress port; local: only the receiving node's "
        "tasks, which see the client's real address",
    )
    site_help = "a region cut off: keep (default) its tasks there, or replace them elsewhere"
    p.add_argument("--on-site-loss", choices=["keep", "replace"], default=d, help=site_help)
    p.add_argument("--update-max-failure-ratio", type=float, default=d, metavar="RATIO")
    p.add_argument("--health-start-interval", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--rollback-parallelism", type=int, default=d)
    p.add_argument("--rollback-delay", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--rollback-order", choices=["stop-first", "start-first"], default=d)
    p.add_argument("--rollback-failure-action", choices=["pause", "continue"], default=d)
    p.add_argument("--rollback-monitor", default=d, metavar="DURATION", type=duration_arg)
    p.add_argument("--rollback-max-failure-ratio", type=float, default=d, metavar="RATIO")
    p.add_argument("--rebalance", action="store_true", default=d, help="move tasks onto nodes that join")
    ref_help = "NAME or src=NAME,target=T,uid=U,gid=G,mode=0400[,version=N] (repeatable)"
    if create:
        p.add_argument("--secret", action="append", default=d, metavar="SECRET", help=ref_help)
        p.add_argument("--config", action="append", default=d, metavar="CONFIG", help=ref_help)
    else:
        for kind in ("secret", "config"):
            p.add_argument(f"--{kind}-add", action="append", default=d, metavar=kind.upper(), help=ref_help)
            p.add_argument(
                f"--{kind}-rm", action="append", default=d, metavar="NAME|TARGET", help=f"drop a {kind} ref"
            )
    net_help = "NETWORK or name=NETWORK,alias=NAME[,alias=NAME] (repeatable)"
    if create:
        p.add_argument("--network", action="append", default=d, metavar="NETWORK", help=net_help)
    else:
        p.add_argument("--network-add", action="append", default=d, metavar="NETWORK", help=net_help)
        p.add_argument("--network-rm", action="append", default=d, metavar="NETWORK", help="leave a network")
        add_edit_flags(p)
    add_autoscale_flags(p, default=d)
    add_group_flags(p, default=d, create=create)
    add_negations(p)
    if create:
        p.add_argument("--name", default=d, help="service name (default: a generated one, as Docker)")
        p.add_argument("image", metavar="IMAGE")
        cmd = p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD", help="command and arguments")
        cmd.required = False  # argparse counts a REMAINDER as required: "required: IMAGE, CMD" without IMAGE
    else:
        p.add_argument("--image", default=d)
        p.add_argument(
            "--args",
            dest="cmd",
            type=shell_words,
            default=d,
            metavar="COMMAND",
            help="new command and arguments, one quoted word split as a shell does, as Docker's "
            '(--args "ping docker.com", --args "sh -c \'exit 3\'")',
        )
    describe(p, create=create)


def add_negations(p: argparse.ArgumentParser) -> None:
    """For each boolean spec flag (given or absent), its hidden negation, as ``explicit_bools`` writes
    Docker's ``--FLAG=false``: ``--no-read-only``, ``--no-init``... (``--healthcheck`` for
    ``--no-healthcheck``), so that ``service update --read-only=false`` sets it false, as docker/cli's
    ``flags.Changed`` + ``GetBool`` do, instead of leaving the service's value."""
    for action in list(p._actions):
        if not isinstance(action, argparse._StoreTrueAction) or action.default is not argparse.SUPPRESS:
            continue
        negation = negation_of(action.option_strings[-1])
        if negation not in p._option_string_actions:
            p.add_argument(
                negation,
                dest=action.dest,
                action="store_false",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )


def shell_words(text: str) -> list[str]:
    """``--args``'s value split into words as a POSIX shell does (Docker's ``ShlexOpt``)."""
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise argparse.ArgumentTypeError(f"invalid argument {text!r}: {exc}") from None


def drop_driverless_log_opts(args: argparse.Namespace) -> None:
    """Docker's CLI ignores ``--log-opt`` without ``--log-driver`` (create: no driver, no options; update:
    the log driver changes only with ``--log-driver``), so the node's default driver (``journald``, ...)
    never gets another driver's options; so does p2porch, with a warning naming the flag. Compose's
    driverless ``logging.options`` do reach the default driver, as Compose and ``docker stack deploy``."""
    given = vars(args)
    if "log_opt" in given and not given.get("log_driver"):
        del given["log_opt"]
        print("warning: --log-opt ignored without --log-driver (as Docker's CLI ignores it)", file=sys.stderr)


def spec_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The spec fields given on the command line (update: only those)."""
    given = vars(args)
    out: dict[str, Any] = {}
    autoscale = autoscale_changes(given)
    if autoscale is not None:
        out["autoscale"] = autoscale
    out.update(group_changes(given))
    simple = {
        "replicas": "replicas",
        "mode": "mode",
        "constraint": "constraints",
        "placement_pref": "placement_prefs",
        "strategy": "strategy",
        "affinity": "affinities",
        "max_replicas_per_node": "max_replicas_per_node",
        "reserve_cpu": "reserve_cpu",
        "reserve_memory": "reserve_memory",
        "limit_cpu": "limit_cpu",
        "limit_memory": "limit_memory",
        "env": "env",
        "label": "labels",
        "mount": "mounts",
        "publish": "publish",
        "stop_grace_period": "stop_grace_period",
        "rebalance": "rebalance",
        "name": "name",
        "image": "image",
        "user": "user",
        "workdir": "workdir",
        "endpoint_mode": "endpoint_mode",
        "ingress_policy": "ingress_policy",
        "on_site_loss": "on_site_loss",
        "service_label": "service_labels",
        "secret": "secrets",
        "config": "configs",
        "secret_add": "secrets_add",
        "secret_rm": "secrets_rm",
        "config_add": "configs_add",
        "config_rm": "configs_rm",
        "network": "networks",
        "network_add": "networks_add",
        "network_rm": "networks_rm",
    }
    for flag, key in simple.items():
        if flag in given:
            out[key] = given[flag]
    if "env_file" in given:
        out["env"] = with_env_files(read_env_files(given["env_file"], os.environ), given.get("env") or [])
    if "max_concurrent" in given:
        out["max_concurrent"] = given["max_concurrent"]
    schedule = {
        key: given[flag]
        for flag, key in (
            ("schedule", "cron"),
            ("schedule_timezone", "timezone"),
            ("concurrency", "concurrency"),
            ("history_limit", "history_limit"),
            ("starting_deadline", "starting_deadline"),
        )
        if flag in given
    }
    if schedule:
        out["schedule"] = schedule
    if "entrypoint" in given:
        out["entrypoint"] = given["entrypoint"].split()
    if "cmd" in given and given["cmd"] is not None:
        cmd = list(given["cmd"])
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        if cmd or "image" in given:
            out["command"] = cmd
    container = {key: given[flag] for flag, key in CONTAINER_FLAGS.items() if flag in given}
    if container:
        out["container"] = container
    for section in NESTED:
        values = {k[len(section) + 1 :]: v for k, v in given.items() if k.startswith(section + "_")}
        if section == "health" and given.get("no_healthcheck"):
            if values:  # as docker/cli: not a health check silently dropped
                raise UsageError(
                    "--no-healthcheck conflicts with --health-* options", field="--no-healthcheck"
                )
            values = {"cmd": ["NONE"]}
        elif section == "health" and "cmd" in values:
            values["cmd"] = ["CMD-SHELL", values["cmd"]]
        if values:
            out[section] = values
    return out


def validated_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` checked as a ServiceSpec and within the label and env limits; a bad field is a UsageError
    naming its flag (exit 2). On the host network, what Swarm takes unsaid (``host_network_defaults``:
    dnsrr, a host-mode port published as its own number)."""
    try:
        parsed = host_network_defaults(ServiceSpec.from_dict(spec), "endpoint_mode" in spec)
        checked = check_endpoint_ports(parsed)
        check_spec(checked)  # label and env sizes, before a 16 MiB body is sent to be refused
        return checked.to_dict()
    except ConfigError as exc:
        raise UsageError(f"{flag_for(exc.field)}: {exc.message}", field=flag_for(exc.field)) from exc
