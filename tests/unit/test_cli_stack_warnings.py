"""`stack deploy` prints the daemon's warnings (a relabelled stack network left as it is) on stderr once,
though each creation wave's request answers them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import stack as cli_stack

COMPOSE = """
services:
  db:
    image: busybox
    networks: [front]
  web:
    image: busybox
    networks: [front]
    depends_on: [db]
networks:
  front:
    labels: {a: "2"}
"""
WARNING = "networks.front.labels: network 'shop_front' exists with other labels and is left as it is"


class Api:
    def __init__(self) -> None:
        self.waves = 0

    def get(self, path: str, **_: Any) -> Any:
        if path == "/stacks/shop/tasks":
            return [
                {"service": "shop-db", "desired_state": "running", "state": "running", "up_to_date": True}
            ]
        if path.startswith("/objects/"):
            return []
        if path.startswith("/services/"):
            return {"name": path.split("/")[2], "version": 1, "mode": "replicated"}
        raise AssertionError(path)

    def post(self, path: str, body: Any) -> Any:
        self.waves += 1
        rows = [{"name": s["spec"]["name"], "action": "unchanged", "id": "x"} for s in body["services"]]
        return {"stack": "shop", "services": rows, "warnings": [WARNING]}


def test_the_daemons_warnings_are_printed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    api = Api()
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    assert main(["stack", "deploy", "-d", "-c", str(compose), "shop"]) == 0
    err = capsys.readouterr().err
    assert api.waves == 2 and err.count(f"warning: {WARNING}") == 1, err
