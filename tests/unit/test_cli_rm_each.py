"""`service rm a b c` (and `secret`/`config`/`network rm`) remove every name they can, as `docker rm`:
a missing name is an error on stderr and exit 1, but what was removed before and after it is done
and shown (it used to stop at the first missing name with only its error: the removals before it
were done and not shown). With --json: one list (secret/network rm printed one JSON document per
name, which no JSON parser reads as one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.cli import network as cli_network
from p2porch.cli import secret as cli_secret
from p2porch.cli import service as cli_service
from p2porch.cli import util as cli_util
from p2porch.cli.main import build_parser
from p2porch.errors import DaemonUnreachable, NotFoundError


class Api:
    """DELETE of a known name answers its view; an unknown one is not found (as the daemon)."""

    def __init__(self, known: set[str], unreachable: bool = False) -> None:
        self.known, self.unreachable = known, unreachable
        self.deleted: list[str] = []

    def delete(self, path: str, body: Any = None) -> Any:
        if self.unreachable:
            raise DaemonUnreachable("cannot reach the daemon")
        kind, name = path.rsplit("/", 2)[-2:]
        if name not in self.known:
            raise NotFoundError(f"no {kind} {name!r}", field="NAME")
        self.deleted.append(name)
        return {"name": name, "removed": name, "kind": "secret"}


def run(module: Any, argv: list[str], api: Api, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    args = build_parser(argv[0]).parse_args(argv)
    return int(args.func(args))


def test_service_rm_removes_the_others_and_shows_them(monkeypatch, capsys):
    api = Api({"a", "b"})
    assert run(cli_service, ["service", "rm", "a", "nope", "b"], api, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert api.deleted == ["a", "b"]
    assert out.split() == ["a", "b"]
    assert "p2porch: error: no services 'nope'" in err


def test_service_rm_json_lists_what_was_removed(monkeypatch, capsys):
    api = Api({"a"})
    assert run(cli_service, ["service", "rm", "--json", "nope", "a"], api, monkeypatch) == 1
    assert [view["name"] for view in json.loads(capsys.readouterr().out)] == ["a"]


@pytest.mark.parametrize(
    ("module", "noun"), [(cli_secret, "secret"), (cli_secret, "config"), (cli_network, "network")]
)
def test_secret_and_network_rm_go_on_after_a_missing_name(module, noun, monkeypatch, capsys):
    api = Api({"a", "b"})
    assert run(module, [noun, "rm", "nope", "a", "b"], api, monkeypatch) == 1
    assert api.deleted == ["a", "b"]
    assert capsys.readouterr().out.split("\n") == ["a", "b", ""]  # the names, as Docker's (the h41 walk)


@pytest.mark.parametrize(("module", "noun"), [(cli_secret, "secret"), (cli_network, "network")])
def test_secret_and_network_rm_json_is_one_list(module, noun, monkeypatch, capsys):
    assert run(module, [noun, "rm", "--json", "a", "b"], Api({"a", "b"}), monkeypatch) == 0
    assert [r["removed"] for r in json.loads(capsys.readouterr().out)] == ["a", "b"]


def test_all_removed_is_exit_0_and_an_unreachable_daemon_stops_at_once(monkeypatch):
    assert run(cli_service, ["service", "rm", "a", "b"], Api({"a", "b"}), monkeypatch) == 0
    with pytest.raises(DaemonUnreachable):
        run(cli_service, ["service", "rm", "a", "b"], Api(set(), unreachable=True), monkeypatch)


@pytest.mark.parametrize("warning", [None, "keys not rotated (x): run `p2porch cluster rotate-keys`"])
def test_node_rm_prints_the_node_given_as_docker_and_a_warning_on_stderr(monkeypatch, capsys, warning):
    """The h41 user walk: ``node rm n3`` printed ``removed node n3 (95cf25f3e706393e)``; ``docker node rm``
    prints the node as given, so scripts read one name a line from every ``rm``."""

    class Nodes:
        def delete(self, path: str, body: Any = None) -> Any:
            answer = {"name": "n3", "removed": "95cf25f3e706393e"}
            return {**answer, "warning": warning} if warning else answer

    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: Nodes())
    args = build_parser("node").parse_args(["node", "rm", "n3"])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert out == "n3\n"
    assert (warning in err) if warning else err == ""
