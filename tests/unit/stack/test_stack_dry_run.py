"""`stack deploy --dry-run` on the daemon (``StackOps.dry_run``, ``POST /stacks/{stack}/plan``): the plan
against the committed state, nothing written, refused with what the deploy itself is refused with (the
same checks), and the plan agreeing with what the deploy then does. Real ServiceOps and FSM in memory."""

from __future__ import annotations

import json

import httpx
import pytest

from p2porch.api.server import build_app
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps, stack_endpoints
from p2porch.errors import ConflictError, NotAllowedError, NotFoundError
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.stack import load_stack
from p2porch.stack.object_plan import ObjectRef
from p2porch.testing.memstore import MemoryManager

SHOP = """
services:
  web:
    image: p2porch/busybox:latest
    command: httpd -f -p 80
    ports: ["8080:80"]
    networks: [front]
    deploy:
      replicas: 2
  api:
    image: p2porch/busybox:latest
    command: sleep 1d
    networks: [front, back]
    volumes: [data:/data]
    secrets: [token]
  old:
    image: p2porch/busybox:latest
    networks: [back]
networks:
  front: {}
  back: {}
volumes:
  data: {}
secrets:
  token: {file: token.txt}
"""
FILES = {"token.txt": "t0k3n"}
TOKEN = ObjectRef("secret", "token", "shop-token", external=False)


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def ops(manager: MemoryManager) -> StackOps:
    return StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]


def definition(text: str, stack: str = "shop"):
    return load_stack(stack, text, lambda path: FILES[path])


async def add_node(manager: MemoryManager, name: str, **labels: str) -> None:
    node = Node(name, name, "10.0.0.1", 7947, 7946, labels=labels)
    await manager.write(C.AddNode(at=1.0, node=node).encode())


async def put_token(manager: MemoryManager) -> None:
    await manager.write(
        C.PutSecret(
            at=0.0, kind="secret", name="shop-token", object_id="0" * 16, secret_version=1,
            sealed=b"ciphertext", digest="d", size=5,
        ).encode()
    )  # fmt: skip


def actions(plan: dict) -> dict[str, str]:
    return {s["name"]: s["action"] for s in plan["services"]}


async def test_a_first_dry_run_lists_what_would_be_created_and_writes_nothing(ops, manager):
    await add_node(manager, "n1")
    before = (manager.state.version, list(manager.commands))
    plan = ops.dry_run(definition(SHOP), objects=[TOKEN])
    assert (manager.state.version, manager.commands) == before
    assert actions(plan) == {"shop-web": "created", "shop-api": "created", "shop-old": "created"}
    assert plan["dry_run"] and plan["warnings"] == []
    assert plan["networks"] == [
        {"name": "shop_front", "action": "created"},
        {"name": "shop_back", "action": "created"},
    ]
    assert plan["objects"] == [{"kind": "secret", "name": "shop-token", "key": "token", "action": "created"}]
    assert plan["volumes"] == [{"name": "shop_data", "services": ["shop-api"]}]


async def test_a_redeploy_dry_run_names_the_changed_fields_and_agrees_with_the_deploy(ops, manager):
    await add_node(manager, "n1")
    await put_token(manager)
    await ops.apply(definition(SHOP))
    changed = SHOP.replace("replicas: 2", "replicas: 3").replace(
        "  old:\n    image: p2porch/busybox:latest\n    networks: [back]\n", ""
    )
    changed = changed.replace("networks: [front, back]", "networks: [front]").replace("  back: {}\n", "")
    before = (manager.state.version, list(manager.commands))
    plan = ops.dry_run(definition(changed), objects=[TOKEN])
    assert (manager.state.version, manager.commands) == before
    assert plan["services"][0] == {
        "name": "shop-web", "short": "web", "id": plan["services"][0]["id"], "action": "updated",
        "fields": ["replicas"],
    }  # fmt: skip
    assert actions(plan) == {"shop-web": "updated", "shop-api": "updated", "shop-old": "removed"}
    assert next(s for s in plan["services"] if s["name"] == "shop-api")["fields"] == ["networks"]
    assert plan["networks"] == [{"name": "shop_back", "action": "removed"}]
    assert plan["objects"][0]["action"] == "exists"
    kept = ops.dry_run(definition(changed), prune=False, objects=[TOKEN])
    assert "shop-old" not in actions(kept) and kept["networks"] == []  # shop-old still uses back
    # the deploy then does what the dry run said
    done = await ops.apply(definition(changed))
    assert {s["name"]: s["action"] for s in done["services"]} == actions(plan)
    assert done["removed_networks"] == ["shop_back"]
    again = ops.dry_run(definition(changed), objects=[TOKEN])
    assert set(actions(again).values()) == {"unchanged"} and again["networks"] == []


