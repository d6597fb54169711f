"""This node's record of the cluster it belongs to: ``<data_dir>/cluster.json`` (shell).

Owns reading and atomically writing that one file (mode 0600): the cluster id, the cluster token
(from which the Raft password and gossip key derive), this node's id and how its Raft store starts.
It holds nothing that the replicated state already holds authoritatively.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from ..errors import DaemonError
from .token import JoinToken, parse_token

FILE_NAME = "cluster.json"


@dataclass(frozen=True)
class LocalClusterState:
    """What a node must remember across restarts to rejoin its cluster by itself."""

    cluster_id: str
    token: str  # the cluster token: derives the Raft password and the gossip key
    node_id: str
    node_name: str
    role: str  # voter | replica (how the Raft store starts)
    raft_addr: str  # this node's Raft address ip:port
    voters: tuple[str, ...]  # Raft voters known when this file was written
    generation: int = 0  # Raft generation: bumped by `p2porch recover --force-new-cluster`

    @property
    def advertise_addr(self) -> str:
        return self.raft_addr.rsplit(":", 1)[0]

    @property
    def cluster_token(self) -> JoinToken:
        return parse_token(self.token)


def path_in(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def load(data_dir: str) -> LocalClusterState | None:
    path = path_in(data_dir)
    try:
        with open(path) as handle:
            data = json.load(handle)
        data["voters"] = tuple(data.get("voters", ()))
        return LocalClusterState(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise DaemonError(
            f"{path} is corrupt ({exc}); move it away to start this node outside any cluster",
            field="node.data_dir",
        ) from exc


def save(data_dir: str, state: LocalClusterState) -> None:
    path = path_in(data_dir)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({**asdict(state), "voters": list(state.voters)}, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove(data_dir: str) -> None:
    try:
        os.unlink(path_in(data_dir))
    except FileNotFoundError:
        pass
