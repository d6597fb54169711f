"""One sandbox host's dockerd without a p2porch daemon, for the tests that drive the engine through the
agent's executor directly (test_agent_docker, test_agent_sidecar_engine, test_engine_client_fields,
test_engine_compose_keys)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import docker
import trio

from p2porch.agent.model import TaskAssignment
from p2porch.sandbox.dockerd import BUSYBOX_IMAGE
from p2porch.sandbox.sandbox import Sandbox, SandboxNode


@contextlib.contextmanager
def lone_engine(
    name: str, subnet: str, prepare: Callable[[docker.DockerClient], None] | None = None
) -> Iterator[SandboxNode]:
    """A one-node sandbox with only its dockerd running; ``prepare`` gets an SDK client first (networks,
    image tags). Taken down at the end, also when the block fails."""
    sandbox = Sandbox(name, subnet=subnet, start_daemons=False)
    try:
        (node,) = sandbox.up(1)
        if prepare is not None:
            client = docker.DockerClient(base_url=node.dockerd.host_url)
            try:
                prepare(client)
            finally:
                client.close()
        yield node
    finally:
        sandbox.down()


@contextlib.contextmanager
def checking_client(docker_url: str) -> Iterator[docker.DockerClient]:
    """A plain SDK client for checking what the agent did; removes every managed container afterwards."""
    cli = docker.DockerClient(base_url=docker_url)
    try:
        yield cli
    finally:
        for container in cli.containers.list(all=True, filters={"label": "p2porch.managed=true"}):
            container.remove(force=True)
        cli.close()


def bridge_network(name: str) -> Callable[[docker.DockerClient], None]:
    """A ``prepare`` for :func:`lone_engine`: the user-defined bridge network ``name`` the tasks attach to."""

    def prepare(client: docker.DockerClient) -> None:
        if not client.networks.list(names=[name]):
            client.networks.create(name, driver="bridge")

    return prepare


async def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> Any:
    """``predicate()``'s first truthy value, polled every 50 ms; AssertionError after ``timeout_s``."""
    with trio.move_on_after(timeout_s):
        while True:
            value = predicate()
            if value:
                return value
            await trio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


def sleeping_task(task_id: str, service: str, image: str = BUSYBOX_IMAGE, **fields: Any) -> TaskAssignment:
    """Slot 1 of ``service`` on node n1: ``sleep 3600``, a 1 s stop grace; ``fields`` as TaskAssignment's."""
    return TaskAssignment(
        task_id=task_id,
        service_name=service,
        service_id=f"{service}-id",
        slot=1,
        node_name="n1",
        image=image,
        command=("sleep", "3600"),
        stop_grace_s=1.0,
        **fields,
    )
