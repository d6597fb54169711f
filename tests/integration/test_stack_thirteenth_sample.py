"""Shapes of the thirteenth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Thirteenth sample"): an environment and labels with unquoted leading-zero numbers and floats, which reach
the container as compose-go writes them (``PIN: 0123`` is PIN=83, ``ONE: 1.0`` is ONE=1, the list form
``PIN=0123`` kept as written); devops-e3-ops' Swarm monitoring stack, a global node exporter whose host
name has an underscore before a node template (``node_exporter-{{.Node.Hostname}}``), which the engine
takes. The busybox image is tagged with the files' image names.

One sandbox (``p4cq``, 10.98.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

from p2porch.agent.model import LABEL_NODE

APP = "ghcr.io/usetrmnl/inker:latest"
EXPORTER = "prom/node-exporter:latest"

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'

VALUES_FILE = f"""
{SLEEP}
services:
  inker:
    <<: *sleep
    image: {APP}
    environment:
      ADMIN_PIN: 0123
      PIN8: 0189
      QUOTED: "0123"
      ONE: 1.0
      FEED_RELEASE: 24.10
    labels:
      pin: 0123
  listed:
    <<: *sleep
    image: {APP}
    environment:
      - ADMIN_PIN=0123
"""

MONITOR_FILE = f"""
{SLEEP}
networks:
  monitoring:
    driver:
services:
  node_exporter:
    <<: *sleep
    image: {EXPORTER}
    hostname: node_exporter-{{{{.Node.Hostname}}}}
    environment:
      - NODE_ID={{{{.Node.ID}}}}
    deploy:
      mode: global
      restart_policy: {{condition: on-failure, delay: 5s, max_attempts: 3, window: 30s}}
      resources:
        limits: {{cpus: "0.5", memory: 0.5G}}
    networks: [monitoring]
"""

cluster = compose_sample_fixture(
    "p4cq",
    "10.98.0.0/16",
    (APP, EXPORTER),
    {"values/docker-compose.yml": VALUES_FILE, "monitor/docker-compose.yml": MONITOR_FILE},
)


def test_leading_zeros_and_floats_reach_the_container_as_compose_go_writes_them(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "values" / "docker-compose.yml"), "va")
    assert result.returncode == 0, result.stderr.decode()
    inker = wait_for(lambda: stack_container(node, "inker"), "a running inker container")
    env = container_sh(node, inker["Id"], "env").splitlines()
    for pair in ("ADMIN_PIN=83", "PIN8=189", "QUOTED=0123", "ONE=1", "FEED_RELEASE=24.1"):
        assert pair in env, (pair, env)
    assert inker["Config"]["Labels"]["pin"] == "83"
    listed = wait_for(lambda: stack_container(node, "listed"), "a running listed container")
    assert "ADMIN_PIN=0123" in container_sh(node, listed["Id"], "env").splitlines()


def test_a_host_name_with_an_underscore_and_a_node_template_reaches_the_container(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "monitor" / "docker-compose.yml"), "mon")
    assert result.returncode == 0, result.stderr.decode()
    exporter = wait_for(lambda: stack_container(node, "node_exporter"), "a running node_exporter container")
    expected = "node_exporter-" + exporter["Config"]["Labels"][LABEL_NODE]
    assert exporter["Config"]["Hostname"] == expected
    assert container_sh(node, exporter["Id"], "hostname").strip() == expected
    assert exporter["HostConfig"]["Memory"] == 1 << 29
    spec = cli_json(sb, "n1", "service", "inspect", "mon-node-exporter")["spec"]  # `_` is `-` in names
    assert spec["mode"] == "global"


def test_stack_rm_removes_the_thirteenth_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "va")["removed"]) == 2
    assert len(cli_json(sb, "n1", "stack", "rm", "mon")["removed"]) == 1
