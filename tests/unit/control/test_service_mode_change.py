"""A service keeps its mode (Swarm's ``service mode change is not allowed``) whatever path asks: the API's
update (HTTP 400), a raw ``UpdateService`` command (the FSM refuses it, so the leader's own writes too),
``stack deploy`` (naming the service) and the CLI (exit 1: a refused operation, not a usage error)."""

from __future__ import annotations

import itertools

import httpx
import pytest

from p2porch.api.server import build_app
from p2porch.cli import main
from p2porch.cli import service as cli_service
from p2porch.control.routes import service_endpoints
from p2porch.errors import NotAllowedError
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply

MODES = ("replicated", "global", "replicated-job", "global-job")
MESSAGE = "service mode change is not allowed"


@pytest.mark.parametrize(("before", "after"), list(itertools.permutations(MODES, 2)))
async def test_every_mode_change_is_refused_and_nothing_is_written(ops, manager, before, after):
    await ops.create({"name": "svc", "image": "busybox", "mode": before})
    state = manager.state
    with pytest.raises(NotAllowedError) as info:
        await ops.update("svc", {"mode": after})
    assert info.value.field == "mode" and info.value.message.startswith(MESSAGE)
    assert f"svc is {before}, not {after}" in info.value.message
    assert manager.state is state  # nothing written


async def test_the_fsm_refuses_a_mode_change_from_any_writer(ops, manager):
    created = await ops.create({"name": "svc", "image": "busybox", "replicas": 2})
    service = manager.state.services[created["id"]]
    spec = ServiceSpec.from_dict({**service.spec.to_dict(), "mode": "global"})
    command = C.UpdateService.of(service, at=5.0, spec=spec, previous_spec=service.spec)
    state, result, changes = apply(manager.state, command.encode())
    with pytest.raises(NotAllowedError, match=MESSAGE):
        C.raise_for_result(result)
    assert (state, changes) == (manager.state, [])
    other = ServiceSpec.from_dict({**service.spec.to_dict(), "replicas": 3})  # any other field still applies
    state, result, _ = apply(manager.state, C.UpdateService.of(service, at=5.0, spec=other).encode())
    assert state.services[created["id"]].spec.replicas == 3


async def test_the_api_answers_400_with_swarms_words(ops, manager):
    await ops.create({"name": "svc", "image": "busybox"})
    transport = httpx.ASGITransport(app=build_app(service_endpoints(ops)))
    async with httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1") as client:
        response = await client.post("/services/svc/update", json={"mode": "global"})
        same = await client.post("/services/svc/update", json={"mode": "replicated", "replicas": 3})
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["error"], body["field"]) == ("NotAllowedError", "mode")
    assert body["message"].startswith(MESSAGE)
    assert same.status_code == 200, same.text  # naming the mode it already has is no change of mode


def test_the_cli_exits_1_for_the_refusal(monkeypatch, capsys):
    class Client:
        def post(self, path, body):
            raise NotAllowedError(f"{MESSAGE}: service web is replicated, not global", field="mode")

        def get(self, path, **_):
            return {"name": "web", "id": "abc", "version": 3}

    monkeypatch.setattr(cli_service, "client_for", lambda args: Client())
    code = main(["service", "update", "--image", "busybox:2", "web"])
    assert code == 1
    assert MESSAGE in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["global", "global-job"])
async def test_replicas_on_a_global_service_is_refused_as_docker_s_update(ops, manager, mode):
    """``service update --replicas 2`` of a global service answered 0 and changed nothing that runs."""
    await ops.create({"name": "agent", "image": "busybox", "mode": mode})
    state = manager.state
    with pytest.raises(NotAllowedError, match="^replicas can only be used with replicated or replicated-job"):
        await ops.update("agent", {"replicas": 2})
    assert manager.state is state
    same = await ops.update("agent", {"replicas": 1, "image": "busybox:2"})  # the stored count: no change
    assert same["changed"] == ["image", *(["execution"] if mode == "global-job" else [])]  # a job runs again


async def test_an_unknown_service_is_docker_s_no_such_service(ops):
    from p2porch.errors import NotFoundError

    with pytest.raises(NotFoundError, match="^No such service: nope$"):
        await ops.update("nope", {"image": "x"})
