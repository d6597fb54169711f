"""The identity a joining node keeps across join attempts: ``<data_dir>/join-identity.json`` (shell).

Owns that one file (mode 0600, written atomically): the node id and private node key a node asks to
join a cluster with. Every attempt of one node to join one cluster uses the same pair, so the member
recognises a retry as the same node (``admission_plan``) whatever an earlier attempt left behind; the
file goes once the join succeeded (``cluster.json`` holds the pair from then on). A token for another
cluster starts a new identity. It never holds the join token or a cluster key.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from ..raft.journal import write_file_atomic
from .keys import new_node_key

FILE_NAME = "join-identity.json"

__all__ = ["forget", "identity_for", "pending"]


def _path(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def _load(data_dir: str, cluster_id: str) -> tuple[str, str] | None:
    try:
        with open(_path(data_dir)) as handle:
            data = json.load(handle)
        if data["cluster_id"] == cluster_id:
            return str(data["node_id"]), str(data["node_key"])
    except (OSError, ValueError, TypeError, KeyError):
        pass  # absent or unreadable: a new identity (the member sees a new node)
    return None


def pending(data_dir: str, cluster_id: str) -> bool:
    """True when a join of ``cluster_id`` from this data dir started and never completed."""
    return _load(data_dir, cluster_id) is not None


def identity_for(data_dir: str, cluster_id: str) -> tuple[str, str]:
    """(node id, private node key) for joining ``cluster_id``: the stored pair, or a new one, stored."""
    found = _load(data_dir, cluster_id)
    if found is not None:
        return found
    node_id, node_key = secrets.token_hex(8), new_node_key()
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    data = json.dumps({"cluster_id": cluster_id, "node_id": node_id, "node_key": node_key}).encode()
    # a new 0600 file (a leftover .tmp of a wider mode is replaced, not reused), fsynced with its
    # directory: a retry after a power loss finds the same identity
    write_file_atomic(Path(_path(data_dir)), data)
    return node_id, node_key


def forget(data_dir: str) -> None:
    """Drop the stored identity (the join succeeded: ``cluster.json`` holds it now)."""
    try:
        os.unlink(_path(data_dir))
    except FileNotFoundError:
        pass
