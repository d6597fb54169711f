"""The node agent against a real dockerd (sandbox node n1 of sandbox "p2ag"): root + docker.io only."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import trio

from p2porch.agent.docker_executor import DockerExecutor, open_docker_executor
from p2porch.agent.model import MountSpec, PortSpec, TaskAssignment, TaskReport
from p2porch.agent.worker import NodeAgent, run_agent
from p2porch.model import HealthSpec, TaskState

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import bridge_network, checking_client, lone_engine, wait_until  # noqa: E402

from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

NODE = "n1"
NETWORK = "p2ag-net"


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    with lone_engine("p2ag", "10.79.0.0/24", prepare=bridge_network(NETWORK)) as node:
        yield node.dockerd.host_url


@pytest.fixture
def client(docker_url: str) -> Iterator[docker.DockerClient]:
    """A plain SDK client for checking what the agent did; removes every managed container afterwards."""
    with checking_client(docker_url) as cli:
        yield cli


class Recorder:
    """The agent's report callback: remembers every batch."""

    def __init__(self) -> None:
        self.batches: list[list[TaskReport]] = []

    async def __call__(self, batch: list[TaskReport]) -> None:
        self.batches.append(list(batch))

    def all(self, task_id: str) -> list[TaskReport]:
        return [r for b in self.batches for r in b if r.task_id == task_id]

    def latest(self, task_id: str) -> TaskReport | None:
        found = self.all(task_id)
        return found[-1] if found else None


def reported(
    rec: Recorder, task_id: str, state: str, health: str | None = None
) -> Callable[[], TaskReport | None]:
    def check() -> TaskReport | None:
        rep = rec.latest(task_id)
        if rep is not None and rep.state == state and (health is None or rep.health == health):
            return rep
        return None

    return check


def task(task_id: str, service: str = "web", slot: int = 1, **kw: Any) -> TaskAssignment:
    base: dict[str, Any] = dict(
        task_id=task_id,
        service_name=service,
        service_id=f"{service}-id",
        slot=slot,
        node_name=NODE,
        image=BUSYBOX_IMAGE,
        command=("sleep", "3600"),
        stop_grace_s=1.0,
    )
    base.update(kw)
    return TaskAssignment(**base)


async def start_agent(
    nursery: trio.Nursery,
    executor: DockerExecutor,
    assignments: Callable[[], list[TaskAssignment]],
    rec: Recorder,
) -> NodeAgent:
    return await nursery.start(
        lambda task_status: run_agent(
            executor,
            NODE,
            assignments,
            None,
            rec,
            resync_interval_s=1.0,
            orphan_grace_s=1.0,
            task_status=task_status,
        )
    )


async def inspect(client: docker.DockerClient, container_id: str) -> dict[str, Any]:
    return await trio.to_thread.run_sync(lambda: client.api.inspect_container(container_id))


async def test_task_runs_with_labels_env_limits_mounts_ports_network(
    docker_url: str, client: docker.DockerClient
) -> None:
    bind_dir = tempfile.mkdtemp(prefix="p2ag-bind-")
    try:
        with open(os.path.join(bind_dir, "hello.txt"), "w") as handle:
            handle.write("from the host\n")
        spec = task(
            "aaaa1111bbbb2222",
            service="web",
            slot=2,
            env={"GREETING": "hi"},
            labels={"team": "blue"},
            cpu_limit_nanos=500_000_000,
            memory_limit_bytes=96 << 20,
            memory_reservation_bytes=32 << 20,
            cpu_reservation_nanos=250_000_000,
            mounts=(
                MountSpec("bind", bind_dir, "/host", read_only=True),
                MountSpec("volume", "p2ag-vol", "/vol", volume_driver="local"),
            ),
            ports=(PortSpec(80, 18080),),
            network=NETWORK,
            dns_servers=("10.79.0.254",),
            dns_search=("p2p",),
        )
        rec = Recorder()
        executor = await open_docker_executor(docker_url)
        async with trio.open_nursery() as nursery:
            await start_agent(nursery, executor, lambda: [spec], rec)
            running = await wait_until(reported(rec, spec.task_id, TaskState.RUNNING), what="running")
            attrs = await inspect(client, running.container_id)
            nursery.cancel_scope.cancel()

        assert attrs["Name"] == "/web.2.aaaa1111"
        labels = attrs["Config"]["Labels"]
        assert {k: v for k, v in labels.items() if k.startswith("p2porch.") or k == "team"} == {
            "team": "blue",
            "p2porch.managed": "true",
            "p2porch.task-id": spec.task_id,
            "p2porch.service": "web",
            "p2porch.service-id": "web-id",
            "p2porch.slot": "2",
            "p2porch.node": NODE,
            "p2porch.network": NETWORK,
            "p2porch.spec-version": "0",
        }
        env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
        assert env["GREETING"] == "hi"
        assert (env["P2PORCH_SERVICE"], env["P2PORCH_SLOT"], env["P2PORCH_NODE"], env["P2PORCH_TASK_ID"]) == (
            "web",
            "2",
            NODE,
            spec.task_id,
        )
        host = attrs["HostConfig"]
        assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"], host["CpuShares"]) == (
            500_000_000,
            96 << 20,
            32 << 20,
            256,
        )
        assert host["RestartPolicy"]["Name"] == "no"
        assert (host["Dns"], host["DnsSearch"]) == (["10.79.0.254"], ["p2p"])
        assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "18080"}]}
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        assert mounts["/host"]["Type"] == "bind" and mounts["/host"]["RW"] is False
        assert mounts["/vol"]["Type"] == "volume" and mounts["/vol"]["Name"] == "p2ag-vol"
        assert running.address == attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"] != ""
        # The bind mount really shows the host file inside the container.
        out = await trio.to_thread.run_sync(
            lambda: client.containers.get(running.container_id).exec_run("cat /host/hello.txt")
        )
        assert out.output == b"from the host\n"
        # The container is still running after the agent stopped: the agent never stops tasks on exit.
        assert (await inspect(client, running.container_id))["State"]["Running"] is True
    finally:
        shutil.rmtree(bind_dir, ignore_errors=True)


