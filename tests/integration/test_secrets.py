"""Secrets and configs on a real 2-node sandbox (issue 22).

One cluster (``p2se``, 10.58.0.0/24) for the module. A secret and a config are created on n1 and
delivered to a task pinned to n2 (owner, mode, content checked inside the container through n2's
engine); every file under both nodes' data dirs (Raft journal and snapshots, p2porch and dockerd logs,
Docker's data root) is searched for the plaintext; removal is refused while used; a rotation rolls a
start-first service with no moment without a running task; the task files go when the task stops.
"""

from __future__ import annotations

import os
import secrets
import time

from clusterkit import IMAGE, api, api_get, cli, cli_json, cluster_fixture, wait_for

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

NAMES = ("n1", "n2")


cluster = cluster_fixture("p2se", "10.58.0.0/24", 2)


def files_containing(root: str, needle: bytes) -> list[str]:
    """Every regular file under ``root`` whose bytes contain ``needle`` (grep -r, binary included)."""
    hits = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb") as fh:
                    if needle in fh.read():
                        hits.append(path)
            except OSError:
                continue
    return hits


def container_of(node: SandboxNode, service: str) -> str:
    ids = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", f"label=p2porch.service={service}")
    found = ids.stdout.decode().split()
    return found[0] if len(found) == 1 else ""


