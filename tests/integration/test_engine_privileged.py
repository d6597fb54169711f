"""Compose's ``privileged: true`` on a real dockerd (sandbox "p50p", 10.95.8.0/24; root + docker.io): the
task's main container is created privileged (``HostConfig.Privileged``) and then mounts a tmpfs, which an
unprivileged one may not (no CAP_SYS_ADMIN); a sidecar is privileged when it declares it, its siblings not.

A privileged container gets every capability the kernel knows, so it cannot start where the node's
capability bounding set lacks one (a node that is itself a restricted container: runc's "unable to apply
caps"), as ``docker run --privileged`` cannot there: on such a host the test checks the engine got the
setting and the task failed with the engine's error, and says so in its output.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from p2porch.agent.docker_executor import open_docker_executor
from p2porch.agent.model import KIND_SIDECAR, LABEL_MEMBER, MemberSpec, TaskAssignment
from p2porch.model.container_opts import ContainerOptions

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import checking_client, lone_engine, sleeping_task  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

#: mounts a tmpfs inside the container: needs CAP_SYS_ADMIN, which only a privileged container has here
MOUNT = ["sh", "-c", "mkdir -p /x && mount -t tmpfs tmpfs /x && grep ' /x tmpfs ' /proc/mounts"]


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    with lone_engine("p50p", "10.95.8.0/24") as node:
        yield node.dockerd.host_url


@pytest.fixture
def sdk(docker_url: str) -> Iterator[docker.DockerClient]:
    with checking_client(docker_url) as cli:
        yield cli


def node_has_every_capability() -> bool:
    """The bounding set of this process (the sandbox's dockerd and runc inherit it) holds every capability
    the kernel knows: a privileged container can start."""
    every = (1 << (int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1)) - 1
    status = Path("/proc/self/status").read_text().splitlines()
    bounding = next(line for line in status if line.startswith("CapBnd:"))
    return int(bounding.split()[1], 16) & every == every


FULL_CAPS = node_has_every_capability()


def task(task_id: str, members: tuple[MemberSpec, ...] = (), **options: Any) -> TaskAssignment:
    return sleeping_task(
        task_id, "priv", members=members, options=ContainerOptions.from_dict(options).to_dict()
    )


def sidecar(name: str, **kw: Any) -> MemberSpec:
    return MemberSpec(name, KIND_SIDECAR, BUSYBOX_IMAGE, command=("sleep", "3600"), **kw)


async def mounts_tmpfs(sdk: docker.DockerClient, container_id: str) -> tuple[bool, str]:
    container = await trio.to_thread.run_sync(sdk.containers.get, container_id)
    code, out = await trio.to_thread.run_sync(lambda: container.exec_run(MOUNT))
    return code == 0, out.decode(errors="replace")


async def managed(sdk: docker.DockerClient) -> dict[str, Any]:
    """The task's containers by their member name ("" for the main container)."""
    containers = await trio.to_thread.run_sync(
        lambda: sdk.containers.list(all=True, filters={"label": "p2porch.managed=true"})
    )
    return {
        c.labels.get(LABEL_MEMBER, "") if c.labels.get(LABEL_MEMBER) != "main" else "": c for c in containers
    }


async def test_a_privileged_task_can_mount_what_an_unprivileged_one_cannot(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    executor = await open_docker_executor(docker_url)
    plain = await executor.start(task("b2b2b2b2b2b2b2b2"))
    assert plain.error == "" and plain.container is not None, plain.error
    attrs = await trio.to_thread.run_sync(lambda: sdk.api.inspect_container(plain.container.container_id))
    assert attrs["HostConfig"]["Privileged"] is False
    ok, out = await mounts_tmpfs(sdk, plain.container.container_id)
    assert not ok, out  # the default: no CAP_SYS_ADMIN, the mount is refused
    await trio.to_thread.run_sync(lambda: sdk.api.remove_container(plain.container.container_id, force=True))
    privileged = await executor.start(task("a1a1a1a1a1a1a1a1", privileged=True))
    (main,) = (await managed(sdk)).values()
    assert main.attrs["HostConfig"]["Privileged"] is True
    if not FULL_CAPS:
        print("this node's bounding set lacks a capability: a privileged container cannot start here")
        assert privileged.error, "a privileged container started on a node without every capability"
        return
    assert privileged.error == "" and privileged.container is not None, privileged.error
    ok, out = await mounts_tmpfs(sdk, main.id)
    assert ok and "tmpfs /x tmpfs" in out, out


async def test_a_sidecar_is_privileged_only_when_it_declares_it(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    executor = await open_docker_executor(docker_url)
    members = (sidecar("logs"), sidecar("vpn", privileged=True))  # started in this order
    outcome = await executor.start(task("c3c3c3c3c3c3c3c3", members))
    by_member = await managed(sdk)
    assert set(by_member) == {"", "logs", "vpn"}, by_member
    assert [by_member[m].attrs["HostConfig"]["Privileged"] for m in ("", "logs", "vpn")] == [
        False,
        False,
        True,
    ]
    ok, out = await mounts_tmpfs(sdk, by_member["logs"].id)
    assert not ok, out
    if not FULL_CAPS:
        print("this node's bounding set lacks a capability: a privileged container cannot start here")
        assert outcome.error, "a privileged sidecar started on a node without every capability"
        return
    assert outcome.error == "", outcome.error
    ok, out = await mounts_tmpfs(sdk, by_member["vpn"].id)
    assert ok and "tmpfs /x tmpfs" in out, out
