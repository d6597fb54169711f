"""A health check that is off (test ``NONE``) takes no settings at the API either (h52left, item 4): the
CLI refused ``--health-interval`` on a ``--no-healthcheck`` service, but an API client could store
``{"test": ["NONE"], "interval": "5s"}`` (main: 201, a setting stored that never runs). Now 400 naming
the field, on create and on update, by the rule the CLI uses (model/health_rules.py); a spec stored so
before still loads and can be updated in its other fields. An update that turns a tuned check off
replaces it whole, as docker/cli's ``--no-healthcheck`` (review r52a, 1)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from p2porch.api.server import build_app
from p2porch.cli import main
from p2porch.cli import service as cli_service
from p2porch.control.routes import service_endpoints
from p2porch.control.spec_merge import merge_spec
from p2porch.errors import error_from_dict
from p2porch.model import Service, ServiceSpec
from p2porch.model.container import HealthSpec
from p2porch.model.health_rules import settings_of_an_off_check, turns_the_check_off
from p2porch.raft import commands as C

OFF_WITH_INTERVAL = {"test": ["NONE"], "interval": "5s"}
TUNED = {"test": ["CMD", "true"], "interval": "5s", "retries": 2}


def client(ops) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(service_endpoints(ops)), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1")


def test_the_rule_names_the_settings_an_off_check_sets() -> None:
    assert settings_of_an_off_check(HealthSpec(("NONE",), interval_s=5.0, retries=2)) == [
        "interval",
        "retries",
    ]
    assert settings_of_an_off_check(HealthSpec(("NONE",))) == []
    assert settings_of_an_off_check(HealthSpec(("CMD", "true"), interval_s=5.0)) == []


@pytest.mark.parametrize(
    ("health", "field"),
    [
        (OFF_WITH_INTERVAL, "health.interval"),
        ({"cmd": ["NONE"], "retries": 2, "timeout": "1s"}, "health.timeout"),
        ({"test": "NONE", "start_period": "3s"}, "health.start_period"),
    ],
)
async def test_create_with_settings_on_an_off_check_is_a_400_naming_the_field(ops, manager, health, field):
    state = manager.state
    async with client(ops) as c:
        response = await c.post("/services", json={"name": "web", "image": "busybox", "health": health})
    assert response.status_code == 400, response.text  # main: 200
    assert response.json()["field"] == field
    assert manager.state is state  # nothing written


async def test_an_off_check_alone_and_a_check_with_settings_are_created(ops) -> None:
    async with client(ops) as c:
        off = await c.post("/services", json={"name": "a", "image": "busybox", "health": {"test": ["NONE"]}})
        on = {"test": ["CMD", "true"], "interval": "5s"}
        checked = await c.post("/services", json={"name": "b", "image": "busybox", "health": on})
    assert off.status_code == 200 and checked.status_code == 200


async def test_update_that_sets_settings_on_an_off_check_is_a_400(ops) -> None:
    await ops.create({"name": "web", "image": "busybox", "health": {"test": ["NONE"]}})
    async with client(ops) as c:
        response = await c.post("/services/web/update", json={"health": {"interval": "5s"}})
        turned_off = await c.post("/services/web/update", json={"health": {"test": ["NONE"]}})
    assert response.status_code == 400 and response.json()["field"] == "health.interval"  # main: 200
    assert turned_off.status_code == 200
    assert ops.find("web").spec.health == HealthSpec(("NONE",))


@pytest.mark.parametrize("off", [{"test": ["NONE"]}, {"cmd": ["NONE"]}, {"test": "NONE"}])
async def test_update_that_turns_a_tuned_check_off_replaces_the_whole_check(ops, off) -> None:
    """As docker/cli's --no-healthcheck (``Healthcheck = {Test: ["NONE"]}``): the settings of the check
    it ends are not kept (review r52a, 1: main merged them in, {cmd: NONE, interval: 5s}, and refused
    it 400 ``health.interval``: ``--no-healthcheck`` failed on any tuned check)."""
    await ops.create({"name": "web", "image": "busybox", "health": TUNED})
    async with client(ops) as c:
        response = await c.post("/services/web/update", json={"health": off})
        again = await c.post("/services/web/update", json={"health": off})
    assert response.status_code == 200, response.text  # main: 400 naming health.interval
    assert response.json()["changed"] == ["health"]
    assert ops.find("web").spec.health == HealthSpec(("NONE",))
    assert again.status_code == 200 and again.json()["changed"] == []


async def test_turning_a_tuned_check_off_with_settings_of_its_own_is_still_a_400(ops, manager) -> None:
    await ops.create({"name": "web", "image": "busybox", "health": TUNED})
    state = manager.state
    async with client(ops) as c:
        response = await c.post("/services/web/update", json={"health": {**OFF_WITH_INTERVAL, "retries": 2}})
    assert response.status_code == 400 and response.json()["field"] == "health.interval"
    assert manager.state is state


def test_merge_replaces_the_health_section_only_when_the_check_turns_off() -> None:
    current = {"name": "web", "health": {"cmd": ["CMD", "true"], "interval_s": 5.0, "retries": 2}}
    assert merge_spec(current, {"health": {"test": ["NONE"]}})["health"] == {"test": ["NONE"]}
    tuned = merge_spec(current, {"health": {"interval": "9s"}})["health"]  # merged key by key, as before
    assert tuned == {"cmd": ["CMD", "true"], "interval": "9s", "retries": 2}
    assert not turns_the_check_off({"cmd": ["CMD", "NONE"]}) and not turns_the_check_off(None)


class Daemon:
    """The CLI's client (get/post) over the daemon's service routes, in process."""

    def __init__(self, ops) -> None:
        self.ops = ops

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        async def call() -> httpx.Response:
            async with client(self.ops) as c:
                return await c.request(method, path, json=body)

        response = trio.run(call)
        if response.status_code >= 400:
            raise error_from_dict(response.json())
        return response.json()

    def get(self, path: str, **_: Any) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, body)


def test_cli_no_healthcheck_turns_a_tuned_check_off(ops, monkeypatch, capsys) -> None:
    """``service create --health-cmd true --health-interval 5s web``, then ``service update
    --no-healthcheck web``: main exits 2 ("--health-interval: ... the health check is off")."""
    trio.run(ops.create, {"name": "web", "image": "busybox", "health": TUNED})
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: Daemon(ops))
    assert main(["service", "update", "-d", "--no-healthcheck", "web"]) == 0, capsys.readouterr().err
    assert ops.find("web").spec.health == HealthSpec(("NONE",))


async def test_a_spec_stored_so_before_still_loads_and_takes_other_updates(ops, manager) -> None:
    await ops.create({"name": "web", "image": "busybox"})
    legacy = ServiceSpec.from_dict({"name": "web", "image": "busybox", "health": OFF_WITH_INTERVAL})
    await manager.write(C.UpdateService.of(ops.find("web"), at=1.0, spec=legacy).encode())
    stored = Service.from_dict(ops.find("web").to_dict())  # a restart reads the record as stored
    assert stored.invalid == "" and stored.spec.health == legacy.health
    answer = await ops.update("web", {"image": "busybox:2"})  # the check left as it is: not refused
    assert answer["changed"] == ["image"] and ops.find("web").spec.health == legacy.health
