"""A store process of a release before the command-version gate, for tests (shell).

    python -m p2porch.testing.baseline_node ARGS   # the arguments of ``python -m p2porch.raft.node``

It reads ``update_node`` only as the releases before the restart hold did: version 1 without the hold fields
(a version-2 entry is refused with a WireError, a version-1 body naming a hold field with a ConfigError, its
state untouched either way), and service specs of spec version 1 (``model/spec_fields.py``):
``container.memswap_limit``, ``container.mem_swappiness``, ``container.pull_policy``,
``container.pid``/``ipc``/``uts``/``privileged``, a mount's ``subpath`` and a sidecar's ``privileged``,
``pid``, ``ipc``, ``cap_add`` and ``cap_drop`` are unknown and log options need a log driver, so such a spec
is applied as an invalid service, as that release's decoder does; the host network is unknown to its FSM (a
service on it is refused: "network 'host' not found", the entry applied by the others). It advertises
nothing: the node the write gate (``raft/command_gate.py``) must keep every writer within.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..model import container, container_opts, group
from ..raft import commands as C
from ..raft import fsm_networks
from ..raft import node as store_node


def read_baseline_only() -> None:
    """This process's decoder: ``update_node`` version 1 without the hold fields, spec version 1."""
    C.UpdateNode.VERSION = 1
    for name in ("restart_until", "restart_incarnation"):
        C._NODE_FIELDS.pop(name, None)
    parsed_later = (
        "memswap_limit_bytes",
        "mem_swappiness",
        "pull_policy",
        "pid_mode",
        "ipc_mode",
        "uts_mode",
        "privileged",
    )
    for parsed in parsed_later:  # spec versions 2 to 5
        container_opts._PARSERS.pop(parsed, None)
    for alias in ("memswap_limit", "memory_swap", "memory_swappiness", "pid", "ipc", "uts"):
        container_opts._ALIASES.pop(alias, None)
    for key in ("subpath", "volume-subpath"):  # a mount's subpath (spec version 4)
        container._MOUNT_KEYS.pop(key, None)
    # a sidecar's own privileged (5), namespaces (6), capabilities (7)
    for key in ("privileged", "pid", "ipc", "cap_add", "cap-add", "cap_drop", "cap-drop"):
        group._KEYS.pop(key, None)
    fsm_networks.HOST_NETWORK = ""  # no built-in host network (spec version 3): "host" is not found
    checks = container_opts.ContainerOptions.__post_init__

    def with_the_driver_rule(options: Any) -> None:  # the rule session 48 dropped
        checks(options)
        if options.log_opts and not options.log_driver:
            raise ConfigError("container.log_opts: need a log driver", field="container.log_opts")

    container_opts.ContainerOptions.__post_init__ = with_the_driver_rule  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    read_baseline_only()
    store_node.main()
