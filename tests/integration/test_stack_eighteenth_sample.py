"""A shape of the eighteenth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Eighteenth sample"): hotyue's Matomo stack, whose ``matomo`` depends (short syntax: ``service_started``) on
a one-shot ``matomo-db-init`` with ``restart: "no"``, and whose ``matomo-archive`` loops in a folded
``entrypoint: >``. Compose starts ``matomo`` once it started the init container, even when the init job is
already done; the deploy used to wait for a running init task until ``--wait-timeout``. The busybox image is
tagged with the file's image names.

One sandbox (``p7cq``, 10.70.2.0/24) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli_json, compose_sample_fixture, stack_container, stack_deploy
from clusterkit import wait_in_stack as wait_for

MARIADB = "mariadb:11"
MATOMO = "matomo:latest"

MATOMO_FILE = """
services:
  matomo-db-init:
    image: mariadb:11
    container_name: matomo-db-init
    restart: "no"
    command: ["sh", "-c", "echo init done"]
    environment:
      MATOMO_DB_HOST: ${MATOMO_DB_HOST}
  matomo:
    image: ${MATOMO_IMAGE}
    restart: unless-stopped
    depends_on:
      - matomo-db-init
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
  matomo-archive:
    image: ${MATOMO_IMAGE}
    restart: unless-stopped
    depends_on:
      - matomo
    entrypoint: >
      sh -c "
      while true; do
        echo archive --url=${MATOMO_BASE_URL};
        sleep 3600;
      done
      "
    stop_grace_period: 1s
"""

cluster = compose_sample_fixture(
    "p7cq",
    "10.70.2.0/24",
    (MARIADB, MATOMO),
    {
        "matomo/docker-compose.yml": MATOMO_FILE,
        "matomo/.env": f"MATOMO_IMAGE={MATOMO}\nMATOMO_BASE_URL=http://localhost:8088\nMATOMO_DB_HOST=mariadb\n",
    },
)


def test_the_app_is_created_once_its_one_shot_init_job_ran(cluster):
    sb, node, workdir = cluster
    result = stack_deploy(sb, workdir / "matomo/docker-compose.yml", "mt")
    assert result.returncode == 0, result.stderr.decode()
    assert b"waiting for mt-matomo-db-init (started)" in result.stderr, result.stderr.decode()
    order = [s["short"] for s in json.loads(result.stdout)["services"]]
    assert order == ["matomo-db-init", "matomo", "matomo-archive"], order
    init = [t for t in cli_json(sb, "n1", "stack", "ps", "mt") if t["service"] == "mt-matomo-db-init"]
    assert [t["state"] for t in init] == ["complete"], init  # ran once, not restarted (restart: "no")
    archive = wait_for(lambda: stack_container(node, "matomo-archive"), "a running archive container")
    # the folded entrypoint, split as compose-go splits it: the loop is the shell's third argument
    assert archive["Config"]["Entrypoint"][:2] == ["sh", "-c"]
    assert "echo archive --url=http://localhost:8088;" in archive["Config"]["Entrypoint"][2]
    removed = cli_json(sb, "n1", "stack", "rm", "mt")
    assert sorted(removed["removed"]) == ["mt-matomo", "mt-matomo-archive", "mt-matomo-db-init"]
