"""The Compose keys of session 50 on a real dockerd (sandbox "p50c", 10.95.4.0/24; root + docker.io):
``pid``/``ipc``/``uts`` reach the container's HostConfig (``pid: host``: the task sees its node's
processes), a refresh pull policy (``every_<duration>``) pulls an image the node tagged longer ago than
that and not a fresher one, and a volume's ``subpath`` on an engine older than API 1.45 fails the task
naming it before anything is created (on a newer engine, the sub-directory is what the task sees)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from p2porch.agent.docker_executor import open_docker_executor
from p2porch.agent.model import MountSpec, TaskAssignment
from p2porch.model.container_opts import ContainerOptions

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import checking_client, lone_engine  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

#: a tag of the sandbox's busybox whose registry is a closed port on the node's loopback: a pull of it is
#: refused at once, so an attempted pull shows as the executor's warning (the node's image then runs)
UNREACHABLE = "127.0.0.1:9/p50c/app:1"


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    def unreachable_tag(client: docker.DockerClient) -> None:
        client.images.get(BUSYBOX_IMAGE).tag(UNREACHABLE)  # its LastTagTime: now

    with lone_engine("p50c", "10.95.4.0/24", prepare=unreachable_tag) as node:
        yield node.dockerd.host_url


@pytest.fixture
def sdk(docker_url: str) -> Iterator[docker.DockerClient]:
    with checking_client(docker_url) as cli:
        yield cli


def task(task_id: str, image: str = BUSYBOX_IMAGE, *, mounts: tuple[MountSpec, ...] = (), **options: Any):
    return TaskAssignment(
        task_id=task_id,
        service_name="ns",
        service_id="ns-id",
        slot=1,
        node_name="n1",
        image=image,
        command=("sleep", "3600"),
        stop_grace_s=1.0,
        mounts=mounts,
        options=ContainerOptions.from_dict(options).to_dict(),
    )


async def test_pid_ipc_and_uts_reach_the_container(docker_url: str, sdk: docker.DockerClient) -> None:
    executor = await open_docker_executor(docker_url)
    outcome = await executor.start(task("a1a1a1a1a1a1a1a1", pid="host", ipc="shareable", uts="host"))
    assert outcome.error == "" and outcome.container is not None, outcome.error
    container = await trio.to_thread.run_sync(sdk.containers.get, outcome.container.container_id)
    host = container.attrs["HostConfig"]
    assert (host["PidMode"], host["IpcMode"], host["UTSMode"]) == ("host", "shareable", "host")
    code, out = await trio.to_thread.run_sync(lambda: container.exec_run(["cat", "/proc/1/comm"]))
    assert code == 0 and out.decode().strip() != "sleep", out  # PID 1 is the node's, not the task's
    own = await executor.start(task("b2b2b2b2b2b2b2b2"))  # without: its own namespace, sleep is PID 1
    assert own.container is not None, own.error
    mine = await trio.to_thread.run_sync(sdk.containers.get, own.container.container_id)
    code, out = await trio.to_thread.run_sync(lambda: mine.exec_run(["cat", "/proc/1/comm"]))
    assert code == 0 and out.decode().strip() == "sleep", out


async def test_a_refresh_policy_pulls_an_image_older_than_its_interval(
    docker_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    executor = await open_docker_executor(docker_url)
    with caplog.at_level(logging.WARNING, logger="p2porch.agent.docker_executor"):
        fresh = await executor.start(task("c3c3c3c3c3c3c3c3", UNREACHABLE, pull_policy="daily"))
        assert fresh.error == "" and fresh.container is not None, fresh.error
        assert "pulling" not in caplog.text  # tagged moments ago: not due
        await trio.sleep(1.5)  # the tag is now older than a second
        due = await executor.start(task("d4d4d4d4d4d4d4d4", UNREACHABLE, pull_policy="every_1s"))
    assert due.error == "" and due.container is not None, due.error  # the refused pull runs the node's
    assert f"pulling {UNREACHABLE} failed" in caplog.text and "(pull_policy: every_1s)" in caplog.text


async def test_a_volume_subpath_needs_api_1_45(docker_url: str, sdk: docker.DockerClient) -> None:
    """Docker 20.10 (API 1.41) would ignore VolumeOptions.Subpath and mount the whole volume."""
    api = tuple(int(p) for p in sdk.version()["ApiVersion"].split("."))
    if api >= (1, 45):
        pytest.skip(f"this engine speaks API {api}: it mounts the sub-directory itself")
    executor = await open_docker_executor(docker_url)
    mount = MountSpec("volume", "p50c-data", "/data", subpath="tenant-a")
    outcome = await executor.start(task("e5e5e5e5e5e5e5e5", mounts=(mount,)))
    assert outcome.container is None
    said = "volume p50c-data mounted at /data with subpath 'tenant-a' needs Docker Engine API 1.45"
    assert outcome.error.startswith(said), outcome.error
    names = {c.name for c in sdk.containers.list(all=True, filters={"label": "p2porch.managed=true"})}
    assert "ns.1.e5e5e5e5" not in names
