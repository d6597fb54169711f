"""``-q/--quiet`` on the list commands prints only IDs, one a line, as Docker's does (``docker service rm
$(docker service ls -q)``); it was an unrecognized argument (exit 2)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from p2porch.cli import network as cli_network
from p2porch.cli import node as cli_node
from p2porch.cli import secret as cli_secret
from p2porch.cli import service as cli_service
from p2porch.cli import service_read as cli_service_read
from p2porch.cli import stack as cli_stack
from p2porch.cli.main import main

ROWS = [{"id": "aaaa1111bbbb2222cccc"}, {"id": "dddd3333eeee4444ffff"}]


class Api:
    def get(self, path: str, **_: Any) -> Any:
        return {} if path.endswith("/usage") else ROWS


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        (cli_service, ["service", "ls", "-q"]),
        (cli_node, ["node", "ls", "-q"]),
        (cli_secret, ["secret", "ls", "-q"]),
        (cli_secret, ["config", "ls", "-q"]),
        (cli_network, ["network", "ls", "-q"]),
    ],
)
def test_quiet_lists_print_only_ids(monkeypatch, capsys, module, argv) -> None:
    monkeypatch.setattr(module, "client_for", lambda args: Api())
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [r["id"] for r in ROWS]


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        (cli_service_read, ["service", "ps", "web", "--quiet"]),
        (cli_stack, ["stack", "ps", "shop", "-q"]),
        (cli_node, ["node", "ps", "n1", "-q"]),
    ],
)
def test_quiet_task_lists_print_the_ids_as_the_table_cuts_them(monkeypatch, capsys, module, argv) -> None:
    """Docker's task lists (``service|stack|node ps -q``) print the ID column's 12 characters, the full
    id with ``--no-trunc`` (the walk's ``service ps -q`` printed full ids)."""
    monkeypatch.setattr(module, "client_for", lambda args: Api())
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [r["id"][:12] for r in ROWS]
    assert main([*argv, "--no-trunc"]) == 0
    assert capsys.readouterr().out.splitlines() == [r["id"] for r in ROWS]


class FullApi:
    def get(self, path: str, **_: Any) -> Any:
        if path == "/networks":
            net = {"id": "n" * 20, "name": "back", "driver": "overlay", "scope": "cluster", "internal": True}
            return [{**net, "services": ["api"]}]
        now = time.time()
        return [
            {"id": "s1", "name": "pw", "version": 2, "size": 3, "services": [], "created_at": now - 7200,
             "updated_at": now - 60}
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("module", "argv", "out"),
    [
        (
            cli_network,
            ["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Internal}}"],
            "back overlay true",
        ),
        (cli_secret, ["secret", "ls", "--format", "{{.Name}}:{{.Version}}"], "pw:2"),
        (cli_secret, ["config", "ls", "--format", "{{.ID}}"], "s1"),
    ],
)
def test_the_object_lists_take_docker_format(monkeypatch, capsys, module, argv, out) -> None:
    monkeypatch.setattr(module, "client_for", lambda args: FullApi())
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [out]


def test_secret_ls_format_takes_dockers_created_at_and_updated_at(monkeypatch, capsys) -> None:
    """Docker's ``secret|config ls`` fields ``{{.CreatedAt}}``/``{{.UpdatedAt}}``, which the parse-time
    template check refused before they existed, as Docker's (go-units' ``HumanDuration``: ``2 hours ago``,
    ``About a minute ago``); the list's own UPDATED column stays ``1m05s ago``."""
    monkeypatch.setattr(cli_secret, "client_for", lambda args: FullApi())
    assert main(["secret", "ls", "--format", "{{.CreatedAt}}|{{.UpdatedAt}}|{{.Updated}}"]) == 0
    created, updated, own_name = capsys.readouterr().out.strip().split("|")
    assert (created, updated) == ("2 hours ago", "About a minute ago") and own_name.startswith("1m0")
