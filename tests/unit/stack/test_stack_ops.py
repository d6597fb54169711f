"""StackOps over real ServiceOps and the real FSM (in memory, no Raft, no I/O): deploy diff, ls, ps, rm."""

from __future__ import annotations

import base64
import json

import pytest

from p2porch.api.server import build_app
from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps, parse_deploy_body, stack_endpoints
from p2porch.errors import ConfigError, ConflictError, NotFoundError
from p2porch.model import Task
from p2porch.raft import commands as C
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager

COMPOSE = """
services:
  web:
    image: p2porch/busybox:latest
    command: httpd -f -p 80
    env_file: web.env
    deploy:
      replicas: 2
      placement:
        constraints: [node.labels.zone==a]
      update_config: {parallelism: 1, delay: 1s, order: start-first}
  api:
    image: p2porch/busybox:latest
    command: sleep 1d
"""


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def ops(manager) -> StackOps:
    return StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]


FILES = {"web.env": "GREETING=hello\n"}


async def deploy(ops: StackOps, stack: str, text: str, files=None, prune: bool = True):
    """What the CLI does: resolve the file locally, then apply the resolved services."""
    files = files or {}
    return await ops.apply(load_stack(stack, text, lambda path: files[path]), prune=prune)


def body(stack: str, text: str, files=None, prune: bool = True) -> dict:
    files = files or {}
    definition = load_stack(stack, text, lambda path: files[path])
    return {
        "services": [{"short": s.short_name, "spec": s.spec} for s in definition.services],
        "networks": [n.to_dict() for n in definition.networks],
        "prune": prune,
    }


def actions(result) -> dict[str, str]:
    return {s["name"]: s["action"] for s in result["services"]}


async def test_first_deploy_creates_every_service(ops, manager):
    result = await deploy(ops, "shop", COMPOSE, FILES)
    assert actions(result) == {"shop-web": "created", "shop-api": "created"}
    web = manager.state.service_by_name("shop-web")
    assert web is not None
    assert web.spec.env_dict() == {"GREETING": "hello"}
    assert web.spec.replicas == 2 and [str(c) for c in web.spec.constraints] == ["node.labels.zone==a"]
    assert web.spec.update.order == "start-first"
    assert web.spec.labels_dict()["p2porch.stack"] == "shop"


async def test_redeploy_of_the_same_file_writes_nothing(ops, manager):
    await deploy(ops, "shop", COMPOSE, FILES)
    before = (manager.state.version, list(manager.commands))
    result = await deploy(ops, "shop", COMPOSE, FILES)
    assert actions(result) == {"shop-web": "unchanged", "shop-api": "unchanged"}
    assert (manager.state.version, manager.commands) == before


async def test_redeploy_after_a_force_update_writes_nothing(ops, manager):
    """`service update --force` raises the spec's force_update; the file has none and a redeploy keeps
    the service's, so it is unchanged (not "updated" with nothing written)."""
    await deploy(ops, "shop", COMPOSE, FILES)
    await ops.services.update("shop-web", {"force": True})
    before = (manager.state.version, list(manager.commands))
    result = await deploy(ops, "shop", COMPOSE, FILES)
    assert actions(result) == {"shop-web": "unchanged", "shop-api": "unchanged"}
    assert (manager.state.version, manager.commands) == before
    assert manager.state.service_by_name("shop-web").spec.force_update == 1


WITH_OBJECTS = """
services:
  api:
    image: p2porch/busybox:latest
    command: sleep 1d
    secrets: [db_password]
    configs:
      - source: app_conf
        target: /etc/app.conf
secrets:
  db_password: {file: pw.txt}
configs:
  app_conf: {content: "port=80"}
"""


async def put_object(manager, kind: str, name: str, version: int) -> None:
    await manager.write(
        C.PutSecret(
            at=0.0, kind=kind, name=name, object_id="0" * 16, secret_version=version,
            sealed=b"ciphertext", digest="d", size=10,
        ).encode()
    )  # fmt: skip


