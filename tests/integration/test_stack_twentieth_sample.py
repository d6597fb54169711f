"""Shapes of the twentieth real-world Compose sample deployed on a real three-node sandbox (docs/stack.md,
"Twentieth sample"), the images replaced by the busybox image tagged with the files' names (no registry)
and each process by a sleep:

- StrangeBee's TheHive production stack: ``cassandra`` and ``elasticsearch`` with health checks,
  ``thehive`` waiting for both to be healthy, ``nginx`` for ``thehive``; ``user: ${UID}:${GID}`` and the
  image tags from the ``.env``; a ``JAVA_OPTS`` written as a block scalar list item; ``memswap_limit``
  equal to the memory limit (no swap: before, ignored with a warning); each service reachable by its
  ``container_name``.
- OpenVidu's CE stack: ``logging`` with ``options`` and no ``driver`` (the engine's default driver takes
  them: before, p2porch set ``json-file``), ``ulimits: {core: -1}``, ``network_mode: host`` (since h49 the
  node's network namespace, as ``docker run --network host``: before, warned and on the stack's network).
- swarmprom's Traefik stack: a ``mode: global`` exporter with ``NODE_ID={{.Node.ID}}`` (one task per node,
  the node's id in each), Prometheus with two ``configs`` read from files, pinned to ``node.role ==
  manager``; ``tasks.node-exporter`` answers each task's address.

One sandbox (``p8ct``, 10.92.0.0/24, three nodes) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import IMAGE, cli, cli_json, container_sh, formed_cluster, stack_container, stack_deploy
from clusterkit import wait_in_stack as wait_for

from p2porch.sandbox.dockerd import docker

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'
HEALTHY = "healthcheck: {test: [CMD-SHELL, 'true'], interval: 1s, timeout: 5s, retries: 3}"

THEHIVE = f"""
{SLEEP}
services:
  cassandra:
    <<: *sleep
    image: "cassandra:${{cassandra_image_version}}"
    container_name: cassandra
    user: ${{UID}}:${{GID}}
    deploy: {{resources: {{limits: {{memory: 64M, cpus: '0.500'}}}}}}
    memswap_limit: 64M
    {HEALTHY}
  elasticsearch:
    <<: *sleep
    image: "elasticsearch:${{elasticsearch_image_version}}"
    container_name: elasticsearch
    user: ${{UID}}:0
    environment:
      - ELASTIC_PASSWORD=${{elasticsearch_password}} # Password for "elastic" default user
    ulimits: {{nofile: {{soft: 1024, hard: 4096}}}}  # 65536 in the file: above the sandbox host's hard limit
    {HEALTHY}
  thehive:
    <<: *sleep
    image: "strangebee/thehive:${{thehive_image_version}}"
    container_name: thehive
    user: ${{UID}}:${{GID}}
    environment:
      - |
        JAVA_OPTS=
          -Xms3000M
          -XX:MaxMetaspaceSize=400m
    depends_on:
      elasticsearch:
        condition: service_healthy
      cassandra:
        condition: service_healthy
  nginx:
    <<: *sleep
    image: "nginx:${{nginx_image_version}}"
    container_name: nginx
    environment:
      SERVER_NAME: "${{nginx_server_name}}"
    depends_on:
      - thehive
"""
THEHIVE_ENV = """cassandra_image_version=4.1.7
elasticsearch_image_version=8.15.3
thehive_image_version=5.4
nginx_image_version=1.27.2
UID=1000
GID=1000
elasticsearch_password=changeme
nginx_server_name=thehive.example.com
"""

OPENVIDU = f"""
version: '3.1'
{SLEEP}
services:
  kms:
    <<: *sleep
    image: ${{KMS_IMAGE:-kurento/kurento-media-server:6.15.0}}
    restart: always
    network_mode: host
    ulimits:
      core: -1
    logging:
      options:
        max-size: "${{DOCKER_LOGS_MAX_SIZE:-100M}}"
  redis:
    <<: *sleep
    image: openvidu/openvidu-redis:2.0.0-dev1
    restart: always
    network_mode: host
    environment:
      - KMS_URIS=["ws://kms:8888/kurento"]
    logging:
      options:
        max-size: "${{DOCKER_LOGS_MAX_SIZE:-100M}}"
