"""This node's record of the cluster it belongs to: ``<data_dir>/cluster.json`` (shell).

Owns reading and atomically writing that one file (mode 0600): the cluster id, the cluster key of
the current key epoch (from which the Raft password, gossip key and member key derive) and the last
few older ones (a peer that missed a rotation may still fetch its new key with them), this node's
private node key (key rotations are sealed to its public half), this node's id and how its Raft store
starts. It holds nothing that the replicated state already holds authoritatively, and no secret
shows in its repr.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace

from ..errors import AuthError, DaemonError
from .keys import ClusterKeys, keys_from_text
from .token import parse_token

FILE_NAME = "cluster.json"
PREVIOUS_KEYS_KEPT = 3  # older key epochs kept for answering a lagging peer's key fetch


@dataclass(frozen=True)
class LocalClusterState:
    """What a node must remember across restarts to rejoin its cluster by itself."""

    cluster_id: str
    node_id: str
    node_name: str
    role: str  # voter | replica (how the Raft store starts)
    raft_addr: str  # this node's Raft address ip:port
    voters: tuple[str, ...]  # Raft voters known when this file was written
    generation: int = 0  # Raft generation: bumped by `p2porch recover --force-new-cluster`
    key_epoch: int = 0  # cluster key epoch: bumped by `p2porch cluster rotate-keys` (and `node rm`)
    cluster_key: str = field(default="", repr=False)  # base64 cluster key of ``key_epoch``
    previous_keys: tuple[tuple[int, str], ...] = field(default=(), repr=False)  # (epoch, key), newest first
    node_key: str = field(default="", repr=False)  # this node's X25519 private key (base64)
    token: str = field(default="", repr=False)  # only in files written before keys were separated
    listen_addr: str = ""  # the address this node binds ("" = the advertise address; differs behind NAT)
    gossip_port: int = 0  # the advertised gossip port (0 = the configured one; differs behind a NAT)

    @property
    def advertise_addr(self) -> str:
        return self.raft_addr.rsplit(":", 1)[0]

    @property
    def bind_addr(self) -> str:
        """The local address every listener of this node binds."""
        return self.listen_addr or self.advertise_addr

    @property
    def keys(self) -> ClusterKeys:
        """The cluster keys of the current epoch (a pre-separation file: its token's secret, epoch 0)."""
        if self.cluster_key:
            return keys_from_text(self.cluster_id, self.key_epoch, self.cluster_key)
        if self.token:
            return ClusterKeys(self.cluster_id, 0, parse_token(self.token).secret)
        raise AuthError("cluster.json holds no cluster key")

    def keys_of_epoch(self, epoch: int) -> ClusterKeys | None:
        """The keys of the current or a kept older epoch, else None."""
        if epoch == self.key_epoch:
            return self.keys
        for old_epoch, text in self.previous_keys:
            if old_epoch == epoch:
                return keys_from_text(self.cluster_id, epoch, text)
        return None

    def with_keys(self, keys: ClusterKeys) -> LocalClusterState:
        """This state in a newer key epoch; the current key is kept as the newest previous one."""
        current = self.keys
        kept = ((current.epoch, current.to_text()), *self.previous_keys)[:PREVIOUS_KEYS_KEPT]
        return replace(self, key_epoch=keys.epoch, cluster_key=keys.to_text(), previous_keys=kept, token="")


def path_in(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def load(data_dir: str) -> LocalClusterState | None:
    path = path_in(data_dir)
    try:
        with open(path) as handle:
            data = json.load(handle)
        data["voters"] = tuple(data.get("voters", ()))
        data["previous_keys"] = tuple((int(e), str(k)) for e, k in data.get("previous_keys", ()))
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
        data = {**asdict(state), "voters": list(state.voters)}
        data["previous_keys"] = [list(pair) for pair in state.previous_keys]
        json.dump(data, handle, indent=2)
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
