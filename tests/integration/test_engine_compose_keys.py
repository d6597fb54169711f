"""The Compose keys of h49 on a real dockerd (sandbox "p9e", 10.93.5.0/24; root + docker.io):
``pull_policy`` decides whether the agent pulls (``always`` pulls an image the node has, and a failed
pull runs the node's image, failing the start only without one; ``never`` runs only what the node has;
``missing`` pulls only an absent image), and ``mem_swappiness`` with ``memswap_limit`` reach the
container's HostConfig; a task on the host network (``network_mode: host``) runs in its node's network
namespace, with the cluster DNS as resolver."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import trio

from p2porch.agent.docker_executor import open_docker_executor
from p2porch.agent.model import PortSpec, TaskAssignment
from p2porch.model.container_opts import ContainerOptions

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import checking_client, lone_engine  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

#: a tag of the sandbox's busybox whose registry is a closed port on the node's loopback: a pull of it
#: is refused at once (no registry, no network), so a pull attempted is a start failed
UNREACHABLE = "127.0.0.1:9/p9e/app:1"
ABSENT = "127.0.0.1:9/p9e/absent:1"  # ...and one the node does not have


NODE: dict[str, str] = {}


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    def unreachable_tag(client: docker.DockerClient) -> None:
        client.images.get(BUSYBOX_IMAGE).tag(UNREACHABLE)

    with lone_engine("p9e", "10.93.5.0/24", prepare=unreachable_tag) as node:
        NODE["address"] = node.address
        yield node.dockerd.host_url


@pytest.fixture
def sdk(docker_url: str) -> Iterator[docker.DockerClient]:
    with checking_client(docker_url) as cli:
        yield cli


def task(task_id: str, image: str, network: str = "", **options: Any) -> TaskAssignment:
    return TaskAssignment(
        network=network,
        task_id=task_id,
        service_name="pulls",
        service_id="pulls-id",
        slot=1,
        node_name="n1",
        image=image,
        command=("sleep", "3600"),
        stop_grace_s=1.0,
        memory_limit_bytes=64 << 20 if "memswap_limit" in options else 0,
        options=ContainerOptions.from_dict(options).to_dict(),
    )


async def test_pull_policy_decides_whether_the_agent_pulls(docker_url: str, sdk: docker.DockerClient) -> None:
    executor = await open_docker_executor(docker_url)
    missing = await executor.start(task("a1a1a1a1a1a1a1a1", UNREACHABLE))  # present: not pulled
    assert missing.error == "" and missing.container is not None, missing.error
    # `always` pulls; a refused pull runs the image the node has (as Swarm), and fails only without one
    always = await executor.start(task("b2b2b2b2b2b2b2b2", UNREACHABLE, pull_policy="always"))
    assert always.error == "" and always.container is not None, always.error
    absent = await executor.start(task("e5e5e5e5e5e5e5e5", ABSENT, pull_policy="always"))
    assert absent.container is None and absent.error.startswith(f"pulling {ABSENT} failed: "), absent.error
    never = await executor.start(task("c3c3c3c3c3c3c3c3", "p9e/absent:1", pull_policy="never"))
    assert never.container is None
    assert never.error == "image p9e/absent:1 not found on this node and the service's pull_policy is never"
    names = {c.name for c in sdk.containers.list(all=True, filters={"label": "p2porch.managed=true"})}
    assert names == {"pulls.1.a1a1a1a1", "pulls.1.b2b2b2b2"}  # neither refused start created a container


async def test_mem_swappiness_and_memory_swap_reach_the_container(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    executor = await open_docker_executor(docker_url)
    spec = task("d4d4d4d4d4d4d4d4", BUSYBOX_IMAGE, mem_swappiness=0, memswap_limit="128M")
    outcome = await executor.start(spec)
    assert outcome.error == "" and outcome.container is not None, outcome.error
    container_id = outcome.container.container_id
    host = (await trio.to_thread.run_sync(lambda: sdk.api.inspect_container(container_id)))["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (64 << 20, 128 << 20)
    assert host["MemorySwappiness"] == 0


async def test_a_task_on_the_host_network_is_in_its_nodes_namespace(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    spec = replace(
        task("e5e5e5e5e5e5e5e5", BUSYBOX_IMAGE, network="host"),
        ports=(PortSpec(18080, 18080),),
        dns_servers=("10.93.5.254",),
        dns_search=("p2p",),
    )
    executor = await open_docker_executor(docker_url)
    outcome = await executor.start(spec)
    assert outcome.error == "" and outcome.container is not None, outcome.error
    assert outcome.container.address == ""  # no overlay address: DNS answers none for it
    container = await trio.to_thread.run_sync(sdk.containers.get, outcome.container.container_id)
    host = container.attrs["HostConfig"]
    assert host["NetworkMode"] == "host" and not host.get("PortBindings")
    code, out = await trio.to_thread.run_sync(lambda: container.exec_run(["ip", "-4", "addr"]))
    assert code == 0 and f"inet {NODE['address']}/" in out.decode(), out  # the node's own eth0
    code, out = await trio.to_thread.run_sync(lambda: container.exec_run(["cat", "/etc/resolv.conf"]))
    assert "nameserver 10.93.5.254" in out.decode() and "search p2p" in out.decode(), out
