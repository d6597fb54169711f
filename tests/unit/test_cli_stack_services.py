"""`stack services NAME` lists a stack's services as `service ls` does (docker stack services); the API
route existed without a command."""

from __future__ import annotations

import json
from typing import Any

from p2porch.cli import stack as cli_stack
from p2porch.cli.main import build_parser, main
from p2porch.errors import NotFoundError

VIEW = {
    "id": "0123456789abcdef",
    "name": "shop-web",
    "mode": "replicated",
    "running": 2,
    "desired": 3,
    "image": "nginx:1.27",
    "pending": [],
    "job": None,
    "failing": None,
    "spec": {"mode": "replicated", "replicas": 3},
}


class Api:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        self.paths.append(path)
        if path != "/stacks/shop/services":
            raise NotFoundError("no stack 'nope'", field="NAME")
        return [VIEW]


def test_stack_services_is_the_service_table_of_the_stack(monkeypatch, capsys):
    api = Api()
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    args = build_parser("stack").parse_args(["stack", "services", "shop"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS", "PENDING"]
    assert lines[1].split()[:5] == ["0123456789ab", "shop-web", "replicated", "2/3", "nginx:1.27"]
    assert api.paths == ["/stacks/shop/services"]


def test_stack_services_json_and_an_unknown_stack(monkeypatch, capsys):
    monkeypatch.setattr(cli_stack, "client_for", lambda args: Api())
    assert main(["stack", "services", "--json", "shop"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "shop-web"
    assert main(["stack", "services", "nope"]) == 0  # as Docker's: said on stderr, exit 0
    out = capsys.readouterr()
    assert (out.err, out.out) == ("Nothing found in stack: nope\n", "")
    assert main(["stack", "services", "--json", "nope"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_stack_services_takes_docker_format_as_swarm_scripts_type_it(monkeypatch, capsys):
    """``docker stack services --format "table {{.Name}}\\t{{.Image}}"`` (the third user walk)."""
    monkeypatch.setattr(cli_stack, "client_for", lambda args: Api())
    assert (
        main(["stack", "services", "--format", "table {{.Name}}\\t{{.Replicas}}\\t{{.Image}}", "shop"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        "NAME       REPLICAS   IMAGE",
        "shop-web   2/3        nginx:1.27",
    ]


def test_stack_services_takes_service_ls_filters(monkeypatch, capsys):
    """The fourth walk: ``stack services --filter`` (Docker's) was an unrecognized argument."""
    monkeypatch.setattr(cli_stack, "client_for", lambda args: Api())
    assert main(["stack", "services", "-q", "--filter", "name=shop-w", "shop"]) == 0
    assert capsys.readouterr().out.split() == ["0123456789abcdef"]
    assert main(["stack", "services", "-q", "--filter", "mode=global", "shop"]) == 0
    assert capsys.readouterr().out.split() == []
