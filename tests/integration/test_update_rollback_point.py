"""A rollback point on every update, and `stack deploy --dry-run`, through the CLI on a real 2-node
sandbox (``p2up``, 10.48.0.0/24, one cluster for the module).

* Every `service update` that changes something keeps the spec it replaced (Swarm's ``PreviousSpec``):
  a scale is rolled back by `service rollback` without restarting a task, a second rollback swaps back,
  an update that changes nothing writes nothing and says so, and an update whose tasks fail rolls
  itself back (``--update-failure-action rollback``) to the spec before it, even when the last update
  before it only changed the policy; after that automatic rollback `service rollback` is refused (no
  previous spec, as Swarm's) instead of rolling the failed update out again.
* `stack deploy --dry-run` asks the daemon what the deploy would change: exit 0 and the plan (services
  with the fields an update changes, networks, secrets, volumes) with nothing written; exit 2 naming the
  field when the deploy would be refused (a port another service publishes, an external secret that
  does not exist).
"""

from __future__ import annotations

import pytest
from clusterkit import IMAGE, api_get, cli, cli_json, formed_cluster, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2up", "10.48.0.0/24", 2) as (sb, nodes):
        yield sb, nodes, tmp_path_factory.mktemp("dryrun")


def running_ids(node, service: str) -> set[str]:
    tasks = api_get(node, f"/services/{service}/tasks", all="false")
    return {t["id"] for t in tasks if t["state"] == "running"}


def inspect(sb, service: str) -> dict:
    return cli_json(sb, "n1", "service", "inspect", service)


