"""The engine options added for Compose fidelity (issue 15): spec round trip, template hash, create body."""

from __future__ import annotations

import pytest

from p2porch.agent.dockerspec import create_request
from p2porch.errors import ConfigError
from p2porch.member.views import task_assignment
from p2porch.model import ServiceSpec, parse_mount, parse_port
from p2porch.model.container_opts import ContainerOptions


class _Task:
    task_id, service_id, slot, desired_state, state, spec_version = "t1", "s1", 1, "running", "assigned", 1
    node_id, started_at = "id1", 0.0


FULL = {
    "hostname": "db-host",
    "init": True,
    "cap_add": ["net_admin"],
    "cap_drop": ["ALL"],
    "extra_hosts": ["gw:10.0.0.1", "v6=::1"],
    "log_driver": "json-file",
    "log_opts": {"max-size": "10m", "max-file": 3},
    "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
    "sysctls": ["net.core.somaxconn=1024"],
    "read_only": True,
    "security_opt": ["no-new-privileges:true"],
    "stop_signal": "sigquit",
    "shm_size": "64M",
}


def test_container_options_round_trip_and_reach_container_create():
    spec = ServiceSpec.from_dict(
        {"name": "db", "image": "x", "user": "999:999", "workdir": "/srv", "container": FULL}
    )
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert spec.container.cap_add == ("NET_ADMIN",)
    assert spec.container.shm_size_bytes == 64 * 1024**2
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    host = body["HostConfig"]
    assert body["User"] == "999:999" and body["WorkingDir"] == "/srv"
    assert body["Hostname"] == "db-host" and host["Init"] is True and host["ReadonlyRootfs"] is True
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["ALL"]
    assert host["ExtraHosts"] == ["gw:10.0.0.1", "v6:::1"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert {"Name": "nofile", "Soft": 1024, "Hard": 2048} in host["Ulimits"]
    assert {"Name": "nproc", "Soft": 512, "Hard": 512} in host["Ulimits"]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert body["StopSignal"] == "SIGQUIT" and host["ShmSize"] == 64 * 1024**2


def test_log_options_without_a_driver_go_to_the_engines_default_driver():
    # Compose's and Swarm's logging.options without driver: LogConfig.Type "" (the daemon's log-driver)
    spec = ServiceSpec.from_dict(
        {"name": "db", "image": "x", "container": {"log_opts": {"max-size": "100M"}}}
    )
    assert ServiceSpec.from_dict(spec.to_dict()) == spec and spec.container.log_driver == ""
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    assert body["HostConfig"]["LogConfig"] == {"Type": "", "Config": {"max-size": "100M"}}


def test_memswap_limit_reaches_container_create_beside_the_memory_limit():
    data = {"name": "db", "image": "x", "limit_memory": "4G", "container": {"memswap_limit": "4G"}}
    spec = ServiceSpec.from_dict(data)
    assert ServiceSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["container"] == {
        "memswap_limit_bytes": 4 * 1024**3
    }
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    assert body["HostConfig"]["Memory"] == body["HostConfig"]["MemorySwap"] == 4 * 1024**3  # no swap
    unlimited = ServiceSpec.from_dict({**data, "container": {"memswap_limit": -1}})
    assert (
        create_request(task_assignment(_Task(), unlimited, "n1", "net", "", "p2p"))[1]["HostConfig"][
            "MemorySwap"
        ]
        == -1
    )
    for container, limit in (({"memswap_limit": "1G"}, "4G"), ({"memswap_limit": "1G"}, 0)):
        with pytest.raises(ConfigError) as exc:
            ServiceSpec.from_dict({**data, "limit_memory": limit, "container": container})
        assert exc.value.field == "container.memswap_limit"


def test_a_host_name_given_twice_keeps_both_addresses_in_order():
    spec = ServiceSpec.from_dict(
        {"name": "db", "image": "x", "container": {"extra_hosts": ["gw:10.0.0.2", "gw:10.0.0.1"]}}
    )
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    assert body["HostConfig"]["ExtraHosts"] == ["gw:10.0.0.2", "gw:10.0.0.1"]


def test_default_options_leave_the_template_hash_of_older_specs_alone():
    plain = ServiceSpec.from_dict({"name": "web", "image": "x"})
    assert "container" not in plain.template_dict()
    assert plain.container.is_default and plain.to_dict()["container"] == {}
    changed = ServiceSpec.from_dict({"name": "web", "image": "x", "container": {"init": True}})
    assert changed.template_hash() != plain.template_hash()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cap_add": ["net admin"]}, "container.cap_add"),
        ({"ulimits": {"nofile": {"soft": 10, "hard": 5}}}, "container.ulimits.nofile"),
        ({"stop_signal": "kill me"}, "container.stop_signal"),
        ({"privileged": "sometimes"}, "container.privileged"),
        ({"extra_hosts": ["nohost"]}, "container.extra_hosts[0]"),
    ],
)
def test_bad_container_options_name_their_field(options, field):
    with pytest.raises(ConfigError) as exc:
        ServiceSpec.from_dict({"name": "web", "image": "x", "container": options})
    assert exc.value.field == field


