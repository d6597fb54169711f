"""``stack deploy --dry-run`` of a stack with ``depends_on`` sends each service once: the deploy's waves
add up (wave 2 holds wave 1's services too), and the dry run sent every wave's, so the daemon refused
"services.api: given twice" (exit 2) a stack the real deploy then deployed. The plan is a read sent as
POST: ``--stale`` reaches it, and a node that cannot confirm its copy (503) fails the dry run (exit 1)
instead of calling the deploy refused (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2porch.api.client import ApiClient
from p2porch.cli import stack as cli_stack
from p2porch.cli.main import main
from p2porch.errors import StaleReadRefused

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

    def post_read(self, path: str, body: Any = None) -> Any:
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


def test_a_dry_run_through_a_node_without_quorum_fails_it_and_stale_reaches_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(COMPOSE)
    sent: list[tuple[str, str, Any, Any]] = []
    answer: list[tuple[int, bytes]] = []

    def send(self: ApiClient, method: str, target: str, params: Any = None, body: Any = None) -> Any:
        sent.append((method, target, params, body is not None))
        return answer[0]

    monkeypatch.setattr(ApiClient, "_send", send)
    host = ["-H", f"unix://{tmp_path}/p2porch.sock"]
    refused = StaleReadRefused(
        "this node could not confirm ... (CLI: p2porch --stale ...)", field="consistency"
    )
    answer.append((503, json.dumps(refused.to_dict()).encode()))
    assert main([*host, "stack", "deploy", "--dry-run", "-c", str(compose), "shop"]) == 1
    err = capsys.readouterr().err
    assert "could not confirm" in err and "would be refused" not in err  # on main: exit 2, "refused"
    plan = {"stack": "shop", "services": [], "networks": [], "objects": [], "volumes": [], "warnings": []}
    answer[0] = (200, json.dumps(plan).encode())
    assert main([*host, "--stale", "stack", "deploy", "--dry-run", "-c", str(compose), "shop"]) == 0
    assert sent[0][:3] == ("POST", "/v1/stacks/shop/plan", None)
    assert sent[1][:3] == ("POST", "/v1/stacks/shop/plan", {"stale": "true"})  # on main: no stale sent