async def test_redeploy_of_a_service_using_secrets_and_configs_writes_nothing(ops, manager):
    # the stored spec carries each unpinned reference's resolved version (1), the file none (0): that is
    # not a change (it was "updated" on every redeploy, and by the second wave of a depends_on deploy)
    await put_object(manager, "secret", "shop-db_password", 1)
    await put_object(manager, "config", "shop-app_conf", 1)
    first = await deploy(ops, "shop", WITH_OBJECTS, {"pw.txt": "pw"})
    assert actions(first) == {"shop-api": "created"}
    before = (manager.state.version, list(manager.commands))
    again = await deploy(ops, "shop", WITH_OBJECTS, {"pw.txt": "pw"})
    assert actions(again) == {"shop-api": "unchanged"}
    assert (manager.state.version, manager.commands) == before


async def test_redeploy_after_rolling_back_a_config_version_is_unchanged_and_keeps_the_version(ops, manager):
    """`config update` rolls the service to version 2, `service rollback` returns it to 1: a redeploy of
    the same file is no change (its update keeps the version, so the plan must: review of h50). On main
    every later deploy, --dry-run too, said `updated shop-api (configs)`, wrote nothing and waited for a
    roll that never came."""
    await put_object(manager, "secret", "shop-db_password", 1)
    await put_object(manager, "config", "shop-app_conf", 1)
    await deploy(ops, "shop", WITH_OBJECTS, {"pw.txt": "pw"})
    objects = SecretOps(manager, lambda: (0, b"k" * 32))
    await objects.update("config", "shop-app_conf", {"data": base64.b64encode(b"port=81").decode()})
    assert manager.state.service_by_name("shop-api").spec.configs[0].version == 2
    await ops.services.rollback("shop-api")
    assert manager.state.service_by_name("shop-api").spec.configs[0].version == 1
    definition = load_stack("shop", WITH_OBJECTS, {"pw.txt": "pw"}.__getitem__)
    assert actions(ops.dry_run(definition)) == {"shop-api": "unchanged"}
    before = (manager.state.version, list(manager.commands))
    again = await deploy(ops, "shop", WITH_OBJECTS, {"pw.txt": "pw"})
    assert actions(again) == {"shop-api": "unchanged"}
    assert (manager.state.version, manager.commands) == before
    assert manager.state.service_by_name("shop-api").spec.configs[0].version == 1


async def test_redeploy_updates_only_the_changed_service(ops, manager):
    first = await deploy(ops, "shop", COMPOSE, FILES)
    versions = {s["name"]: s["version"] for s in first["services"]}
    changed = COMPOSE.replace("sleep 1d", "sleep 2d")
    result = await deploy(ops, "shop", changed, FILES)
    assert actions(result) == {"shop-web": "unchanged", "shop-api": "updated"}
    after = {s["name"]: s["version"] for s in result["services"]}
    assert after["shop-web"] == versions["shop-web"]
    assert after["shop-api"] > versions["shop-api"]
    assert manager.commands.count("update_service") == 1
    api = manager.state.service_by_name("shop-api")
    assert api is not None and api.spec.command == ("sleep", "2d")
    assert api.previous_spec is not None and api.previous_spec.command == ("sleep", "1d")  # for rollback


async def test_a_changed_env_file_counts_as_a_change(ops):
    await deploy(ops, "shop", COMPOSE, FILES)
    result = await deploy(ops, "shop", COMPOSE, {"web.env": "GREETING=bonjour\n"})
    assert actions(result) == {"shop-web": "updated", "shop-api": "unchanged"}


async def test_services_gone_from_the_file_are_pruned_unless_asked_not_to(ops, manager):
    await deploy(ops, "shop", COMPOSE, FILES)
    web_only = COMPOSE.split("  api:")[0]
    kept = await deploy(ops, "shop", web_only, FILES, prune=False)
    assert actions(kept) == {"shop-web": "unchanged"}
    assert manager.state.service_by_name("shop-api") is not None
    pruned = await deploy(ops, "shop", web_only, FILES)
    assert actions(pruned) == {"shop-web": "unchanged", "shop-api": "removed"}
    assert manager.state.service_by_name("shop-api") is None


