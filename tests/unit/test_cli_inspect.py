"""Every `inspect` prints text by default and JSON only with --json; `network inspect` needs a NAME."""

import argparse
import json
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import network as cli_network
from p2porch.cli import node as cli_node

NODE = {
    "id": "a1b2c3d4e5f6a7b8",
    "name": "n1",
    "address": "10.39.0.1",
    "ports": {"gossip": 7946, "raft": 7947, "join": 7948, "vxlan": 4789},
    "raft_role": "leader",
    "availability": "active",
    "status": "ready",
    "labels": {"zone": "a"},
    "cpu_nanos": 2_000_000_000,
    "memory_bytes": 4 * 2**30,
    "joined_at": 1796425000.0,
    "subnet": "10.240.1.0/24",
    "gossip": "alive",
    "self": True,
    "raft_progress": {"applied_index": 62, "behind_entries": 0},
}
OVERLAY = {
    "ready": True,
    "node_id": "a1b2c3d4e5f6a7b8",
    "lease": "10.240.1.0/24",
    "cluster_cidr": "10.240.0.0/16",
    "vtep": {"device": "p2p-vxlan", "present": True, "mac": "aa:bb", "address": "10.240.1.0", "mtu": 1450},
    "network": {"name": "p2porch", "bridge": "p2p-br", "gateway": "10.240.1.1"},
    "peers": [
        {
            "node_id": "ffeeddccbbaa9988",
            "subnet": "10.240.2.0/24",
            "underlay_addr": "10.39.0.2",
            "vtep_mac": "cc:dd",
            "programmed": True,
        }
    ],
}


class Api:
    def get(self, path: str, **_: Any) -> Any:
        return {"/nodes/n1": NODE, "/network": OVERLAY}[path]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api()
    monkeypatch.setattr(cli_node, "client_for", lambda args: fake)
    monkeypatch.setattr(cli_network, "client_for", lambda args: fake)
    return fake


def test_node_inspect_is_text_by_default_and_json_with_the_flag(api: Api, capsys: Any) -> None:
    assert cli_node.cmd_node_inspect(argparse.Namespace(nodes=["n1"], json=False)) == 0
    text = capsys.readouterr().out
    assert text.startswith("node n1 (this node)\n")
    assert "raft:         leader, index 62 (-0)" in text and "labels:       zone=a" in text
    assert "2 CPUs, 4.0 GiB memory" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert cli_node.cmd_node_inspect(argparse.Namespace(nodes=["n1"], json=True)) == 0
    assert json.loads(capsys.readouterr().out) == NODE


def test_network_inspect_overlay_is_text_only(api: Api, capsys: Any) -> None:
    args = argparse.Namespace(names=[], overlay=True, json=False)
    assert cli_network.cmd_inspect(args) == 0
    text = capsys.readouterr().out
    assert "{" not in text  # no JSON block before the table any more
    assert "lease:        10.240.1.0/24 (cluster 10.240.0.0/16)" in text
    assert "ffeeddccbbaa  10.240.2.0/24" in text
    assert cli_network.cmd_inspect(argparse.Namespace(names=[], overlay=True, json=True)) == 0
    assert json.loads(capsys.readouterr().out) == OVERLAY


@pytest.mark.parametrize(
    "argv", [["network", "inspect"], ["network", "inspect", "back", "--overlay"]], ids=["none", "both"]
)
def test_network_inspect_without_a_name_is_a_usage_error_naming_it(api: Api, capsys: Any, argv: list) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing printed before the error
    assert "NAME" in captured.err