async def test_capacity_comes_from_docker_info(docker_url: str, client: docker.DockerClient) -> None:
    executor = await open_docker_executor(docker_url)
    capacity = await executor.capacity()
    info = await trio.to_thread.run_sync(client.info)
    assert capacity.cpu_nanos == info["NCPU"] * 1_000_000_000 > 0
    assert capacity.memory_bytes == info["MemTotal"] > 0


async def test_desired_shutdown_stops_and_removes_the_container(
    docker_url: str, client: docker.DockerClient
) -> None:
    spec = task("cccc3333dddd4444", service="api")
    current = [spec]
    rec = Recorder()
    executor = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        agent = await start_agent(nursery, executor, lambda: current, rec)
        running = await wait_until(reported(rec, spec.task_id, TaskState.RUNNING), what="running")
        current = [replace(spec, desired_state="shutdown", state=TaskState.RUNNING)]
        agent.poke()
        done = await wait_until(reported(rec, spec.task_id, TaskState.SHUTDOWN), what="shutdown")
        nursery.cancel_scope.cancel()
    assert done.container_id == running.container_id
    with pytest.raises(docker.errors.NotFound):
        await inspect(client, running.container_id)


async def test_restarted_agent_adopts_running_container_without_restarting_it(
    docker_url: str, client: docker.DockerClient
) -> None:
    spec = task("eeee5555ffff6666", service="db")
    rec = Recorder()
    first = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        await start_agent(nursery, first, lambda: [spec], rec)
        running = await wait_until(reported(rec, spec.task_id, TaskState.RUNNING), what="running")
        nursery.cancel_scope.cancel()
    before = await inspect(client, running.container_id)
    await first.aclose()

    # A new executor and agent, as after a daemon restart: the committed state says "running".
    committed = replace(spec, state=TaskState.RUNNING)
    rec2 = Recorder()
    second = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        agent = await start_agent(nursery, second, lambda: [committed], rec2)
        adopted = await wait_until(reported(rec2, spec.task_id, TaskState.RUNNING), what="adopted")
        passes = agent.reconcile_count
        await wait_until(lambda: agent.reconcile_count >= passes + 1, what="one periodic resync more")
        nursery.cancel_scope.cancel()
    after = await inspect(client, running.container_id)
    assert adopted.container_id == running.container_id
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]  # never restarted
    assert after["RestartCount"] == 0
    assert [r.state for r in rec2.all(spec.task_id)] == [
        TaskState.RUNNING
    ]  # no "starting": nothing was started
    managed = await trio.to_thread.run_sync(
        lambda: client.containers.list(all=True, filters={"label": f"p2porch.task-id={spec.task_id}"})
    )
    assert len(managed) == 1