async def test_an_invalid_spec_writes_nothing(ops, manager):
    await deploy(ops, "shop", COMPOSE, FILES)
    before = list(manager.commands)
    sent = body("shop", COMPOSE.replace("sleep 1d", "sleep 2d"), FILES)
    sent["services"][1]["spec"]["replicas"] = -1  # a client that skips local validation
    with pytest.raises(ConfigError) as info:
        await ops.apply(parse_deploy_body("shop", sent)[0])
    assert info.value.field == "services.api"
    assert manager.commands == before


async def test_a_name_taken_outside_the_stack_is_a_conflict_and_writes_nothing(ops, manager):
    await ops.services.create({"name": "shop-api", "image": "x"})
    before = list(manager.commands)
    with pytest.raises(ConflictError) as info:
        await deploy(ops, "shop", COMPOSE, FILES)
    assert info.value.field == "services.api"
    assert manager.commands == before


async def test_ls_ps_and_rm(ops, manager):
    await deploy(ops, "shop", COMPOSE, FILES)
    await deploy(ops, "blog", "services:\n  db:\n    image: x\n")
    await ops.services.create({"name": "loose", "image": "x"})
    assert ops.ls() == [
        {"name": "blog", "services": 1, "running": 0, "desired": 1},
        {"name": "shop", "services": 2, "running": 0, "desired": 3},
    ]
    web = manager.state.service_by_name("shop-web")
    assert web is not None
    task = Task(task_id="t1", service_id=web.service_id, slot=1, spec_version=web.version)
    await manager.write(C.PutTasks(at=1.0, items=(C.TaskPut(task, task_version=None),)).encode())
    tasks = ops.ps("shop")
    assert [(t["service"], t["name"]) for t in tasks] == [("shop-web", "shop-web.1")]
    removed = await ops.rm("shop")
    assert sorted(removed["removed"]) == ["shop-api", "shop-web"]
    assert sorted(s.name for s in manager.state.services.values()) == ["blog-db", "loose"]
    with pytest.raises(NotFoundError):
        ops.ps("shop")
    with pytest.raises(NotFoundError):
        await ops.rm("shop")


def test_deploy_body_is_validated():
    with pytest.raises(ConfigError) as info:
        parse_deploy_body("shop", {})
    assert info.value.field == "services"
    with pytest.raises(ConfigError) as info:
        parse_deploy_body("shop", {"compose": COMPOSE})  # the daemon never parses YAML
    assert info.value.field == "compose"
    good = body("shop", COMPOSE, FILES)
    foreign = body("blog", COMPOSE, FILES)
    with pytest.raises(ConfigError) as info:
        parse_deploy_body("shop", foreign)  # specs of another stack
    assert info.value.field == "services.web"
    with pytest.raises(ConfigError) as info:
        parse_deploy_body("shop", {"services": [good["services"][0], good["services"][0]]})
    assert info.value.field == "services.web"
    with pytest.raises(ConfigError) as info:
        parse_deploy_body("shop", {"services": [{"short": "web", "spec": "x"}]})
    assert info.value.field == "services[0].spec"
    definition, prune = parse_deploy_body("shop", {**good, "prune": "false"})
    assert [s.name for s in definition.services] == ["shop-web", "shop-api"] and prune is False


async def test_endpoints_through_the_api_app(ops):
    """The routes the daemon adds, served by the real Starlette app in process."""
    import httpx

    app = build_app(stack_endpoints(ops))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1") as client:
        response = await client.post("/stacks/shop", json=body("shop", COMPOSE, FILES))
        assert response.status_code == 200, response.text
        assert actions(response.json()) == {"shop-web": "created", "shop-api": "created"}
        assert (await client.get("/stacks")).json()[0]["name"] == "shop"
        assert (await client.get("/stacks/shop/tasks")).json() == []
        assert [s["name"] for s in (await client.get("/stacks/shop/services")).json()] == [
            "shop-api",
            "shop-web",
        ]
        bad = await client.post("/stacks/shop", json={"compose": "services:\n  web:\n    image: x\n"})
        assert bad.status_code == 400
        assert json.loads(bad.text)["field"] == "compose"
        assert (await client.get("/stacks/nope/tasks")).status_code == 404
        removed = await client.delete("/stacks/shop")
        assert sorted(removed.json()["removed"]) == ["shop-api", "shop-web"]


