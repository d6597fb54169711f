"""Jobs and cron jobs (issue 21) on a real 3-node sandbox cluster (``p2jb``, 10.50.0.0/24).

The containers themselves witness what ran: each writes into a host directory bind-mounted into it
(every sandbox engine shares the host's file system) a marker while it runs and one when it is done, so
"never more than M at once" and "exactly N completions" are counted by the jobs, not sampled from
outside. The cron test kills the Raft leader (kill -9 of its daemon and dockerd) just before a tick.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Iterator

import clusterkit
import pytest
from clusterkit import IMAGE, api, api_get, cli, cli_json, cluster_fixture, kill_node, leader_node, revive

from p2porch.errors import SandboxError
from p2porch.sandbox.sandbox import Sandbox, SandboxNode

SUBNET = "10.50.0.0/24"
# Each run: a "run.<id>" marker while it runs, the number of runs it saw at its start, "done.<id>" at the end.
WITNESS = (
    "mkdir /out/run.$HOSTNAME && n=$(ls -d /out/run.* | wc -l) && echo $n > /out/seen.$HOSTNAME"
    " && sleep {sleep} && rmdir /out/run.$HOSTNAME && echo $P2PORCH_NODE > /out/done.$HOSTNAME"
)


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition", interval_s: float = 0.3):
    return clusterkit.wait_for(
        predicate, timeout_s, what, interval_s, retry_on=(SandboxError, AssertionError)
    )


cluster = cluster_fixture("p2jb", SUBNET)


@pytest.fixture
def outdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="p2jb-out-")
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def markers(outdir: str, prefix: str) -> list[str]:
    return sorted(f for f in os.listdir(outdir) if f.startswith(prefix + "."))


def read(outdir: str, name: str) -> str:
    return pathlib.Path(outdir, name).read_text()


@contextlib.contextmanager
def job(sb: Sandbox, via: SandboxNode, name: str, *args: str) -> Iterator[dict]:
    """``service create --name NAME ARGS`` for the block; removed afterwards (from ``via``)."""
    try:
        created = cli_json(sb, via.name, "service", "create", "--name", name, *args)
        yield created
    finally:
        with api(via) as client:
            response = client.delete(f"/services/{name}")
            assert response.status_code in (200, 404), response.text


def view(node: SandboxNode, name: str) -> dict:
    return api_get(node, f"/services/{name}")


def test_replicated_job_completes_exactly_six_times_never_more_than_two_at_once(cluster, outdir):
    sb, nodes = cluster
    mount = f"type=bind,source={outdir},target=/out"
    args = ["--mode", "replicated-job", "--replicas", "6", "--max-concurrent", "2", "--mount", mount]
    with job(sb, nodes[0], "batch", *args, IMAGE, "sh", "-c", WITNESS.format(sleep=3)):
        wait_for(lambda: len(markers(outdir, "done")) >= 6, 120, "six completions")
        wait_for(lambda: view(nodes[1], "batch")["job"]["completed"] == 6, 30, "the job reports 6/6")
        table = cli(sb, "n2", "service", "ls").stdout.decode()
        assert "0/2 (6/6 completed)" in table, table  # Docker's REPLICAS of a job
        # barrier: nothing of the job is left to run (a seventh run would be a desired-running task)
        wait_for(
            lambda: api_get(nodes[0], "/services/batch/tasks", all="false") == [], 30, "no task left to run"
        )
        done = markers(outdir, "done")
        seen = [int(read(outdir, f)) for f in markers(outdir, "seen")]
        tasks = api_get(nodes[0], "/services/batch/tasks", all="true")
        print(f"batch: {len(done)} runs, concurrency seen by the runs {seen}")
        assert len(done) == 6 and len(seen) == 6, (done, seen)
        assert max(seen) <= 2 and max(seen) == 2, seen
        assert sorted(t["slot"] for t in tasks if t["state"] == "complete") == [1, 2, 3, 4, 5, 6]
        assert all(t["exit_code"] == 0 for t in tasks if t["state"] == "complete")
        ps = cli(sb, "n3", "service", "ps", "batch").stdout.decode()
        states = [line.split()[3:5] for line in ps.splitlines()[1:] if line.strip()]
        assert states == [["complete", "complete"]] * 6, ps  # DESIRED STATE as Docker's: Complete


def test_global_job_runs_once_on_each_node(cluster, outdir):
    sb, nodes = cluster
    mount = f"type=bind,source={outdir},target=/out"
    with job(
        sb,
        nodes[0],
        "once",
        "--mode",
        "global-job",
        "--mount",
        mount,
        IMAGE,
        "sh",
        "-c",
        WITNESS.format(sleep=1),
    ):
        wait_for(lambda: len(markers(outdir, "done")) >= 3, 90, "a run on each node")
        wait_for(lambda: view(nodes[0], "once")["job"]["completed"] == 3, 30, "the job reports 3/3")
        wait_for(
            lambda: api_get(nodes[0], "/services/once/tasks", all="false") == [], 30, "no task left to run"
        )
        ran_on = sorted(read(outdir, f).strip() for f in markers(outdir, "done"))
        assert ran_on == ["n1", "n2", "n3"], ran_on


def test_cron_job_runs_at_every_tick_once_across_a_leader_kill(cluster, outdir):
    """Every minute for three ticks; the leader is killed 3 s before the second: each tick starts
    exactly one execution (no tick missed, none doubled), the second one late by the election."""
    sb, nodes = cluster
    chief = leader_node(nodes)
    via = next(n for n in nodes if n is not chief)
    others = [n for n in nodes if n is not chief]
    mount = f"type=bind,source={outdir},target=/out"
    args = [
        "--mode",
        "replicated-job",
        "--schedule",
        "* * * * *",
        "--mount",
        mount,
        "--restart-condition",
        "none",
    ]
    ticks: dict[int, float] = {}

    def observe() -> int:
        for n in others:
            try:
                info = view(n, "tick")["job"]
            except (OSError, KeyError, ValueError, AssertionError, clusterkit.httpx.HTTPError):
                continue
            if info["iteration"]:
                ticks.setdefault(info["iteration"], info["last_tick"])
            return info["iteration"]
        return 0

    try:
        with job(sb, via, "tick", *args, IMAGE, "sh", "-c", WITNESS.format(sleep=1)):
            wait_for(lambda: observe() >= 1, 75, "the first tick", interval_s=0.5)
            second = ticks[1] + 60
            while time.time() < second - 3:
                observe()
                time.sleep(0.5)
            kill_node(chief)
            killed_at = time.time()
            wait_for(
                lambda: observe() >= 2, 60, "the second tick, handled by the next leader", interval_s=0.5
            )
            wait_for(lambda: observe() >= 3, 75, "the third tick", interval_s=0.5)
            wait_for(lambda: len(markers(outdir, "done")) >= 3, 60, "three runs done")
    finally:
        revive(sb, nodes, chief)
    print(f"cron: ticks {ticks}, leader {chief.name} killed {second - killed_at:.1f} s before the second")
    assert sorted(ticks) == [1, 2, 3], ticks
    assert [ticks[i] - ticks[1] for i in (1, 2, 3)] == [0, 60, 120], ticks
    assert int(ticks[1]) % 60 == 0
    assert len(markers(outdir, "done")) == 3, markers(outdir, "done")


def test_service_logs_show_a_done_job_and_a_crashed_task_until_service_rm(cluster, outdir):
    """`service logs` of a job that is done prints what it printed, and a crashed task's last line stays
    readable: a container that exited by itself is kept while its task's record is (a bounded history:
    3 finished tasks per slot, however often it crashed); `service rm` removes them all. The crashes are
    pinned to one node with a host port: each replacement ran (a kept container holds no port)."""
    sb, nodes = cluster
    job = ["--mode", "replicated-job", "--replicas", "2", "--restart-condition", "none"]
    crash_args = [
        *("--restart-condition", "on-failure", "--restart-delay", "1s", "--constraint", "node.name==n2"),
        *("--publish", "published=18080,target=80,mode=host", "--stop-grace-period", "1s"),
        *("--mount", f"type=bind,source={outdir},target=/out"),
    ]
    crash = 'echo "last words $P2PORCH_TASK_ID"; touch /out/crash.$P2PORCH_TASK_ID; sleep 1; exit 3'

    def kept(name: str) -> list[dict]:
        return [c for n in nodes for c in clusterkit.containers(n, name, include_stopped=True)]

    def history(name: str) -> list[dict]:
        return api_get(nodes[0], f"/services/{name}/tasks", all="true")

    def settled() -> bool:  # scaled to 0: every task over, and the containers are those of its crashes
        tasks = history("crash")
        ids = {c["Config"]["Labels"]["p2porch.task-id"] for c in kept("crash")}
        over = all(t["state"] in ("failed", "shutdown") for t in tasks)
        return over and ids == {t["id"] for t in tasks if t["state"] == "failed"}

    try:
        line = 'echo "job line $P2PORCH_SLOT"'
        cli_json(sb, "n1", "service", "create", "-d", "--name", "said", *job, IMAGE, "sh", "-c", line)
        wait_for(lambda: view(nodes[1], "said")["job"]["completed"] == 2, 60, "the job done (2/2)")
        wait_for(lambda: api_get(nodes[0], "/services/said/tasks", all="false") == [], 30, "its tasks over")
        # five crashes of crash.1 (meanwhile the agents act on the job's ended tasks)
        cli_json(
            sb, "n1", "service", "create", "-d", "--name", "crash", *crash_args, IMAGE, "sh", "-c", crash
        )
        wait_for(lambda: len(markers(outdir, "crash")) >= 5, 90, "five crashes of crash.1")
        assert cli(sb, "n1", "service", "scale", "-d", "crash=0").returncode == 0
        wait_for(settled, 30, "crash scaled to 0 and its history settled")
        failed = [t for t in history("crash") if t["state"] == "failed"]
        print(f"crash: {len(markers(outdir, 'crash'))} runs, {len(kept('crash'))} containers kept")
        assert 1 <= len(failed) <= len(history("crash")) <= 3, history("crash")  # older ones went
        assert all(t["exit_code"] == 3 and "code 3" in t["error"] for t in failed), failed

        said = cli(sb, "n3", "service", "logs", "said")
        assert said.returncode == 0, said.stderr.decode()
        lines = sorted(row.split(" | ", 1)[1] for row in said.stdout.decode().splitlines())
        assert lines == ["job line 1", "job line 2"], said.stdout.decode()
        assert (
            sorted((c["State"]["Status"], c["State"]["ExitCode"]) for c in kept("said"))
            == [("exited", 0)] * 2
        )
        last = cli(sb, "n3", "service", "logs", "crash").stdout.decode()
        assert all(f"last words {t['id']}" in last for t in failed), (failed, last)

        removed = cli(sb, "n2", "service", "rm", "said", "crash")
        assert removed.returncode == 0, removed.stderr.decode()
        wait_for(lambda: not kept("said") and not kept("crash"), 30, "every container of both removed")
    finally:
        for name in ("said", "crash"):
            with api(nodes[0]) as client:
                response = client.delete(f"/services/{name}")
                assert response.status_code in (200, 404), response.text
