"""A shape of the eighth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Eighth sample"): the home lab's *arr stack, where services run in a VPN container's network namespace
(``network_mode: service:gluetun``) and each mounts its own directory at ``/config``. They become
sidecars of gluetun's task; each sidecar container has its own ``/config`` (before, the second one was
refused: "mounted differently in 'gluetun'"). The busybox image is tagged with the file's image names.

One sandbox (``p3cp``, 10.61.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container, stack_sidecar
from clusterkit import wait_in_stack as wait_for

STACK = "arr"
VPN = "qmcgaw/gluetun:latest"
QBIT = "lscr.io/linuxserver/qbittorrent:latest"
SONARR = "lscr.io/linuxserver/sonarr:latest"
SLEEP = '["sh", "-c", "exec sleep 1d"]'

COMPOSE = f"""
services:
  gluetun:
    image: {VPN}
    command: {SLEEP}
    stop_grace_period: 1s
    volumes: [./gluetun:/gluetun]
  qbittorrent:
    image: {QBIT}
    network_mode: "service:gluetun"
    command: {SLEEP}
    volumes: [./qbittorrent:/config]
  sonarr:
    image: {SONARR}
    network_mode: "service:gluetun"
    command: {SLEEP}
    volumes: [./sonarr:/config]
"""

cluster = compose_sample_fixture(
    "p3cp",
    "10.61.0.0/16",
    (VPN, QBIT, SONARR),
    {"compose.yaml": COMPOSE, "qbittorrent/marker": "qbittorrent\n", "sonarr/marker": "sonarr\n"},
)


def test_sidecars_of_one_network_namespace_each_mount_their_own_config(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "compose.yaml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    assert b"mounted differently" not in result.stderr
    assert [s["short"] for s in json.loads(result.stdout)["services"]] == ["gluetun"]
    main = wait_for(lambda: stack_container(node, "gluetun"), "a running gluetun container")
    qbit = wait_for(lambda: stack_sidecar(node, "qbittorrent"), "a running qbittorrent sidecar")
    sonarr = wait_for(lambda: stack_sidecar(node, "sonarr"), "a running sonarr sidecar")
    assert (
        qbit["HostConfig"]["NetworkMode"] == sonarr["HostConfig"]["NetworkMode"] == f"container:{main['Id']}"
    )
    assert container_sh(node, qbit["Id"], "cat /config/marker") == "qbittorrent\n"
    assert container_sh(node, sonarr["Id"], "cat /config/marker") == "sonarr\n"
    mounts = {m["Destination"]: m["Source"] for m in sonarr["Mounts"]}
    assert mounts["/config"] == str(workdir / "sonarr") and mounts["/gluetun"] == str(workdir / "gluetun")


def test_stack_rm_removes_the_eighth_samples_stack(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", STACK)["removed"]) == 1
