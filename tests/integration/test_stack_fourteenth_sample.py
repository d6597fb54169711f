"""Shapes of the fourteenth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Fourteenth sample"): numbers as go-yaml reads and compose-go writes them in ``sysctls`` and the
environment (``7.2e3`` is 7200 where Python's ``str`` wrote ``7200.0``, which the kernel refuses;
``1_024`` is 1024; ``0x1F`` is 31); skobkin's Authelia stack, whose service ``extends`` a service of
another file named by a variable from the ``.env`` beside it (``service: "${COMPOSE_VARIANT:-traefik}"``),
its labels and networks reaching the container. The busybox image is tagged with the files' image names.

One sandbox (``p4cq``, 10.96.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

TUNED = "ghcr.io/firecrawl/firecrawl:2.11.209"
AUTHELIA = "authelia/authelia:4"

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'

NUMBERS_FILE = f"""
{SLEEP}
services:
  api:
    <<: *sleep
    image: {TUNED}
    sysctls:
      net.ipv4.tcp_keepalive_time: 7.2e3
      net.core.somaxconn: 1_024
    environment:
      MAX_ROWS: 1_000_000
      HEX: 0x1F
      QUOTED: "1_000"
    labels:
      ratio: 0.50
"""

AUTHELIA_FILE = f"""
{SLEEP}
services:
  authelia:
    <<: *sleep
    extends:
      file: ./compose.features.yml
      service: "${{COMPOSE_VARIANT:-traefik}}"
    image: "authelia/authelia:${{IMAGE_TAG:-4}}"
    container_name: authelia
    env_file: .env
    environment:
      X_AUTHELIA_CONFIG: /config/configuration.yml
networks:
  databases:
    name: "${{DATABASES_NETWORK:-databases}}"
"""

FEATURES_FILE = """
services:
  default: {}
  traefik:
    networks: [default]
    labels:
      traefik.enable: "true"
      traefik.http.routers.authelia.rule: "Host(`${TRAEFIK_HOST}`)"
  traefik_databases:
    networks: [default, databases]
    labels:
      traefik.enable: "true"
      traefik.http.routers.authelia.rule: "Host(`${TRAEFIK_HOST}`)"
networks:
  databases:
    name: "${DATABASES_NETWORK:-databases}"
"""

cluster = compose_sample_fixture(
    "p4cq",
    "10.96.0.0/16",
    (TUNED, AUTHELIA),
    {
        "numbers/docker-compose.yml": NUMBERS_FILE,
        "authelia/docker-compose.yml": AUTHELIA_FILE,
        "authelia/compose.features.yml": FEATURES_FILE,
        "authelia/.env": "COMPOSE_VARIANT=traefik_databases\nTRAEFIK_HOST=auth.example.org\n",
    },
)


def test_numbers_reach_the_kernel_and_the_container_as_compose_go_writes_them(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "numbers" / "docker-compose.yml"), "nu")
    assert result.returncode == 0, result.stderr.decode()
    api = wait_for(lambda: stack_container(node, "api"), "a running api container")
    sysctls = {"net.ipv4.tcp_keepalive_time": "7200", "net.core.somaxconn": "1024"}
    assert api["HostConfig"]["Sysctls"] == sysctls
    assert container_sh(node, api["Id"], "cat /proc/sys/net/ipv4/tcp_keepalive_time").strip() == "7200"
    assert container_sh(node, api["Id"], "cat /proc/sys/net/core/somaxconn").strip() == "1024"
    env = container_sh(node, api["Id"], "env").splitlines()
    for pair in ("MAX_ROWS=1000000", "HEX=31", "QUOTED=1_000"):
        assert pair in env, (pair, env)
    assert api["Config"]["Labels"]["ratio"] == "0.5"


def test_extends_of_a_service_named_by_a_variable_from_another_file(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "authelia" / "docker-compose.yml"), "au")
    assert result.returncode == 0, result.stderr.decode()
    authelia = wait_for(lambda: stack_container(node, "authelia"), "a running authelia container")
    labels = authelia["Config"]["Labels"]
    assert labels["traefik.http.routers.authelia.rule"] == "Host(`auth.example.org`)"
    env = container_sh(node, authelia["Id"], "env").splitlines()
    assert "COMPOSE_VARIANT=traefik_databases" in env and "X_AUTHELIA_CONFIG=/config/configuration.yml" in env
    spec = cli_json(sb, "n1", "service", "inspect", "au-authelia")["spec"]
    assert sorted(n["target"] for n in spec["networks"]) == ["au_default", "databases"]


def test_stack_rm_removes_the_fourteenth_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "nu")["removed"]) == 1
    assert len(cli_json(sb, "n1", "stack", "rm", "au")["removed"]) == 1