def in_container(node: SandboxNode, cid: str, *argv: str) -> str:
    result = docker(node.dockerd, "exec", cid, *argv, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def running(node: SandboxNode, service: str) -> list[dict]:
    rows = api_get(node, f"/services/{service}/tasks", all="false")
    return [t for t in rows if t["state"] == "running"]


def remove_service(nodes: list[SandboxNode], service: str) -> None:
    with api(nodes[0]) as client:
        response = client.delete(f"/services/{service}")
        assert response.status_code in (200, 404), response.text
    wait_for(lambda: not any(container_of(n, service) for n in nodes), what=f"{service} containers gone")


def task_dirs(node: SandboxNode) -> list[str]:
    root = os.path.join(node.run_dir, "task-files")
    return [d for d in os.listdir(root) if not d.startswith(".")] if os.path.isdir(root) else []


def test_secret_delivered_on_another_node_encrypted_everywhere_else(cluster, tmp_path):
    sb, nodes = cluster
    plaintext = ("p2se-" + secrets.token_hex(16)).encode()
    config_text = ("listen=80 marker-" + secrets.token_hex(8)).encode()
    (tmp_path / "db").write_bytes(plaintext)
    (tmp_path / "conf").write_bytes(config_text)
    created = cli_json(sb, "n1", "secret", "create", "db", str(tmp_path / "db"))
    assert created["version"] == 1 and plaintext.decode() not in str(created)
    assert cli_json(sb, "n1", "config", "create", "app.conf", str(tmp_path / "conf"))["size"] == len(
        config_text
    )
    try:
        service = cli(
            sb, "n1", "service", "create", "-d", "--name", "vault", "--constraint", "node.name==n2",
            "--secret", "src=db,uid=1000,gid=1001,mode=0400", "--config", "src=app.conf,target=/etc/app.conf",
            "--stop-grace-period", "1s", IMAGE, "sleep", "3600",
        )  # fmt: skip
        assert service.returncode == 0, service.stderr.decode()
        wait_for(lambda: len(running(nodes[0], "vault")) == 1, 90, "the task runs on n2")
        cid = wait_for(lambda: container_of(nodes[1], "vault"), what="its container on n2")
        assert in_container(nodes[1], cid, "cat", "/run/secrets/db").encode() == plaintext
        assert in_container(nodes[1], cid, "stat", "-c", "%u %g %a", "/run/secrets/db").split() == [
            "1000", "1001", "400",
        ]  # fmt: skip
        assert in_container(nodes[1], cid, "cat", "/etc/app.conf").encode() == config_text
        write = docker(nodes[1].dockerd, "exec", cid, "sh", "-c", "echo x > /run/secrets/db", check=False)
        assert write.returncode != 0  # read-only in the container
        # nowhere else: not on n1 (no task there), not in any data dir, log, engine data root or output
        assert task_dirs(nodes[0]) == []
        for node in nodes:
            assert files_containing(node.data_dir, plaintext) == [], node.name
            assert files_containing(node.data_dir, config_text) == [], node.name
        inspect = docker(nodes[1].dockerd, "inspect", cid).stdout
        assert plaintext not in inspect and b"P2PORCH_SECRET" not in inspect
        for argv in (("service", "inspect", "vault"), ("secret", "inspect", "db"), ("secret", "ls")):
            out = cli(sb, "n1", "--json", *argv)
            assert out.returncode == 0 and plaintext not in out.stdout + out.stderr, argv
        # removal refused while used, naming the service
        refused = cli(sb, "n1", "secret", "rm", "db")
        assert refused.returncode != 0 and b"vault" in refused.stderr, refused.stderr
        # a reference to a missing secret is refused before anything is written
        missing = cli(
            sb, "n1", "service", "create", "-d", "--name", "nosecret", "--secret", "nope", IMAGE, "true"
        )
        assert missing.returncode != 0 and b"nope" in missing.stderr
        assert all(s["name"] != "nosecret" for s in api_get(nodes[0], "/services"))
    finally:
        remove_service(nodes, "vault")
    # the files go with the last task that used them; then the secret can be removed
    wait_for(lambda: task_dirs(nodes[1]) == [], what="n2's task files removed")
    assert cli(sb, "n1", "secret", "rm", "db").returncode == 0
    assert cli(sb, "n1", "config", "rm", "app.conf").returncode == 0


def test_rotation_rolls_a_start_first_service_without_downtime(cluster, tmp_path):
    sb, nodes = cluster
    first, second = (
        b"rotate-one-" + secrets.token_hex(4).encode(),
        b"rotate-two-" + secrets.token_hex(4).encode(),
    )
    (tmp_path / "v1").write_bytes(first)
    (tmp_path / "v2").write_bytes(second)
    assert cli(sb, "n1", "secret", "create", "api-key", str(tmp_path / "v1")).returncode == 0
    try:
        created = cli(
            sb, "n1", "service", "create", "-d", "--name", "roll", "--replicas", "2", "--secret", "api-key",
            "--update-order", "start-first", "--stop-grace-period", "1s", IMAGE, "sleep", "3600",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr.decode()
        wait_for(lambda: len(running(nodes[0], "roll")) == 2, 90, "2 running tasks")
        before = {t["id"] for t in running(nodes[0], "roll")}
        updated = cli_json(sb, "n1", "secret", "update", "api-key", str(tmp_path / "v2"))
        assert updated["version"] == 2 and updated["rolled_services"] == ["roll"]
        fewest = 2
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = running(nodes[0], "roll")
            fewest = min(fewest, len(now))
            ids = {t["id"] for t in now}
            if len(now) == 2 and not ids & before:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the service did not roll to new tasks")
        assert fewest >= 2, "start-first rotation left fewer than 2 running tasks"

        def delivered() -> list[bytes]:  # old containers may still be stopping: wait until only new ones run
            values = []
            for node in nodes:
                out = docker(node.dockerd, "ps", "-q", "--filter", "label=p2porch.service=roll").stdout
                for cid in out.decode().split():
                    read = docker(node.dockerd, "exec", cid, "cat", "/run/secrets/api-key", check=False)
                    values.append(read.stdout if read.returncode == 0 else b"<stopping>")
            return values if len(values) == 2 and all(v == second for v in values) else []

        wait_for(delivered, 60, "both running containers see version 2")
        for node in nodes:
            assert files_containing(node.data_dir, second) == [], node.name
    finally:
        remove_service(nodes, "roll")
    assert cli(sb, "n1", "secret", "rm", "api-key").returncode == 0


def test_compose_stack_with_secrets_and_configs_deploys(cluster, tmp_path):
    sb, nodes = cluster
    password = b"compose-pw-" + secrets.token_hex(6).encode()
    (tmp_path / "pw.txt").write_bytes(password)
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n"
        "  app:\n"
        f"    image: {IMAGE}\n"
        "    command: [sleep, '3600']\n"
        "    stop_grace_period: 1s\n"
        "    secrets:\n"
        "      - source: db_password\n"
        "        target: password\n"
        "        mode: 0400\n"
        "    configs: [motd]\n"
        "secrets:\n"
        "  db_password: {file: ./pw.txt}\n"
        "configs:\n"
        "  motd: {content: 'hello from compose'}\n"
    )
    # an external secret that does not exist is refused before anything is written
    (tmp_path / "bad.yaml").write_text(
        f"services:\n  a:\n    image: {IMAGE}\n    secrets: [ext]\nsecrets:\n  ext: {{external: true}}\n"
    )
    refused = cli(sb, "n1", "stack", "deploy", "-d", "-c", str(tmp_path / "bad.yaml"), "bad")
    assert refused.returncode != 0 and b"ext" in refused.stderr
    assert all(not s["name"].startswith("bad-") for s in api_get(nodes[0], "/services"))
    try:
        deployed = cli(sb, "n1", "stack", "deploy", "-d", "-c", str(compose), "cs")
        assert deployed.returncode == 0, deployed.stderr.decode()
        assert cli_json(sb, "n1", "secret", "inspect", "cs-db_password")["version"] == 1
        wait_for(lambda: len(running(nodes[0], "cs-app")) == 1, 90, "the stack's task runs")

        def seen() -> tuple[bytes, bytes] | None:
            for node in nodes:
                cid = container_of(node, "cs-app")
                if cid:
                    pw = docker(node.dockerd, "exec", cid, "cat", "/run/secrets/password", check=False)
                    motd = docker(node.dockerd, "exec", cid, "cat", "/motd", check=False)
                    return pw.stdout, motd.stdout
            return None

        assert wait_for(seen, what="the stack container") == (password, b"hello from compose")
        # deploying the same files again changes nothing (no new version, no roll)
        again = cli(sb, "n1", "stack", "deploy", "-d", "-c", str(compose), "cs")
        assert again.returncode == 0, again.stderr.decode()
        assert cli_json(sb, "n1", "secret", "inspect", "cs-db_password")["version"] == 1
        for node in nodes:
            assert files_containing(node.data_dir, password) == [], node.name
    finally:
        cli(sb, "n1", "stack", "rm", "cs")
        wait_for(lambda: not any(container_of(n, "cs-app") for n in nodes), what="stack containers gone")
    # stack rm removed the secret and the config stack deploy created, as docker stack rm does
    assert "cs-db_password" not in {s["name"] for s in cli_json(sb, "n1", "secret", "ls")}
    assert "cs-motd" not in {c["name"] for c in cli_json(sb, "n1", "config", "ls")}