async def test_a_stack_publishing_a_p2porch_port_is_refused_before_anything_is_written(ops, manager):
    compose = "services:\n  web:\n    image: nginx\n  dns:\n    image: coredns\n    ports: ['53:53/udp']\n"
    with pytest.raises(ConfigError) as info:
        await deploy(ops, "s", compose)
    # named as the file's key (the CLI prints it under the file's name), not as the flag --publish
    assert info.value.field == "services.dns.ports"
    assert info.value.message == "services.dns.ports: host port 53/udp is p2porch's own dns port"
    assert "create_service" not in manager.commands


async def test_a_stack_port_another_service_publishes_is_a_conflict_named_by_its_key(ops, manager):
    await ops.services.create({"name": "web", "image": "nginx", "publish": ["8080:80"]})
    compose = "services:\n  api:\n    image: nginx\n    ports: ['8080:80']\n"
    with pytest.raises(ConflictError) as info:
        await deploy(ops, "s", compose)
    assert info.value.field == "services.api.ports"
    assert info.value.message.startswith("services.api.ports: ingress port 8080/tcp is already published by")


TIERS = """
services:
  web:
    image: p2porch/busybox:latest
    networks: [front]
  api:
    image: p2porch/busybox:latest
    networks:
      front: {aliases: [backend]}
      back:
  db:
    image: p2porch/busybox:latest
    networks: [back, shared]
networks:
  front: {labels: {tier: front}}
  back: {internal: true}
  shared: {external: true, name: common}
"""


async def test_stack_networks_are_created_first_namespaced_and_removed_with_the_stack(ops, manager):
    with pytest.raises(NotFoundError, match="external network 'common'"):
        await deploy(ops, "shop", TIERS)
    assert "create_network" not in manager.commands and "create_service" not in manager.commands
    await ops.networks.create({"name": "common"})
    await deploy(ops, "shop", TIERS)
    state = manager.state
    front, back = state.network_by_name("shop_front"), state.network_by_name("shop_back")
    assert front is not None and back is not None and back.internal and not front.internal
    assert dict(front.labels) == {"tier": "front", "p2porch.stack": "shop"}
    api = state.service_by_name("shop-api")
    assert api is not None
    assert [n.to_dict() for n in api.spec.networks] == [
        {"target": "shop_front", "aliases": ["backend"]},
        {"target": "shop_back", "aliases": []},
    ]
    assert state.network_by_name("shop_default") is None  # every service names its networks
    again = list(manager.commands)
    await deploy(ops, "shop", TIERS)
    assert manager.commands == again  # nothing to create the second time
    result = await ops.rm("shop")
    assert sorted(result["removed_networks"]) == ["shop_back", "shop_front"]
    assert manager.state.network_by_name("common") is not None  # external: left alone


@pytest.mark.parametrize("option", ["internal", "attachable"])
async def test_a_stack_network_whose_options_changed_is_refused_before_anything_is_written(
    ops, manager, option
):
    text = "services:\n  web:\n    image: nginx\n    networks: [front]\nnetworks:\n  front: {}\n"
    await deploy(ops, "shop", text)
    before = list(manager.commands)
    with pytest.raises(ConflictError, match=f"exists with {option}=False; a network cannot change") as info:
        await deploy(ops, "shop", text.replace("front: {}", f"front: {{{option}: true}}"))
    assert info.value.field == f"networks.front.{option}"
    assert manager.commands == before


