"""Value forms of real Compose files on a real one-node sandbox: strings Compose casts (``init: "yes"``,
``disable: ${HC_OFF:-true}``, ``replicas: ${REPLICAS:-2}``), IEC sizes, the long syntax of ``devices``,
``HOST_IP::PORT`` (a free host port on that address only), a null logging option, tmpfs options (``noexec``,
``uid=``: Docker's ``--tmpfs``, as Compose passes them), Swarm's
service templates (``{{.Task.Slot}}``), an application's template that is not Swarm's (passed as written),
and what a stack creates (services, networks, a named volume, a secret, a config) and ``stack rm`` removes.

One sandbox (``p2cm``, 10.24.0.0/24) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

import clusterkit
import pytest
from clusterkit import cli, cli_json, formed_cluster

from p2porch.agent.model import LABEL_NODE, LABEL_SLOT
from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

STACK = "cm"

COMPOSE = """
x-env: &env
  TZ: UTC
services:
  web:
    image: p2porch/busybox:latest
    command: ["sh", "-c", "exec sleep 1d"]
    init: "yes"
    ports: ["127.0.0.1::8080"]
    tmpfs: ["/run/app:size=8MiB,mode=1777,noexec", "/run/own:uid=1000,gid=1001,mode=0700"]
    shm_size: 64MiB
    devices:
      - source: /dev/null
        target: /dev/p2null
        permissions: rwm
    healthcheck:
      test: ["CMD", "true"]
      disable: ${HC_OFF:-true}
    logging:
      driver: json-file
      options:
        max-size: 1m
        compress:
    environment:
      <<: *env
    secrets: [token]
    configs:
      - source: settings
        target: /etc/settings.conf
    networks: [front, back]
    volumes:
      - data:/data
    stop_grace_period: 1s
    deploy:
      replicas: ${REPLICAS:-2}
      placement:
        max_replicas_per_node: "1"
  worker:
    image: p2porch/busybox:latest
    command: ["sh", "-c", "exec sleep 1d"]
    networks: [back]
    read_only: "on"
    hostname: "w-{{.Task.Slot}}"
    environment:
      NODE: "{{.Node.Hostname}}"
      NOTIFY: "{{range .}}{{.Message}}{{println}}{{end}}"
    stop_grace_period: 1s
volumes:
  data:
networks:
  front:
  back:
    internal: "true"
secrets:
  token:
    file: ./token.txt
configs:
  settings:
    content: "level=${LEVEL:-info}"