async def test_container_of_unknown_task_is_removed_and_foreign_containers_are_kept(
    docker_url: str, client: docker.DockerClient
) -> None:
    executor = await open_docker_executor(docker_url)
    ghost = task("9999aaaa0000bbbb", service="ghost")
    outcome = await executor.start(ghost)
    assert outcome.error == "" and outcome.container is not None
    foreign = await trio.to_thread.run_sync(
        lambda: client.containers.run(BUSYBOX_IMAGE, ["sleep", "3600"], detach=True, name="p2ag-foreign")
    )
    try:
        rec = Recorder()
        async with trio.open_nursery() as nursery:
            await start_agent(nursery, executor, lambda: [], rec)

            def gone() -> bool:
                try:
                    client.api.inspect_container(outcome.container.container_id)  # type: ignore[union-attr]
                    return False
                except docker.errors.NotFound:
                    return True

            await wait_until(gone, what="orphan removed")
            nursery.cancel_scope.cancel()
        assert (await inspect(client, foreign.id))["State"]["Running"] is True
        assert rec.all(ghost.task_id) == []
    finally:
        await trio.to_thread.run_sync(lambda: foreign.remove(force=True))


async def test_missing_image_is_a_failed_task_with_dockers_error(
    docker_url: str, client: docker.DockerClient
) -> None:
    # A registry on a closed loopback port fails at once (no registry is reachable here anyway).
    spec = task("1111cccc2222dddd", service="nope", image="127.0.0.1:9/p2ag/does-not-exist:1.0")
    rec = Recorder()
    executor = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        agent = await start_agent(nursery, executor, lambda: [spec], rec)
        failed = await wait_until(reported(rec, spec.task_id, TaskState.FAILED), what="failed")
        passes = agent.reconcile_count
        await wait_until(lambda: agent.reconcile_count >= passes + 1, what="a reconcile after the failure")
        nursery.cancel_scope.cancel()
    assert "127.0.0.1:9" in failed.error and "connection refused" in failed.error, failed.error
    assert failed.container_id == ""
    states = [r.state for r in rec.all(spec.task_id)]  # "starting" may be coalesced away (same batch)
    assert (
        states[-1] == TaskState.FAILED
        and states.count(TaskState.FAILED) == 1
        and set(states) <= {"starting", TaskState.FAILED}
    ), states


async def test_bad_command_and_exits_are_failed_or_complete(
    docker_url: str, client: docker.DockerClient
) -> None:
    bad = task("2222eeee3333ffff", service="bad", command=("no-such-command",))
    crash = task("3333aaaa4444bbbb", service="crash", command=("sh", "-c", "sleep 0.3; exit 3"))
    done = task("4444cccc5555dddd", service="done", command=("true",))
    rec = Recorder()
    executor = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        agent = await start_agent(nursery, executor, lambda: [bad, crash, done], rec)
        bad_rep = await wait_until(reported(rec, bad.task_id, TaskState.FAILED), what="bad failed")
        crash_rep = await wait_until(reported(rec, crash.task_id, TaskState.FAILED), what="crash failed")
        done_rep = await wait_until(reported(rec, done.task_id, TaskState.COMPLETE), what="complete")
        passes = agent.reconcile_count  # the agent looks again after the exits: still nothing restarted
        await wait_until(lambda: agent.reconcile_count >= passes + 2, what="two reconciles after the exits")
        nursery.cancel_scope.cancel()
    assert "executable file not found" in bad_rep.error and "no-such-command" in bad_rep.error, bad_rep.error
    assert (crash_rep.exit_code, crash_rep.error) == (3, "task exited with code 3")
    assert done_rep.exit_code == 0
    # Terminal: reported once, never restarted by the agent.
    for spec in (bad, crash, done):
        states = [r.state for r in rec.all(spec.task_id)]
        assert states.count(TaskState.FAILED) + states.count(TaskState.COMPLETE) == 1, states
    crash_attrs = await inspect(client, crash_rep.container_id)
    assert crash_attrs["RestartCount"] == 0 and crash_attrs["State"]["Status"] == "exited"


async def test_health_check_healthy_then_unhealthy_is_reported(
    docker_url: str, client: docker.DockerClient
) -> None:
    spec = task(
        "5555dddd6666eeee",
        service="hc",
        command=("sh", "-c", "touch /tmp/ok; exec sleep 3600"),
        healthcheck=HealthSpec(("CMD-SHELL", "test -f /tmp/ok"), interval_s=0.3, timeout_s=1.0, retries=1),
    )
    rec = Recorder()
    executor = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        await start_agent(nursery, executor, lambda: [spec], rec)
        healthy = await wait_until(reported(rec, spec.task_id, TaskState.RUNNING, "healthy"), what="healthy")
        await trio.to_thread.run_sync(
            lambda: client.containers.get(healthy.container_id).exec_run("rm /tmp/ok")
        )
        await wait_until(reported(rec, spec.task_id, TaskState.RUNNING, "unhealthy"), what="unhealthy")
        nursery.cancel_scope.cancel()
    healths = [r.health for r in rec.all(spec.task_id) if r.state == TaskState.RUNNING]
    assert healths.index("healthy") < healths.index("unhealthy")


