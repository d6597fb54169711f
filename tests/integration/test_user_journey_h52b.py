"""The h52b user journey on a live 3-node cluster (``p52b``, 10.95.46.0/24): a Compose stack evolving as
a team redeploys it (docs/testing.md, "The user journey (h52b)").

- A redeploy that adds a network says so (``created network shop_back``), as it says a new secret; before,
  only the services and secrets were named.
- A redeploy that moves ``web`` off ``shop_back`` (pruned: no service uses it any more) and bumps its image
  to a tag no node can pull, under ``update_config.failure_action: rollback``: the rollback point names
  the pruned network, which the FSM refuses. On main the refusal raised out of the leader's scheduler at
  every round ("local: scheduler: failed: NotFoundError: network 'shop_back' not found" in ``status``):
  no task was placed anywhere in the cluster again, a ``service scale`` of another service waited out its
  timeout, and so did the deploy. The update now pauses, naming the network; ``network create
  shop_back`` then ``service rollback`` restores the old spec.
- A host whose data dir was wiped is told to ``node rm`` its old record (down) before it joins again,
  where the refusal spoke of NAT.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import clusterkit as kit
from clusterkit import IMAGE, cli, cluster_fixture, wait_for

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.system import pid_alive, read_pid

cluster = cluster_fixture("p52b", "10.95.46.0/24")

SLEEP = "command: [sh, -c, exec sleep 3600]\n    stop_grace_period: 1s"


def _stack(image: str, web_networks: str, networks: str, api: bool) -> str:
    """``web`` (2 replicas, a rollback on failure) and ``worker`` on ``front``; ``api`` on ``back``."""
    text = (
        f"services:\n  web:\n    image: {image}\n    {SLEEP}\n    networks: [{web_networks}]\n"
        "    deploy:\n      replicas: 2\n      update_config: {parallelism: 2, delay: 1s, monitor: 2s, "
        "order: start-first, failure_action: rollback}\n"
        f"  worker:\n    image: app:v1\n    {SLEEP}\n    networks: [front]\n"
    )
    if api:
        text += f"  api:\n    image: app:v1\n    {SLEEP}\n    networks: [back]\n"
    return text + f"networks: {networks}\n"


V1 = _stack("app:v1", "front", "{front: {}}", api=False)
V2 = _stack("app:v2", "front, back", "{front: {}, back: {}}", api=True)
V3 = _stack("app:v3", "front", "{front: {}}", api=False)  # app:v3: no node has it, none can pull it


def _deploy(sb, path: Path, text: str, *flags: str):
    path.write_text(text)
    return cli(sb, "n1", "stack", "deploy", *flags, "-c", str(path), "shop")


def test_a_failed_update_whose_rollback_point_names_a_pruned_network_pauses(cluster, tmp_path) -> None:
    sb, nodes = cluster
    for node in nodes:
        for tag in ("app:v1", "app:v2"):
            docker(node.dockerd, "tag", IMAGE, tag)
    compose = tmp_path / "docker-compose.yml"
    try:
        first = _deploy(sb, compose, V1, "--quiet")
        assert first.returncode == 0, first.stderr.decode()
        assert b"created network shop_front" in first.stderr, first.stderr
        second = _deploy(sb, compose, V2, "--quiet", "--prune", "--resolve-image", "always")
        assert second.returncode == 0, second.stderr.decode()
        assert b"created network shop_back" in second.stderr, second.stderr  # main: not said
        third = _deploy(sb, compose, V3, "--converge-timeout", "20")
        assert b"removed network shop_back" in third.stderr, third.stderr
        assert b"removed    shop-api" in third.stdout, third.stdout

        def paused() -> str:
            fmt = "{{.UpdateStatus.State}} {{.UpdateStatus.Message}}"
            shown = cli(sb, "n2", "service", "inspect", "-f", fmt, "shop_web").stdout.decode()
            assert shown.startswith("paused "), shown
            return shown

        shown = wait_for(paused, 90, "shop-web's update paused", 1, retry_on=(AssertionError,))
        assert "its previous spec's network 'shop_back' no longer exists" in shown, shown
        for node in nodes:  # only the leader's status shows its scheduler's health: read every node's
            status = cli(sb, node.name, "status").stdout.decode()
            assert "scheduler: failed" not in status, status  # main: the scheduler crash-looped
        scaled = cli(sb, "n3", "service", "scale", "--converge-timeout", "60", "shop_worker=2")
        assert scaled.returncode == 0, scaled.stderr.decode()  # main: nothing placed, timed out
        kit.running_tasks(nodes[0], "shop-worker", 2)
        refused = cli(sb, "n1", "service", "rollback", "-d", "shop_web")
        assert refused.returncode == 1 and b"shop_back" in refused.stderr, refused.stderr
        assert cli(sb, "n1", "network", "create", "shop_back").returncode == 0
        back = cli(sb, "n1", "service", "rollback", "--converge-timeout", "60", "shop_web")
        assert back.returncode == 0, back.stderr.decode()
        image = cli(
            sb, "n1", "service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "shop_web"
        )
        assert image.stdout.strip() == b"app:v2", image.stdout
    finally:
        cli(sb, "n1", "stack", "rm", "shop")
        cli(sb, "n1", "network", "rm", "shop_back")


def test_a_host_whose_data_dir_was_wiped_is_told_to_node_rm_its_old_record_then_joins(cluster) -> None:
    """A host that lost its data dir starts a daemon in no cluster; its join was refused speaking of NAT
    (its old record, down, advertises the same address and ports). It is now told to ``node rm`` that
    record, and joins once it is removed."""
    sb, nodes = cluster
    wiped = nodes[2]
    pid = read_pid(wiped.p2porch_pidfile)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, "the daemon gone")
    shutil.rmtree(wiped.p2porch_data_dir)
    os.unlink(wiped.p2porch_pidfile)
    sb.up(len(nodes))  # its daemon again, in no cluster
    wait_for(lambda: kit.node_row(nodes[0], wiped.name)["status"] == "down", 60, "the old record down", 1)
    token = kit.cli_json(sb, "n1", "token")["token"]
    refused = cli(sb, wiped.name, "join", nodes[0].address, "--token", token)
    assert refused.returncode != 0
    said = refused.stderr.decode()
    assert "which is down" in said and f"p2porch node rm {wiped.name}" in said, said  # main: "behind one NAT"
    assert cli(sb, "n1", "node", "rm", wiped.name).returncode == 0
    joined = cli(sb, wiped.name, "join", nodes[0].address, "--token", token)
    assert joined.returncode == 0, joined.stderr.decode()
    wait_for(lambda: kit.all_ready(nodes[0], len(nodes)), 90, "3 ready nodes again")