"""


def wait_for(predicate, timeout_s: float = 90.0, what: str = "condition"):
    return clusterkit.wait_for(predicate, timeout_s, what, 0.3, retry_on=(AssertionError,))


def containers(node: SandboxNode, service: str) -> list[dict]:
    label = f"label=p2porch.stack.service={service}"
    ids = docker(node.dockerd, "ps", "-aq", "--no-trunc", "--filter", label).stdout.decode().split()
    if not ids:
        return []
    found = docker(node.dockerd, "inspect", *ids, check=False).stdout
    return json.loads(found) if found.strip() else []


def running(node: SandboxNode, service: str) -> dict:
    found = [c for c in containers(node, service) if c["State"]["Running"]]
    assert found, f"no running {service} container yet"
    return found[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2cm", "10.24.0.0/24", 1) as (sb, nodes):  # ready, alive, with an overlay subnet
        workdir = tmp_path_factory.mktemp("forms")
        (workdir / "compose.yaml").write_text(COMPOSE)
        (workdir / "token.txt").write_text("s3cret-token")
        yield sb, nodes[0], workdir


def test_deploy_applies_the_cast_and_long_forms(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-d", "-c", str(workdir / "compose.yaml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    actions = {s["name"]: s["action"] for s in json.loads(result.stdout)["services"]}
    assert actions == {"cm-web": "created", "cm-worker": "created"}
    warnings = result.stderr.decode()
    assert "tmpfs option" not in warnings  # every option reaches the engine (they were warned and dropped)

    services = {s["name"]: s["spec"] for s in cli_json(sb, "n1", "service", "ls")}
    assert services["cm-web"]["replicas"] == 2  # "${REPLICAS:-2}" cast to a number
    networks = {n["name"] for n in cli_json(sb, "n1", "network", "ls")}
    assert {"cm_front", "cm_back"} <= networks
    assert "cm-token" in {s["name"] for s in cli_json(sb, "n1", "secret", "ls")}
    assert "cm-settings" in {c["name"] for c in cli_json(sb, "n1", "config", "ls")}

    web = wait_for(lambda: running(node, "web"), what="a running web container")
    host = web["HostConfig"]
    assert host["Init"] is True
    assert host["ShmSize"] == 64 * 1024**2
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/p2null", "CgroupPermissions": "rwm"}
    ]
    bindings = host["PortBindings"]["8080/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    published = web["NetworkSettings"]["Ports"]["8080/tcp"]
    assert published and all(p["HostIp"] == "127.0.0.1" and int(p["HostPort"]) > 0 for p in published)
    # a short tmpfs entry with other options is Docker's --tmpfs (HostConfig.Tmpfs), as Compose passes it
    assert host["Tmpfs"] == {
        "/run/app": "noexec,size=8388608,mode=1777",
        "/run/own": "uid=1000,gid=1001,mode=700",
    }
    assert not [m for m in host["Mounts"] if m["Type"] == "tmpfs"]
    mounted = docker(node.dockerd, "exec", web["Id"], "cat", "/proc/mounts").stdout.decode().splitlines()
    run_app = next(line.split() for line in mounted if line.split()[1] == "/run/app")
    assert {"noexec", "size=8192k"} <= set(run_app[3].split(","))  # mode=1777, a tmpfs's default, not listed
    for target, want in (("/run/app", "0:0:1777"), ("/run/own", "1000:1001:700")):
        owner = docker(node.dockerd, "exec", web["Id"], "stat", "-c", "%u:%g:%a", target).stdout.decode()
        assert owner.strip() == want, target
    assert web["Config"]["Healthcheck"]["Test"] == ["NONE"]  # disable: ${HC_OFF:-true}
    assert "TZ=UTC" in web["Config"]["Env"]
    volumes = [m for m in web["Mounts"] if m["Type"] == "volume"]
    assert [(m["Name"], m["Destination"]) for m in volumes] == [("cm_data", "/data")]
    secret = docker(node.dockerd, "exec", web["Id"], "cat", "/run/secrets/token").stdout.decode()
    assert secret == "s3cret-token"
    config = docker(node.dockerd, "exec", web["Id"], "cat", "/etc/settings.conf").stdout.decode()
    assert config == "level=info"
    worker = wait_for(lambda: running(node, "worker"), what="a running worker container")
    assert worker["HostConfig"]["ReadonlyRootfs"] is True  # read_only: "on"
    # Swarm's templates, expanded for this task
    labels = worker["Config"]["Labels"]
    assert worker["Config"]["Hostname"] == f"w-{labels[LABEL_SLOT]}"
    assert f"NODE={labels[LABEL_NODE]}" in worker["Config"]["Env"]
    # an application's template (watchtower's), not Swarm's: the container gets it as written, with a warning
    env = docker(node.dockerd, "exec", worker["Id"], "env").stdout.decode().splitlines()
    assert "NOTIFY={{range .}}{{.Message}}{{println}}{{end}}" in env
    assert "services.worker.environment (NOTIFY): not a Swarm service template" in warnings


def test_stack_rm_removes_the_services_networks_and_the_objects_it_created(cluster):
    sb, node, workdir = cluster
    # A secret made by hand with a name in the stack's style is not the stack's: it stays.
    (workdir / "mine.txt").write_text("mine")
    created = cli(sb, "n1", "secret", "create", "cm-mine", str(workdir / "mine.txt"))
    assert created.returncode == 0, created.stderr.decode()
    removed = cli_json(sb, "n1", "stack", "rm", STACK)
    assert sorted(removed["removed"]) == ["cm-web", "cm-worker"]
    assert removed["removed_objects"] == [
        {"kind": "secret", "name": "cm-token"},
        {"kind": "config", "name": "cm-settings"},
    ]
    assert {s["name"] for s in cli_json(sb, "n1", "secret", "ls")} == {"cm-mine"}
    assert not [c for c in cli_json(sb, "n1", "config", "ls") if c["name"].startswith("cm-")]
    assert not [s for s in cli_json(sb, "n1", "service", "ls") if s["name"].startswith("cm-")]

    def networks_gone():
        names = {n["name"] for n in cli_json(sb, "n1", "network", "ls")}
        assert not {"cm_front", "cm_back"} & names, names
        return True

    wait_for(networks_gone, what="the stack's networks removed")

    def containers_gone():
        left = [c["Name"] for c in containers(node, "web") + containers(node, "worker")]
        assert not left, left
        return True

    wait_for(containers_gone, what="the stack's containers removed")
