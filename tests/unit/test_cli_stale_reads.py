"""The CLI's reads of a node's own copy: ``status``/``info`` on a node without quorum, and the global
``--stale`` flag (Consul's ``-stale``) that every GET of a command sends as ``stale=true``."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from p2porch.api.client import ApiClient
from p2porch.cli.cluster import status_view
from p2porch.cli.util import client_for
from p2porch.errors import StaleReadRefused

cli_main = importlib.import_module("p2porch.cli.main")


class _MinorityNode:
    """A member cut off from its quorum: /status answers, a barrier read is refused (503)."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, **params: Any) -> Any:
        self.reads.append((path, params))
        if path == "/status":
            return {"cluster": {"ready": True, "has_quorum": False}}
        if params.get("stale") != "true":
            raise StaleReadRefused("this node could not confirm ...")
        return []


def test_status_view_reads_the_nodes_own_copy_so_a_minority_still_shows_itself() -> None:
    node = _MinorityNode()
    view = status_view(node)
    assert view["cluster"]["has_quorum"] is False and view["nodes"] == [] and view["services"] == []
    assert [p for p, q in node.reads if p != "/status" and q.get("stale") != "true"] == []


def test_the_global_stale_flag_makes_every_get_ask_for_the_nodes_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("P2PORCH_CONFIG_DIR", str(tmp_path))
    args = cli_main.build_parser().parse_args(["--stale", "node", "ls"])
    assert args.stale is True
    after = cli_main.build_parser().parse_args(["node", "ls"])
    assert getattr(after, "stale", False) is False
    sent: list[dict[str, Any]] = []
    client = ApiClient("unix:///nonexistent/p2porch.sock", stale=True)
    monkeypatch.setattr(client, "_request", lambda method, path, **kw: sent.append(kw["params"]))
    client.get("/nodes")
    client.get("/services", stale="false")  # an explicit choice of the caller stays
    assert sent == [{"stale": "true"}, {"stale": "false"}]
    assert "--stale" in cli_main.build_parser().format_help()
    made = client_for(args)
    assert made.stale is True
    made.close()
