"""p2porch's own Engine API client against a real dockerd (sandbox "p2rs", 10.21.0.0/24): every field
the agent translates reaches the container, read back with the docker SDK's inspect (root + docker.io).

Also: a sidecar in the main container's network namespace and an init container, streamed events and
multiplexed logs, the error paths (404 image, 409 name), and the overlay's bridge network created,
recreated and removed through ``DockerNetwork``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import trio

from p2porch.agent.docker_executor import DockerExecutor, open_docker_executor
from p2porch.agent.model import KIND_INIT, KIND_SIDECAR, MemberSpec, MountSpec, PortSpec, TaskAssignment
from p2porch.model import HealthSpec
from p2porch.model.container_opts import ContainerOptions

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, dockerd)", allow_module_level=True)
if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
    pytest.skip("needs docker.io (dockerd not found)", allow_module_level=True)

import docker  # noqa: E402
from engine_kit import checking_client, lone_engine  # noqa: E402

from p2porch.engine.client import EngineClient, NotFound  # noqa: E402
from p2porch.netoverlay.dockernet import DockerNetwork  # noqa: E402
from p2porch.netoverlay.plan import BridgeNetworkSpec  # noqa: E402
from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402

NETWORK = "p2rs-net"


@pytest.fixture(scope="module")
def docker_url() -> Iterator[str]:
    def bridge(client: docker.DockerClient) -> None:
        client.networks.create(NETWORK, driver="bridge")

    with lone_engine("p2rs", "10.21.0.0/24", prepare=bridge) as node:
        yield node.dockerd.host_url


@pytest.fixture
def sdk(docker_url: str) -> Iterator[docker.DockerClient]:
    with checking_client(docker_url) as cli:
        yield cli


def task(task_id: str, **kw: Any) -> TaskAssignment:
    base: dict[str, Any] = dict(
        task_id=task_id,
        service_name="fields",
        service_id="fields-id",
        slot=1,
        node_name="n1",
        image=BUSYBOX_IMAGE,
        command=("sleep", "3600"),
        stop_grace_s=1.0,
    )
    base.update(kw)
    return TaskAssignment(**base)


OPTIONS = ContainerOptions.from_dict(
    {
        "hostname": "fields-host",
        "init": True,
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["MKNOD"],
        "extra_hosts": ["gw:10.0.0.1", "gw:10.0.0.2", "v6:fd00::1"],
        "log_driver": "json-file",
        "log_opts": {"max-size": "10m", "max-file": 3},
        "ulimits": {"nofile": {"soft": 1024, "hard": 2048}},
        "sysctls": ["net.core.somaxconn=1024"],
        "read_only": True,
        "security_opt": ["no-new-privileges:true"],
        "stop_signal": "SIGQUIT",
        "shm_size": "64M",
        "pids_limit": 100,
        "devices": ["/dev/null:/dev/p2rs-null:r"],
    }
).to_dict()


async def started(executor: DockerExecutor, spec: TaskAssignment) -> str:
    outcome = await executor.start(spec)
    assert outcome.error == "" and outcome.container is not None, outcome.error
    return outcome.container.container_id


async def test_every_translated_field_reaches_the_container(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    work = tempfile.mkdtemp(prefix="p2rs-fields-")
    created_dir = os.path.join(work, "made-by-the-engine")
    try:
        spec = task(
            "f1e1d1c1b1a19181",
            entrypoint=("/bin/sh", "-c"),
            command=("echo started; exec sleep 3600",),
            env={"GREETING": "hi there"},
            labels={"team": "blue"},
            stop_grace_s=27.5,
            user="1000:1000",
            workdir="/tmp",
            cpu_limit_nanos=500_000_000,
            memory_limit_bytes=96 << 20,
            memory_reservation_bytes=32 << 20,
            cpu_reservation_nanos=250_000_000,
            mounts=(
                MountSpec("bind", work, "/host", read_only=True, propagation="rprivate"),
                MountSpec("bind", created_dir, "/made", create_host_path=True),
                MountSpec(
                    "volume",
                    "p2rs-vol",
                    "/vol",
                    volume_driver="local",
                    volume_options={"type": "tmpfs", "device": "tmpfs"},
                    nocopy=True,
                ),
                MountSpec("tmpfs", "", "/scratch", tmpfs_size_bytes=16 << 20, tmpfs_mode=0o1777),
            ),
            ports=(PortSpec(80, 18081), PortSpec(53, 0, "udp"), PortSpec(8080, 18082, host_ip="127.0.0.1")),
            network=NETWORK,
            dns_servers=("10.21.0.254",),
            dns_search=("p2p",),
            healthcheck=HealthSpec(
                ("CMD-SHELL", "true"), interval_s=2, timeout_s=1.5, retries=4, start_period_s=0.5
            ),
            options=OPTIONS,
        )
        executor = await open_docker_executor(docker_url)
        container_id = await started(executor, spec)
        attrs = await trio.to_thread.run_sync(lambda: sdk.api.inspect_container(container_id))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    config, host = attrs["Config"], attrs["HostConfig"]
    assert attrs["Name"] == "/fields.1.f1e1d1c1"
    assert config["Labels"]["team"] == "blue" and config["Labels"]["p2porch.managed"] == "true"
    assert "GREETING=hi there" in config["Env"] and "P2PORCH_TASK_ID=f1e1d1c1b1a19181" in config["Env"]
    assert config["Entrypoint"] == ["/bin/sh", "-c"] and config["Cmd"] == ["echo started; exec sleep 3600"]
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("1000:1000", "/tmp", "fields-host")
    assert config["StopSignal"] == "SIGQUIT"
    assert config["StopTimeout"] == 28  # --stop-grace-period 27.5s, rounded up (a docker stop waits it)
    assert (config["Tty"], config["OpenStdin"], config["AttachStdout"]) == (False, False, False)
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 2_000_000_000,
        "Timeout": 1_500_000_000,
        "Retries": 4,
        "StartPeriod": 500_000_000,
    }
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp", "8080/tcp"}
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"], host["CpuShares"]) == (
        500_000_000,
        96 << 20,
        32 << 20,
        256,
    )
    assert host["RestartPolicy"]["Name"] == "no"
    assert host["NetworkMode"] == NETWORK and NETWORK in attrs["NetworkSettings"]["Networks"]
    assert (host["Dns"], host["DnsSearch"]) == (["10.21.0.254"], ["p2p"])
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "18081"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18082"}],
    }
    assert host["Init"] is True and host["ReadonlyRootfs"] is True
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["ExtraHosts"] == ["gw:10.0.0.1", "gw:10.0.0.2", "v6:fd00::1"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["ShmSize"] == 64 << 20 and host["PidsLimit"] == 100
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/p2rs-null", "CgroupPermissions": "r"}
    ]
    assert host["Binds"] == [f"{created_dir}:/made:rw"]
    by_target = {m["Target"]: m for m in host["Mounts"]}
    assert by_target["/host"]["ReadOnly"] is True and by_target["/host"]["BindOptions"] == {
        "Propagation": "rprivate"
    }
    assert by_target["/vol"]["VolumeOptions"] == {
        "NoCopy": True,
        "DriverConfig": {"Name": "local", "Options": {"device": "tmpfs", "type": "tmpfs"}},
    }
    assert by_target["/scratch"]["TmpfsOptions"] == {"SizeBytes": 16 << 20, "Mode": 0o1777}
    # what the running container sees
    state = attrs["State"]
    assert state["Running"] is True, state
    mounted = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounted["/host"]["RW"] is False and mounted["/made"]["RW"] is True
    container = sdk.containers.get(container_id)
    hosts = container.exec_run("cat /etc/hosts").output.decode()
    assert "10.0.0.1\tgw" in hosts and "10.0.0.2\tgw" in hosts
    assert container.exec_run("cat /etc/hostname").output.decode().strip() == "fields-host"
    # the task's own process, not an exec: how an exec inherits rlimits varies with the runc build
    # (one raised the exec's soft limit to the hard one), so /proc/1/limits is the honest reading
    open_files = container.exec_run("grep 'Max open files' /proc/1/limits").output.decode().split()
    assert open_files[3:5] == ["1024", "2048"], open_files
    assert container.exec_run("cat /proc/sys/net/core/somaxconn").output.decode().strip() == "1024"
    assert container.exec_run("touch /rootfs-is-read-only").exit_code != 0
    assert container.exec_run("id -u").output.decode().strip() == "1000"


async def test_a_sidecar_shares_the_main_namespace_and_an_init_container_runs_first(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    side = MemberSpec("side", KIND_SIDECAR, BUSYBOX_IMAGE, command=("sleep", "3600"), env={"ROLE": "side"})
    init = MemberSpec("prep", KIND_INIT, BUSYBOX_IMAGE, command=("sh", "-c", "echo prepared"))
    spec = task("a2b2c2d2e2f20212", network=NETWORK, members=(init, side))
    executor = await open_docker_executor(docker_url)
    main_id = await started(executor, spec)
    side_attrs = sdk.api.inspect_container("fields.1.a2b2c2d2.side")
    assert side_attrs["HostConfig"]["NetworkMode"] == f"container:{main_id}"
    assert "ROLE=side" in side_attrs["Config"]["Env"] and side_attrs["State"]["Running"] is True
    init_attrs = sdk.api.inspect_container("fields.1.a2b2c2d2.prep")
    assert init_attrs["State"]["Status"] == "exited" and init_attrs["State"]["ExitCode"] == 0
    assert init_attrs["HostConfig"]["NetworkMode"] == NETWORK


async def test_events_logs_and_the_engines_errors(docker_url: str, sdk: docker.DockerClient) -> None:
    executor = await open_docker_executor(docker_url)
    spec = task("e3e3e3e3e3e3e3e3", command=("sh", "-c", "echo out; echo err >&2; sleep 3600"))
    async with executor.open_events() as events:
        container_id = await started(executor, spec)
        with trio.fail_after(20):
            actions = []
            async for event in events:
                assert event.task_id == spec.task_id and event.container_id == container_id
                actions.append(event.action)
                if event.action == "start":
                    break
        assert actions[:2] == ["create", "start"]
    with trio.fail_after(20):
        lines: list[str] = []
        while sorted(lines) != ["err", "out"]:
            async with executor.open_logs([spec.task_id]) as channel:
                lines = [line async for _, line in channel]
    # the same container name again: 409 from the engine, and the agent finds its own container
    again = await executor.start(spec)
    assert again.error == "" and again.container is not None and again.container.container_id == container_id
    missing = await executor.start(task("f4f4f4f4f4f4f4f4", image="p2rs/never-there@sha256:" + "0" * 64))
    assert missing.container is None and missing.error  # the engine's pull error (no registry reachable here)
    engine = EngineClient.connect(docker_url)
    with pytest.raises(NotFound, match="No such container"):
        engine.inspect_container("p2rs-nothing-here")
    await executor.remove(container_id, 1.0)
    await executor.remove(container_id, 1.0)  # already gone is fine
    with pytest.raises(docker.errors.NotFound):
        sdk.api.inspect_container(container_id)


def test_the_overlay_bridge_network_is_created_recreated_and_removed(
    docker_url: str, sdk: docker.DockerClient
) -> None:
    network = DockerNetwork(docker_url)
    spec = BridgeNetworkSpec(
        name="p2rs-bridge",
        bridge="p2rsbr0",
        subnet="10.21.128.0/24",
        gateway="10.21.128.1",
        mtu=1450,
        labels={"p2porch.subnet": "10.21.128.0/24"},
    )
    try:
        assert network.ensure(spec) == "created"
        assert network.ensure(spec) == "unchanged"
        attrs = sdk.api.inspect_network("p2rs-bridge")
        assert attrs["IPAM"]["Config"] == [{"Subnet": "10.21.128.0/24", "Gateway": "10.21.128.1"}]
        assert attrs["Options"] == spec.options and attrs["Labels"] == spec.labels
        holder = sdk.containers.create(
            BUSYBOX_IMAGE, ["sleep", "60"], network="p2rs-bridge", labels={"p2porch.managed": "true"}
        )
        holder.start()
        moved = replace(spec, subnet="10.21.129.0/24", gateway="10.21.129.1")
        assert network.ensure(moved) == "recreated"  # the attached container was disconnected first
        assert sdk.api.inspect_network("p2rs-bridge")["IPAM"]["Config"][0]["Subnet"] == "10.21.129.0/24"
        assert (network.inspect("p2rs-bridge") or {}).get("Name") == "p2rs-bridge"
        assert network.inspect("p2rs-br") is None  # a name filter matches substrings; inspect does not
    finally:
        assert network.remove("p2rs-bridge") in (True, False)
    assert network.remove("p2rs-bridge") is False
