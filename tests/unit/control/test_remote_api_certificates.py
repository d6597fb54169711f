"""Which certificate a node's TLS API serves: issued by the cluster CA of its key epoch for its
addresses, re-issued on a new epoch and before expiry, none once the node is no longer a member, and
the operator's pair when given."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio

from p2porch.config import ApiConfig
from p2porch.control.remote_api import RemoteApi, ca_of
from p2porch.errors import ConfigError
from p2porch.membership.keys import new_cluster_keys
from p2porch.membership.localstate import LocalClusterState
from p2porch.raft.state import ClusterState, Node
from p2porch.vault.cluster_ca import issue_server_certificate, verify_server_certificate

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CLUSTER = "0123456789abcdef"


def local(epoch: int = 0) -> LocalClusterState:
    keys = new_cluster_keys(CLUSTER, epoch)
    return LocalClusterState(
        cluster_id=CLUSTER, node_id="a" * 16, node_name="n1", role="voter", raft_addr="10.51.0.1:7947",
        voters=("10.51.0.1:7947",), key_epoch=epoch, cluster_key=keys.to_text(),
    )  # fmt: skip


class Store:
    def __init__(self, node_ids: list[str]) -> None:
        nodes = {i: Node(i, "n1", "10.51.0.1", 7947, 7946) for i in node_ids}
        self.state = ClusterState(cluster_id=CLUSTER, version=3, nodes=nodes)

    def snapshot(self) -> ClusterState:
        return self.state


def test_cluster_ca_certificate_follows_the_key_epoch_and_membership(tmp_path):
    cluster = SimpleNamespace(local=None, store=None)
    remote = RemoteApi(ApiConfig(addr="0.0.0.0:7949"), cluster, str(tmp_path), "n1")  # type: ignore[arg-type]
    assert remote.refresh(NOW) is False  # not a member yet: nothing to serve
    assert remote.status()["certificate"].startswith("not listening")
    cluster.local, cluster.store = local(0), Store(["a" * 16])
    assert remote.refresh(NOW) is True
    cert_v0 = Path(remote.identity.cert_file).read_text()
    for host in ("10.51.0.1", "127.0.0.1"):
        verify_server_certificate(ca_of(cluster.local).pem, cert_v0, host, NOW)
    serial = remote.serial
    remote.refresh(NOW + dt.timedelta(days=1))
    assert remote.serial == serial  # same epoch, far from expiry: kept
    remote.refresh(NOW + dt.timedelta(days=61))
    assert remote.serial != serial  # 30 days before expiry: renewed
    cluster.local = replace(local(1), node_key="")
    remote.refresh(NOW + dt.timedelta(days=62))
    cert_v1 = Path(remote.identity.cert_file).read_text()
    verify_server_certificate(ca_of(cluster.local).pem, cert_v1, "10.51.0.1", NOW + dt.timedelta(days=62))
    with pytest.raises(ConfigError):
        verify_server_certificate(ca_of(local(0)).pem, cert_v1, "10.51.0.1", NOW + dt.timedelta(days=62))
    assert remote.status() == {"addr": "0.0.0.0:7949", "certificate": "cluster CA of key epoch 1"}
    assert remote.ca_info()["epoch"] == 1 and remote.ca_info()["pem"] == ca_of(cluster.local).pem
    cluster.store = Store(["b" * 16])  # the committed state no longer lists this node: node rm
    assert remote.refresh(NOW) is False


def test_operator_certificate_is_served_as_given(tmp_path):
    ca = ca_of(local(0))
    issued = issue_server_certificate(ca, "n1", ["10.0.0.1"], NOW)
    (tmp_path / "c.pem").write_text(issued.cert_pem)
    (tmp_path / "k.pem").write_text(issued.key_pem)
    (tmp_path / "ca.pem").write_text(ca.pem)
    section = ApiConfig(addr="10.0.0.1:7949", cert=str(tmp_path / "c.pem"), key=str(tmp_path / "k.pem"),
                        ca=str(tmp_path / "ca.pem"))  # fmt: skip
    remote = RemoteApi(section, SimpleNamespace(local=None, store=None), str(tmp_path), "n1")  # type: ignore[arg-type]
    assert remote.refresh(NOW) is True and remote.identity.installed
    assert remote.ca_info() == {"source": "operator", "pem": ca.pem, "epoch": None, "fingerprint": None}
    with pytest.raises(ConfigError, match="go together"):
        RemoteApi(ApiConfig(addr="10.0.0.1:7949", cert="/x.pem"), SimpleNamespace(), str(tmp_path), "n1")  # type: ignore[arg-type]


async def test_the_listener_bounds_a_stalled_reader_by_its_own_knob(tmp_path, monkeypatch):
    """api.send_timeout_s, not api.request_timeout_s, bounds how long a client may leave a write untaken."""
    given: dict[str, object] = {}

    async def fake_serve_tls(app, addr, identity, *, limiter, send_timeout_s, on_send_timeout, task_status):
        given["send_timeout_s"] = send_timeout_s
        task_status.started()

    monkeypatch.setattr("p2porch.control.remote_api.serve_tls", fake_serve_tls)
    section = ApiConfig(addr="127.0.0.1:7949", request_timeout_s=7.0, send_timeout_s=42.0)
    remote = RemoteApi(section, SimpleNamespace(local=None, store=None), str(tmp_path), "n1")  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(remote._listen, None)
    assert given == {"send_timeout_s": 42.0}
    assert ApiConfig().send_timeout_s == 300.0 and ApiConfig().request_timeout_s == 60.0
