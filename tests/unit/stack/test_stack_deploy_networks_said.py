"""`stack deploy` says the networks it creates and removes (h52b journey): a redeploy that added
``back`` and pruned nothing else printed only its services and ``created secret`` lines; the new
network, and one a prune removed, went unsaid (Docker's says ``Creating network shop_back``). With
``depends_on`` the first wave's answer named the created networks and the last wave's replaced it, so
``--json`` lost them too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import stack as cli_stack
from p2porch.errors import ConflictError

COMPOSE = """
services:
  db:
    image: busybox
    networks: [back]
  web:
    image: busybox
    networks: [back]
    depends_on: [db]
networks:
  back: {}
"""


class Api:
    """Two waves: db's creates ``shop_back``; web's (the last, with prune) removes ``shop_old``."""

    def __init__(self, refuse_wave: int = 0) -> None:
        self.waves = 0
        self.refuse_wave = refuse_wave

    def get(self, path: str, **_: Any) -> Any:
        if path in ("/objects/secret", "/objects/config"):
            return []
        if path == "/stacks/shop/tasks":
            return [{"service": "shop-db", "state": "running", "desired_state": "running"}]
        if path.startswith("/services/"):
            return {"name": path.split("/")[2], "version": 1, "mode": "replicated"}
        raise AssertionError(path)

    def post(self, path: str, body: Any) -> Any:
        assert path == "/stacks/shop", path
        self.waves += 1
        if self.waves == self.refuse_wave:
            raise ConflictError("port 8080 is taken", field="services.web.ports")
        rows = [{"name": f"shop-{s['short']}", "action": "created", "id": "x"} for s in body["services"]]
        answer: dict[str, Any] = {"stack": "shop", "services": rows}
        if self.waves == 1:
            answer["created_networks"] = ["shop_back"]
        if body["prune"]:
            answer["removed_networks"] = ["shop_old"]
        return answer


def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> Api:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    api = Api()
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    monkeypatch.setattr(cli_stack, "wait_after", lambda args, client, watches: None)
    assert main(["stack", "deploy", *flags, "-c", str(compose), "shop"]) == 0
    return api


def test_the_created_and_removed_networks_are_said_on_stderr(tmp_path, monkeypatch, capsys) -> None:
    api = deploy(tmp_path, monkeypatch)
    assert api.waves == 2
    out, err = capsys.readouterr()
    assert "created network shop_back" in err.splitlines()  # main: not said
    assert "removed network shop_old" in err.splitlines()
    assert out.splitlines() == ["created  shop-db", "created  shop-web", "stack shop deployed"]


def test_json_keeps_the_networks_an_earlier_wave_created(tmp_path, monkeypatch, capsys) -> None:
    deploy(tmp_path, monkeypatch, "--json")
    answer = json.loads(capsys.readouterr().out)
    assert answer["created_networks"] == ["shop_back"]  # main: the last wave's answer had none
    assert answer["removed_networks"] == ["shop_old"] and answer["written"] is True


def test_a_network_created_before_a_later_wave_was_refused_is_said(tmp_path, monkeypatch, capsys) -> None:
    """Review r52c: the lines were printed only once every wave succeeded; web's wave refused, db's
    network exists all the same (a refusal removes only the secrets and configs the deploy created)."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    api = Api(refuse_wave=2)
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    assert main(["stack", "deploy", "-c", str(compose), "shop"]) != 0
    assert "created network shop_back" in capsys.readouterr().err.splitlines()  # main: not said
