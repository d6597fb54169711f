"""A ``pid: service:X`` joiner with ``cap_add: [SYS_PTRACE]`` (a profiler, the usual case) on a real dockerd
(sandbox "p52l", 10.95.48.0/24; root + docker.io), from the Compose text on: the stack folds it into X's
task group with its capabilities (GroupContainer ``cap_add``/``cap_drop``, spec version 7), the member view
hands them to the agent, and its real container has ``SYS_PTRACE`` in its effective set (and ``NET_RAW``
dropped) while sharing X's PID namespace; the main container keeps the engine's defaults. Before h52left
the joiner was deployed on its own with a warning (a group container could carry no capabilities)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import trio

from p2porch.agent.docker_executor import open_docker_executor
from p2porch.agent.model import LABEL_MEMBER, LABEL_TASK_ID
from p2porch.member.views import group_members
from p2porch.model import ServiceSpec
from p2porch.stack.compose import load_stack

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import checking_client, lone_engine, sleeping_task  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

CAP_SYS_PTRACE, CAP_NET_RAW = 19, 13  # bits of /proc/PID/status CapEff (linux/capability.h)
COMPOSE = f"""
services:
  app:
    image: {BUSYBOX_IMAGE}
  spy:
    image: {BUSYBOX_IMAGE}
    command: [sleep, "3601"]
    pid: service:app
    cap_add: [SYS_PTRACE]
    cap_drop: [NET_RAW]
"""


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    with lone_engine("p52l", "10.95.48.0/24") as node:
        yield node.dockerd.host_url


def effective(container: docker.models.containers.Container) -> int:
    code, out = container.exec_run(["grep", "CapEff", "/proc/self/status"])
    assert code == 0, out
    return int(out.decode().split()[1], 16)


async def test_a_profiler_joining_the_pid_namespace_gets_its_capability(docker_url: str) -> None:
    stack = load_stack("p52l", COMPOSE)
    text = "\n".join(stack.warnings)
    assert "ignoring" not in text and "not applied" not in text, text  # folded, nothing dropped
    (app,) = stack.services
    spec = ServiceSpec.from_dict(app.spec)
    members = group_members(spec)
    assert [(m.name, m.cap_add, m.cap_drop, m.share_pid) for m in members] == [
        ("spy", ("SYS_PTRACE",), ("NET_RAW",), True)
    ]
    with checking_client(docker_url) as sdk:  # removes the task's containers whatever happens
        executor = await open_docker_executor(docker_url)
        outcome = await executor.start(sleeping_task("c7c7c7c7c7c7c7c7", "app", members=members))
        assert outcome.error == "" and outcome.container is not None, outcome.error
        main_id = outcome.container.container_id
        main = await trio.to_thread.run_sync(sdk.containers.get, main_id)
        (spy,) = [
            c
            for c in sdk.containers.list(filters={"label": f"{LABEL_TASK_ID}=c7c7c7c7c7c7c7c7"})
            if c.labels.get(LABEL_MEMBER) == "spy"
        ]
        host = spy.attrs["HostConfig"]
        assert host["CapAdd"] == ["SYS_PTRACE"] and host["CapDrop"] == ["NET_RAW"]
        assert host["PidMode"] == f"container:{main_id}"
        caps = await trio.to_thread.run_sync(effective, spy)
        assert caps >> CAP_SYS_PTRACE & 1 and not caps >> CAP_NET_RAW & 1  # in its real container
        own = await trio.to_thread.run_sync(effective, main)
        assert not own >> CAP_SYS_PTRACE & 1 and own >> CAP_NET_RAW & 1  # the engine's defaults
        code, out = await trio.to_thread.run_sync(lambda: spy.exec_run(["cat", "/proc/1/cmdline"]))
        assert code == 0 and out.startswith(b"sleep\x003600"), out  # the main container's PID 1
