"""ServiceSpec parsing, normalisation and field-naming validation errors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2porch.errors import ConfigError
from p2porch.model import (
    Affinity,
    Constraint,
    HealthSpec,
    Mount,
    PlacementPreference,
    PortPublish,
    RestartPolicy,
    ServiceSpec,
    UpdateConfig,
    format_bytes,
    parse_affinity,
    parse_constraint,
    parse_cpu_nanos,
    parse_duration_s,
    parse_key_values,
    parse_memory_bytes,
    parse_mount,
    parse_placement_pref,
    parse_port,
)

FULL = {
    "name": "web",
    "image": "busybox:1.36",
    "entrypoint": ["/bin/sh", "-c"],
    "command": ["httpd", "-f"],
    "env": ["A=1", "B=x=y"],
    "labels": {"team": "core"},
    "mode": "replicated",
    "replicas": 6,
    "constraints": ["node.labels.ssd==true", "node.name!=n2", "node.role==voter"],
    "placement_prefs": ["spread=node.labels.zone"],
    "strategy": "binpack",
    "affinities": ["affinity=service==db", "anti-affinity=service==web"],
    "max_replicas_per_node": 2,
    "reserve_cpu": "0.5",
    "reserve_memory": "512M",
    "limit_cpu": 1.5,
    "limit_memory": "1.5GiB",
    "mounts": [
        "type=bind,source=/srv/data,target=/data,readonly",
        "type=volume,source=cache,target=/cache,volume-driver=local",
    ],
    "publish": ["8080:80/tcp", "53:53/udp", "9000"],
    "health": {"cmd": "wget -q -O- localhost", "interval": "5s", "retries": 2, "timeout": "1s"},
    "restart": {"condition": "on-failure", "delay": "2s", "max_attempts": 3, "window": "1m"},
    "update": {"parallelism": 2, "delay": "10s", "order": "start-first", "failure_action": "rollback"},
    "stop_grace_period": "3s",
}


def test_full_spec_parses_to_base_units() -> None:
    spec = ServiceSpec.from_dict(FULL)
    assert spec.entrypoint == ("/bin/sh", "-c")
    assert spec.command == ("httpd", "-f")
    assert spec.env == (("A", "1"), ("B", "x=y"))
    assert spec.labels_dict() == {"team": "core"}
    assert spec.constraints == (
        Constraint("node.labels.ssd", "==", "true"),
        Constraint("node.name", "!=", "n2"),
        Constraint("node.role", "==", "voter"),
    )
    assert spec.placement_preferences == (PlacementPreference("node.labels.zone"),)
    assert spec.affinities == (Affinity("affinity", "db"), Affinity("anti-affinity", "web"))
    assert spec.reserve_cpu_nanos == 500_000_000
    assert spec.limit_cpu_nanos == 1_500_000_000
    assert spec.reserve_memory_bytes == 512 * 1024**2
    assert spec.limit_memory_bytes == int(1.5 * 1024**3)
    assert spec.mounts == (
        Mount("bind", "/data", "/srv/data", True, ""),
        Mount("volume", "/cache", "cache", False, "local"),
    )
    assert spec.publish == (
        PortPublish(80, 8080, "tcp", mode="ingress"),
        PortPublish(53, 53, "udp", mode="ingress"),
        PortPublish(9000, mode="ingress"),  # the FSM assigns its published port
    )
    assert spec.host_ports == ()  # ingress ports bind nothing on the task's node
    assert [(p.protocol, p.published) for p in spec.ingress_ports] == [
        ("tcp", 8080),
        ("udp", 53),
        ("tcp", None),
    ]
    assert spec.health == HealthSpec(("CMD-SHELL", "wget -q -O- localhost"), 5.0, 1.0, 2, 0.0)
    assert spec.restart == RestartPolicy("on-failure", 2.0, 300.0, 3, 60.0)
    assert spec.update == UpdateConfig(2, 10.0, "start-first", "rollback", 5.0)
    assert spec.stop_grace_period_s == 3.0


def test_round_trip_and_defaults() -> None:
    spec = ServiceSpec.from_dict(FULL)
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    minimal = ServiceSpec.from_dict({"name": "a", "image": "busybox"})
    assert minimal.replicas == 1 and minimal.mode == "replicated" and minimal.strategy == "spread"
    assert minimal.restart == RestartPolicy() and minimal.update == UpdateConfig()
    assert ServiceSpec.from_dict(minimal.to_dict()) == minimal


def test_template_hash_ignores_replicas_but_not_image() -> None:
    spec = ServiceSpec.from_dict(FULL)
    scaled = dataclasses.replace(spec, replicas=30, update=UpdateConfig(parallelism=5))
    assert scaled.template_hash() == spec.template_hash()
    assert dataclasses.replace(spec, image="busybox:1.37").template_hash() != spec.template_hash()
    assert dataclasses.replace(spec, env=(("A", "2"),)).template_hash() != spec.template_hash()


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": "Web"}, "name"),
        ({"name": "-web"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": "tasks"}, "name"),
        ({"name": "1web"}, "name"),
        ({"image": ""}, "image"),
        ({"image": "bad image"}, "image"),
        ({"replicas": -1}, "replicas"),
        ({"replicas": "many"}, "replicas"),
        ({"mode": "daemonset"}, "mode"),
        ({"strategy": "random"}, "strategy"),
        ({"constraints": ["node.labels.ssd==true", "node.labels.ssd"]}, "constraints[1]"),
        ({"constraints": ["node.color==red"]}, "constraints[0]"),
        ({"constraints": ["node.role==leader"]}, "constraints[0]"),
        ({"constraints": "node.name==a"}, "constraints"),
        ({"placement_prefs": ["pack=node.labels.zone"]}, "placement_prefs[0]"),
        ({"affinities": ["affinity=service==web"]}, "affinities[0]"),
        ({"affinities": ["near=service==db"]}, "affinities[0]"),
        ({"reserve_cpu": "lots"}, "reserve_cpu"),
        ({"reserve_cpu": -1}, "reserve_cpu"),
        ({"reserve_memory": "12X"}, "reserve_memory"),
        ({"reserve_memory": "1G", "limit_memory": "512M"}, "limit_memory"),
        ({"reserve_cpu": 2, "limit_cpu": 1}, "limit_cpu"),
        ({"reserve_memory": "1G", "reserve_memory_bytes": 5}, "reserve_memory_bytes"),
        ({"env": ["NOVALUE"]}, "env[0]"),
        ({"env": ["A=1", "A=2"]}, "env[1]"),
        ({"labels": {"": "x"}}, "labels."),
        ({"mounts": ["type=bind,source=rel,target=/y"]}, "mounts[0].source"),
        ({"mounts": ["type=volume,source=v,target=y"]}, "mounts[0].target"),
        ({"mounts": ["type=bind,source=/x,target=/y,volume-driver=local"]}, "mounts[0].volume_driver"),
        ({"mounts": ["type=nfs,target=/y"]}, "mounts[0].type"),
        ({"mounts": ["type=volume,target=/y", "type=tmpfs,target=/y"]}, "mounts[1].target"),
        ({"publish": ["8080:80/sctp"]}, "publish[0].protocol"),
        ({"publish": ["70000:80"]}, "publish[0].published"),
        ({"publish": ["8080:80", "8080:81"]}, "publish[1]"),
        ({"max_replicas_per_node": -2}, "max_replicas_per_node"),
        ({"health": {"interval": "5s"}}, "health.cmd"),
        ({"health": {"cmd": "true", "interval": "soon"}}, "health.interval"),
        ({"health": {"cmd": "true", "retries": 0}}, "health.retries"),
        ({"restart": {"condition": "always"}}, "restart.condition"),
        ({"restart": {"delay": "-1s"}}, "restart.delay"),
        ({"restart": {"max_attempts": -1}}, "restart.max_attempts"),
        ({"update": {"order": "random"}}, "update.order"),
        ({"update": {"failure_action": "explode"}}, "update.failure_action"),
        ({"update": {"parallelism": -1}}, "update.parallelism"),
        ({"update": {"speed": 3}}, "update.speed"),
        ({"replica": 3}, "replica"),
        ({"stop_grace_period": "forever"}, "stop_grace_period"),
    ],
)
def test_invalid_spec_names_the_field(patch: dict[str, object], field: str) -> None:
    data = {"name": "web", "image": "busybox", **patch}
    with pytest.raises(ConfigError) as info:
        ServiceSpec.from_dict(data)
    assert info.value.field == field, info.value.message
    assert field in str(info.value)


def test_missing_required_fields() -> None:
    with pytest.raises(ConfigError) as info:
        ServiceSpec.from_dict({"image": "busybox"})
    assert info.value.field == "name"
    with pytest.raises(ConfigError) as info:
        ServiceSpec.from_dict({"name": "web"})
    assert info.value.field == "image"


def test_direct_construction_is_validated_too() -> None:
    spec = ServiceSpec(name="web", image="busybox")
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(spec, replicas=-3)
    assert info.value.field == "replicas"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512M", 512 * 1024**2),
        ("1G", 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("100k", 102400),
        ("2048", 2048),
        ("64mb", 64 * 1024**2),
        (4096, 4096),
    ],
)
def test_parse_memory_bytes(text: str | int, expected: int) -> None:
    assert parse_memory_bytes(text) == expected


def test_parse_cpu_and_duration_and_format() -> None:
    assert parse_cpu_nanos("0.25") == 250_000_000
    assert parse_cpu_nanos(2) == 2_000_000_000
    assert parse_cpu_nanos(0.1) == 100_000_000
    assert parse_duration_s("1m30s") == 90.0
    assert parse_duration_s("500ms") == 0.5
    assert parse_duration_s("2h") == 7200.0
    assert parse_duration_s(7) == 7.0
    assert parse_duration_s("1.5") == 1.5
    for bad in ("5x", "s", "", "1m 30s"):
        with pytest.raises(ConfigError):
            parse_duration_s(bad)
    assert format_bytes(512 * 1024**2) == "512MiB"
    assert format_bytes(1536) == "1.5KiB"
    assert format_bytes(10) == "10B"


def test_parsers_for_cli_reuse() -> None:
    assert parse_constraint(" node.labels.ssd == true ") == Constraint("node.labels.ssd", "==", "true")
    assert str(parse_constraint("node.hostname!=box")) == "node.hostname!=box"
    assert str(parse_constraint("node.id==abc")) == "node.id==abc"
    assert parse_placement_pref("spread=node.labels.zone") == PlacementPreference("node.labels.zone")
    assert parse_affinity("anti-affinity=service==web") == Affinity("anti-affinity", "web")
    assert str(parse_affinity("affinity=service==db")) == "affinity=service==db"
    assert parse_mount("type=tmpfs,target=/run") == Mount("tmpfs", "/run")
    assert parse_mount("type=volume,target=/anon") == Mount("volume", "/anon")
    assert parse_mount({"type": "bind", "source": "/a", "target": "/b", "ro": True}).readonly
    assert parse_port("8080:80") == PortPublish(80, 8080, "tcp", mode="ingress")
    assert parse_port(80) == PortPublish(80, mode="ingress")  # as Swarm: ingress on an assigned port
    assert parse_port("target=80") == PortPublish(80, mode="ingress")
    assert parse_port("target=80,mode=ingress").to_dict() == {  # the mode is kept: a record says host
        "target": 80,
        "published": None,
        "protocol": "tcp",
        "mode": "ingress",
    }
    assert parse_port({"target": 80}) == PortPublish(80)  # a stored record keeps its meaning: host
    assert parse_port("mode=host,target=80") == PortPublish(80)  # the engine picks a host port per task
    assert parse_port({"published": 53, "target": 53, "protocol": "udp"}) == PortPublish(
        53, 53, "udp", "", "ingress"
    )
    # docker service create's long syntax; host mode and a bound address stay on the task's node
    assert parse_port("published=8080,target=80,protocol=udp,mode=host") == PortPublish(80, 8080, "udp")
    assert parse_port("published=8080,target=80") == PortPublish(80, 8080, mode="ingress")
    assert parse_port("127.0.0.1:8080:80") == PortPublish(80, 8080, host_ip="127.0.0.1")
    assert parse_port("[::1]:8080:80") == PortPublish(80, 8080, host_ip="::1")
    assert parse_port("mode=host,published=1,target=2").to_dict()["mode"] == "host"
    assert "mode" not in parse_port("1:2").to_dict()  # the default is not written (template hash stays)
    for bad, field in (
        ("published=1,target=2,mode=mesh", "publish.mode"),
        ("published=1,port=2", "publish.port"),
        ("published=1,target=2,published=3", "publish.published"),
        # a host address must be one: 80:80:80 was taken as address '80', refused at every container start
        ("80:80:80", "publish.host_ip"),
        ("999.1.1.1:80:80", "publish.host_ip"),
        ("abc:80:80", "publish.host_ip"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_port(bad)
        assert info.value.field == field, bad
    with pytest.raises(ConfigError) as info:
        parse_port({"published": 1, "target": 2, "host_ip": "127.0.0.1", "mode": "ingress"})
    assert info.value.field == "publish.host_ip"
    assert parse_key_values(["B=2", "A=1"], fieldname="env") == (("A", "1"), ("B", "2"))
    with pytest.raises(ConfigError) as info:
        parse_constraint("node.labels.ssd", fieldname="--constraint")
    assert info.value.field == "--constraint"


def test_health_forms() -> None:
    assert HealthSpec.from_dict({"cmd": ["curl", "-f", "x"]}).test == ("CMD", "curl", "-f", "x")
    assert HealthSpec.from_dict({"cmd": ["CMD-SHELL", "true"]}).test == ("CMD-SHELL", "true")
    assert HealthSpec.from_dict({"cmd": "NONE"}).disabled
    spec = ServiceSpec.from_dict({"name": "a", "image": "b", "health": "true"})
    assert spec.health is not None and spec.health.test == ("CMD-SHELL", "true")


def test_restart_backoff_is_exponential_and_capped() -> None:
    policy = RestartPolicy(delay_s=5.0, max_delay_s=60.0)
    assert [policy.backoff_s(n) for n in range(6)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert RestartPolicy(delay_s=0.0).backoff_s(10) == 0.0


_sizes = st.integers(min_value=0, max_value=2**40)


@given(_sizes)
def test_memory_bytes_of_int_is_identity(n: int) -> None:
    assert parse_memory_bytes(n) == n
    assert parse_memory_bytes(str(n)) == n


@given(st.dictionaries(st.text(min_size=1), st.text()))
def test_arbitrary_spec_dicts_raise_only_config_error(extra: dict[str, str]) -> None:
    data: dict[str, object] = {"name": "web", "image": "busybox", **extra}
    try:
        spec = ServiceSpec.from_dict(data)
    except ConfigError as exc:
        assert exc.field
    else:
        assert ServiceSpec.from_dict(spec.to_dict()) == spec


def test_node_role_takes_swarms_manager_and_worker_for_voter_and_replica():
    """``--constraint node.role==manager`` as a Swarm user types it (Compose files were mapped already;
    the CLI refused it): Swarm's managers are its Raft members, p2porch's voters."""
    assert str(parse_constraint("node.role==manager")) == "node.role==voter"
    assert str(parse_constraint("node.role != worker")) == "node.role!=replica"
    with pytest.raises(ConfigError, match="manager or worker"):
        parse_constraint("node.role==boss")