def test_port_host_ip_and_mount_options_reach_the_engine():
    assert str(parse_port("127.0.0.1:8080:80")) == "127.0.0.1:8080:80/tcp"
    spec = ServiceSpec.from_dict(
        {
            "name": "web",
            "image": "x",
            "publish": ["127.0.0.1:8080:80"],
            "mounts": [
                {"type": "tmpfs", "target": "/cache", "tmpfs_size": "16M", "tmpfs_mode": 0o700},
                {
                    "type": "volume",
                    "source": "v",
                    "target": "/v",
                    "nocopy": True,
                    "volume_options": {"o": "bind"},
                },
                {"type": "bind", "source": "/srv", "target": "/srv", "propagation": "rshared"},
                {
                    "type": "bind",
                    "source": "/data",
                    "target": "/d",
                    "readonly": True,
                    "create_host_path": True,
                },
            ],
        }
    )
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    assert body["ExposedPorts"] == {"80/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    tmpfs, volume, bind = body["HostConfig"]["Mounts"]
    assert tmpfs["TmpfsOptions"] == {"SizeBytes": 16 * 1024**2, "Mode": 0o700}
    assert volume["VolumeOptions"] == {
        "DriverConfig": {"Name": "local", "Options": {"o": "bind"}},
        "NoCopy": True,
    }
    assert bind["BindOptions"] == {"Propagation": "rshared"}
    assert body["HostConfig"]["Binds"] == [
        "/data:/d:ro"
    ]  # Binds: the engine creates a missing source directory
    assert parse_mount(
        "type=volume,source=v,target=/v,volume-opt=o=bind,volume-opt=type=nfs"
    ).volume_options == (
        ("o", "bind"),
        ("type", "nfs"),
    )
    with pytest.raises(ConfigError):
        parse_mount({"type": "bind", "source": "/a", "target": "/b", "tmpfs_size": "1M"})


def test_rollback_config_endpoint_mode_and_failure_ratio():
    spec = ServiceSpec.from_dict(
        {
            "name": "web",
            "image": "x",
            "endpoint_mode": "dnsrr",
            "service_labels": {"traefik.enable": "true"},
            "update": {"max_failure_ratio": "0.25"},
            "rollback": {"parallelism": 2, "order": "start-first"},
        }
    )
    assert spec.update.max_failure_ratio == 0.25 and spec.rollback.parallelism == 2
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError) as exc:
        ServiceSpec.from_dict({"name": "web", "image": "x", "endpoint_mode": "ingress"})
    assert exc.value.field == "endpoint_mode"
    assert ContainerOptions.from_dict(None).is_default


def test_service_create_flags_use_dockers_names_and_reach_the_spec(capsys):
    from p2porch.cli import build_parser, main
    from p2porch.cli.service_spec_flags import spec_changes
    from p2porch.cli.service_spec_flags import validated_spec as _validated

    argv = [
        "service", "create", "--name", "web", "--user", "1000:1000", "-w", "/srv", "--hostname", "h1",
        "--init", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--add-host", "gw:10.0.0.1",
        "--log-driver", "json-file", "--log-opt", "max-size=1m", "--ulimit", "nofile=1024:2048",
        "--sysctl", "net.core.somaxconn=512", "--read-only", "--security-opt", "no-new-privileges",
        "--stop-signal", "SIGQUIT", "--shm-size", "64M", "--endpoint-mode", "dnsrr",
        "--label", "a=b", "--update-max-failure-ratio", "0.5", "--rollback-parallelism", "2",
        "--health-cmd", "true", "--health-start-interval", "1s", "nginx",
    ]  # fmt: skip
    spec = _validated(spec_changes(build_parser().parse_args(argv)))
    assert (spec["user"], spec["workdir"], spec["endpoint_mode"]) == ("1000:1000", "/srv", "dnsrr")
    assert spec["container"] == {
        "hostname": "h1",
        "init": True,
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["ALL"],
        "extra_hosts": ["gw:10.0.0.1"],
        "log_driver": "json-file",
        "log_opts": {"max-size": "1m"},
        "ulimits": {"nofile": {"soft": 1024, "hard": 2048}},
        "sysctls": {"net.core.somaxconn": "512"},
        "read_only": True,
        "security_opt": ["no-new-privileges"],
        "stop_signal": "SIGQUIT",
        "shm_size_bytes": 64 * 1024**2,
    }
    assert spec["service_labels"] == {"a": "b"} and spec["update"]["max_failure_ratio"] == 0.5
    assert spec["rollback"]["parallelism"] == 2 and spec["health"]["start_interval_s"] == 1.0
    assert main(["service", "create", "--name", "web", "--cap-add", "bad cap", "nginx"]) == 2
    assert "--cap-add" in capsys.readouterr().err


