"""Task groups in the spec (issue 21): parsing the CSV and mapping forms, validation naming the field,
placement summing the group, the stored form of services without a group unchanged, the CLI's exit 2."""

from __future__ import annotations

import pytest

from p2porch.cli import main
from p2porch.errors import ConfigError
from p2porch.model import Node, ServiceSpec
from p2porch.model.group import GroupContainer, group_reservation, parse_group_container
from p2porch.scheduler import NodeInfo, TaskRequest, build_node_infos, schedule

GIB = 1024**3


def spec(**kw: object) -> ServiceSpec:
    return ServiceSpec.from_dict({"name": "web", "image": "nginx:1", **kw})


def field_of(**kw: object) -> str | None:
    with pytest.raises(ConfigError) as info:
        spec(**kw)
    return info.value.field


def test_the_csv_form_splits_on_commas_outside_quotes_and_words_like_a_shell() -> None:
    c = parse_group_container(
        "name=log, image=busybox:1.36, command=\"sh -c 'echo a, b'\", env=A=1, env=B=x=y, publish=9000,"
        ' reserve-cpu=0.25, reserve-memory=64M, health-cmd="true"',
        fieldname="sidecars[0]",
        kind="sidecars",
    )
    assert c.name == "log" and c.image == "busybox:1.36"
    assert c.command == ("sh", "-c", "echo a, b")
    assert c.env == (("A", "1"), ("B", "x=y"))
    assert [p.target for p in c.publish] == [9000]
    assert c.reserve_cpu_nanos == 250_000_000 and c.reserve_memory_bytes == 64 * 1024**2
    assert c.health is not None and c.health.test == ("CMD-SHELL", "true")


def test_the_mapping_and_csv_forms_give_the_same_spec_and_it_round_trips() -> None:
    by_csv = spec(
        sidecars=['name=log,image=busybox,command="tail -F /x"'],
        init_containers=["name=migrate,image=busybox,command=true"],
    )
    by_map = spec(
        sidecars=[{"name": "log", "image": "busybox", "command": ["tail", "-F", "/x"]}],
        init_containers=[{"name": "migrate", "image": "busybox", "command": "true"}],
    )
    assert by_csv == by_map
    assert ServiceSpec.from_dict(by_csv.to_dict()) == by_csv
    assert ServiceSpec.from_dict(by_csv.to_sparse_dict()) == by_csv
    assert by_csv.is_group and not spec().is_group


def test_a_service_without_a_group_keeps_its_stored_form_and_template_hash() -> None:
    plain = spec(publish=["8080:80"])
    assert "sidecars" not in plain.to_dict() and "init_containers" not in plain.to_dict()
    assert "sidecars" not in plain.template_dict()
    grouped = spec(publish=["8080:80"], sidecars=["name=log,image=busybox"])
    assert grouped.template_hash() != plain.template_hash()  # adding a sidecar is a rolling update


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"sidecars": ["name=log,image=Bad Image"]}, "sidecars[0].image"),
        ({"sidecars": ["name=log,image=busybox::1"]}, "sidecars[0].image"),
        ({"sidecars": ["name=Log,image=busybox"]}, "sidecars[0].name"),
        ({"sidecars": ["name=main,image=busybox"]}, "sidecars[0].name"),
        ({"sidecars": ["image=busybox"]}, "sidecars[0].name"),
        ({"sidecars": ["name=log"]}, "sidecars[0].image"),
        ({"sidecars": ["name=log,image=busybox,colour=red"]}, "sidecars[0].colour"),
        ({"sidecars": ['name=log,image=busybox,command="unclosed']}, "sidecars[0]"),
        ({"sidecars": ["name=a,image=busybox", "name=a,image=busybox"]}, "sidecars[1].name"),
        (
            {"sidecars": ["name=a,image=busybox"], "init_containers": ["name=a,image=busybox"]},
            "init_containers[0].name",
        ),
        ({"init_containers": ["name=m,image=busybox,publish=80"]}, "init_containers[0].publish"),
        ({"init_containers": ["name=m,image=busybox,health-cmd=true"]}, "init_containers[0].health"),
        (
            {"publish": ["8080:80"], "sidecars": ["name=a,image=busybox,publish=8080:81"]},
            "sidecars[0].publish[0]",
        ),
        ({"publish": ["80"], "sidecars": ["name=a,image=busybox,publish=80"]}, "sidecars[0].publish[0]"),
        (
            {"sidecars": ["name=a,image=busybox,publish=9000", "name=b,image=busybox,publish=9000"]},
            "sidecars[1].publish[0]",
        ),
        ({"sidecars": ["name=a,image=busybox,reserve-cpu=2,limit-cpu=1"]}, "sidecars[0].limit_cpu"),
        ({"sidecars": "name=a,image=busybox"}, "sidecars"),
    ],
)
def test_bad_groups_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    assert field_of(**kw) == field


def test_the_same_port_number_on_another_protocol_is_not_a_clash() -> None:
    s = spec(publish=["53:53/udp"], sidecars=["name=a,image=busybox,publish=53:53/tcp"])
    assert s.host_ports == () and {(p.protocol, p.published) for p in s.ingress_ports} == {
        ("udp", 53),
        ("tcp", 53),
    }


def test_placement_needs_the_sum_of_the_running_containers_or_the_largest_init() -> None:
    main = (500_000_000, 256 * 1024**2)
    sidecars = [
        GroupContainer("a", "busybox", reserve_cpu_nanos=250_000_000, reserve_memory_bytes=64 * 1024**2)
    ]
    small_init = [GroupContainer("i", "busybox", reserve_cpu_nanos=100_000_000, reserve_memory_bytes=GIB)]
    assert group_reservation(*main, sidecars, ()) == (750_000_000, 320 * 1024**2)
    assert group_reservation(*main, sidecars, small_init) == (750_000_000, GIB)
    s = spec(
        reserve_cpu="0.5",
        reserve_memory="256M",
        sidecars=["name=a,image=busybox,reserve-cpu=0.25,reserve-memory=64M"],
    )
    assert (s.placement_cpu_nanos, s.placement_memory_bytes) == (750_000_000, 320 * 1024**2)


def test_the_scheduler_places_a_group_only_where_the_whole_group_fits() -> None:
    group = spec(reserve_memory="600M", sidecars=["name=a,image=busybox,reserve-memory=600M"])
    alone = spec(reserve_memory="600M")
    nodes: list[NodeInfo] = build_node_infos([Node("n1", "n1", memory_bytes=GIB)])
    assert schedule([TaskRequest("t1", alone)], nodes).assignments == {"t1": "n1"}
    nodes = build_node_infos([Node("n1", "n1", memory_bytes=GIB)])
    result = schedule([TaskRequest("t1", group)], nodes)
    assert result.assignments == {} and "insufficient memory (need 1.17GiB)" in result.unschedulable["t1"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--sidecar", "name=log,image=Bad Image"], "--sidecar: sidecars[0].image"),
        (["-p", "8080:80", "--sidecar", "name=log,image=busybox,publish=8080:81"], "already published"),
        (
            ["--sidecar", "name=a,image=busybox", "--init-container", "name=a,image=busybox"],
            "--init-container",
        ),
        (["--init-container", "name=m,image=busybox,publish=80"], "--init-container"),
    ],
)
def test_the_cli_exits_2_naming_the_flag_before_contacting_a_daemon(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    argv = ["--host", "unix:///nonexistent/p2tg.sock", "service", "create", "--name", "web", *argv, "nginx"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert "cannot" not in err  # refused before any connection attempt