async def test_logs_are_streamed_per_task(docker_url: str, client: docker.DockerClient) -> None:
    loop = "i=0; while true; do echo tick-$P2PORCH_SLOT-$i; i=$((i+1)); sleep 0.1; done"
    script = f"echo start-$P2PORCH_SLOT; {loop}"
    specs = [
        task(f"6666{slot}eee7777ffff", service="chatty", slot=slot, command=("sh", "-c", script))
        for slot in (1, 2)
    ]
    other = task("7777aaaa8888bbbb", service="quiet", command=("sh", "-c", "echo other; sleep 3600"))
    rec = Recorder()
    executor = await open_docker_executor(docker_url)
    async with trio.open_nursery() as nursery:
        await start_agent(nursery, executor, lambda: [*specs, other], rec)
        for spec in [*specs, other]:
            await wait_until(reported(rec, spec.task_id, TaskState.RUNNING), what="running")
        await trio.sleep(0.5)

        lines: list[tuple[str, str]] = []
        with trio.fail_after(10):
            async with executor.open_logs(service_name="chatty") as channel:
                async for item in channel:
                    lines.append(item)
        by_task = {spec.task_id: [line for t, line in lines if t == spec.task_id] for spec in specs}
        assert set(t for t, _ in lines) == {s.task_id for s in specs}  # only the service's tasks
        for slot, spec in zip((1, 2), specs, strict=True):
            assert by_task[spec.task_id][0] == f"start-{slot}"
            assert by_task[spec.task_id][1:3] == [f"tick-{slot}-0", f"tick-{slot}-1"]

        followed: list[str] = []
        with trio.fail_after(10):
            async with executor.open_logs([specs[0].task_id], follow=True, tail=0) as channel:
                async for task_id, line in channel:
                    assert task_id == specs[0].task_id
                    followed.append(line)
                    if len(followed) == 5:
                        break
        numbers = [int(line.rsplit("-", 1)[1]) for line in followed]
        assert numbers == list(range(numbers[0], numbers[0] + 5))  # new lines, in order, none lost
        assert numbers[0] > len(by_task[specs[0].task_id]) - 3  # tail=0: only lines written after opening
        nursery.cancel_scope.cancel()


async def test_followed_logs_survive_a_quiet_period_longer_than_the_client_timeout(
    docker_url: str, client: docker.DockerClient
) -> None:
    spec = task(
        "8888cccc9999dddd",
        service="late",
        command=("sh", "-c", "echo early; sleep 2.5; echo late; sleep 3600"),
    )
    rec = Recorder()
    executor = await open_docker_executor(docker_url, timeout_s=1.0)
    async with trio.open_nursery() as nursery:
        await start_agent(nursery, executor, lambda: [spec], rec)
        await wait_until(reported(rec, spec.task_id, TaskState.RUNNING), what="running")
        lines = []
        with trio.fail_after(15):
            async with executor.open_logs([spec.task_id], follow=True) as channel:
                async for _, line in channel:
                    lines.append(line)
                    if line == "late":
                        break
        nursery.cancel_scope.cancel()
    assert lines == ["early", "late"]


async def test_unreachable_registry_pull_is_bounded_by_pull_timeout(
    docker_url: str, client: docker.DockerClient
) -> None:
    # No registry is reachable from the sandbox: Docker Hub's name lookup alone takes ~20 s to fail here.
    spec = task("aaaa9999bbbb8888", service="slowpull", image="p2ag/not-here:1.0")
    rec = Recorder()
    executor = await open_docker_executor(docker_url, pull_timeout_s=0.5)
    async with trio.open_nursery() as nursery:
        await start_agent(nursery, executor, lambda: [spec], rec)
        with trio.fail_after(10):
            failed = await wait_until(reported(rec, spec.task_id, TaskState.FAILED), what="failed")
        nursery.cancel_scope.cancel()
    assert "p2ag/not-here:1.0" in failed.error and "timed out after 0.5 s" in failed.error, failed.error
