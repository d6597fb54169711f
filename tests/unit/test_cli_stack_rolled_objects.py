"""`stack deploy` of a changed config says which services it rolls, and waits for them: found by the h50
user journey. The new version rolled every service that follows the config before the services' deploy
ran, so that deploy found their specs unchanged: the CLI printed ``unchanged  shop-web`` and returned at
once while shop-web's tasks were being replaced (a curl right after still got the old page). Since h51
the new version rolls nothing by itself (``defer_roll``): the deploy names it (``follow``) and each
service using it carries it in its one update (tests/unit/stack/test_stack_deploy_one_update.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import stack as cli_stack
from p2porch.stack.names import STACK_LABEL

COMPOSE = """
services:
  web:
    image: busybox
    configs: [conf]
  db:
    image: busybox
configs:
  conf:
    file: ./app.conf
"""


class Api:
    """A cluster where shop-conf exists and follows into shop-web; the services' deploy changes nothing."""

    def __init__(self, changed: bool) -> None:
        self.changed = changed
        self.posts: list[tuple[str, Any]] = []

    def get(self, path: str, **_: Any) -> Any:
        if path == "/objects/secret":
            return []
        if path == "/objects/config":
            labels = {STACK_LABEL: "shop"}  # the stack's own: followed in its services' update
            return [{"name": "shop-conf", "labels": labels, "services": ["shop-web"], "template_driver": ""}]
        if path.startswith("/services/"):
            return {"name": path.split("/")[2], "version": 7, "mode": "replicated"}
        raise AssertionError(path)

    def post(self, path: str, body: Any) -> Any:
        self.posts.append((path, body))
        if path == "/objects/config/shop-conf/update" and "roll_to" in body:
            return {"version": 2, "services": ["shop-web"], "rolled_services": []}  # followed already
        if path == "/objects/config/shop-conf/update":
            assert body["defer_roll"] is True
            if not self.changed:
                return {"unchanged": True, "version": 1, "services": ["shop-web"], "rolled_services": []}
            return {"version": 2, "services": ["shop-web"], "rolled_services": []}
        if path == "/stacks/shop":
            names = [f"shop-{s['short']}" for s in body["services"]]
            follows = body.get("follow") == [{"kind": "config", "name": "shop-conf"}]
            rows = [
                {"name": n, "action": "updated" if follows and n == "shop-web" else "unchanged", "id": "x"}
                for n in names
            ]
            return {"stack": "shop", "services": rows}
        raise AssertionError(path)


def deploy(tmp_path: Path, api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    (tmp_path / "app.conf").write_text("hello v2\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    waited: list[str] = []
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    monkeypatch.setattr(
        cli_stack, "wait_after", lambda args, client, watches: waited.extend(w.name for w in watches)
    )
    assert main(["stack", "deploy", "-c", str(compose), "shop"]) == 0
    return waited


def test_a_service_a_new_config_version_rolls_is_updated_and_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api(changed=True)
    waited = deploy(tmp_path, api, monkeypatch)
    out, err = capsys.readouterr()
    assert "updated config shop-conf (version 2; to roll: shop-web)" in err
    assert out.splitlines() == ["updated    shop-web", "unchanged  shop-db", "stack shop deployed"]
    assert waited == ["shop-web"]
    assert [path for path, _ in api.posts] == [  # the version, the services' deploy, then the others
        "/objects/config/shop-conf/update",
        "/stacks/shop",
        "/objects/config/shop-conf/update",
    ]
    assert api.posts[-1][1] == {"roll_to": 2}


def test_an_unchanged_config_rolls_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api(changed=False)
    assert deploy(tmp_path, api, monkeypatch) == []
    out, err = capsys.readouterr()
    assert "config" not in err
    assert out.splitlines() == [
        "unchanged  shop-web",
        "unchanged  shop-db",
        "stack shop is up to date: nothing changed, nothing written",
    ]
    assert "follow" not in api.posts[-1][1]
