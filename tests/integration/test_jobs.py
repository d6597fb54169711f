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
        assert "6/6" in table, table
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
        states = [line.split()[4] for line in ps.splitlines()[1:] if line.strip()]
        assert states == ["complete"] * 6, ps


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
