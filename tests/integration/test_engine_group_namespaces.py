"""A task group's sidecar in the main container's PID and IPC namespaces on a real dockerd (sandbox
"p51k", 10.95.25.0/24; root + docker.io): Compose's ``pid: service:X`` / ``ipc: service:X`` as the stack
maps them (``pid``/``ipc`` = main). The sidecar sees the main container's process as its PID 1 (Grafana
Beyla, a profiler, certbot signalling HAProxy), shares its ``/dev/shm``, and the main container's IPC is
shareable for it; a sidecar without them keeps its own namespaces."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import trio

from p2porch.agent.docker_executor import open_docker_executor
from p2porch.agent.model import KIND_SIDECAR, LABEL_MEMBER, LABEL_TASK_ID, MemberSpec

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import checking_client, lone_engine, sleeping_task  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    with lone_engine("p51k", "10.95.25.0/24") as node:
        yield node.dockerd.host_url


def sidecar(name: str, *, share: bool) -> MemberSpec:
    return MemberSpec(
        name=name,
        kind=KIND_SIDECAR,
        image=BUSYBOX_IMAGE,
        command=("sleep", "3601"),
        share_pid=share,
        share_ipc=share,
    )


async def test_a_sidecar_joins_the_main_containers_pid_and_ipc_namespaces(docker_url: str) -> None:
    with checking_client(docker_url) as sdk:
        await joined_namespaces(docker_url, sdk)


async def joined_namespaces(docker_url: str, sdk: docker.DockerClient) -> None:
    """Start a task whose sidecar ``beyla`` shares the main container's PID and IPC namespaces and whose
    sidecar ``plain`` does not; check both on the engine."""
    executor = await open_docker_executor(docker_url)
    assignment = sleeping_task(
        "f6f6f6f6f6f6f6f6", "web", members=(sidecar("beyla", share=True), sidecar("plain", share=False))
    )
    outcome = await executor.start(assignment)
    assert outcome.error == "" and outcome.container is not None, outcome.error
    main_id = outcome.container.container_id
    main = await trio.to_thread.run_sync(sdk.containers.get, main_id)
    assert main.attrs["HostConfig"]["IpcMode"] == "shareable"
    members = {
        c.labels[LABEL_MEMBER]: c
        for c in sdk.containers.list(filters={"label": f"{LABEL_TASK_ID}=f6f6f6f6f6f6f6f6"})
        if LABEL_MEMBER in c.labels
    }
    beyla, plain = members["beyla"], members["plain"]
    host = beyla.attrs["HostConfig"]
    assert (host["PidMode"], host["IpcMode"]) == (f"container:{main_id}", f"container:{main_id}")

    def run(container: docker.models.containers.Container, *cmd: str) -> str:
        code, out = container.exec_run(list(cmd))
        assert code == 0, out
        return out.decode().strip().strip("\x00")  # /proc/N/cmdline ends its arguments with NUL

    # PID 1 of the joined namespace is the main container's sleep (its argument tells them apart)
    assert await trio.to_thread.run_sync(run, beyla, "cat", "/proc/1/cmdline") == "sleep\x003600"
    assert await trio.to_thread.run_sync(run, plain, "cat", "/proc/1/cmdline") == "sleep\x003601"
    await trio.to_thread.run_sync(run, main, "sh", "-c", "echo shared > /dev/shm/probe")
    assert await trio.to_thread.run_sync(run, beyla, "cat", "/dev/shm/probe") == "shared"
    code, _ = await trio.to_thread.run_sync(lambda: plain.exec_run(["cat", "/dev/shm/probe"]))
    assert code != 0  # its own IPC namespace: its own /dev/shm
