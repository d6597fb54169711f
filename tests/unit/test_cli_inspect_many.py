"""``inspect`` and ``node rm`` of several names, as Docker's (the h44 user walk: ``p2porch service inspect
--format '{{.Spec.Name}}' $(p2porch service ls -q)``, the idiom of ``docker service inspect``, was refused
as ``unrecognized arguments``; so were ``node inspect a b`` and ``node rm a b``). Each name is shown in
turn, a missing one is an error on stderr (exit 1) and the others are still shown; one name prints what
it always printed (a JSON object with --json, not a list)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.cli import util as cli_util
from p2porch.cli.main import main
from p2porch.errors import DaemonUnreachable, NotFoundError

SERVICE = {"id": "s1", "name": "web", "spec": {"name": "web", "image": "img:1", "replicas": 1}}
SECRET = {"kind": "secret", "version": 1, "versions": [1], "size": 3, "digest": "sha256:0"}  # its text


class Daemon:
    """Knows services/nodes/secrets/configs/networks ``a`` and ``b`` only, as the daemon refuses others."""

    def __init__(self, unreachable: bool = False) -> None:
        self.unreachable = unreachable
        self.deleted: list[str] = []

    def _view(self, path: str) -> dict[str, Any]:
        if self.unreachable:
            raise DaemonUnreachable("cannot reach the daemon")
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name not in ("a", "b"):
            raise NotFoundError(f"unknown thing: {name}", field="NAME")
        spec = {**SERVICE["spec"], "name": name}
        return {**SERVICE, **SECRET, "id": f"id-{name}", "name": name, "spec": spec}

    def get(self, path: str, **_: Any) -> Any:
        return self._view(path)

    def delete(self, path: str, body: Any = None) -> Any:
        view = self._view(path)
        self.deleted.append(view["name"])
        return {"name": view["name"], "removed": view["id"]}


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Daemon:
    from p2porch.cli import network, node, secret, service_read

    d = Daemon()
    for module in (cli_util, node, network, secret, service_read):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: d)
    return d


@pytest.mark.parametrize(
    "noun", [["service"], ["node"], ["secret"], ["config"], ["network"]], ids=lambda n: n[0]
)
def test_inspect_format_gives_one_line_per_name_and_goes_on_past_a_missing_one(noun, daemon, capsys):
    assert main([*noun, "inspect", "--format", "{{.Name}}", "a", "nope", "b"]) == 1
    out, err = capsys.readouterr()
    assert out == "a\nb\n"
    assert err == "p2porch: error: unknown thing: nope\n"


def test_service_inspect_of_every_listed_id_as_dockers_idiom(daemon, capsys):
    assert main(["service", "inspect", "-f", "{{.Spec.Name}}", "a", "b"]) == 0
    assert capsys.readouterr().out == "a\nb\n"


@pytest.mark.parametrize("flag", [["--json"], ["--format", "json"]])
def test_inspect_of_several_with_json_is_one_list(flag, daemon, capsys):
    assert main(["node", "inspect", *flag, "a", "b"]) == 0
    assert [view["name"] for view in json.loads(capsys.readouterr().out)] == ["a", "b"]


def test_inspect_of_one_name_with_json_is_still_the_object(daemon, capsys):
    assert main(["service", "inspect", "--json", "a"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "a"


def test_inspect_text_of_several_separates_them_with_a_blank_line(daemon, capsys):
    assert main(["secret", "inspect", "a", "b"]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    assert len(blocks) == 2 and "a" in blocks[0] and "b" in blocks[1]


def test_format_with_json_is_refused_before_anything_is_shown(daemon, capsys):
    assert main(["service", "inspect", "--json", "--format", "{{.Name}}", "a", "b"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--format: not with --json or --pretty" in err


def test_an_unreachable_daemon_stops_at_once(monkeypatch, capsys):
    from p2porch.cli import service_read

    monkeypatch.setattr(service_read, "client_for", lambda args, **kw: Daemon(unreachable=True))
    assert main(["service", "inspect", "a", "b"]) == 1
    assert capsys.readouterr().err.count("cannot reach") == 1


def test_node_rm_of_several_removes_each_and_prints_them_as_given(daemon, capsys):
    assert main(["node", "rm", "a", "nope", "b"]) == 1
    out, err = capsys.readouterr()
    assert daemon.deleted == ["a", "b"]
    assert out == "a\nb\n"
    assert err == "p2porch: error: unknown thing: nope\n"
