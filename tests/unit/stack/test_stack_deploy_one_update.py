"""A `stack deploy` writes one update per changed service (task 1 of h51deploy).

A deploy that rolled a config (or secret) and changed a service using it wrote that service twice: the
CLI's `config update` rolled every follower to the new version (one update, one rollout), then the
services' deploy wrote the spec change (a second update, a second rollout and a second set of task
replacements). The CLI now gives the object its version without rolling (``defer_roll``) and names it
in the deploy body (``follow``): each service of the deploy carries the new version in its one update;
the followers the deploy does not update (a service outside the stack) are rolled last (``roll_to``).

These tests run the real CLI against the real daemon routes (secret, stack and service endpoints over
the FSM in memory, served by the Starlette app) and count the updates written to each service (each
one a new version of it, and a rollout when its task template changed); nothing else writes here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from p2porch.api.server import build_app
from p2porch.cli import main
from p2porch.cli import stack as cli_stack
from p2porch.control.routes import service_endpoints
from p2porch.control.secret_ops import SecretOps, secret_endpoints
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps, stack_endpoints
from p2porch.errors import ConfigError, P2POrchError, error_from_dict
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

KEY = (0, b"k" * 32)

COMPOSE = """
services:
  web:
    image: p2porch/busybox:{tag}
    command: sleep 1d
    configs: [conf]
    secrets: [token]
    networks: [{nets}]
  db:
    image: p2porch/busybox:latest
    command: sleep 1d
configs:
  conf:
    file: ./app.conf
secrets:
  token:
    file: ./token.txt
networks:
  front: {{}}
  back: {{}}