def test_pids_limit_and_devices_reach_container_create():
    """``pids_limit`` (Compose ``pids_limit``/``limits.pids``, ``--pids-limit``) and ``devices``
    (``HOST[:CONTAINER[:PERMISSIONS]]``, ``--device``) in the Engine API's forms."""
    options = {"pids_limit": "200", "devices": ["/dev/dri", "/dev/ttyUSB0:/dev/modem:rw"]}
    spec = ServiceSpec.from_dict({"name": "cam", "image": "x", "container": options})
    assert spec.container.devices == ("/dev/dri:/dev/dri:rwm", "/dev/ttyUSB0:/dev/modem:rw")
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    host = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))[1]["HostConfig"]
    assert host["PidsLimit"] == 200
    assert host["Devices"] == [
        {"PathOnHost": "/dev/dri", "PathInContainer": "/dev/dri", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/ttyUSB0", "PathInContainer": "/dev/modem", "CgroupPermissions": "rw"},
    ]
    unlimited = ServiceSpec.from_dict({"name": "cam", "image": "x", "container": {"pids_limit": -1}})
    unlimited_host = create_request(task_assignment(_Task(), unlimited, "n1", "net", "", "p2p"))[1][
        "HostConfig"
    ]
    assert unlimited_host["PidsLimit"] == -1


def test_pids_limit_and_device_flags_of_service_create():
    from p2porch.cli import build_parser
    from p2porch.cli.service_spec_flags import spec_changes
    from p2porch.cli.service_spec_flags import validated_spec as _validated

    argv = ["service", "create", "--name", "cam", "--pids-limit", "64", "--device", "/dev/video0", "x"]
    spec = _validated(spec_changes(build_parser().parse_args(argv)))
    assert spec["container"] == {"pids_limit": 64, "devices": ["/dev/video0:/dev/video0:rwm"]}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"devices": ["dev/dri"]}, "container.devices[0]"),
        ({"devices": ["/dev/dri:/dev/dri:rwx"]}, "container.devices[0]"),
        ({"devices": ["/dev/a:/dev/b:rw:x"]}, "container.devices[0]"),
        ({"pids_limit": -2}, "container.pids_limit"),
        ({"pids_limit": "many"}, "container.pids_limit"),
    ],
)
def test_bad_devices_and_pids_limit_name_their_field(options, field):
    with pytest.raises(ConfigError) as exc:
        ServiceSpec.from_dict({"name": "web", "image": "x", "container": options})
    assert exc.value.field == field


def test_one_host_port_on_two_addresses_is_not_a_duplicate():
    spec = ServiceSpec.from_dict(
        {"name": "dns", "image": "x", "publish": ["127.0.0.1:53:53/udp", "10.0.0.1:53:53/udp"]}
    )
    assert [p.host_ip for p in spec.publish] == ["127.0.0.1", "10.0.0.1"]
    with pytest.raises(ConfigError):
        ServiceSpec.from_dict({"name": "dns", "image": "x", "publish": ["53:53/udp", "53:54/udp"]})


def test_groups_and_dns_options_reach_container_create_and_bad_ones_name_the_flag():
    """Docker's ``--group`` and ``--dns-option`` (the third user walk found both unrecognized): the
    container's supplementary groups and resolver options beside the cluster DNS the agent sets."""
    spec = ServiceSpec.from_dict(
        {"name": "db", "image": "x", "container": {"groups": ["2001", "audio"], "dns_options": ["ndots:3"]}}
    )
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    assert body["HostConfig"]["GroupAdd"] == ["2001", "audio"]
    assert body["HostConfig"]["DnsOptions"] == ["ndots:3"]
    for options, field in (
        ({"groups": ["a b"]}, "container.groups"),
        ({"dns_options": ["x y"]}, "container.dns_options"),
    ):
        with pytest.raises(ConfigError) as err:
            ServiceSpec.from_dict({"name": "db", "image": "x", "container": options})
        assert err.value.field == field


def test_mount_flag_tmpfs_mode_is_octal_as_dockers_mount_flag():
    """``--mount type=tmpfs,...,tmpfs-mode=700`` is Docker's octal (it was read as the decimal 700)."""
    assert parse_mount("type=tmpfs,target=/t,tmpfs-mode=700").tmpfs_mode == 0o700
    assert parse_mount("type=tmpfs,target=/t,tmpfs-mode=1777").tmpfs_mode == 0o1777
    for bad in ("800", "0o700", "", "-1", "777777"):
        with pytest.raises(ConfigError, match="tmpfs_mode"):
            parse_mount(f"type=tmpfs,target=/t,tmpfs-mode={bad}")
    assert parse_mount({"type": "tmpfs", "target": "/t", "tmpfs_mode": 0o700}).tmpfs_mode == 0o700
