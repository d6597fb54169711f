"""A `stack deploy` the daemon refuses leaves no secret or config of its own behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import stack as cli_stack
from p2porch.errors import ConflictError

COMPOSE = """
services:
  api:
    image: busybox
    command: ["sleep", "1d"]
    ports: ["8090:80"]
    secrets: [api_key, shared]
    configs: [conf]
secrets:
  api_key:
    file: ./key.txt
  shared:
    file: ./shared.txt
configs:
  conf:
    content: "x=1"
"""


class Api:
    """Objects and stacks as `stack deploy` sees them; the deploy itself is refused or accepted."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "secret": {"shop-shared": {"name": "shop-shared", "labels": {}, "services": []}},
            "config": {},
        }
        self.deleted: list[str] = []
        self.updated: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        if path.startswith("/objects/"):
            return list(self.objects[path.split("/")[2]].values())
        if path.startswith("/services/"):
            return {"name": path.split("/")[2], "version": None}
        raise AssertionError(path)

    def post(self, path: str, body: Any) -> Any:
        parts = path.split("/")
        if path.startswith("/stacks/"):
            if self.refuse:
                raise ConflictError(
                    "services.api.ports: ingress port 8090/tcp is already published by service web",
                    field="services.api.ports",
                )
            for entry in body["services"]:  # the created service uses every object it names
                spec = entry["spec"]
                for kind in ("secret", "config"):
                    for ref in spec.get(kind + "s") or []:
                        self.objects[kind][ref["source"]]["services"] = [spec["name"]]
            name = body["services"][0]["spec"]["name"]
            return {"stack": "shop", "services": [{"name": name, "action": "created", "id": "x"}]}
        if len(parts) == 3:  # create
            self.objects[parts[2]][body["name"]] = {
                "name": body["name"],
                "labels": body["labels"],
                "services": [],
            }
            return {"name": body["name"], "version": 1}
        self.updated.append(path)  # /objects/KIND/NAME/update
        return {"unchanged": False, "version": 2}

    def delete(self, path: str, body: Any = None) -> Any:
        kind, name = path.split("/")[2:4]
        del self.objects[kind][name]
        self.deleted.append(path)
        return {}


def deploy(tmp_path: Path, api: Api, monkeypatch: pytest.MonkeyPatch) -> int:
    (tmp_path / "key.txt").write_text("k")
    (tmp_path / "shared.txt").write_text("s")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    return main(["stack", "deploy", "-d", "-c", str(compose), "shop"])


def test_a_refused_deploy_removes_the_objects_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api(refuse=True)
    assert deploy(tmp_path, api, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "already published" in err
    assert sorted(api.deleted) == ["/objects/config/shop-conf", "/objects/secret/shop-api_key"]
    assert api.objects == {  # only what existed before: updated (its value cannot be put back), not removed
        "secret": {"shop-shared": {"name": "shop-shared", "labels": {}, "services": []}},
        "config": {},
    }
    # its new version (defer_roll), then, the deploy refused, its users rolled to it (roll_to) as before
    assert api.updated == ["/objects/secret/shop-shared/update"] * 2
    assert "removed secret shop-api_key (the deploy was refused)" in err


def test_an_accepted_deploy_keeps_its_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api(refuse=False)
    assert deploy(tmp_path, api, monkeypatch) == 0
    assert api.deleted == []
    assert set(api.objects["secret"]) == {"shop-shared", "shop-api_key"} and set(api.objects["config"]) == {
        "shop-conf"
    }


def test_a_missing_external_secret_is_not_found_exit_1_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The h49 walk: a stack naming an external secret not created yet exited 2, while a missing external
    network, `service create --secret nosuch` and Docker's `secret not found` exit 1."""
    api = Api(refuse=False)
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n  a:\n    image: busybox\n    secrets: [ext]\nsecrets:\n  ext: {external: true}\n"
    )
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    assert main(["stack", "deploy", "-d", "-c", str(compose), "shop"]) == 1
    assert capsys.readouterr().err == (
        "p2porch: error: secrets.ext: external secret 'ext' not found: create it first\n"
    )
    assert api.objects["config"] == {} and set(api.objects["secret"]) == {"shop-shared"}
