"""Rollouts on a real 2-node sandbox: a secret rotation measured under load, and an automatic rollback.

One cluster (``p2ur``, 10.52.0.0/24) for the module.

* Rotation (issue 22): a start-first web service serves the current value of a secret; a client
  container on n1 fetches ``http://rot/`` (the service's DNS name) in a tight loop and counts successes
  and failures while ``secret update`` rolls the service. The numbers are printed and the failures must
  be zero. The server exits at once on SIGTERM (as most servers do), so only the stop sequence (leave DNS,
  drain, then stop) keeps requests from reaching a stopping task.
* Update policy (issue 15): an update to an image the engine cannot run, with
  ``--update-failure-action rollback``, rolls itself back; the service event and ``service inspect`` say
  why.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time

from clusterkit import IMAGE, api, api_get, cli, cli_json, cluster_fixture, wait_for

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

# the server copies the secret to its web root and exits at once on SIGTERM (stopping httpd with it)
SERVE = (
    "mkdir -p /www && cp /run/secrets/api-key /www/index.html && httpd -f -p 80 -h /www & pid=$!; "
    "trap 'kill $pid; exit 0' TERM; wait"
)
# the client: one fetch after the other; counts in /tmp/counts (ok fail first second)
HAMMER = (
    "ok=0; fail=0; one=0; two=0; while true; do "
    "if out=$(wget -q -O- http://rot/ 2>/dev/null); then ok=$((ok+1)); "
    'case "$out" in *one*) one=$((one+1));; *two*) two=$((two+1));; esac; '
    "else fail=$((fail+1)); fi; "
    'echo "$ok $fail $one $two" > /tmp/counts.new && mv /tmp/counts.new /tmp/counts; done'
)


cluster = cluster_fixture("p2ur", "10.52.0.0/24", 2)


def running(node: SandboxNode, service: str) -> list[dict]:
    return [t for t in api_get(node, f"/services/{service}/tasks", all="false") if t["state"] == "running"]


def containers(node: SandboxNode, service: str) -> list[str]:
    out = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", f"label=p2porch.service={service}")
    return out.stdout.decode().split()


def remove_service(nodes: list[SandboxNode], service: str) -> None:
    with api(nodes[0]) as client:
        response = client.delete(f"/services/{service}")
        assert response.status_code in (200, 404), response.text
    wait_for(lambda: not any(containers(n, service) for n in nodes), what=f"{service} containers gone")


def task_files_root(node: SandboxNode) -> str:
    return os.path.realpath(os.path.join(node.run_dir, "task-files"))


def is_mount_point(path: str) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        return any(line.split()[1].replace("\\040", " ") == path for line in fh if len(line.split()) > 2)


def counts(node: SandboxNode, cid: str) -> tuple[int, int, int, int]:
    read = docker(node.dockerd, "exec", cid, "cat", "/tmp/counts", check=False)
    fields = read.stdout.decode().split()
    if read.returncode != 0 or len(fields) != 4:
        raise ValueError(f"no counts yet: {read.stdout!r}")
    ok, fail, one, two = (int(f) for f in fields)
    return ok, fail, one, two


class EventLog:
    """Collects ``/events`` from a node in a background thread until closed."""

    def __init__(self, node: SandboxNode) -> None:
        self.events: list[dict] = []
        self.client = api(node)
        self.client.timeout = None  # type: ignore[assignment]
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/events") as response:
                for line in response.iter_lines():
                    if line.strip():
                        self.events.append(json.loads(line))
        except Exception:  # noqa: BLE001 - closing the client ends the stream
            return

    def close(self) -> None:
        self.client.close()


def test_secret_rotation_under_load_fails_no_request(cluster, tmp_path):
    sb, nodes = cluster
    (tmp_path / "v1").write_bytes(b"one-" + secrets.token_hex(4).encode())
    (tmp_path / "v2").write_bytes(b"two-" + secrets.token_hex(4).encode())
    assert cli(sb, "n1", "secret", "create", "api-key", str(tmp_path / "v1")).returncode == 0
    try:
        created = cli(
            sb, "n1", "service", "create", "-d", "--name", "rot", "--replicas", "2", "--secret", "api-key",
            "--update-order", "start-first", "--update-monitor", "2s", "--stop-grace-period", "5s",
            IMAGE, "sh", "-c", SERVE,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr.decode()
        wait_for(lambda: len(running(nodes[0], "rot")) == 2, 90, "2 running web tasks")
        hammer = cli(
            sb, "n1", "service", "create", "-d", "--name", "hammer", "--constraint", "node.name==n1",
            "--stop-grace-period", "1s", IMAGE, "sh", "-c", HAMMER,
        )  # fmt: skip
        assert hammer.returncode == 0, hammer.stderr.decode()
        cid = wait_for(lambda: (containers(nodes[0], "hammer") or [None])[0], 90, "the client container")
        wait_for(lambda: counts(nodes[0], cid)[2] >= 50, 60, "the client is served version 1")
        before = counts(nodes[0], cid)
        old = {t["id"] for t in running(nodes[0], "rot")}
        started = time.monotonic()
        updated = cli_json(sb, "n1", "secret", "update", "api-key", str(tmp_path / "v2"))
        assert updated["rolled_services"] == ["rot"]

        def rolled() -> bool:
            now = running(nodes[0], "rot")
            return len(now) == 2 and not {t["id"] for t in now} & old

        wait_for(rolled, 120, "rot rolled to new tasks")
        # the old containers drain and stop; then the client must see only version 2
        wait_for(lambda: sum(len(containers(n, "rot")) for n in nodes) == 2, 60, "old containers gone")
        roll_s = time.monotonic() - started
        mid = counts(nodes[0], cid)
        wait_for(lambda: counts(nodes[0], cid)[3] >= mid[3] + 50, 60, "version 2 served after the roll")
        after = counts(nodes[0], cid)
        requests = after[0] - before[0] + after[1] - before[1]
        failures = after[1] - before[1]
        print(
            f"rotation under load: {requests} requests during {roll_s:.1f} s of roll (+ tail), "
            f"{failures} failed; version 1 answers {after[2] - before[2]}, version 2 answers "
            f"{after[3] - before[3]}; none of version 1 after the roll: {after[2] == mid[2]}"
        )
        assert failures == 0, f"{failures} of {requests} requests failed during the rotation"
        assert after[2] == mid[2], "version 1 was still served after the old tasks were gone"
        assert after[3] - before[3] > 0
    finally:
        remove_service(nodes, "hammer")
        remove_service(nodes, "rot")
    assert cli(sb, "n1", "secret", "rm", "api-key").returncode == 0


def test_a_failing_update_rolls_itself_back_and_says_why(cluster):
    sb, nodes = cluster
    created = cli(
        sb, "n1", "service", "create", "-d", "--name", "bad", "--replicas", "2", "--update-parallelism", "1",
        "--update-failure-action", "rollback", "--update-monitor", "3s", "--rollback-parallelism", "0",
        "--stop-grace-period", "1s", IMAGE, "sleep", "3600",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr.decode()
    events = EventLog(nodes[1])
    try:
        wait_for(lambda: len(running(nodes[0], "bad")) == 2, 90, "2 running tasks")
        old = {t["id"] for t in running(nodes[0], "bad")}
        # a command that exits at once: every new task fails within the monitor
        updated = cli(sb, "n1", "service", "update", "-d", "bad", "--args", "sh -c 'exit 3'")
        assert updated.returncode == 0, updated.stderr.decode()

        def rolled_back() -> dict | None:
            view = cli_json(sb, "n1", "service", "inspect", "bad")
            status = view.get("update_status") or {}
            return view if status.get("state") == "rollback_completed" else None

        view = wait_for(rolled_back, 120, "the update rolled back by itself")
        assert view["spec"]["command"] == ["sleep", "3600"]
        reason = view["update_status"]["reason"]
        assert reason.startswith("update failed: 1 of 2 tasks failed within the 3s monitor"), reason
        assert reason.endswith("task exited with code 3"), reason
        now = running(nodes[0], "bad")
        assert len(now) == 2 and {t["id"] for t in now} & old, "the untouched old task keeps running"
        wait_for(
            lambda: any(
                e.get("type") == "service" and e.get("update_status") == "rollback_started"
                for e in events.events
            ),
            10,
            "the rollback event",
        )
        event = next(e for e in events.events if e.get("update_status") == "rollback_started")
        assert event["service"] == "bad" and event["reason"] == reason
        statuses = [e["update_status"] for e in events.events if e.get("update_status")]
        assert statuses[-2:] == ["rollback_started", "rollback_completed"], statuses
        print(f"automatic rollback: events {statuses}; reason: {reason}")
    finally:
        events.close()
        remove_service(nodes, "bad")


def test_rotate_keys_reseals_stored_secrets_and_they_still_deliver(cluster, tmp_path):
    """Last in the module: it moves the cluster to key epoch 1."""
    sb, nodes = cluster
    value = b"epoch-" + secrets.token_hex(6).encode()
    (tmp_path / "v").write_bytes(value)
    assert cli(sb, "n1", "secret", "create", "sealed", str(tmp_path / "v")).returncode == 0
    assert cli_json(sb, "n1", "secret", "inspect", "sealed")["key_epochs"] == [0]
    rotated = cli_json(sb, "n2", "cluster", "rotate-keys")
    assert rotated["key_epoch"] == 1
    # the leader re-seals the stored version under epoch 1 (same version, so nothing rolls)
    view = wait_for(
        lambda: (v := cli_json(sb, "n1", "secret", "inspect", "sealed"))["key_epochs"] == [1] and v,
        60,
        "the secret re-sealed under key epoch 1",
    )
    assert view["version"] == 1
    try:
        created = cli(
            sb, "n1", "service", "create", "-d", "--name", "epoch", "--constraint", "node.name==n2",
            "--secret", "sealed", "--stop-grace-period", "1s", IMAGE, "sleep", "3600",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr.decode()
        cid = wait_for(lambda: (containers(nodes[1], "epoch") or [None])[0], 90, "the task on n2")
        read = docker(nodes[1].dockerd, "exec", cid, "cat", "/run/secrets/sealed", check=False)
        assert read.returncode == 0 and read.stdout == value
        assert is_mount_point(task_files_root(nodes[1])), "n2 holds the value in its own tmpfs"
    finally:
        remove_service(nodes, "epoch")
    # the node's last task with files stopped: its tmpfs goes with it
    wait_for(lambda: not is_mount_point(task_files_root(nodes[1])), 30, "n2's secrets tmpfs unmounted")
    assert cli(sb, "n1", "secret", "rm", "sealed").returncode == 0


def test_a_waiting_update_that_rolls_back_returns_once_the_rollback_converged(cluster):
    """As Docker's CLI: ``service update`` (not detached) with ``--update-failure-action rollback``
    follows the rollback and fails only once its tasks run again (the operator walk's returned at
    ``rollback_started`` with the service at 1/2)."""
    sb, nodes = cluster
    created = cli(
        sb, "n1", "service", "create", "-q", "--name", "roll", "--replicas", "2", "--update-monitor", "10s",
        "--update-failure-action", "rollback", "--stop-grace-period", "1s", IMAGE, "sleep", "3600",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr.decode()
    try:
        updated = cli(
            sb, "n1", "service", "update", "roll", "--health-cmd", "exit 1", "--health-interval", "1s",
            "--health-retries", "1",
        )  # fmt: skip
        err = updated.stderr.decode()
        assert updated.returncode == 1, err
        assert "roll: rolled back: update failed:" in err and "rollback_started" not in err, err
        view = cli_json(sb, "n1", "service", "inspect", "roll")
        assert view["update_status"]["state"] == "rollback_completed", view["update_status"]
        assert view["running"] == 2 and not view["spec"].get("health"), view
    finally:
        remove_service(nodes, "roll")
