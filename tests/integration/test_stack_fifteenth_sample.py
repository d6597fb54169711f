"""Shapes of the fifteenth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Fifteenth sample"): ``${COMPOSE_PROJECT_NAME}`` read as the stack's name in the environment, a config's
``content`` and a volume's ``name`` (compose-go sets it to the project name); Minerva-System's Swarm
stack, whose ``deploy.labels`` are written ``[APP = REST_SERVICE]``, with a container label and a sysctl
of the list form written the same way: the keys lose the blanks around ``=``, the values keep theirs, and
the kernel reads the sysctl `` 1024`` as 1024. The busybox image is tagged with the files' image names.

One sandbox (``p4cq``, 10.96.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

REST = "luksamuk/minerva_rest:0.2.2"

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'

PROJECT_FILE = f"""
name: ${{COMPOSE_PROJECT_NAME:-ignored}}
{SLEEP}
services:
  web:
    <<: *sleep
    image: {REST}
    environment:
      PROJECT: ${{COMPOSE_PROJECT_NAME}}
    volumes: [data:/data]
    configs: [{{source: inline, target: /etc/inline.conf}}]
configs:
  inline:
    content: |
      project=${{COMPOSE_PROJECT_NAME}}
volumes:
  data:
    name: ${{COMPOSE_PROJECT_NAME}}-data
"""

MINERVA_FILE = f"""
version: "3"
{SLEEP}
services:
  rest:
    <<: *sleep
    image: {REST}
    labels: ["com.example.tier = api"]
    sysctls: ["net.core.somaxconn = 1024"]
    networks: [minerva_system]
    deploy:
      mode: replicated
      replicas: 1
      labels: [APP = REST_SERVICE]
      restart_policy:
        condition: on-failure
networks:
  minerva_system:
"""

cluster = compose_sample_fixture(
    "p4cq",
    "10.96.0.0/16",
    (REST,),
    {"project/compose.yaml": PROJECT_FILE, "minerva/docker-compose.yml": MINERVA_FILE},
)


def test_compose_project_name_is_the_stack_name_in_the_container(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "project" / "compose.yaml"), "pj")
    assert result.returncode == 0, result.stderr.decode()
    web = wait_for(lambda: stack_container(node, "web"), "a running web container")
    assert "PROJECT=pj" in container_sh(node, web["Id"], "env").splitlines()
    assert container_sh(node, web["Id"], "cat /etc/inline.conf") == "project=pj\n"
    assert [m.get("Name") for m in web["Mounts"] if m.get("Destination") == "/data"] == ["pj-data"]


def test_labels_and_sysctls_written_with_blanks_around_the_equals_sign(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "minerva" / "docker-compose.yml"), "mn")
    assert result.returncode == 0, result.stderr.decode()
    rest = wait_for(lambda: stack_container(node, "rest"), "a running rest container")
    assert rest["Config"]["Labels"]["com.example.tier"] == " api"
    assert rest["HostConfig"]["Sysctls"] == {"net.core.somaxconn": " 1024"}
    assert container_sh(node, rest["Id"], "cat /proc/sys/net/core/somaxconn").strip() == "1024"
    spec = cli_json(sb, "n1", "service", "inspect", "mn-rest")["spec"]
    assert spec["service_labels"] == {"APP": " REST_SERVICE"}


def test_stack_rm_removes_the_fifteenth_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "pj")["removed"]) == 1
    assert len(cli_json(sb, "n1", "stack", "rm", "mn")["removed"]) == 1
