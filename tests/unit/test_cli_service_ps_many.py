"""``service ps SERVICE [SERVICE...]`` as Docker's: the tasks of every service given, in one table (the
operator walk's ``service ps shop-web shop-api`` was refused: "unrecognized arguments: shop-api")."""

from __future__ import annotations

import json
from typing import Any

from p2porch.cli import service_read as cli_service_read
from p2porch.cli.main import main
from p2porch.errors import NotFoundError


def _task(tid: str, name: str) -> dict[str, Any]:
    return {"id": tid * 25, "name": name, "node": "n1", "node_id": "id1", "desired_state": "running",
            "state": "running", "state_at": 0, "error": "", "message": ""}  # fmt: skip


TASKS = {"web": [_task("a", "web.1"), _task("b", "web.2")], "api": [_task("c", "api.1")]}
SPECS = {
    "web": {"name": "web", "image": "img"},
    "api": {"name": "api", "image": "img", "sidecars": [{"name": "log", "image": "tail"}]},
}


class Api:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        self.asked.append(path)
        name = path.split("/")[2]
        if name not in TASKS:
            raise NotFoundError(f"no such service: {name}")
        if path.endswith("/usage"):
            return {}
        if path.endswith("/tasks"):
            return [dict(t) for t in TASKS[name]]
        return {"name": name, "spec": SPECS[name]}


def test_the_tasks_of_every_service_given_in_one_table(monkeypatch, capsys) -> None:
    api = Api()
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: api)
    assert main(["service", "ps", "web", "api"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ID") and len(lines) == 5, lines
    assert [line.split()[1] for line in lines[1:4]] == ["web.1", "web.2", "api.1"]
    assert "\\_ log (sidecar, tail)" in lines[4]  # api's sidecar, under api's task only
    assert main(["service", "ps", "-q", "api", "web", "api"]) == 0  # a name given twice: listed once
    assert capsys.readouterr().out.split() == ["c" * 12, "a" * 12, "b" * 12]
    assert main(["--json", "service", "ps", "web", "api"]) == 0
    assert [t["name"] for t in json.loads(capsys.readouterr().out)] == ["web.1", "web.2", "api.1"]


def test_a_missing_service_is_an_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: Api())
    assert main(["service", "ps", "web", "nosuch"]) == 1
    assert "no such service: nosuch" in capsys.readouterr().err


def test_a_slots_earlier_tasks_are_indented_under_its_newest_as_dockers_table(monkeypatch, capsys) -> None:
    """Docker's ``service ps`` names a slot's history `` \\_ web.1`` under the current task (the walk's
    table repeated ``web.1`` three times); ``--format`` and ``-q`` are left as they are."""
    old = {**_task("d", "web.1"), "desired_state": "shutdown", "state": "shutdown", "error": "node down"}
    history = {"web": [_task("a", "web.1"), old, _task("b", "web.2")], "api": TASKS["api"]}
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: Api())
    monkeypatch.setitem(TASKS, "web", history["web"])
    assert main(["service", "ps", "web"]) == 0
    names = [line.split("  ")[1].strip() for line in capsys.readouterr().out.splitlines()[1:]]
    assert names == ["web.1", "\\_ web.1", "web.2"], names
    assert main(["service", "ps", "--format", "{{.Name}}", "web"]) == 0
    assert capsys.readouterr().out.split() == ["web.1", "web.1", "web.2"]  # unindented