"""


class AppClient:
    """The CLI's client (get/post/delete) over the daemon's real routes, in process."""

    def __init__(self, manager: MemoryManager) -> None:
        services = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
        self.services = services
        self.updated: list[str] = []  # the service id of each UpdateService written
        write = manager.write

        async def counted(command: bytes) -> object:
            decoded = C.decode_command(command)
            if isinstance(decoded, C.UpdateService):
                self.updated.append(decoded.service_id)
            return await write(command)

        manager.write = counted  # type: ignore[method-assign]
        endpoints = [
            *service_endpoints(services),
            *stack_endpoints(StackOps(services)),
            *secret_endpoints(SecretOps(manager, lambda: KEY)),  # type: ignore[arg-type]
        ]
        self.app = build_app(endpoints)

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1") as client:
                return await client.request(method, path, json=body, params=params)

        response = trio.run(call)
        data = response.json()
        if response.status_code >= 400:
            raise error_from_dict(data)
        return data

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, body)

    def delete(self, path: str, body: Any = None) -> Any:
        return self._call("DELETE", path, body)


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def api(manager: MemoryManager, monkeypatch: pytest.MonkeyPatch) -> AppClient:
    client = AppClient(manager)
    monkeypatch.setattr(cli_stack, "client_for", lambda args: client)
    monkeypatch.setattr(cli_stack, "wait_after", lambda args, client, watches: None)
    return client


def deploy(
    tmp_path: Path,
    *,
    tag: str = "1",
    conf: str = "v1\n",
    nets: str = "front",
    extra: str = "",
    token: str = "s3cret\n",
    **flags: Any,
) -> int:
    (tmp_path / "app.conf").write_text(conf)
    (tmp_path / "token.txt").write_text(token)
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE.format(tag=tag, nets=nets) + extra)
    return main(["stack", "deploy", "-c", str(compose), *flags.get("args", ()), "shop"])


def versions(api: AppClient) -> dict[str, int]:
    """The updates written so far to each service, by name."""
    return {v["name"]: api.updated.count(v["id"]) for v in api.services.list_all()}


def refs(api: AppClient, name: str, kind: str) -> list[int]:
    return [r.version for r in getattr(api.services.find(name).spec, kind)]


def redeployed(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str], **changed: Any
) -> tuple[dict[str, int], str, str]:
    """The stack deployed, then again with ``changed``: the updates each service got from the second
    deploy, and what it printed (stdout, stderr)."""
    assert deploy(tmp_path) == 0
    before = versions(api)
    capsys.readouterr()
    assert deploy(tmp_path, **changed) == 0
    out, err = capsys.readouterr()
    return {name: count - before.get(name, 0) for name, count in versions(api).items()}, out, err


def test_a_rolled_config_and_a_spec_change_are_one_update(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    updates, out, err = redeployed(tmp_path, api, capsys, tag="2", conf="v2\n")
    assert updates == {"shop-web": 1, "shop-db": 0}  # on main: 2 for shop-web (the roll, then the image)
    web = api.services.find("shop-web")
    assert web.spec.image == "p2porch/busybox:2" and refs(api, "shop-web", "configs") == [2]
    assert web.previous_spec is not None and web.previous_spec.image == "p2porch/busybox:1"
    assert [r.version for r in web.previous_spec.configs] == [1]  # one rollback point: both undone
    assert "updated config shop-conf (version 2; to roll: shop-web)" in err
    assert out.splitlines()[:2] == ["updated    shop-web", "unchanged  shop-db"]


def test_a_rolled_config_alone_is_one_update_listed_as_updated(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    updates, out, _ = redeployed(tmp_path, api, capsys, conf="v2\n", args=["--json"])
    rows = {r["name"]: r for r in json.loads(out)["services"]}
    assert rows["shop-web"]["action"] == "updated" and rows["shop-web"]["fields"] == ["configs"]
    assert updates["shop-web"] == 1
    assert refs(api, "shop-web", "configs") == [2] and refs(api, "shop-web", "secrets") == [1]


def test_a_network_attachment_and_the_image_together_are_one_update(tmp_path: Path, api: AppClient) -> None:
    assert deploy(tmp_path) == 0
    before = versions(api)
    assert deploy(tmp_path, tag="2", nets="front, back") == 0
    assert versions(api)["shop-web"] == before["shop-web"] + 1
    web = api.services.find("shop-web").spec
    assert web.image == "p2porch/busybox:2"
    assert sorted(n.target for n in web.networks) == ["shop_back", "shop_front"]


def test_a_follower_outside_the_stack_is_rolled_once_after_the_deploy(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy(tmp_path) == 0
    api.post("/services", {"name": "other", "image": "p2porch/busybox:latest", "configs": ["shop-conf"]})
    before = versions(api)
    capsys.readouterr()
    assert deploy(tmp_path, tag="2", conf="v2\n") == 0
    err = capsys.readouterr().err
    after = versions(api)
    assert after["other"] == before["other"] + 1 and refs(api, "other", "configs") == [2]
    assert after["shop-web"] == before["shop-web"] + 1
    assert "rolled other (outside the deploy)" in err


def test_a_deploy_the_daemon_refuses_still_rolls_the_users_of_the_new_version(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The version stays (values are never readable, so the old one cannot be put back): its users follow
    it, as before, in one update each."""
    assert deploy(tmp_path) == 0
    api.post("/services", {"name": "taken", "image": "p2porch/busybox:latest", "publish": ["8080:80"]})
    before = versions(api)
    db = "  db:\n    image: p2porch/busybox:latest\n"
    text = COMPOSE.format(tag="1", nets="front").replace(db, db + "    ports: ['8080:80']\n")
    (tmp_path / "app.conf").write_text("v2\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(text)
    assert main(["stack", "deploy", "-c", str(compose), "shop"]) != 0
    assert "services.db.ports" in capsys.readouterr().err
    assert versions(api)["shop-web"] == before["shop-web"] + 1 and refs(api, "shop-web", "configs") == [2]


def test_a_redeploy_with_no_change_writes_nothing_and_says_so(
    tmp_path: Path, api: AppClient, manager: MemoryManager, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy(tmp_path) == 0
    writes = manager.writes
    capsys.readouterr()
    assert deploy(tmp_path) == 0
    assert manager.writes == writes
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "unchanged  shop-web",
        "unchanged  shop-db",
        "stack shop is up to date: nothing changed, nothing written",
    ]
    assert deploy(tmp_path, tag="2") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "stack shop deployed"


def test_prune_removes_only_this_stacks_services(tmp_path: Path, api: AppClient) -> None:
    assert deploy(tmp_path) == 0
    api.post("/services", {"name": "shop-cache", "image": "p2porch/busybox:latest"})  # not the stack's
    (tmp_path / "other.yml").write_text("services:\n  db:\n    image: p2porch/busybox:latest\n")
    assert main(["stack", "deploy", "-c", str(tmp_path / "other.yml"), "other"]) == 0
    names = set(versions(api))
    assert {"shop-web", "shop-db", "shop-cache", "other-db"} <= names
    db = "  db:\n    image: p2porch/busybox:latest\n    command: sleep 1d\n"
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(tag="1", nets="front").replace(db, ""))
    assert main(["stack", "deploy", "--prune", "-c", str(tmp_path / "docker-compose.yml"), "shop"]) == 0
    assert set(versions(api)) == names - {"shop-db"}


