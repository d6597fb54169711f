"""``on_site_loss`` from the CLI and Compose, its errors, and DNS leaving out the tasks of down nodes."""

from __future__ import annotations

import pytest

from p2porch.cli import build_parser
from p2porch.cli.service_spec_flags import spec_changes
from p2porch.cli.service_spec_flags import validated_spec as _validated
from p2porch.errors import ConfigError
from p2porch.member.views import dns_zone
from p2porch.model import Node, Service, ServiceSpec, Task
from p2porch.raft.state import EMPTY_STATE
from p2porch.stack import ComposeError, load_stack


def test_cli_flag_reaches_the_spec_and_bad_values_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["service", "create", "--name", "db", "--on-site-loss", "replace", "postgres"]
    assert _validated(spec_changes(build_parser().parse_args(argv)))["on_site_loss"] == "replace"
    update = build_parser().parse_args(["service", "update", "--on-site-loss", "keep", "db"])
    assert spec_changes(update)["on_site_loss"] == "keep"
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["service", "create", "--name", "db", "--on-site-loss", "drop", "x"])
    assert exited.value.code == 2 and "--on-site-loss" in capsys.readouterr().err


def test_spec_default_is_keep_and_a_bad_value_names_the_field() -> None:
    assert ServiceSpec(name="a", image="b").on_site_loss == "keep"
    with pytest.raises(ConfigError) as bad:
        ServiceSpec.from_dict({"name": "a", "image": "b", "on_site_loss": "maybe"})
    assert bad.value.field == "on_site_loss"


def test_compose_extension_maps_and_errors_name_the_compose_path() -> None:
    compose = "services:\n  db:\n    image: x\n    deploy: {x-p2porch: {on_site_loss: replace}}\n"
    (service,) = load_stack("s", compose).services
    assert service.spec["on_site_loss"] == "replace"
    with pytest.raises(ComposeError) as info:
        load_stack("s", compose.replace("replace", "sometimes"))
    assert "services.db.deploy.x-p2porch.on_site_loss" in [p.field for p in info.value.problems]


def test_dns_leaves_out_tasks_of_down_nodes_and_prefers_the_local_site() -> None:
    spec = ServiceSpec(name="web", image="x", replicas=3)
    nodes = {
        "a": Node("a", "a", labels={"region": "s1"}),
        "b": Node("b", "b", labels={"region": "s2"}, status="down", status_at=5.0),
        "c": Node("c", "c", labels={"region": "s2"}),
    }
    tasks = {
        f"t{n}": Task(f"t{n}", "s1", i, n, state="running", address=f"10.240.0.{i}")
        for i, n in enumerate("abc", start=1)
    }
    state = EMPTY_STATE.evolve(services={"s1": Service("s1", spec)}, nodes=nodes, tasks=tasks)
    entries = {t.address: t.answerable for t in dns_zone(state, local_node="c").services["web"]}
    assert entries == {"10.240.0.1": True, "10.240.0.2": False, "10.240.0.3": True}


def test_service_ps_says_a_task_on_a_down_node_is_only_its_last_report() -> None:
    """A cut site's ``keep`` task stays ``running`` in the state; ``service ps`` on the majority showed it
    like a reachable one (the h43 walk): its explanation now says its node is down."""
    from p2porch.control.service_ops import ServiceOps

    service = Service("s1", ServiceSpec(name="web", image="x", replicas=2))
    nodes = {"a": Node("a", "n1"), "b": Node("b", "n4", status="down", status_at=5.0)}
    tasks = {
        "ta": Task("ta", "s1", 1, "a", state="running"),
        "tb": Task("tb", "s1", 2, "b", state="running"),
        "tc": Task("tc", "s1", 3, "b", state="running", desired_state="shutdown", message="node down"),
    }
    state = EMPTY_STATE.evolve(services={"s1": service}, nodes=nodes, tasks=tasks)
    views = {t.task_id: ServiceOps.task_view(t, state, service) for t in tasks.values()}
    assert views["ta"]["message"] == ""
    assert views["tb"]["message"] == "node n4 down: its last report (unreachable)"
    assert views["tb"]["state"] == "running"  # the state itself is not made up
    assert views["tc"]["message"] == "node down"  # told to stop: its own message
