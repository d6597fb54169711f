"""Shared helpers of the two-site sandbox tests: form the cluster across the NATs, read its views."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator

from clusterkit import api_get, cli, cli_json, wait_for

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode

SITE1, SITE2 = ("n1", "n2", "n3"), ("n4", "n5", "n6")
SERVE = "mkdir -p /www && echo hello-from-$P2PORCH_NODE > /www/index.html && exec httpd -f -p 80 -h /www"
DEAD_LINE = re.compile(r"gossip: \w+ is dead")
TASK_ADDR = re.compile(r"Address(?: \d+)?:\s+(10\.240\.\d+\.\d+)")
#: the gossip preset the sandbox daemons run (the default, fast-lan, is what the simulation chose for 40 ms)
PRESET = os.environ.get("P2PORCH_MULTISITE_PRESET", "fast-lan")


def node_rows(sb: Sandbox, node: str) -> dict[str, dict]:
    return {row["name"]: row for row in cli_json(sb, node, "node", "ls")}


def running(node: SandboxNode, service: str, count: int | None = None) -> list[dict] | None:
    """The running tasks (with an address) of ``service`` that should run; with ``count``: None unless
    exactly that many tasks should run and all of them do."""
    tasks = api_get(node, f"/services/{service}/tasks", all="false")
    live = [t for t in tasks if t["state"] == "running" and t["address"]]
    if count is not None and (len(live) != count or len(tasks) != count):
        return None
    return live


def in_task(sb: Sandbox, node: SandboxNode, container: str, *argv: str) -> str:
    result = docker(node.dockerd, "exec", container, *argv, check=False)
    return result.stdout.decode()


def containers(sb: Sandbox, node: str, service: str) -> set[str]:
    """Ids of the running containers of ``service`` on ``node`` (what its dockerd runs, not the state)."""
    out = docker(
        sb.node_by_name(node).dockerd,
        "ps", "-q", "--no-trunc", "--filter", f"label=p2porch.service={service}",
    ).stdout.decode()  # fmt: skip
    return set(out.split())


def dead_events(sb: Sandbox) -> list[str]:
    """Every 'gossip: X is dead' line any daemon logged (a false death shows here)."""
    lines = []
    for index in range(1, 7):
        with open(sb.node(index).p2porch_log, errors="replace") as handle:
            lines += [f"n{index}: {line.strip()}" for line in handle if DEAD_LINE.search(line)]
    return lines


def keep_logs(sb: Sandbox, name: str) -> None:
    """Copy every daemon's log to ``P2PORCH_KEEP_LOGS`` (a directory) before the sandbox goes away."""
    target = os.environ.get("P2PORCH_KEEP_LOGS")
    if not target:
        return
    os.makedirs(target, exist_ok=True)
    for index in range(1, 7):
        node = sb.node(index)
        if os.path.exists(node.p2porch_log):
            shutil.copy(node.p2porch_log, os.path.join(target, f"{name}-{node.name}.log"))


@contextlib.contextmanager
def two_sites(name: str, wan: str, **env: str) -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
    """A formed two-site cluster (3 + 3 hosts, 40 ms, 1 % loss); daemons get ``env`` (P2PORCH_* settings)
    and the gossip preset :data:`PRESET`. Joins cross the NAT (site 1's through its hairpin)."""
    sb = Sandbox(name, subnet=wan, sites=2, nodes_per_site=3, wan_delay_ms=40, wan_loss_percent=1)
    settings = {"P2PORCH_GOSSIP_PRESET": PRESET, **env}
    saved = {key: os.environ.get(key) for key in settings}
    try:
        os.environ.update(settings)
        try:
            nodes = sb.up()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        public1 = sb.node(1).public_addr
        token = cli_json(sb, "n1", "init")["token"]
        for node in (*SITE1[1:], *SITE2):
            result = cli(sb, node, "join", f"{public1}:7948", "--token", token)
            assert result.returncode == 0, result.stderr.decode()

        def formed():
            rows = api_get(nodes[0], "/nodes")
            return len(rows) == 6 and all(r["status"] == "ready" and r["subnet"] for r in rows)

        wait_for(formed, timeout_s=90, what="6 ready nodes across the NAT")
        yield sb, nodes
    finally:
        keep_logs(sb, name)
        sb.down()


def wait_settled(sb: Sandbox, leader_view: str = "n1", timeout_s: float = 60) -> None:
    """Until every node has quorum and at least the state version ``leader_view`` has; the failure
    names the nodes behind (term, commit index, version, leader)."""
    behind: dict[str, object] = {}

    def settled():
        try:
            version = cli_json(sb, leader_view, "status")["cluster"]["state_version"]
            views = {n: cli_json(sb, n, "status")["cluster"] for n in (*SITE1, *SITE2)}
        except AssertionError:  # a node restarting its store answers an error for a moment
            return False
        behind.clear()
        behind.update(
            {
                n: {k: v.get(k) for k in ("term", "commit_index", "state_version", "leader", "has_quorum")}
                for n, v in views.items()
                if not (v["has_quorum"] and v["state_version"] >= version)
            }
        )
        return not behind

    try:
        wait_for(settled, timeout_s=timeout_s, what="every node caught up with the leader")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; behind: {behind}") from None


def voters_by_region(sb: Sandbox, node: str = "n1") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in node_rows(sb, node).values():
        if row["raft_role"] in ("leader", "voter"):
            out.setdefault(row["labels"]["region"], []).append(row["name"])
    return {region: sorted(names) for region, names in out.items()}
