"""Translation between agent values and Docker Engine JSON (no engine needed)."""

from __future__ import annotations

from p2porch.agent.dockerspec import (
    address_from_networks,
    capacity_from_info,
    create_request,
    event_from_docker,
    health_from_status_text,
    list_key,
    member_create_request,
    observed_from_inspect,
)
from p2porch.agent.model import MemberSpec, MountSpec, PortSpec, TaskAssignment, TaskReport
from p2porch.model import HealthSpec


def full_assignment() -> TaskAssignment:
    return TaskAssignment(
        task_id="0123456789abcdef",
        service_name="web",
        service_id="svc-1",
        slot=3,
        node_name="n1",
        image="p2porch/busybox:latest",
        command=("httpd", "-f"),
        entrypoint=("/bin/sh", "-c"),
        env={"FOO": "bar", "P2PORCH_SLOT": "spoofed"},
        labels={"team": "a", "p2porch.node": "spoofed"},
        mounts=(
            MountSpec("bind", "/srv/data", "/data", read_only=True),
            MountSpec("volume", "cache", "/cache", volume_driver="local", volume_options={"type": "tmpfs"}),
            MountSpec("volume", "plain", "/plain"),
        ),
        ports=(PortSpec(80, 8080), PortSpec(53, 0, "udp"), PortSpec(80, 8081)),
        cpu_limit_nanos=1_500_000_000,
        memory_limit_bytes=128 << 20,
        cpu_reservation_nanos=250_000_000,
        memory_reservation_bytes=64 << 20,
        network="p2porch",
        dns_servers=("10.240.1.1",),
        dns_search=("p2p",),
        healthcheck=HealthSpec(
            ("CMD-SHELL", "true"), interval_s=2, timeout_s=1.5, retries=4, start_period_s=0.5
        ),
        spec_version=7,
    )


def test_create_body_name_labels_env_and_restart_policy() -> None:
    name, body = create_request(full_assignment())
    assert name == "web.3.01234567" and body["Image"] == "p2porch/busybox:latest"
    assert body["Labels"] == {
        "team": "a",
        "p2porch.managed": "true",
        "p2porch.task-id": "0123456789abcdef",
        "p2porch.service": "web",
        "p2porch.service-id": "svc-1",
        "p2porch.slot": "3",
        "p2porch.node": "n1",
        "p2porch.spec-version": "7",
        "p2porch.network": "p2porch",
    }
    assert sorted(body["Env"]) == [
        "FOO=bar",
        "P2PORCH_NODE=n1",
        "P2PORCH_SERVICE=web",
        "P2PORCH_SLOT=3",
        "P2PORCH_TASK_ID=0123456789abcdef",
    ]
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert body["Cmd"] == ["httpd", "-f"] and body["Entrypoint"] == ["/bin/sh", "-c"]
    # detached: nothing attached, no TTY (the log stream is then multiplexed)
    assert [body[k] for k in ("AttachStdin", "AttachStdout", "AttachStderr", "OpenStdin", "Tty")] == [
        False
    ] * 5


def test_create_body_stop_timeout_is_the_stop_grace_period_rounded_up() -> None:
    """``Config.StopTimeout`` (whole seconds, Engine API): a ``docker stop`` typed on the node or the
    engine's own shutdown waits the service's ``--stop-grace-period``, not Docker's 10 s; rounded up so the
    engine never kills before the grace is over. A task group's members get the same."""
    for grace, timeout in ((10.0, 10), (30.0, 30), (2.5, 3), (0.0, 0), (0.001, 1)):
        _, body = create_request(TaskAssignment("t", "s", "sid", 1, "n1", "img", stop_grace_s=grace))
        assert body["StopTimeout"] == timeout, grace
        assert type(body["StopTimeout"]) is int
    sidecar = MemberSpec("log", "sidecar", "img")
    _, member = member_create_request(
        TaskAssignment("t", "s", "sid", 1, "n1", "img", stop_grace_s=45.0, members=(sidecar,)), sidecar, "c1"
    )
    assert member["StopTimeout"] == 45


def test_create_body_resources_mounts_ports_network_dns_health() -> None:
    _, body = create_request(full_assignment())
    host = body["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"], host["CpuShares"]) == (
        1_500_000_000,
        128 << 20,
        64 << 20,
        256,
    )
    assert host["Mounts"] == [
        {"Type": "bind", "Source": "/srv/data", "Target": "/data", "ReadOnly": True},
        {
            "Type": "volume",
            "Source": "cache",
            "Target": "/cache",
            "ReadOnly": False,
            "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}},
        },
        {"Type": "volume", "Source": "plain", "Target": "/plain", "ReadOnly": False},
    ]
    assert body["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }
    assert host["NetworkMode"] == "p2porch"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"p2porch": {}}}
    assert (host["Dns"], host["DnsSearch"]) == (["10.240.1.1"], ["p2p"])
    assert body["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 2_000_000_000,
        "Timeout": 1_500_000_000,
        "Retries": 4,
        "StartPeriod": 500_000_000,
    }


