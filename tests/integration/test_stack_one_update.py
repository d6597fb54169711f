"""A `stack deploy` that rolls a config and changes the image of the service using it replaces that
service's task once, on a real one-node sandbox (docs/stack.md, *Redeploy*: one update per changed
service). Before, the new config version rolled the service by itself (a first replacement task), then
the services' deploy wrote the new image (a second one). Deployed again unchanged, it writes nothing and
says so. The busybox image is tagged as the file's two image names (no registry).

One sandbox (``p51d``, 10.95.27.0/24) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

COMPOSE = """
services:
  web:
    image: {image}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    configs: [{{source: conf, target: /etc/app.conf}}]
configs:
  conf:
    file: ./app.conf
"""

cluster = compose_sample_fixture(
    "p51d",
    "10.95.27.0/24",
    ("p51d/app:1", "p51d/app:2"),
    {"one/compose.yaml": COMPOSE.format(image="p51d/app:1"), "one/app.conf": "v1\n"},
)


def test_a_rolled_config_and_a_new_image_replace_the_task_once_and_a_rerun_writes_nothing(cluster):
    sb, node, workdir = cluster
    compose = workdir / "one" / "compose.yaml"
    deployed = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(compose), "shop")
    assert deployed.returncode == 0, deployed.stderr.decode()
    first = wait_for(lambda: stack_container(node, "web"), "the first web container")
    assert container_sh(node, first["Id"], "cat /etc/app.conf") == "v1\n"

    (workdir / "one" / "app.conf").write_text("v2\n")
    compose.write_text(COMPOSE.format(image="p51d/app:2"))
    redeployed = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(compose), "shop")
    assert redeployed.returncode == 0, redeployed.stderr.decode()
    assert b"updated config shop-conf (version 2; to roll: shop-web)" in redeployed.stderr
    rows = {r["name"]: r for r in json.loads(redeployed.stdout)["services"]}
    assert rows["shop-web"]["action"] == "updated"
    assert sorted(rows["shop-web"]["fields"]) == ["configs", "image"]  # one update carrying both

    def replaced() -> dict:
        container = stack_container(node, "web")
        assert container["Config"]["Image"] == "p51d/app:2"
        return container

    second = wait_for(replaced, "the web container of the new image")
    assert container_sh(node, second["Id"], "cat /etc/app.conf") == "v2\n"
    tasks = cli_json(sb, "n1", "service", "ps", "shop-web")
    assert len(tasks) == 2, [(t["name"], t["image"], t["desired_state"]) for t in tasks]  # main: 3

    again = cli(sb, "n1", "stack", "deploy", "-c", str(compose), "shop")
    assert again.returncode == 0, again.stderr.decode()
    assert b"stack shop is up to date: nothing changed, nothing written" in again.stdout
    assert b"config" not in again.stderr
    assert len(cli_json(sb, "n1", "service", "ps", "shop-web")) == 2