def test_service_update_config_rm_add_and_image_in_one_command_is_one_update(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from p2porch.cli import service as cli_service

    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: None)
    assert deploy(tmp_path) == 0
    assert deploy(tmp_path, conf="v2\n") == 0  # shop-conf at version 2, shop-web following it
    before = versions(api)
    flags = ["--config-rm", "shop-conf", "--config-add", "source=shop-conf,target=/etc/app.conf"]
    assert main(["service", "update", *flags, "--image", "p2porch/busybox:3", "shop-web"]) == 0
    assert versions(api)["shop-web"] == before["shop-web"] + 1
    web = api.services.find("shop-web").spec
    assert web.image == "p2porch/busybox:3"
    assert [(r.target, r.version) for r in web.configs] == [("/etc/app.conf", 2)]


@pytest.mark.parametrize("value", ["always", "changed", "never"])
def test_docker_flags_of_a_swarm_script_are_taken(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """``docker stack deploy --with-registry-auth --resolve-image X`` as Swarm scripts write it: deployed
    (``--with-registry-auth`` was refused, exit 2), with a warning saying where the nodes' credentials
    come from; ``--resolve-image`` takes Docker's three values and changes nothing."""
    assert deploy(tmp_path, args=["--with-registry-auth", "--resolve-image", value]) == 0
    err = capsys.readouterr().err
    assert "warning: --with-registry-auth: p2porch sends no credentials from the CLI" in err
    assert set(versions(api)) == {"shop-web", "shop-db"}


def test_a_resolve_image_value_docker_does_not_take_is_refused(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        deploy(tmp_path, args=["--resolve-image", "sometimes"])
    assert refused.value.code == 2 and "always, changed, never" in capsys.readouterr().err
    assert versions(api) == {}


# ----------------------------------------------------------------------------- a deploy cut short (r51e 1)


def config_record(api: AppClient) -> Any:
    return api.services._state().secrets["config:shop-conf"]


def test_a_deploy_whose_wait_fails_still_rolls_the_new_version(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A depends_on wait that times out ends the deploy before any service carries the version: its users
    roll all the same (on main shop-web stayed on version 1, and a re-run said "up to date")."""
    assert deploy(tmp_path) == 0

    def times_out(*args: Any) -> None:
        raise P2POrchError("shop-db not ready after 1s: deploy again once they run")

    monkeypatch.setattr(cli_stack, "_wait", times_out)
    assert deploy(tmp_path, conf="v2\n") == 1
    assert refs(api, "shop-web", "configs") == [2]
    assert config_record(api).roll_pending == 0  # its roll_to cleared the marker


def test_a_later_object_failing_still_rolls_the_version_written_before_it(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(tmp_path) == 0
    post = api.post

    def conf_refused(path: str, body: Any = None) -> Any:  # the secret's version is written first
        if path == "/objects/config/shop-conf/update" and "data" in (body or {}):
            raise P2POrchError("no answer from the daemon")
        return post(path, body)

    monkeypatch.setattr(api, "post", conf_refused)
    assert deploy(tmp_path, conf="v2\n", token="rotated\n") == 1
    assert refs(api, "shop-web", "secrets") == [2]  # main: 1, the version written and never rolled


def test_a_rerun_rolls_a_version_a_killed_deploy_left_pending(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI killed after writing the version (no finally runs): the object keeps ``roll_pending``, so
    the next deploy (its value unchanged) rolls it, and the one after says up to date."""
    assert deploy(tmp_path) == 0
    with monkeypatch.context() as killed:

        def kill(*args: Any) -> Any:
            raise SystemExit(137)

        killed.setattr(cli_stack, "_deploy_services", kill)
        killed.setattr(cli_stack, "roll_cut_short", lambda client, rolled: None)  # a kill: no finally
        with pytest.raises(SystemExit):
            deploy(tmp_path, conf="v2\n")
    assert refs(api, "shop-web", "configs") == [1] and config_record(api).roll_pending == 2
    capsys.readouterr()
    assert deploy(tmp_path, conf="v2\n") == 0  # main: "unchanged shop-web ... up to date"
    out, err = capsys.readouterr()
    assert "config shop-conf: version 2 is not rolled yet (a deploy was cut short): its users roll" in err
    assert out.splitlines()[0] == "updated    shop-web"
    assert refs(api, "shop-web", "configs") == [2] and config_record(api).roll_pending == 0
    assert deploy(tmp_path, conf="v2\n") == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "stack shop is up to date: nothing changed, nothing written"
    )


def test_a_deliberate_rollback_after_a_whole_deploy_is_not_undone_by_a_rerun(
    tmp_path: Path, api: AppClient
) -> None:
    assert deploy(tmp_path) == 0
    assert deploy(tmp_path, conf="v2\n") == 0
    api.post("/services/shop-web/rollback")
    assert refs(api, "shop-web", "configs") == [1]
    assert deploy(tmp_path, conf="v2\n") == 0
    assert refs(api, "shop-web", "configs") == [1]  # nothing pending: the rollback stands


def test_roll_to_with_data_is_refused(api: AppClient) -> None:
    api.post("/objects/config", {"name": "c", "data": "djE="})
    with pytest.raises(ConfigError) as refused:
        api.post("/objects/config/c/update", {"data": "djI=", "roll_to": 1})
    assert refused.value.field == "roll_to" and api.get("/objects/config/c")["version"] == 1


def test_follow_keeps_only_existing_objects_of_the_stack(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old CLI (6b5b78ec) names in ``follow`` every object it versioned, a shared one included: the
    entry is dropped (the deploy goes on; the CLI's roll_to rolls its users), not followed and not
    refused (at 2e145e4d: every deploy of the stack failed after the new version was written)."""
    sent: list[Any] = []
    post = api.post
    monkeypatch.setattr(api, "post", lambda path, body=None: sent.append(body) or post(path, body))
    assert deploy(tmp_path) == 0
    body = next(b for b in sent if b and "services" in b)  # the deploy body the CLI sent
    api.post("/objects/config", {"name": "shared", "data": "djE="})
    api.post("/objects/config/shared/update", {"data": "djI=", "defer_roll": True})
    for name in ["shared", "missing"]:
        follow = [{"kind": "config", "name": "shop-conf"}, {"kind": "config", "name": name}]
        api.post("/stacks/shop", {**body, "follow": follow})  # 2e145e4d: ConfigError follow[1]
    with pytest.raises(ConfigError) as refused:  # a malformed entry is still refused
        api.post("/stacks/shop", {**body, "follow": [{"kind": "volume", "name": "x"}]})
    assert refused.value.field == "follow[0]"


def test_an_object_of_another_origin_the_deploy_updates_is_rolled_after_not_followed(
    tmp_path: Path, api: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """An object of the stack's name made outside it (no stack label): its new version still reaches the
    stack's services, by the roll after the deploy (the daemon follows only the stack's own)."""
    api.post("/objects/config", {"name": "shop-conf", "data": "djE="})
    assert deploy(tmp_path) == 0
    assert deploy(tmp_path, conf="v2\n") == 0
    assert refs(api, "shop-web", "configs") == [3]  # created as v1, the first deploy's value, then v2
    assert "rolled shop-web (outside the deploy)" in capsys.readouterr().err


def interrupted_rolls(api: AppClient, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``roll_to`` posted from now on is interrupted (Ctrl-C): the bodies posted."""
    posted: list[Any] = []
    post = api.post

    def ctrl_c(path: str, body: Any = None) -> Any:
        if "roll_to" in (body or {}):
            posted.append(body)
            raise KeyboardInterrupt
        return post(path, body)

    monkeypatch.setattr(api, "post", ctrl_c)
    return posted


def test_a_ctrl_c_during_the_cleanup_roll_keeps_the_deploys_own_error(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A depends_on wait timed out; the user presses Ctrl-C while the new version's users roll: the
    roll stops, the wait's error is printed and is the exit (2e145e4d: exit 130, the error never said)."""
    assert deploy(tmp_path) == 0
    capsys.readouterr()

    def times_out(*args: Any) -> None:
        raise P2POrchError("shop-db not ready after 1s: deploy again once they run")

    monkeypatch.setattr(cli_stack, "_wait", times_out)
    posted = interrupted_rolls(api, monkeypatch)
    assert deploy(tmp_path, conf="v2\n") == 1
    err = capsys.readouterr().err
    assert "rolling the new versions of config shop-conf to their users" in err
    assert "shop-db not ready after 1s" in err and len(posted) == 1
    assert config_record(api).roll_pending == 2  # the next deploy rolls it


def test_a_ctrl_c_during_a_refused_deploys_roll_rolls_once_and_says_the_refusal(
    tmp_path: Path, api: AppClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy(tmp_path) == 0
    api.post("/services", {"name": "taken", "image": "p2porch/busybox:latest", "publish": ["8080:80"]})
    db = "  db:\n    image: p2porch/busybox:latest\n"
    text = COMPOSE.format(tag="1", nets="front").replace(db, db + "    ports: ['8080:80']\n")
    (tmp_path / "app.conf").write_text("v2\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(text)
    capsys.readouterr()
    posted = interrupted_rolls(api, monkeypatch)
    assert main(["stack", "deploy", "-c", str(compose), "shop"]) == 1  # 2e145e4d: 130
    assert "services.db.ports" in capsys.readouterr().err
    assert len(posted) == 1  # 2e145e4d: rolled again by the outer handler