async def test_a_dry_run_is_refused_with_what_the_deploy_is_refused_with(ops, manager):
    await add_node(manager, "n1")
    await ops.services.create({"name": "other", "image": "nginx", "publish": ["8080:80"]})
    before = (manager.state.version, list(manager.commands))
    with pytest.raises(ConflictError) as port:
        ops.dry_run(definition(SHOP), objects=[TOKEN])
    assert port.value.field == "services.web.ports"
    with pytest.raises(ConflictError) as deployed:
        await ops.apply(definition(SHOP))  # the deploy: the same refusal, the same words
    assert (deployed.value.field, deployed.value.message) == (port.value.field, port.value.message)
    free = SHOP.replace('ports: ["8080:80"]', 'ports: ["8081:80"]')
    with pytest.raises(NotFoundError) as secret:  # a service naming a secret nobody creates
        ops.dry_run(definition(free), objects=[])
    assert secret.value.field == "services.api.secrets"
    with pytest.raises(NotFoundError) as external:
        ops.dry_run(definition(free), objects=[ObjectRef("secret", "token", "shared", external=True)])
    assert external.value.field == "secrets.token" and "external secret 'shared'" in external.value.message
    outside = free.replace("  back: {}\n", "  back: {}\n  extra: {external: true, name: common}\n")
    outside = outside.replace("networks: [back]", "networks: [back, extra]")
    with pytest.raises(NotFoundError) as network:
        ops.dry_run(definition(outside), objects=[TOKEN])
    assert network.value.field == "networks.extra"
    assert (manager.state.version, manager.commands) == before


@pytest.mark.parametrize("mode", ["replicated-job", "global"])
async def test_a_mode_change_is_refused_naming_the_service_and_nothing_is_written(ops, manager, mode):
    await put_token(manager)
    await ops.apply(definition(SHOP.replace('ports: ["8080:80"]', 'ports: ["8082:80"]')))
    changed = SHOP.replace('ports: ["8080:80"]', 'ports: ["8082:80"]').replace(
        "    deploy:\n      replicas: 2\n", f"    deploy:\n      mode: {mode}\n"
    )
    before = (manager.state.version, list(manager.commands))
    with pytest.raises(NotAllowedError) as info:
        ops.dry_run(definition(changed), objects=[TOKEN])
    assert info.value.field == "services.web.deploy.mode"  # the Compose key (review r52d, 5)
    assert info.value.message.startswith("services.web: service mode change is not allowed: service shop-web")
    with pytest.raises(NotAllowedError) as deployed:  # the deploy: the same refusal, before any write
        await ops.apply(definition(changed))
    assert deployed.value.message == info.value.message
    assert (manager.state.version, manager.commands) == before


async def test_services_no_node_can_run_are_warnings_not_refusals(ops, manager):
    await add_node(manager, "n1", zone="a")
    await add_node(manager, "n2", zone="b")
    pinned = SHOP.replace(
        "      replicas: 2\n", "      replicas: 2\n      placement: {constraints: [node.labels.zone==c]}\n"
    )
    plan = ops.dry_run(definition(pinned), objects=[TOKEN])
    assert plan["warnings"] == [
        "services.web: no node can run its tasks now (constraint node.labels.zone==c (2)): they would "
        "stay pending"
    ]
    scaled_to_zero = pinned.replace("replicas: 2", "replicas: 0")
    assert ops.dry_run(definition(scaled_to_zero), objects=[TOKEN])["warnings"] == []


async def test_the_plan_route_answers_and_checks_its_objects(ops, manager):
    app = build_app(stack_endpoints(ops))
    d = definition(SHOP)
    body = {
        "services": [{"short": s.short_name, "spec": s.spec} for s in d.services],
        "networks": [n.to_dict() for n in d.networks],
        "prune": True,
        "objects": [{"kind": "secret", "key": "token", "name": "shop-token", "external": False}],
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p/v1") as client:
        response = await client.post("/stacks/shop/plan", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["dry_run"] and actions(response.json())["shop-web"] == "created"
        bad = await client.post("/stacks/shop/plan", json={**body, "objects": [{"kind": "volume"}]})
        assert bad.status_code == 400 and json.loads(bad.text)["field"] == "objects[0]"
    assert "create_service" not in manager.commands


async def test_a_global_service_given_other_replicas_is_refused_before_anything_is_written(ops, manager):
    """As ``service update --replicas`` of a global service: refused by the plan (it would have been
    refused in the middle of the deploy, after the services before it were updated)."""
    text = "services:\n  agent:\n    image: nginx\n    deploy:\n      mode: global\n"
    await ops.apply(definition(text))
    before = (manager.state.version, list(manager.commands))
    with pytest.raises(NotAllowedError) as info:
        await ops.apply(definition(text + "      replicas: 3\n"))
    assert info.value.field == "services.agent.deploy.replicas"  # the Compose key (review r52d, 5)
    assert "replicas can only be used with replicated or replicated-job mode" in info.value.message
    assert (manager.state.version, manager.commands) == before