"""

SWARMPROM = f"""
version: "3.3"
{SLEEP}
networks:
  net:
    driver: overlay
    attachable: true
configs:
  node_rules:
    file: ./prometheus/rules/swarm_node.rules.yml
  task_rules:
    file: ./prometheus/rules/swarm_task.rules.yml
services:
  node-exporter:
    <<: *sleep
    image: stefanprodan/swarmprom-node-exporter:v0.16.0
    networks:
      - net
    environment:
      - NODE_ID={{{{.Node.ID}}}}
    deploy:
      mode: global
      resources:
        limits:
          memory: 128M
        reservations:
          memory: 16M
  prometheus:
    <<: *sleep
    image: stefanprodan/swarmprom-prometheus:v2.5.0
    networks:
      - default
      - net
    configs:
      - source: node_rules
        target: /etc/prometheus/swarm_node.rules.yml
      - source: task_rules
        target: /etc/prometheus/swarm_task.rules.yml
    deploy:
      mode: replicated
      replicas: 1
      placement:
        constraints:
          - node.role == manager
"""

IMAGES = (
    "cassandra:4.1.7",
    "elasticsearch:8.15.3",
    "strangebee/thehive:5.4",
    "nginx:1.27.2",
    "kurento/kurento-media-server:6.15.0",
    "openvidu/openvidu-redis:2.0.0-dev1",
    "stefanprodan/swarmprom-node-exporter:v0.16.0",
    "stefanprodan/swarmprom-prometheus:v2.5.0",
)
FILES = {
    "thehive/docker-compose.yml": THEHIVE,
    "thehive/.env": THEHIVE_ENV,
    "openvidu/docker-compose.yml": OPENVIDU,
    "swarmprom/docker-compose.yml": SWARMPROM,
    "swarmprom/prometheus/rules/swarm_node.rules.yml": "groups:\n- name: node\n  rules: []\n",
    "swarmprom/prometheus/rules/swarm_task.rules.yml": "groups:\n- name: task\n  rules: []\n",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with formed_cluster("p8ct", "10.92.0.0/24", 3) as (sb, nodes):
        for node in nodes:
            for image in IMAGES:
                docker(node.dockerd, "tag", IMAGE, image)
        workdir = tmp_path_factory.mktemp("p8ct")
        for relative, text in FILES.items():
            (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
            (workdir / relative).write_text(text)
        yield sb, nodes, workdir


def container(nodes, short: str) -> dict:
    """``docker inspect`` of a running main container of stack service ``short`` on any node."""
    for node in nodes:
        try:
            return {**stack_container(node, short), "node": node}
        except AssertionError:
            continue
    raise AssertionError(f"no running {short} container yet")


def resolves(found: dict, name: str) -> bool:
    return "Address" in container_sh(found["node"], found["Id"], f"nslookup {name} | tail -n +3")


def env_of(found: dict) -> dict[str, str]:
    return dict(e.split("=", 1) for e in found["Config"]["Env"] if "=" in e)


def deploy(sb, file: Path, stack: str) -> dict:
    result = stack_deploy(sb, file, stack)
    ps = "" if result.returncode == 0 else cli(sb, "n1", "stack", "ps", stack).stdout.decode()
    assert result.returncode == 0, result.stderr.decode() + ps
    return {"stderr": result.stderr.decode(), "services": json.loads(result.stdout)["services"]}


def test_thehives_stack_waits_for_healthy_databases_and_resolves_by_container_name(cluster):
    sb, nodes, workdir = cluster
    out = deploy(sb, workdir / "thehive/docker-compose.yml", "th")
    assert "waiting for th-cassandra (healthy), th-elasticsearch (healthy)" in out["stderr"], out["stderr"]
    assert "memswap_limit" not in out["stderr"], out["stderr"]  # honoured (before: ignored, warned)
    hive = wait_for(lambda: container(nodes, "thehive"), "a running thehive container")
    assert hive["Config"]["Image"] == "strangebee/thehive:5.4" and hive["Config"]["User"] == "1000:1000"
    assert env_of(hive)["JAVA_OPTS"] == "\n  -Xms3000M\n  -XX:MaxMetaspaceSize=400m\n"  # the block scalar
    cassandra = wait_for(lambda: container(nodes, "cassandra"), "a running cassandra container")
    # memory plus swap equal to the memory limit: the task cannot swap
    assert cassandra["HostConfig"]["Memory"] == cassandra["HostConfig"]["MemorySwap"] == 64 * 1024**2
    elastic = wait_for(lambda: container(nodes, "elasticsearch"), "a running elasticsearch container")
    assert elastic["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]
    assert elastic["Config"]["User"] == "1000:0" and env_of(elastic)["ELASTIC_PASSWORD"] == "changeme"
    nginx = wait_for(lambda: container(nodes, "nginx"), "a running nginx container")
    assert wait_for(lambda: resolves(nginx, "thehive") or None, "thehive resolving from nginx")
    assert wait_for(lambda: resolves(hive, "elasticsearch") or None, "elasticsearch resolving")
    removed = cli_json(sb, "n1", "stack", "rm", "th")
    assert sorted(removed["removed"]) == ["th-cassandra", "th-elasticsearch", "th-nginx", "th-thehive"]


def test_openvidus_logging_options_without_a_driver_reach_the_engines_default_driver(cluster):
    sb, nodes, workdir = cluster
    out = deploy(sb, workdir / "openvidu/docker-compose.yml", "ov")
    assert (
        "host network (services kms, redis): the tasks share their node's network namespace" in out["stderr"]
    )
    kms = wait_for(lambda: container(nodes, "kms"), "a running kms container")
    assert kms["HostConfig"]["NetworkMode"] == "host" and not kms["HostConfig"].get("PortBindings")
    # the engine's default driver (json-file in the sandbox) with the file's option
    assert kms["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "100M"}}
    assert {"Name": "core", "Soft": -1, "Hard": -1} in kms["HostConfig"]["Ulimits"]
    redis = wait_for(lambda: container(nodes, "redis"), "a running redis container")
    assert env_of(redis)["KMS_URIS"] == '["ws://kms:8888/kurento"]'
    assert redis["HostConfig"]["NetworkMode"] == "host"  # no overlay address: its name is not answered
    assert len(cli_json(sb, "n1", "stack", "rm", "ov")["removed"]) == 2


def test_swarmproms_global_exporter_runs_once_per_node_with_its_node_id(cluster):
    sb, nodes, workdir = cluster
    deploy(sb, workdir / "swarmprom/docker-compose.yml", "mon")

    def exporters() -> list[dict]:
        found = []
        for node in nodes:
            try:
                found.append({**stack_container(node, "node-exporter"), "node": node})
            except AssertionError:
                pass
        assert len(found) == 3, f"{len(found)} of 3 exporters running"
        return found

    found = wait_for(exporters, "an exporter on each of the three nodes")
    node_ids = {env_of(c)["NODE_ID"] for c in found}
    assert len(node_ids) == 3 and not any("{{" in i for i in node_ids), node_ids  # one id per node
    assert all(c["HostConfig"]["Memory"] == 128 * 1024**2 for c in found)
    prom = wait_for(lambda: container(nodes, "prometheus"), "a running prometheus container")
    rules = container_sh(prom["node"], prom["Id"], "cat /etc/prometheus/swarm_node.rules.yml")
    assert rules == "groups:\n- name: node\n  rules: []\n"
    answers = container_sh(prom["node"], prom["Id"], "nslookup tasks.node-exporter | tail -n +3")
    assert answers.count("Address") == 3, answers  # each exporter task's address
    assert len(cli_json(sb, "n1", "stack", "rm", "mon")["removed"]) == 2
