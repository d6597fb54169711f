"""Services on real containers (issue 5): placement, scaling, pending, failures, removal, adoption.

One 3-node sandbox cluster (``p2sv``, 10.70.0.0/24) for the module. Every test creates its own
service and removes it (waiting until its containers are gone from every node) even when it fails,
so each test starts from an empty cluster. Assertions read both p2porch (CLI and API) and each
node's own Docker engine.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from clusterkit import (
    FAST_STOP,
    IMAGE,
    api,
    api_get,
    cli,
    cli_json,
    cluster_fixture,
    containers,
    remove_and_wait,
    service,
    tasks,
    wait_for,
)

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

NAMES = ("n1", "n2", "n3")


# ----------------------------------------------------------------------------- helpers
def running_tasks(node: SandboxNode, service: str, count: int, timeout_s: float = 60.0) -> list[dict]:
    """Wait until exactly ``count`` tasks should run and all do; return them by slot."""

    def done():
        current = tasks(node, service)
        ok = len(current) == count and all(t["state"] == "running" for t in current)
        return sorted(current, key=lambda t: t["slot"]) if ok else None

    return wait_for(done, timeout_s, f"{count} running tasks of {service}")


def containers_by_node(nodes: list[SandboxNode], service: str, **kw: bool) -> dict[str, list[dict]]:
    return {n.name: containers(n, service, **kw) for n in nodes}


def env_of(container: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container["Config"]["Env"])


def capacities(sb: Sandbox) -> dict[str, int]:
    """memory_bytes of every node as recorded from its Docker engine (waits until all are known)."""

    def known():
        caps = {n: cli_json(sb, "n1", "node", "inspect", n)["memory_bytes"] for n in NAMES}
        return caps if all(caps.values()) else None

    return wait_for(known, what="node capacities")


cluster = cluster_fixture("p2sv", "10.70.0.0/24")


# ----------------------------------------------------------------------------- tests
def test_cluster_still_commits_after_a_quiet_period(cluster):
    """Raft must keep running while nothing happens (trio retires idle worker threads after 10 s)."""
    sb, nodes = cluster
    time.sleep(15)  # a precondition, not an assertion: a cluster nobody touches for a while
    started = time.monotonic()
    result = cli(sb, "n2", "node", "update", "n3", "--label-add", "quiet=ok")
    assert result.returncode == 0, result.stderr.decode()
    # a dead Raft thread never commits (the CLI fails); the bound only catches a commit that waited
    # for something to restart, with room for a CLI start on a loaded runner
    assert time.monotonic() - started < 15
    assert api_get(nodes[0], "/nodes/n3")["labels"].get("quiet") == "ok"


def test_six_replicas_run_two_per_node_as_labelled_containers(cluster, tmp_path):
    sb, nodes = cluster
    (tmp_path / "marker").write_text("from-the-host\n")
    with service(
        sb,
        nodes,
        "web",
        "--replicas",
        "6",
        *FAST_STOP,
        "--env",
        "GREETING=hello",
        "--container-label",
        "team=edge",
        "--limit-memory",
        "64M",
        "--mount",
        f"type=bind,source={tmp_path},target=/hostdata,readonly",
        "--mount",
        "type=volume,source=p2sv-cache,target=/cache",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/",
    ) as created:
        assert created["desired"] == 6
        running = running_tasks(nodes[0], "web", 6)
        assert [t["slot"] for t in running] == [1, 2, 3, 4, 5, 6]
        assert Counter(t["node"] for t in running) == {"n1": 2, "n2": 2, "n3": 2}
        by_task = {t["id"]: t for t in running}
        subnets = {r["name"]: r["subnet"] for r in api_get(nodes[0], "/nodes")}
        seen = set()
        for node in nodes:
            found = containers(node, "web")
            assert len(found) == 2, f"{node.name}: {[c['Name'] for c in found]}"
            for c in found:
                assert c["State"]["Running"]
                labels = c["Config"]["Labels"]
                task = by_task[labels["p2porch.task-id"]]
                seen.add(task["id"])
                assert task["node"] == node.name and task["container_id"] == c["Id"]
                assert labels["p2porch.service"] == "web"
                assert labels["p2porch.slot"] == str(task["slot"])
                assert labels["team"] == "edge"
                env = env_of(c)
                assert env["P2PORCH_SERVICE"] == "web"
                assert env["P2PORCH_SLOT"] == str(task["slot"])
                assert env["P2PORCH_NODE"] == node.name
                assert env["P2PORCH_TASK_ID"] == task["id"]
                assert env["GREETING"] == "hello"
                assert c["HostConfig"]["Memory"] == 64 * 1024 * 1024
                networks = c["NetworkSettings"]["Networks"]
                assert list(networks) == ["p2porch"]
                address = networks["p2porch"]["IPAddress"]
                assert task["address"] == address
                prefix = subnets[node.name].rsplit(".", 1)[0] + "."
                assert address.startswith(prefix), (address, subnets[node.name])
                mounts = {m["Destination"]: m for m in c["Mounts"]}
                assert mounts["/hostdata"]["Type"] == "bind" and not mounts["/hostdata"]["RW"]
                assert mounts["/cache"]["Type"] == "volume" and mounts["/cache"]["Name"] == "p2sv-cache"
                read = docker(node.dockerd, "exec", c["Id"], "cat", "/hostdata/marker")
                assert read.stdout == b"from-the-host\n"
        assert seen == set(by_task)
        table = cli(sb, "n3", "service", "ls").stdout.decode()
        assert any(line.split()[1:4] == ["web", "replicated", "6/6"] for line in table.splitlines()[1:])


def test_scale_up_and_down_keeps_slots_and_removes_the_highest(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "sc", "--replicas", "3", *FAST_STOP, IMAGE, "sleep", "100000"):
        first = {t["slot"]: t for t in running_tasks(nodes[0], "sc", 3)}
        result = cli(sb, "n2", "service", "scale", "-d", "sc=5")
        assert result.returncode == 0, result.stderr.decode()
        assert b"sc scaled to 5" in result.stdout
        up = {t["slot"]: t for t in running_tasks(nodes[0], "sc", 5)}
        assert sorted(up) == [1, 2, 3, 4, 5]
        for slot, task in first.items():  # existing tasks were left alone
            assert up[slot]["id"] == task["id"] and up[slot]["container_id"] == task["container_id"]
        assert sum(len(c) for c in containers_by_node(nodes, "sc").values()) == 5

        result = cli(sb, "n3", "service", "scale", "-d", "sc=2")
        assert result.returncode == 0, result.stderr.decode()
        down = {t["slot"]: t for t in running_tasks(nodes[0], "sc", 2)}
        assert sorted(down) == [1, 2]
        for slot in (1, 2):
            assert down[slot]["id"] == first[slot]["id"]

        def only_low_slots_left():
            left = [c for cs in containers_by_node(nodes, "sc", include_stopped=True).values() for c in cs]
            return sorted(int(c["Config"]["Labels"]["p2porch.slot"]) for c in left) == [1, 2]

        wait_for(only_low_slots_left, what="containers of slots 3-5 removed")
        service_view = cli_json(sb, "n1", "service", "inspect", "sc")
        assert (service_view["running"], service_view["desired"]) == (2, 2)


def test_constraint_pins_a_service_to_the_labelled_node(cluster):
    sb, nodes = cluster
    result = cli(sb, "n1", "node", "update", "n2", "--label-add", "ssd=true")
    assert result.returncode == 0, result.stderr.decode()
    try:
        with service(
            sb,
            nodes,
            "pinned",
            "--replicas",
            "4",
            "--constraint",
            "node.labels.ssd==true",
            *FAST_STOP,
            IMAGE,
            "sleep",
            "100000",
        ):
            running = running_tasks(nodes[0], "pinned", 4)
            assert {t["node"] for t in running} == {"n2"}
            counts = {name: len(cs) for name, cs in containers_by_node(nodes, "pinned").items()}
            assert counts == {"n1": 0, "n2": 4, "n3": 0}
    finally:
        cli(sb, "n1", "node", "update", "n2", "--label-rm", "ssd")


def test_binpack_fills_one_node_before_the_next(cluster):
    sb, nodes = cluster
    caps = capacities(sb)
    reserve = min(caps.values()) * 2 // 5  # two fit on a node, a third does not
    with service(
        sb,
        nodes,
        "packed",
        "--replicas",
        "3",
        "--strategy",
        "binpack",
        "--reserve-memory",
        str(reserve),
        *FAST_STOP,
        IMAGE,
        "sleep",
        "100000",
    ):
        running = running_tasks(nodes[0], "packed", 3)
        per_node = Counter(t["node"] for t in running)
        assert sorted(per_node.values()) == [1, 2], per_node  # spread would give 1/1/1
        counts = sorted(len(cs) for cs in containers_by_node(nodes, "packed").values())
        assert counts == [0, 1, 2]
        full = per_node.most_common(1)[0][0]
        full_node = next(n for n in nodes if n.name == full)
        for c in containers(full_node, "packed"):
            assert c["HostConfig"]["MemoryReservation"] == reserve


def test_global_mode_runs_one_task_per_node(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "everywhere", "--mode", "global", *FAST_STOP, IMAGE, "sleep", "100000"):
        running = running_tasks(nodes[0], "everywhere", 3)
        assert sorted(t["node"] for t in running) == ["n1", "n2", "n3"]
        counts = {name: len(cs) for name, cs in containers_by_node(nodes, "everywhere").items()}
        assert counts == {"n1": 1, "n2": 1, "n3": 1}
        view = cli_json(sb, "n2", "service", "inspect", "everywhere")
        assert view["mode"] == "global" and (view["running"], view["desired"]) == (3, 3)
        refused = cli(sb, "n1", "service", "scale", "-d", "everywhere=5")
        assert refused.returncode != 0 and b"global" in refused.stderr


def test_reservation_larger_than_any_node_stays_pending_with_an_explanation(cluster):
    sb, nodes = cluster
    too_big = 2 * max(capacities(sb).values())
    with service(sb, nodes, "huge", "--replicas", "2", "--reserve-memory", str(too_big), IMAGE, "true"):

        def explained():
            rows = [s for s in cli_json(sb, "n2", "service", "ls") if s["name"] == "huge"]
            return rows[0] if rows and rows[0]["pending"] else None

        row = wait_for(explained, what="a pending explanation for huge")
        assert row["running"] == 0 and row["desired"] == 2
        assert len(row["pending"]) == 1 and row["pending"][0]["count"] == 2
        explanation = row["pending"][0]["explanation"]
        assert "3 nodes" in explanation and "insufficient memory" in explanation, explanation

        pending = cli_json(sb, "n3", "service", "ps", "huge")
        assert len(pending) == 2
        for task in pending:
            assert task["state"] == "pending" and task["node"] is None
            assert task["message"] == explanation
        table = cli(sb, "n1", "service", "ps", "huge").stdout.decode()
        assert table.count("insufficient memory") == 2, table
        listing = cli(sb, "n1", "service", "ls").stdout.decode()
        assert f"2: {explanation}" in listing, listing
        assert not any(containers_by_node(nodes, "huge", include_stopped=True).values())


def test_missing_image_is_a_failed_task_with_the_docker_error(cluster):
    sb, nodes = cluster
    pids = [read_pid(n.p2porch_pidfile) for n in nodes]
    # A registry that refuses at once (loopback of the node's namespace), so the pull fails fast.
    with service(
        sb, nodes, "ghost", "--restart-condition", "none", "127.0.0.1:1/p2porch/missing:1", "sleep", "100000"
    ):

        def failed():
            history = api_get(nodes[0], "/services/ghost/tasks", all="true")
            return [t for t in history if t["state"] == "failed"]

        task = wait_for(failed, what="a failed ghost task")[0]
        assert "127.0.0.1:1" in task["error"] and "connection refused" in task["error"], task["error"]
        table = cli(sb, "n2", "service", "ps", "ghost").stdout.decode()
        assert "failed" in table and "connection refused" in table, table
        # The agent survived it: the same daemons still run services.
        with service(sb, nodes, "alive", "--replicas", "3", *FAST_STOP, IMAGE, "sleep", "100000"):
            running_tasks(nodes[0], "alive", 3)
    assert [read_pid(n.p2porch_pidfile) for n in nodes] == pids


def test_invalid_spec_exits_2_naming_the_flag_and_creates_nothing(cluster):
    sb, nodes = cluster
    before = api_get(nodes[0], "/status")["cluster"]["state_version"]
    for flags, flag in (
        (["--replicas", "-1"], b"--replicas"),
        (["--constraint", "node.labels.ssd~=true"], b"--constraint"),
        (["--reserve-memory", "lots"], b"--reserve-memory"),
        (["--mount", "type=bind,target=/x"], b"--mount"),
    ):
        result = cli(sb, "n1", "service", "create", "-d", "--name", "bad", *flags, IMAGE)
        assert result.returncode == 2, (flags, result.stderr)
        assert flag in result.stderr, result.stderr
    # The daemon refuses the same spec when a client skips the CLI's checks.
    with api(nodes[1]) as client:
        response = client.post("/services", json={"name": "bad", "image": IMAGE, "replicas": -1})
        assert response.status_code == 400
        assert response.json()["field"] == "replicas"
        response = client.post(
            "/services", json={"name": "bad", "image": IMAGE, "constraints": ["node.labels.x~=y"]}
        )
        assert response.status_code == 400 and response.json()["field"].startswith("constraints")
    assert "bad" not in [s["name"] for s in api_get(nodes[0], "/services")]
    assert api_get(nodes[0], "/status")["cluster"]["state_version"] == before
    assert not any(containers_by_node(nodes, "bad", include_stopped=True).values())


def test_rm_removes_every_container_on_every_node(cluster):
    sb, nodes = cluster
    try:
        args = ["--name", "gone", "--replicas", "6", *FAST_STOP, IMAGE, "sleep", "100000"]
        cli_json(sb, "n1", "service", "create", "-d", *args)
        running_tasks(nodes[0], "gone", 6)
        assert all(len(cs) == 2 for cs in containers_by_node(nodes, "gone").values())
        result = cli(sb, "n3", "service", "rm", "gone")
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.strip() == b"gone"
        returned = time.monotonic()
        wait_for(
            lambda: not any(containers_by_node(nodes, "gone", include_stopped=True).values()),
            what="every gone container removed",
        )
        removal_s = time.monotonic() - returned
        print(f"service rm: every container gone {removal_s:.2f} s after the command returned")
        assert "gone" not in [s["name"] for s in cli_json(sb, "n2", "service", "ls")]
        assert cli(sb, "n1", "service", "ps", "gone").returncode == 1
        # The tasks stop with the service's stop grace period (1 s; the processes ignore SIGTERM),
        # not with a default 10 s.
        assert removal_s < 9.5, f"rm took {removal_s:.1f} s with --stop-grace-period 1s"  # failure: >= 10 s
    finally:
        remove_and_wait(nodes, "gone")


def test_daemon_restart_keeps_its_containers_running(cluster):
    sb, nodes = cluster
    n2 = nodes[1]
    with service(sb, nodes, "keep", "--replicas", "3", *FAST_STOP, IMAGE, "sleep", "100000"):
        before = {t["slot"]: t for t in running_tasks(nodes[0], "keep", 3)}
        on_n2 = {c["Id"]: c["State"]["StartedAt"] for c in containers(n2, "keep")}
        assert len(on_n2) == 1

        pid = read_pid(n2.p2porch_pidfile)
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), what="n2's daemon to stop")
        # With the daemon gone, its containers still run.
        assert {c["Id"] for c in containers(n2, "keep")} == set(on_n2)
        sb.up(3)
        new_pid = read_pid(n2.p2porch_pidfile)
        assert new_pid is not None and new_pid != pid and pid_alive(new_pid)

        # The restarted agent is at work: it starts a new service's task on n2.
        with service(sb, nodes, "probe", "--mode", "global", *FAST_STOP, IMAGE, "sleep", "100000"):
            running_tasks(nodes[0], "probe", 3)
            wait_for(lambda: len(containers(n2, "probe")) == 1, what="probe on n2")
            after = {t["slot"]: t for t in running_tasks(n2, "keep", 3)}
            assert {s: t["id"] for s, t in after.items()} == {s: t["id"] for s, t in before.items()}
            assert {c["Id"]: c["State"]["StartedAt"] for c in containers(n2, "keep")} == on_n2
            for c in containers(n2, "keep"):
                assert c["State"]["Running"] and c["RestartCount"] == 0