def test_create_body_minimal_leaves_image_defaults() -> None:
    _, body = create_request(TaskAssignment("t", "s", "sid", 1, "n1", "img"))
    for absent in (
        "Cmd",
        "Entrypoint",
        "ExposedPorts",
        "Healthcheck",
        "NetworkingConfig",
        "User",
        "WorkingDir",
    ):
        assert absent not in body, absent
    assert body["HostConfig"] == {"RestartPolicy": {"Name": "no"}, "NetworkMode": "default"}
    _, tiny = create_request(TaskAssignment("t", "s", "sid", 1, "n1", "img", cpu_reservation_nanos=1))
    assert tiny["HostConfig"]["CpuShares"] == 2  # kernel minimum
    _, empty = create_request(TaskAssignment("t", "s", "sid", 1, "n1", "img", entrypoint=()))
    assert empty["Entrypoint"] == [""]  # an empty entrypoint clears the image's


def _inspect(status: str, **state: object) -> dict:
    return {
        "Id": "abc123",
        "Name": "/web.1.t1",
        "Config": {
            "Labels": {
                "p2porch.managed": "true",
                "p2porch.task-id": "t1",
                "p2porch.node": "n1",
                "p2porch.network": "p2porch",
            }
        },
        "State": {"Status": status, "ExitCode": 0, "Error": "", "OOMKilled": False, **state},
        "NetworkSettings": {
            "Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "p2porch": {"IPAddress": "10.240.1.5"}}
        },
    }


def test_observed_from_inspect_reads_state_health_and_address_on_our_network() -> None:
    obs = observed_from_inspect(_inspect("running", Health={"Status": "healthy"}))
    assert obs is not None
    assert (obs.container_id, obs.name, obs.task_id, obs.node_name) == ("abc123", "web.1.t1", "t1", "n1")
    assert (obs.status, obs.health, obs.address, obs.exit_code) == ("running", "healthy", "10.240.1.5", None)
    exited = observed_from_inspect(_inspect("exited", ExitCode=3, OOMKilled=True))
    assert exited is not None and (exited.exit_code, exited.oom_killed) == (3, True)
    bad = observed_from_inspect(_inspect("created", ExitCode=127, Error="exec failed"))
    assert bad is not None and (bad.exit_code, bad.error) == (127, "exec failed")


def test_observed_from_inspect_records_the_stop_signal_docker_will_send() -> None:
    """Config.StopSignal: the service's --stop-signal, else the image's STOPSIGNAL (Docker copies it into
    the container's config); a stop by it is then a shutdown, not a failure (plan._stopped)."""
    attrs = _inspect("exited", ExitCode=131)
    assert observed_from_inspect(attrs).stop_signal == ""  # type: ignore[union-attr]
    attrs["Config"]["StopSignal"] = "SIGQUIT"
    assert observed_from_inspect(attrs).stop_signal == "SIGQUIT"  # type: ignore[union-attr]


def test_observed_from_inspect_ignores_foreign_containers() -> None:
    attrs = _inspect("running")
    attrs["Config"]["Labels"] = {"com.example": "x"}
    assert observed_from_inspect(attrs) is None


def test_address_falls_back_to_first_network() -> None:
    assert address_from_networks({"bridge": {"IPAddress": "172.17.0.9"}}, "p2porch") == "172.17.0.9"
    assert address_from_networks({"none": {"IPAddress": ""}}, "") == ""


def test_health_and_list_key_from_ps_status() -> None:
    assert health_from_status_text("Up 3 seconds (healthy)") == "healthy"
    assert health_from_status_text("Up 3 seconds (unhealthy)") == "unhealthy"
    assert health_from_status_text("Up 1 second (health: starting)") == "starting"
    assert health_from_status_text("Exited (1) 2 seconds ago") == ""
    a = list_key({"Id": "x", "State": "running", "Status": "Up 3 seconds (healthy)"})
    b = list_key({"Id": "x", "State": "running", "Status": "Up 4 minutes (healthy)"})
    c = list_key({"Id": "x", "State": "running", "Status": "Up 4 minutes (unhealthy)"})
    assert a == b != c


def test_event_from_docker() -> None:
    raw = {
        "Type": "container",
        "Action": "health_status: unhealthy",
        "Actor": {"ID": "abc", "Attributes": {"p2porch.task-id": "t1", "name": "web.1.t1"}},
        "time": 5,
        "timeNano": 5_500_000_000,
    }
    ev = event_from_docker(raw)
    assert ev is not None and (ev.action, ev.container_id, ev.task_id, ev.at) == (
        "health_status: unhealthy",
        "abc",
        "t1",
        5.5,
    )
    assert event_from_docker({**raw, "Type": "network"}) is None
    assert event_from_docker({**raw, "Actor": {"ID": "abc", "Attributes": {}}}) is None


def test_capacity_from_info() -> None:
    cap = capacity_from_info(
        {"NCPU": 4, "MemTotal": 8 << 30, "ServerVersion": "20.10", "Name": "h"} | {"Architecture": "aarch64"}
    )
    assert cap.architecture == "aarch64"  # node inspect's .Description.Platform.Architecture
    assert (cap.cpu_nanos, cap.memory_bytes, cap.engine_version, cap.hostname) == (
        4_000_000_000,
        8 << 30,
        "20.10",
        "h",
    )


def test_report_to_dict_round_trips_fields() -> None:
    rep = TaskReport("t1", "failed", 1.5, error="boom", container_id="c", address="a", health="", exit_code=2)
    assert TaskReport(**rep.to_dict()) == rep
