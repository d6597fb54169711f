"""Shapes of the eleventh real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Eleventh sample"): Ghost's official file (TryGhost/ghost-docker), whose variables are required with
``${VAR:?message}``, whose admin URL is ``${ADMIN_DOMAIN:+https://${ADMIN_DOMAIN}}`` and whose ``ghost``
waits for a healthy database and, with ``required: false``, for services of profiles that are not
active; and Eclipse Ditto's file, whose cluster services share one network alias (``ditto-cluster``)
and carry a memory limit and logging options without a driver. The shared alias answers both services
(each one's VIP, ``tasks.ditto-cluster`` their tasks), as Docker's DNS does (docs/dns.md, "A network
alias several services hold"). The busybox image is tagged with the files' image names.

One sandbox (``p4cp``, 10.95.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json
import re

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

GHOST = "ghost:6-alpine"
MYSQL = "mysql:8.0.44"
ACTIVITYPUB = "ghcr.io/tryghost/activitypub:1.2.13"
POLICIES = "docker.io/eclipse/ditto-policies:latest"
THINGS = "docker.io/eclipse/ditto-things:latest"
NGINX = "docker.io/nginx:1.27-alpine"

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'

GHOST_FILE = f"""
{SLEEP}
services:
  ghost:
    <<: *sleep
    image: ghost:${{GHOST_VERSION:-6-alpine}}
    env_file: [.env]
    environment:
      url: https://${{DOMAIN:?DOMAIN environment variable is required}}
      admin__url: ${{ADMIN_DOMAIN:+https://${{ADMIN_DOMAIN}}}}
      database__connection__user: ${{DATABASE_USER:-ghost}}
      database__connection__password: ${{DATABASE_PASSWORD:?DATABASE_PASSWORD is required}}
    depends_on:
      db:
        condition: service_healthy
      activitypub:
        condition: service_started
        required: false
  db:
    <<: *sleep
    image: {MYSQL}
    healthcheck:
      test: ["CMD-SHELL", "test -d /proc/1"]
      interval: 1s
      start_period: 30s
      start_interval: 10s
      retries: 120
  activitypub:
    <<: *sleep
    image: {ACTIVITYPUB}
    profiles: [activitypub]
"""

DITTO_FILE = f"""
{SLEEP}
services:
  policies:
    <<: *sleep
    image: {POLICIES}
    networks:
      default:
        aliases: [ditto-cluster]
    deploy:
      resources:
        limits:
          memory: 512m
    logging:
      options:
        max-size: 50m
  things:
    <<: *sleep
    image: {THINGS}
    networks:
      default:
        aliases: [ditto-cluster]
    depends_on: [policies]
  nginx:
    <<: *sleep
    image: {NGINX}
    depends_on: [things]
"""

cluster = compose_sample_fixture(
    "p4cp",
    "10.95.0.0/16",
    (GHOST, MYSQL, ACTIVITYPUB, POLICIES, THINGS, NGINX),
    {
        "ghost/compose.yml": GHOST_FILE,
        "ghost/.env": "DOMAIN=example.com\nDATABASE_PASSWORD=ghostpassword\n",
        "unset/compose.yml": GHOST_FILE,
        "unset/.env": "DATABASE_PASSWORD=ghostpassword\n",
        "ditto/docker-compose.yml": DITTO_FILE,
    },
)

IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def _answers(node, cid: str, name: str) -> set[str]:
    """The IPv4 addresses busybox's nslookup of ``name`` prints in ``cid`` (the server lines cut)."""
    return set(IPV4.findall(container_sh(node, cid, f"nslookup {name} | tail -n +3")))


def test_a_required_variable_left_unset_refuses_the_deploy_naming_the_key(cluster):
    sb, _node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "unset" / "compose.yml"), "unset")
    assert result.returncode == 2, result.stderr.decode()
    message = result.stderr.decode()
    assert "services.ghost.environment.url" in message, message
    assert "DOMAIN environment variable is required" in message, message
    assert all(s["name"] != "unset" for s in cli_json(sb, "n1", "stack", "ls")), "nothing deployed"


def test_ghost_waits_for_its_healthy_database_and_gets_its_interpolated_environment(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "ghost" / "compose.yml"), "gh")
    assert result.returncode == 0, result.stderr.decode()
    assert b"waiting for gh-db (healthy)" in result.stderr, result.stderr.decode()
    order = [s["short"] for s in json.loads(result.stdout)["services"]]
    assert order == ["db", "ghost"], order  # activitypub's profile is not active: not deployed
    ghost = wait_for(lambda: stack_container(node, "ghost"), "a running ghost container")
    db = stack_container(node, "db")
    assert db["State"]["Health"]["Status"] == "healthy"
    assert db["Created"] < ghost["Created"]
    env = dict(e.split("=", 1) for e in ghost["Config"]["Env"] if "=" in e)
    assert env["url"] == "https://example.com"
    assert env["admin__url"] == ""  # ${ADMIN_DOMAIN:+...} with ADMIN_DOMAIN unset
    assert env["database__connection__user"] == "ghost"
    assert env["database__connection__password"] == "ghostpassword"
    assert env["DOMAIN"] == "example.com"  # from env_file: .env


def test_ditto_deploys_with_its_memory_limit_and_its_logging_options(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "ditto" / "docker-compose.yml"), "ditto")
    assert result.returncode == 0, result.stderr.decode()
    wait_for(lambda: stack_container(node, "nginx"), "a running nginx container")
    policies = stack_container(node, "policies")
    assert policies["HostConfig"]["Memory"] == 512 * 1024 * 1024
    assert policies["HostConfig"]["LogConfig"]["Config"] == {"max-size": "50m"}  # the engine's driver
    things = stack_container(node, "things")
    wait_for(lambda: _answers(node, things["Id"], "ditto-cluster"), "ditto-cluster answering in things")


def test_ditto_services_sharing_a_network_alias_are_all_answered_for_it(cluster):
    _sb, node, _workdir = cluster
    nginx = wait_for(lambda: stack_container(node, "nginx"), "a running nginx container")

    def both_answered() -> set[str]:
        tasks = _answers(node, nginx["Id"], "tasks.policies") | _answers(node, nginx["Id"], "tasks.things")
        vips = _answers(node, nginx["Id"], "policies") | _answers(node, nginx["Id"], "things")
        alias = _answers(node, nginx["Id"], "ditto-cluster")
        assert len(alias) == 2 and alias in (tasks, vips), (alias, tasks, vips)
        return alias

    wait_for(both_answered, "ditto-cluster answering both services")


def test_stack_rm_removes_the_eleventh_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "gh")["removed"]) == 2
    assert len(cli_json(sb, "n1", "stack", "rm", "ditto")["removed"]) == 3