def test_every_update_keeps_a_rollback_point_and_a_scale_rolls_back_without_restarts(cluster):
    sb, nodes, _ = cluster
    created = cli(
        sb, "n1", "service", "create", "-d", "--name", "rb", "--replicas", "2", "--stop-grace-period", "1s",
        "--update-monitor", "3s", IMAGE, "sleep", "3600",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr.decode()
    wait_for(lambda: len(running_ids(nodes[0], "rb")) == 2, 90, "2 running tasks")
    scaled = cli(sb, "n1", "service", "update", "-d", "rb", "--replicas", "3")
    assert scaled.returncode == 0, scaled.stderr.decode()
    wait_for(lambda: len(running_ids(nodes[0], "rb")) == 3, 60, "3 running tasks")
    three = running_ids(nodes[0], "rb")

    back = cli(sb, "n1", "service", "rollback", "rb")  # waits for convergence
    assert back.returncode == 0, back.stderr.decode()
    assert back.stdout.decode().strip() == "rb"  # the SERVICE given, as Docker's
    assert back.stderr.decode().startswith("rollback: manually requested rollback\n")  # Docker's progress
    wait_for(lambda: len(running_ids(nodes[0], "rb")) == 2, 60, "2 running tasks again")
    assert running_ids(nodes[0], "rb") < three, "a rollback of replicas started no new task"
    view = inspect(sb, "rb")
    assert view["spec"]["replicas"] == 2 and view["update_status"]["state"] == "rollback_completed"

    again = cli(sb, "n1", "service", "rollback", "rb")  # the second swaps back
    assert again.returncode == 0 and again.stdout.decode().strip() == "rb"
    assert again.stderr.decode().startswith("rollback: manually requested rollback\n")
    wait_for(lambda: len(running_ids(nodes[0], "rb")) == 3, 60, "3 running tasks after the second rollback")
    version = inspect(sb, "rb")["version"]
    same = cli(sb, "n1", "service", "update", "rb", "--replicas", "3")
    assert same.returncode == 0, same.stderr.decode()
    assert "rb: nothing changed (no rollback point recorded)" in same.stderr.decode()
    assert inspect(sb, "rb")["version"] == version

    # a policy change keeps a point too; the failing update after it rolls back to that point
    policy = cli(sb, "n1", "service", "update", "-d", "rb", "--update-failure-action", "rollback")
    assert policy.returncode == 0, policy.stderr.decode()
    before = running_ids(nodes[0], "rb")
    failing = cli(sb, "n1", "service", "update", "-d", "rb", "--args", "sh -c 'exit 3'")
    assert failing.returncode == 0, failing.stderr.decode()

    def rolled_back() -> dict | None:
        view = inspect(sb, "rb")
        status = view.get("update_status") or {}
        return view if status.get("state") == "rollback_completed" and view["running"] == 3 else None

    view = wait_for(rolled_back, 120, "the failing update rolled itself back")
    assert view["spec"]["command"] == ["sleep", "3600"] and view["spec"]["update"]["failure_action"] == (
        "rollback"
    )
    assert view["update_status"]["reason"].startswith("update failed:"), view["update_status"]
    assert running_ids(nodes[0], "rb") & before, "the slots the update had not reached kept their task"
    # as Swarm's automatic rollback clears PreviousSpec: a `service rollback` now is refused, where it
    # rolled the failed update out again (walk h45)
    again = cli(sb, "n1", "service", "rollback", "-d", "rb")
    assert again.returncode == 1 and "does not have a previous spec" in again.stderr.decode(), again
    assert inspect(sb, "rb")["spec"]["command"] == ["sleep", "3600"]
    print(f"rollback point: scale rolled back with no new task; automatic rollback: {view['update_status']}")
    assert cli(sb, "n1", "service", "rm", "rb").returncode == 0


SHOP = """
services:
  web:
    image: p2porch/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ports: ["8090:80"]
    deploy:
      replicas: 1
  db:
    image: p2porch/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    volumes: [data:/data]
    secrets: [token]
volumes:
  data: {}
secrets:
  token: {file: token.txt}
"""
CACHE = "  cache:\n    image: p2porch/busybox:latest\n    command: [sleep, '3600']\n"


def test_stack_deploy_dry_run_prints_the_plan_writes_nothing_and_exits_2_when_refused(cluster):
    sb, nodes, workdir = cluster
    (workdir / "token.txt").write_text("t0k3n")
    first = workdir / "shop.yml"
    first.write_text(SHOP)
    deployed = cli(sb, "n1", "stack", "deploy", "-c", str(first), "shop")
    assert deployed.returncode == 0, deployed.stderr.decode()
    versions = {s["name"]: s["version"] for s in api_get(nodes[0], "/services")}

    changed = workdir / "shop-v2.yml"
    changed.write_text(
        SHOP.replace(
            "replicas: 1", "replicas: 2\n      placement: {constraints: [node.labels.zone==x]}"
        ).replace("volumes:\n  data: {}", CACHE + "volumes:\n  data: {}")
    )
    plan = cli_json(sb, "n1", "stack", "deploy", "--dry-run", "-c", str(changed), "shop")
    actions = {s["name"]: (s["action"], s.get("fields")) for s in plan["services"]}
    assert actions == {
        "shop-web": ("updated", ["constraints", "replicas"]),
        "shop-db": ("unchanged", None),
        "shop-cache": ("created", None),
    }, plan
    assert plan["objects"] == [{"kind": "secret", "name": "shop-token", "key": "token", "action": "exists"}]
    assert plan["volumes"] == [{"name": "shop_data", "services": ["shop-db"]}]
    assert plan["warnings"] == [
        "services.web: no node can run its tasks now (constraint node.labels.zone==x (2)): they would "
        "stay pending"
    ]
    text = cli(sb, "n1", "stack", "deploy", "--dry-run", "-c", str(changed), "shop")
    assert text.returncode == 0, text.stderr.decode()
    out = text.stdout.decode()
    assert "updated    service  shop-web  (constraints, replicas)" in out, out
    assert out.rstrip().endswith("stack shop: dry run, nothing written; the deploy would succeed"), out
    assert "warning: services.web: no node can run its tasks now" in text.stderr.decode()
    assert {s["name"]: s["version"] for s in api_get(nodes[0], "/services")} == versions  # nothing written

    # refusals: exit 2 naming the field, nothing written
    created = cli(
        sb, "n1", "service", "create", "-d", "--name", "other", "--publish", "8091:80", IMAGE, "sleep", "1d"
    )
    assert created.returncode == 0, created.stderr.decode()
    taken = workdir / "shop-taken.yml"
    taken.write_text(SHOP.replace("8090:80", "8091:80"))
    refused = cli(sb, "n1", "stack", "deploy", "--dry-run", "-c", str(taken), "shop")
    assert refused.returncode == 2, refused.stderr.decode()
    assert "dry run: the deploy would be refused" in refused.stderr.decode()
    assert "services.web.ports: ingress port 8091/tcp is already published by" in refused.stderr.decode()
    external = workdir / "shop-external.yml"
    external.write_text(SHOP.replace("token: {file: token.txt}", "token: {external: true, name: nope}"))
    missing = cli(sb, "n1", "stack", "deploy", "--dry-run", "-c", str(external), "shop")
    assert missing.returncode == 2, missing.stderr.decode()
    assert "secrets.token: external secret 'nope' not found" in missing.stderr.decode()
    after = {s["name"]: s["version"] for s in api_get(nodes[0], "/services") if s["name"] != "other"}
    assert after == versions
    assert cli(sb, "n1", "stack", "rm", "shop").returncode == 0
    assert cli(sb, "n1", "service", "rm", "other").returncode == 0
    print(f"dry run: {len(plan['services'])} services planned, 2 refusals exit 2, versions unchanged")
