"""An old task that turns unhealthy while its service's update is paused (``p4sc``, 10.97.0.0/24).

A 2-replica service checks ``test ! -e /tmp/sick`` under ``--restart-delay 5s``; ``service update
--health-cmd false`` fails its first new task within the monitor and ``--update-failure-action pause``
pauses it, leaving one slot on the old template. That old task is then made unhealthy (``docker exec
touch /tmp/sick``): it is stopped at once, and its slot gets a task of the current template only after
the restart delay (before: in the round that saw it unhealthy, the paused update going on). Measured
times are printed (``pytest -s``)."""

from __future__ import annotations

import time

from clusterkit import IMAGE, all_tasks, cli, cli_json, cluster_fixture, containers, service, tasks
from clusterkit import wait_retrying as wait_for

from p2porch.sandbox.dockerd import docker

cluster = cluster_fixture("p4sc", "10.97.0.0/24")

SICK = "/tmp/sick"
CHECK = ("--health-cmd", f"test ! -e {SICK}", "--health-interval", "1s", "--health-retries", "1")
TRAPPED = "trap 'exit 0' TERM; while true; do sleep 1; done"


def test_an_old_task_turning_unhealthy_under_a_paused_update_waits_for_the_restart_delay(cluster):
    sb, nodes = cluster
    by_name = {n.name: n for n in nodes}
    args = [
        "--replicas", "2", *CHECK, "--restart-delay", "5s", "--stop-grace-period", "3s",
        "--update-parallelism", "1", "--update-failure-action", "pause", "--update-monitor", "20s",
    ]  # fmt: skip
    with service(sb, nodes, "stale", *args, IMAGE, "sh", "-c", TRAPPED):

        def healthy() -> list[dict] | None:
            now = tasks(nodes[0], "stale")
            ok = [
                t for t in now if t["state"] == "running" and t["health"] == "healthy" and t["container_id"]
            ]
            return now if len(now) == len(ok) == 2 else None

        old_ids = {t["id"] for t in wait_for(healthy, 90, "2 healthy tasks")}
        updated = cli(
            sb, "n1", "service", "update", "-d", "stale", "--health-cmd", "false", "--env-add", "B=1"
        )
        assert updated.returncode == 0, updated.stderr.decode()

        def paused() -> dict | None:
            status = cli_json(sb, "n1", "service", "inspect", "stale").get("update_status") or {}
            return status if status.get("state") == "paused" else None

        status = wait_for(paused, 120, "the update paused by its failing task")
        print(f"update paused: {status['reason']}")
        (old,) = [t for t in tasks(nodes[0], "stale") if t["id"] in old_ids]
        assert old["state"] == "running" and old["health"] == "healthy", old
        docker(by_name[old["node"]].dockerd, "exec", old["container_id"], "touch", SICK)
        first_seen: dict[str, float] = {}

        def slot_history() -> dict[str, dict]:
            history = {t["id"]: t for t in all_tasks(nodes[0], "stale") if t["slot"] == old["slot"]}
            for task_id in history:
                first_seen.setdefault(task_id, time.time())
            return history

        def stopped() -> dict | None:
            t = slot_history()[old["id"]]
            return t if t["desired_state"] == "shutdown" and t["state"] in ("shutdown", "failed") else None

        gone = wait_for(stopped, 60, "the old task stopped unhealthy")
        assert gone["message"] == "unhealthy", gone
        new = wait_for(
            lambda: next((t for i, t in slot_history().items() if i != old["id"]), None),
            40,
            "its replacement",
        )
        waited = first_seen[new["id"]] - gone["state_at"]
        print(f"stale.{old['slot']}: replacement seen {waited:.2f} s after the old task's end (delay 5 s)")
        assert 5.0 <= waited <= 5.0 + 8.0, waited
        assert new["message"] != "rolling update" and new["desired_state"] == "running", new

        def container_env() -> list[str] | None:
            t = slot_history()[new["id"]]
            if not t["container_id"] or t["node"] not in by_name:
                return None
            found = containers(by_name[t["node"]], "stale", include_stopped=True)
            c = next((c for c in found if c["Id"] == t["container_id"]), None)
            return None if c is None else c["Config"]["Env"]

        env = wait_for(container_env, 60, "the replacement's container")
        assert "B=1" in env, env  # the current template, never the outdated one
        table = cli(sb, "n2", "service", "ps", "stale").stdout.decode()
        print(f"service ps stale:\n{table}")
