"""``stack deploy --dry-run`` of a stack with ``depends_on`` sends each service once: the deploy's waves
add up (wave 2 holds wave 1's services too), and the dry run sent every wave's, so the daemon refused
"services.api: given twice" (exit 2) a stack the real deploy then deployed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p2porch.cli import stack as cli_stack
from p2porch.cli.main import main

COMPOSE = """
services:
  web:
    image: p2porch/busybox:latest
    depends_on:
      api: {condition: service_healthy}
  api:
    image: p2porch/busybox:latest
    depends_on: [db]
  db:
    image: p2porch/busybox:latest
"""


class Api:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def post(self, path: str, body: Any = None) -> Any:
        assert path == "/stacks/shop/plan"
        self.bodies.append(body)
        return {"stack": "shop", "services": [], "networks": [], "objects": [], "volumes": [], "warnings": []}


def test_a_dry_run_sends_each_service_once(tmp_path: Path, monkeypatch, capsys) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(COMPOSE)
    api = Api()
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    assert main(["stack", "deploy", "--dry-run", "-c", str(compose), "shop"]) == 0
    (body,) = api.bodies
    assert sorted(s["short"] for s in body["services"]) == ["api", "db", "web"]
    assert "the deploy would succeed" in capsys.readouterr().out
