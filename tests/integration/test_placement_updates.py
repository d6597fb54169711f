"""Placement changes of a running service roll its tasks as Swarm's do (``p4sc``, 10.94.0.0/24).

Constraints that no node meets: with the default update config (stop-first, parallelism 1) the first
slot's task is stopped (``constraints no longer met``) and its replacement stays pending with the
scheduler's explanation, the other slot keeps its task. A placement preference added (spread over a
zone label) replaces every task, and the replacements spread over the zones."""

from __future__ import annotations

from clusterkit import IMAGE, all_tasks, cli, cluster_fixture, containers, running_tasks, service, tasks
from clusterkit import wait_retrying as wait_for

cluster = cluster_fixture("p4sc", "10.94.0.0/24")

SLEEP = ("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")


def test_constraints_no_node_meets_stop_one_task_and_leave_its_replacement_pending(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "pin", "--replicas", "2", "--stop-grace-period", "1s", IMAGE, *SLEEP):
        running_tasks(nodes[0], "pin", 2, 90)
        updated = cli(sb, "n1", "service", "update", "-d", "pin", "--constraint-add", "node.labels.ssd==true")
        assert updated.returncode == 0, updated.stderr.decode()

        def one_pending() -> list[dict] | None:
            now = tasks(nodes[0], "pin")
            pending = [t for t in now if t["state"] == "pending"]
            running = [t for t in now if t["state"] == "running"]
            return now if len(pending) == 1 and len(running) == 1 else None

        now = wait_for(one_pending, 60, "one slot stopped, its replacement pending")
        (pending,) = [t for t in now if t["state"] == "pending"]
        assert pending["node"] in (None, "", "-") and "constraint node.labels.ssd==true" in pending["message"]
        stopped = [t for t in all_tasks(nodes[0], "pin") if t["desired_state"] == "shutdown"]
        assert [t["message"] for t in stopped] == ["constraints no longer met"], stopped
        live = sum(len(containers(n, "pin")) for n in nodes)
        assert live == 1, live
        table = cli(sb, "n2", "service", "ps", "pin").stdout.decode()
        print(f"service ps pin:\n{table}")
        assert "constraint node.labels.ssd==true" in table and "constraints no longer met" in table


def test_a_placement_preference_added_rolls_the_tasks_over_the_zones(cluster):
    sb, nodes = cluster
    zones = {"n1": "a", "n2": "a", "n3": "b"}
    for name, zone in zones.items():
        assert cli(sb, "n1", "node", "update", name, "--label-add", f"zone={zone}").returncode == 0
    args = ["--replicas", "2", "--stop-grace-period", "1s", "--constraint", "node.labels.zone==a"]
    with service(sb, nodes, "zoned", *args, IMAGE, *SLEEP):
        before = running_tasks(nodes[0], "zoned", 2, 90)
        assert {zones[t["node"]] for t in before} == {"a"}
        updated = cli(
            sb, "n1", "service", "update", "-d", "zoned",
            "--constraint-rm", "node.labels.zone==a", "--placement-pref", "spread=node.labels.zone",
        )  # fmt: skip
        assert updated.returncode == 0, updated.stderr.decode()

        def spread() -> list[dict] | None:
            now = running_tasks(nodes[0], "zoned", 2, 5)
            replaced = not {t["id"] for t in now} & {t["id"] for t in before}
            return now if replaced and sorted(zones[t["node"]] for t in now) == ["a", "b"] else None

        after = wait_for(spread, 120, "both tasks replaced, one per zone")
        print(f"zoned: {[(t['slot'], t['node']) for t in after]}")
