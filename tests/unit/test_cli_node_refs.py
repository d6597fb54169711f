"""Every ``node`` command given a node the cluster does not have says Docker's ``No such node: X`` and
exits 1 (``node promote nosuch`` used to say "cannot be promoted", as if the node existed)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import node as cli_node
from p2porch.cli import util as cli_util
from p2porch.cli.main import main
from p2porch.errors import NotFoundError


class Daemon:
    """Knows node n1 only; any other is refused as the daemon's ``find_node`` refuses it."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def _node(self, path: str) -> dict[str, Any]:
        ref = path.split("/")[2]
        if ref != "n1":
            raise NotFoundError(f"No such node: {ref}", field="NODE")
        return {"name": "n1"}

    def get(self, path: str, **_: Any) -> Any:
        return self._node(path)

    def post(self, path: str, body: Any = None) -> Any:
        self.writes.append(path)
        return self._node(path)

    def delete(self, path: str, body: Any = None) -> Any:
        self.writes.append(path)
        return self._node(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["node", "promote", "nosuch"],
        ["node", "demote", "n1", "nosuch"],
        ["node", "update", "--role", "worker", "nosuch"],
        ["node", "inspect", "nosuch"],
        ["node", "ps", "nosuch"],
        ["node", "rm", "nosuch"],
        ["node", "update", "--availability", "drain", "nosuch"],
    ],
)
def test_an_unknown_node_is_no_such_node_exit_1(argv, monkeypatch, capsys) -> None:
    daemon = Daemon()
    monkeypatch.setattr(cli_node, "client_for", lambda args, **kw: daemon)
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: daemon)  # node rm: remove_each's
    assert main(argv) == 1
    assert capsys.readouterr().err == "Error: No such node: nosuch\n"
    if argv[1] in ("promote", "demote") or "--role" in argv:
        assert daemon.writes == []  # refused before anything is sent
