"""Docker Swarm's flags that p2porch does not implement, each refused with the reason (shell).

Owns one table, ``DOCKER_ONLY``: for each command (``"network create"``), the Docker flags it lacks and
why, and the few taken as no-ops (a value that would change nothing here, said in ``--help``).
``add_refusals`` adds them to a command's parser: using a refused one exits 2 with ``--FLAG: reason``
before anything reaches a daemon, instead of argparse's "unrecognized arguments". It never holds a flag
a command implements (building the parser then fails on the clash, tested); a flag that is not Docker's
either stays unrecognized, with a close real flag suggested (``Parser``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

__all__ = ["DOCKER_ONLY", "DockerFlag", "add_refusals"]


@dataclass(frozen=True)
class DockerFlag:
    """A Docker flag a command does not implement: ``why`` is printed after ``--FLAG:``. ``accepts``:
    the values taken as a no-op (``None``: every use refused); ``boolean``: the flag takes no value (then
    ``accepts=()`` means it is taken as a no-op)."""

    why: str
    accepts: tuple[str, ...] | None = None
    boolean: bool = False
    short: str = ""


_WINDOWS = "a Windows-only setting of Docker; p2porch runs Linux containers"
_DNS = (
    "each task resolves through p2porch's embedded DNS server (service names first, every other name "
    "forwarded to its node's upstream resolvers, docs/dns.md); other nameservers or search domains would "
    "bypass service discovery"
)
_NO_RESOLVE_IMAGE = (
    "changes nothing here: p2porch never asks a registry to pin an image to a digest; each node runs "
    "its local image of the tag, or pulls the tag when it has none (docs/agent.md)"
)
_SERVICE = {
    "--credential-spec": DockerFlag(_WINDOWS),
    "--isolation": DockerFlag(_WINDOWS),
    "--generic-resource": DockerFlag(
        "the scheduler places by CPU and memory reservations (--reserve-cpu, --reserve-memory) and node "
        "labels (--constraint node.labels.K==V); nodes advertise no generic resources"
    ),
    "--dns": DockerFlag(_DNS),
    "--dns-search": DockerFlag(_DNS),
    "--oom-score-adj": DockerFlag(
        "not passed to the engine; a task's memory is bounded by --limit-memory (an OOM kill is reported "
        "in service ps)"
    ),
    "--tty": DockerFlag(
        "tasks run without a terminal (their output is read with service logs)", boolean=True, short="-t"
    ),
    "--no-resolve-image": DockerFlag(_NO_RESOLVE_IMAGE, accepts=(), boolean=True),
    "--with-registry-auth": DockerFlag(
        "p2porch sends no credentials from the CLI; each node pulls with its own docker login "
        "(~/.docker/config.json of the daemon's user, docs/agent.md)",
        boolean=True,
    ),
}


def _replaced_whole(flag: str) -> DockerFlag:
    return DockerFlag(f"not implemented: give {flag} with every entry (on update it replaces the whole list)")


_SERVICE_UPDATE = {
    **_SERVICE,
    "--mode": DockerFlag(
        "a service's mode cannot be changed after it is created (as in Docker, which has no --mode on "
        "update): remove the service and create it again with the new --mode"
    ),
    **{f"--{name}-{edit}": DockerFlag(_DNS) for name in ("dns", "dns-search") for edit in ("add", "rm")},
    **{
        f"--{name}-{edit}": _replaced_whole(f"--{name}")
        for name in ("dns-option", "group", "ulimit", "placement-pref")
        for edit in ("add", "rm")
    },
    "--host-add": _replaced_whole("--add-host"),
    "--host-rm": _replaced_whole("--add-host"),
    "--generic-resource-add": _SERVICE["--generic-resource"],
    "--generic-resource-rm": _SERVICE["--generic-resource"],
}
_ADDRESSING = (
    "p2porch allocates addresses itself: every network shares the cluster CIDR (set by `init "
    "--cluster-cidr`) and each node leases a block of it for its tasks, networks being isolated by policy "
    "(docs/overlay.md)"
)
_ONLY_OVERLAY = "p2porch networks have one driver, overlay, which takes no options"

#: command -> the Docker flags it does not implement
DOCKER_ONLY: dict[str, dict[str, DockerFlag]] = {
    "service create": _SERVICE,
    "service update": _SERVICE_UPDATE,
    "stack deploy": {  # --with-registry-auth: taken, with a warning (cli/stack.py)
        "--resolve-image": DockerFlag(_NO_RESOLVE_IMAGE, accepts=("always", "changed", "never")),
    },
    "stack rm": {
        "--detach": DockerFlag(
            "changes nothing here: stack rm returns once the services are removed, without waiting for "
            "their tasks to stop (Docker's default)",
            accepts=(),
            boolean=True,
            short="-d",
        )
    },
    "network create": {
        **{
            flag: DockerFlag(_ADDRESSING)
            for flag in (
                "--subnet",
                "--gateway",
                "--ip-range",
                "--aux-address",
                "--ipam-driver",
                "--ipam-opt",
            )
        },
        "--ipv6": DockerFlag("the overlay carries IPv4 only", boolean=True),
        "--opt": DockerFlag(
            f"{_ONLY_OVERLAY}; `encrypted` neither: container traffic between nodes is VXLAN in the clear "
            '(run the cluster on a private network or an encrypted underlay, docs/security.md "Data path")',
            short="-o",
        ),
        "--config-only": DockerFlag(_ONLY_OVERLAY, boolean=True),
        "--config-from": DockerFlag(_ONLY_OVERLAY),
        "--ingress": DockerFlag(
            "the routing mesh is built in: every node serves each published port (no network is created "
            "for it, docs/traffic.md)",
            boolean=True,
        ),
        "--scope": DockerFlag(
            "changes nothing here: every p2porch network spans the cluster", accepts=("swarm",)
        ),
    },
    "network inspect": {
        "--verbose": DockerFlag(
            "changes nothing here: network inspect always lists the tasks on the network with their node "
            "and address",
            accepts=(),
            boolean=True,
            short="-v",
        ),
    },
    "secret create": {
        "--driver": DockerFlag(
            "p2porch keeps every secret itself, encrypted in the replicated store (docs/secrets.md); "
            "there is no external secret driver",
            short="-d",
        ),
    },
    "service logs": {
        "--details": DockerFlag(
            "the extra attributes a logging driver attaches are not collected", boolean=True
        ),
        "--no-trunc": DockerFlag(
            "each line carries its task's name with the id cut to 12 characters (service ps --no-trunc "
            "shows the full ids)",
            boolean=True,
        ),
        "--no-resolve": DockerFlag(
            "each line carries its task's and node's names (service ps --no-resolve shows the node ids)",
            boolean=True,
        ),
    },
}


class _Refuse(argparse.Action):
    """Refuses its flag with the reason (exit 2), or takes an accepted value and changes nothing."""

    def __init__(self, *args: Any, docker: DockerFlag, **kwargs: Any) -> None:
        self.docker = docker
        super().__init__(*args, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None
    ) -> None:
        accepts, flag = self.docker.accepts, self.option_strings[-1]
        if accepts is not None and (values in accepts or (self.docker.boolean and not accepts)):
            return
        if accepts:  # a value outside the accepted ones
            parser.error(f"{flag}: {values!r} is not one of {', '.join(accepts)} ({self.docker.why})")
        parser.error(f"{flag}: {self.docker.why}")


def add_refusals(p: argparse.ArgumentParser, command: str) -> None:
    """The ``DOCKER_ONLY`` flags of ``command`` (e.g. ``"network create"``) on its parser; the refused
    ones hidden from ``--help``, the no-ops shown with what they do."""
    for flag, docker in DOCKER_ONLY.get(command, {}).items():
        names = [docker.short, flag] if docker.short else [flag]
        p.add_argument(
            *names,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0 if docker.boolean else "?",
            metavar="|".join(docker.accepts or ()) or None,
            action=_Refuse,
            docker=docker,
            help=argparse.SUPPRESS if docker.accepts is None else docker.why,
        )
