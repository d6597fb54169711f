"""Shapes of the ninth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Ninth sample"): EspoCRM's official file, whose daemon and websocket services mount the application's
volumes with ``volumes_from: [espocrm]`` (before, ``volumes_from`` was ignored and they ran without
them), and Ente's Traefik example, whose ``socat`` shares ``museum``'s network namespace and names no
networks (before, it was warned that "its own networks" were not applied). The busybox image is tagged
with the files' image names.

One sandbox (``p3cq``, 10.71.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container, stack_sidecar
from clusterkit import wait_in_stack as wait_for

ESPO = "espocrm/espocrm:latest"
SOCAT = "alpine/socat:latest"
MUSEUM = "ghcr.io/ente-io/server:latest"

ESPOCRM = f"""
services:
  espocrm:
    image: {ESPO}
    command: ["sh", "-c", "echo espo > /var/www/html/data/marker && exec sleep 1d"]
    stop_grace_period: 1s
    volumes:
      - espocrm-data:/var/www/html/data
      - ./custom:/var/www/html/custom
  espocrm-daemon:
    image: {ESPO}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    volumes_from:
      - espocrm
  espocrm-websocket:
    image: {ESPO}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    volumes_from: ["espocrm:ro"]
volumes:
  espocrm-data:
"""

ENTE = f"""
services:
  museum:
    image: {MUSEUM}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    networks: [ente, proxy]
  socat:
    image: {SOCAT}
    network_mode: service:museum
    command: ["sh", "-c", "exec sleep 1d"]
networks:
  ente:
  proxy:
"""

cluster = compose_sample_fixture(
    "p3cq",
    "10.71.0.0/16",
    (ESPO, SOCAT, MUSEUM),
    {"espocrm/compose.yaml": ESPOCRM, "espocrm/custom/marker": "custom\n", "ente/compose.yaml": ENTE},
)


def test_volumes_from_mounts_the_named_services_volumes(cluster):
    sb, node, workdir = cluster
    result = cli(
        sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "espocrm" / "compose.yaml"), "crm"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"volumes_from" not in result.stderr  # applied, not ignored
    daemon = wait_for(lambda: stack_container(node, "espocrm-daemon"), "a running espocrm-daemon container")
    socket = wait_for(
        lambda: stack_container(node, "espocrm-websocket"), "a running espocrm-websocket container"
    )
    wait_for(lambda: container_sh(node, daemon["Id"], "cat /var/www/html/data/marker") == "espo\n" or None,
             "espocrm's marker in the daemon's view of the shared volume")  # fmt: skip
    assert container_sh(node, daemon["Id"], "cat /var/www/html/custom/marker") == "custom\n"
    mounts = {m["Destination"]: m for m in socket["Mounts"]}
    assert mounts["/var/www/html/data"]["Name"] == "crm_espocrm-data"
    assert mounts["/var/www/html/data"]["RW"] is False and mounts["/var/www/html/custom"]["RW"] is False
    assert container_sh(node, socket["Id"], "touch /var/www/html/data/x 2>&1; echo $?").strip().endswith("1")


def test_a_sidecar_naming_no_networks_deploys_without_a_networks_warning(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "ente" / "compose.yaml"), "ente")
    assert result.returncode == 0, result.stderr.decode()
    assert b"not applied" not in result.stderr
    assert [s["short"] for s in json.loads(result.stdout)["services"]] == ["museum"]
    museum = wait_for(lambda: stack_container(node, "museum"), "a running museum container")
    socat = wait_for(lambda: stack_sidecar(node, "socat"), "a running socat sidecar")
    assert socat["HostConfig"]["NetworkMode"] == f"container:{museum['Id']}"


def test_stack_rm_removes_the_ninth_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "crm")["removed"]) == 3
    assert len(cli_json(sb, "n1", "stack", "rm", "ente")["removed"]) == 1