async def test_a_relabelled_stack_network_is_left_as_it_is_and_warned_as_swarm_leaves_it(ops, manager):
    """A network has no update: a redeploy whose file gives a stack network other labels keeps the network
    (Swarm's stack deploy skips an existing stack network) and says so, in the deploy and its dry run
    (before: silently); the same file without changes warns nothing; an external network is only looked up."""
    text = (
        "services:\n  web:\n    image: nginx\n    networks: [front]\nnetworks:\n  front: {labels: {a: '1'}}\n"
    )
    first = await deploy(ops, "shop", text)
    assert "warnings" not in first
    assert "warnings" not in await deploy(ops, "shop", text)
    assert not ops.dry_run(load_stack("shop", text, lambda path: ""))["warnings"]
    before = list(manager.commands)
    relabelled = text.replace("{a: '1'}", "{a: '2'}")
    warning = (
        "networks.front.labels: network 'shop_front' exists with other labels and is left as it is (a "
        "network cannot change, as in Swarm): remove the stack to create it anew with them"
    )
    assert ops.dry_run(load_stack("shop", relabelled, lambda path: ""))["warnings"] == [warning]
    assert (await deploy(ops, "shop", relabelled))["warnings"] == [warning]
    assert manager.commands == before  # nothing written: the network and the service are as they were
    assert dict(manager.state.network_by_name("shop_front").labels) == {"a": "1", "p2porch.stack": "shop"}
    await ops.networks.create({"name": "common", "labels": {"x": "y"}})
    external = (
        "services:\n  web:\n    image: nginx\n    networks: [common]\nnetworks:\n  common: {external: true}\n"
    )
    assert "warnings" not in await deploy(ops, "shop", external)


async def test_network_labels_past_the_limits_are_refused_whether_the_network_exists_or_not(ops, manager):
    """Before: checked only when the network was to be created, so a file refused on its first deploy
    passed a redeploy once its network existed."""
    text = "services:\n  web:\n    image: nginx\n    networks: [front]\nnetworks:\n  front: {}\n"
    await deploy(ops, "shop", text)
    before = list(manager.commands)
    big = text.replace("front: {}", f"front: {{labels: {{big: {'x' * 300_000}}}}}")
    with pytest.raises(ConfigError, match="more than the limit of 262144") as refused:
        await deploy(ops, "shop", big)
    assert refused.value.field == "networks.front.labels" and manager.commands == before


async def test_a_network_name_taken_outside_the_stack_is_refused(ops, manager):
    await ops.networks.create({"name": "shop_default"})
    with pytest.raises(ConflictError, match="outside stack"):
        await deploy(ops, "shop", "services:\n  web:\n    image: nginx\n")
    assert "create_service" not in manager.commands


async def test_redeploy_prunes_networks_no_longer_used(ops, manager):
    await deploy(
        ops,
        "shop",
        TIERS.replace("[back, shared]", "[back]").replace("  shared: {external: true, name: common}\n", ""),
    )
    assert manager.state.network_by_name("shop_front") is not None
    result = await deploy(ops, "shop", "services:\n  web:\n    image: p2porch/busybox:latest\n")
    assert sorted(result["removed_networks"]) == ["shop_back", "shop_front"]
    assert [n.name for n in manager.state.networks.values()] == ["shop_default"]


async def test_a_dnsrr_service_with_an_ingress_port_is_refused_by_its_ports_key(ops, manager):
    """The daemon's own check of a stack (a body not made by the CLI's loader): Swarm's dnsrr rule is
    named by the Compose key, as a port conflict is, and nothing is written."""
    definition = load_stack("shop", "services:\n  web:\n    image: x\n    ports: ['8080:80']\n")
    definition.services[0].spec["endpoint_mode"] = "dnsrr"  # what a hand-made API body may carry
    with pytest.raises(ConfigError) as caught:
        await ops.apply(definition, prune=True)
    assert caught.value.field == "services.web.ports[0]"
    assert caught.value.message.startswith("services.web.ports[0]: port 8080:80/tcp published with ingress")
    assert manager.state.service_by_name("shop-web") is None
