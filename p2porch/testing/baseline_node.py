"""A store process of a release before the command-version gate, for tests (shell).

    python -m p2porch.testing.baseline_node ARGS   # the arguments of ``python -m p2porch.raft.node``

It reads ``update_node`` only as the releases before the restart hold did: version 1 without the hold
fields (a version-2 entry is refused with a WireError, a version-1 body naming a hold field with a
ConfigError, its state untouched either way), and it advertises nothing: the node the write gate
(``raft/command_gate.py``) must keep every writer within.
"""

from __future__ import annotations

from ..raft import commands as C
from ..raft import node as store_node


def read_baseline_only() -> None:
    """This process's decoder: ``update_node`` version 1 without the hold fields."""
    C.UpdateNode.VERSION = 1
    for name in ("restart_until", "restart_incarnation"):
        C._NODE_FIELDS.pop(name, None)


if __name__ == "__main__":
    read_baseline_only()
    store_node.main()
