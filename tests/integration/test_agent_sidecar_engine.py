"""A task group's sidecar stopped or restarted by hand on the node (``docker stop``, ``docker restart``),
against a real dockerd (one-engine sandbox ``p50e``, 10.95.3.0/25; root + docker.io only).

The docs' contract for groups (docs/task-groups.md): a running task whose sidecar exited, died, vanished
or was started again outside p2porch has failed as a whole; the agent stops the rest of its group and the
orchestrator replaces the task. The main container's own restart was already judged so
(``plan.restarted_error``); a sidecar's was adopted as the task's.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import trio

from p2porch.agent.docker_executor import open_docker_executor
from p2porch.agent.model import KIND_SIDECAR, MemberSpec, TaskAssignment, TaskReport
from p2porch.agent.plan import RESTARTED_AFTER_S
from p2porch.agent.worker import run_agent
from p2porch.model import TaskState

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import bridge_network, checking_client, lone_engine, wait_until  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

NODE = "n1"
NETWORK = "p50e-net"
SIDECAR = MemberSpec("log", KIND_SIDECAR, BUSYBOX_IMAGE, command=("sleep", "3600"))


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    with lone_engine("p50e", "10.95.3.0/25", prepare=bridge_network(NETWORK)) as node:
        yield node.dockerd.host_url


@pytest.fixture
def client(docker_url: str) -> Iterator[docker.DockerClient]:
    with checking_client(docker_url) as cli:
        yield cli


class Cluster:
    """The agent's report callback and its committed record of one task: ``running`` with ``started_at``
    the first running report's time, as the leader's FSM records it."""

    def __init__(self, spec: TaskAssignment) -> None:
        self.spec = spec
        self.reports: list[TaskReport] = []

    async def __call__(self, batch: list[TaskReport]) -> None:
        self.reports.extend(batch)

    def first_running(self) -> TaskReport | None:
        return next((r for r in self.reports if r.state == TaskState.RUNNING), None)

    def assignments(self) -> list[TaskAssignment]:
        first = self.first_running()
        if first is None:
            return [self.spec]
        return [replace(self.spec, state=TaskState.RUNNING, started_at=first.at)]

    def failed(self) -> TaskReport | None:
        return next((r for r in self.reports if r.state == TaskState.FAILED), None)


def group(task_id: str) -> TaskAssignment:
    return TaskAssignment(
        task_id=task_id,
        service_name="grp",
        service_id="grp-id",
        slot=1,
        node_name=NODE,
        image=BUSYBOX_IMAGE,
        command=("sleep", "3600"),
        network=NETWORK,
        stop_grace_s=1.0,
        members=(SIDECAR,),
    )


async def run(docker_url: str, cluster: Cluster, until: Callable[[], Any], what: str) -> Any:
    """An agent (a fresh executor, as a daemon's start) on ``cluster`` until ``until()`` answers."""
    executor = await open_docker_executor(docker_url)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_agent(
                    executor,
                    NODE,
                    cluster.assignments,
                    None,
                    cluster,
                    resync_interval_s=1.0,
                    orphan_grace_s=1.0,
                    task_status=task_status,
                )
            )
            found = await wait_until(until, 60.0, what)
            nursery.cancel_scope.cancel()
            return found
    finally:
        await executor.aclose()


def live_containers(client: docker.DockerClient, task_id: str) -> list[str]:
    found = client.containers.list(filters={"label": f"p2porch.task-id={task_id}"})
    return sorted(c.name for c in found)


async def docker_cli(client: docker.DockerClient, fn: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(fn)


async def started_and_recorded(docker_url: str, client: docker.DockerClient, cluster: Cluster) -> None:
    """The group runs, the cluster recorded it running, and enough time passed that a restart now starts
    a container clearly after the record (``RESTARTED_AFTER_S``)."""
    first = await run(docker_url, cluster, cluster.first_running, "the group running")
    names = await docker_cli(client, lambda: live_containers(client, cluster.spec.task_id))
    main = f"grp.1.{cluster.spec.task_id[:8]}"
    assert names == [main, f"{main}.log"], names
    await wait_until(lambda: time.time() > first.at + RESTARTED_AFTER_S + 0.5, what="past the record")


async def test_a_sidecar_restarted_by_hand_while_the_daemon_was_away_fails_the_group(
    docker_url: str, client: docker.DockerClient
) -> None:
    cluster = Cluster(group("aaaa1111bbbb2222"))
    await started_and_recorded(docker_url, client, cluster)
    sidecar = client.containers.get("grp.1.aaaa1111.log")
    before = sidecar.attrs["State"]["StartedAt"]
    await docker_cli(client, lambda: sidecar.restart(timeout=1))
    sidecar.reload()
    assert sidecar.status == "running" and sidecar.attrs["State"]["StartedAt"] != before
    # the daemon back: it inspects everything afresh and finds the sidecar started after the record
    failed = await run(docker_url, cluster, cluster.failed, "the task failed")
    assert failed.error.startswith("sidecar log was started again outside p2porch at"), failed
    await wait_until(lambda: not live_containers(client, cluster.spec.task_id), 60.0, "the group removed")
    await run(docker_url, cluster, lambda: not live_containers(client, cluster.spec.task_id), "still gone")
    assert len([r for r in cluster.reports if r.state == TaskState.RUNNING]) == 1  # never adopted again


async def by_hand_under_the_agent(
    docker_url: str, client: docker.DockerClient, task_id: str, how: str
) -> str:
    """Run a group, then ``docker restart``/``docker stop`` its sidecar while an agent runs; the error the
    task failed with, once its group is gone."""
    cluster = Cluster(group(task_id))
    await started_and_recorded(docker_url, client, cluster)
    sidecar = client.containers.get(f"grp.1.{task_id[:8]}.log")
    executor = await open_docker_executor(docker_url)
    try:
        async with trio.open_nursery() as nursery:
            agent = await nursery.start(
                lambda task_status: run_agent(
                    executor, NODE, cluster.assignments, None, cluster, task_status=task_status
                )
            )
            passes = agent.reconcile_count
            await wait_until(lambda: agent.reconcile_count > passes, 60.0, "a pass")  # adopted, subscribed
            if how == "restart":
                await docker_cli(client, lambda: sidecar.restart(timeout=1))
            else:
                await docker_cli(client, lambda: sidecar.stop(timeout=1))
            failed = await wait_until(cluster.failed, 60.0, f"the task failed after docker {how}")
            await wait_until(lambda: not live_containers(client, task_id), 60.0, "the group removed")
            nursery.cancel_scope.cancel()
    finally:
        await executor.aclose()
    return str(failed.error)


async def test_a_sidecar_restarted_under_the_running_agent_fails_the_group(
    docker_url: str, client: docker.DockerClient
) -> None:
    error = await by_hand_under_the_agent(docker_url, client, "cccc3333dddd4444", "restart")
    # a listing between the restart's die and start shows it exited: failed the same way
    assert error.startswith(("sidecar log was started again outside p2porch", "sidecar log exited with code"))


async def test_a_sidecar_stopped_under_the_running_agent_fails_the_group(
    docker_url: str, client: docker.DockerClient
) -> None:
    error = await by_hand_under_the_agent(docker_url, client, "eeee5555ffff6666", "stop")
    assert error == "sidecar log exited with code 137", error  # busybox sleep ignores SIGTERM: killed
