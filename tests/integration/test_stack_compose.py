"""Compose fidelity on a real one-node sandbox (issue 15): interpolation from .env, the engine options a
Compose file sets (user, working_dir, cap_add, hostname, init, logging, pids_limit, devices), depends_on with
``condition: service_healthy`` (the CLI creates in order and waits), ``restart:`` mapped onto the restart
policy, ignored keys warned about, and ``stack config`` without a daemon.

One sandbox (``p2cp``, 10.68.0.0/24) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import clusterkit
import pytest
from clusterkit import cli, cli_json, formed_cluster

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

STACK = "cp"

COMPOSE = """
x-logging: &logging
  driver: json-file
  options:
    max-size: 1m
services:
  db:
    image: p2porch/busybox:latest
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 1d"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      timeout: 1s
      retries: 30
    stop_grace_period: 1s
    logging: *logging
  app:
    image: ${IMAGE:-p2porch/busybox:latest}
    user: "${APP_UID}:${APP_UID}"
    working_dir: /tmp
    cap_add: [NET_ADMIN]
    hostname: app-host
    init: true
    read_only: true
    tmpfs: ["/tmp:size=16m"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    sysctls: [net.core.somaxconn=512]
    shm_size: 32m
    extra_hosts: ["gateway.test:10.68.0.254"]
    security_opt: [no-new-privileges:true]
    stop_signal: SIGUSR1
    pids_limit: 64
    devices: ["/dev/null:/dev/p2null"]
    ports: ["127.0.0.1:18080:80"]
    volumes: ["./created-on-the-node:/data"]
    environment:
      GREETING: ${GREETING:?GREETING must be set}
    command: ["sh", "-c", "id -u > uid; pwd > cwd; exec sleep 1d"]
    depends_on:
      db:
        condition: service_healthy
    restart: unless-stopped
    stop_grace_period: 1s
    logging: *logging
    container_name: ignored-name
  oneshot:
    image: p2porch/busybox:latest
    command: ["sh", "-c", "exit 3"]
    restart: on-failure:1
"""

DOTENV = "APP_UID=1000\nGREETING=hello from .env\n"


def wait_for(predicate, timeout_s: float = 90.0, what: str = "condition"):
    return clusterkit.wait_for(predicate, timeout_s, what, 0.3, retry_on=(AssertionError,))


def containers(node: SandboxNode, service: str) -> list[dict]:
    label = f"label=p2porch.stack.service={service}"
    ids = docker(node.dockerd, "ps", "-aq", "--no-trunc", "--filter", label).stdout.decode().split()
    if not ids:
        return []
    found = docker(node.dockerd, "inspect", *ids, check=False).stdout
    return json.loads(found) if found.strip() else []


def parse_time(text: str) -> datetime:
    """Docker's RFC 3339 times with nanoseconds -> datetime (microseconds kept)."""
    head, _, rest = text.partition(".")
    fraction = "".join(c for c in rest if c.isdigit())[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{head}.{fraction}+00:00")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2cp", "10.68.0.0/24", 1) as (sb, nodes):  # ready, alive, with an overlay subnet
        workdir = tmp_path_factory.mktemp("compose")
        (workdir / "docker-compose.yml").write_text(COMPOSE)
        (workdir / ".env").write_text(DOTENV)
        yield sb, nodes[0], workdir


def test_stack_config_resolves_without_a_daemon(cluster):
    sb, _, workdir = cluster
    result = cli(
        sb,
        "n1",
        "--host",
        "unix:///nonexistent.sock",
        "--json",
        "stack",
        "config",
        "-c",
        str(workdir / "docker-compose.yml"),
    )
    assert result.returncode == 0, result.stderr.decode()
    model = json.loads(result.stdout)
    assert model["services"]["app"]["environment"]["GREETING"] == "hello from .env"
    assert model["services"]["app"]["user"] == "1000:1000"
    assert "container_name (service app): task containers are named by p2porch" in result.stderr.decode()


def test_deploy_orders_by_depends_on_and_applies_the_engine_options(cluster):
    sb, node, workdir = cluster
    result = cli(
        sb, "n1", "--json", "stack", "deploy", "-d", "-c", str(workdir / "docker-compose.yml"), STACK
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "waiting for cp-db (healthy)" in result.stderr.decode()
    actions = {s["name"]: s["action"] for s in json.loads(result.stdout)["services"]}
    assert actions == {"cp-db": "created", "cp-oneshot": "created", "cp-app": "created"}

    def app_running():
        found = [c for c in containers(node, "app") if c["State"]["Running"]]
        assert found, "no running app container yet"
        return found[0]

    app = wait_for(app_running, what="the app container running")
    config, host = app["Config"], app["HostConfig"]
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/tmp"
    assert config["Hostname"] == "app-host"
    assert "GREETING=hello from .env" in config["Env"]
    assert host["CapAdd"] == ["CAP_NET_ADMIN"] or host["CapAdd"] == ["NET_ADMIN"]
    assert host["Init"] is True
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host["ReadonlyRootfs"] is True
    assert {"Name": "nofile", "Soft": 1024, "Hard": 2048} in host["Ulimits"]
    assert host["Sysctls"] == {"net.core.somaxconn": "512"}
    assert host["ShmSize"] == 32 * 1024**2
    assert host["ExtraHosts"] == ["gateway.test:10.68.0.254"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert config["StopSignal"] == "SIGUSR1"
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    assert host["PidsLimit"] == 64
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/p2null", "CgroupPermissions": "rwm"}
    ]
    # A short-syntax bind of a missing directory: created on the node, as Compose does.
    assert (workdir / "created-on-the-node").is_dir()
    tmpfs = [m for m in host["Mounts"] if m["Type"] == "tmpfs"]
    assert [(m["Target"], m["TmpfsOptions"]["SizeBytes"]) for m in tmpfs] == [("/tmp", 16 * 1024**2)]
    # The process really runs as that user, in that directory.
    uid = wait_for(
        lambda: docker(node.dockerd, "exec", app["Id"], "cat", "/tmp/uid").stdout.decode().strip(),
        what="the app to write its uid",
    )
    assert uid == "1000"
    cwd = docker(node.dockerd, "exec", app["Id"], "cat", "/tmp/cwd").stdout.decode().strip()
    assert cwd == "/tmp"
    # the task's own process, not an exec (whose soft limit varies with the runc build): soft, hard
    limits = docker(
        node.dockerd,
        "exec",
        app["Id"],
        "sh",
        "-c",
        "grep 'Max open files' /proc/1/limits; cat /proc/sys/net/core/somaxconn",
    )
    assert limits.stdout.decode().split()[3:] == ["1024", "2048", "files", "512"]
    assert docker(node.dockerd, "exec", app["Id"], "test", "-c", "/dev/p2null", check=False).returncode == 0
    readonly = docker(node.dockerd, "exec", app["Id"], "touch", "/etc/x", check=False)
    assert readonly.returncode != 0  # read-only root filesystem

    # depends_on service_healthy: app's container was created after db's first passing health check.
    db = next(c for c in containers(node, "db") if c["State"]["Running"])
    passes = [parse_time(h["End"]) for h in db["State"]["Health"]["Log"] if h["ExitCode"] == 0]
    assert passes, db["State"]["Health"]
    first_pass = min(passes)
    assert parse_time(app["Created"]) >= first_pass, (app["Created"], first_pass)


def test_restart_key_maps_onto_the_restart_policy(cluster):
    sb, node, _ = cluster
    services = {s["name"]: s for s in cli_json(sb, "n1", "service", "ls")}
    assert services["cp-oneshot"]["spec"]["restart"]["condition"] == "on-failure"
    assert services["cp-oneshot"]["spec"]["restart"]["max_attempts"] == 1
    assert services["cp-app"]["spec"]["restart"]["condition"] == "any"

    def failed_twice():
        tasks = [t for t in cli_json(sb, "n1", "stack", "ps", STACK) if t["service"] == "cp-oneshot"]
        assert len(tasks) >= 2 and all(t["state"] == "failed" for t in tasks), [
            (t["name"], t["state"]) for t in tasks
        ]
        return tasks

    tasks = wait_for(failed_twice, what="oneshot to fail once and be retried once")
    assert all(t["exit_code"] == 3 for t in tasks)
    # A later observable write (a redeploy, answered after the leader's rounds) finds no third attempt.
    cli_json(sb, "n1", "stack", "deploy", "-d", "-c", str(Path(cluster[2]) / "docker-compose.yml"), STACK)
    again = [t for t in cli_json(sb, "n1", "stack", "ps", STACK) if t["service"] == "cp-oneshot"]
    assert len(again) == 2


def test_missing_required_variable_is_an_error_naming_it_and_the_field(cluster):
    sb, _, workdir = cluster
    bad = workdir / "bad"
    bad.mkdir(exist_ok=True)
    (bad / "docker-compose.yml").write_text(COMPOSE.replace("privileged", "x") + "\n")
    result = cli(sb, "n1", "stack", "deploy", "-d", "-c", str(bad / "docker-compose.yml"), STACK)
    assert result.returncode == 2
    assert (
        "services.app.environment.GREETING: required variable GREETING is not set" in result.stderr.decode()
    )
