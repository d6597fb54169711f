"""Compose's ``privileged: true`` honoured (was ignored with a warning: a docker-in-docker runner, cAdvisor or
an eBPF agent ran without the privileges it needs): ``container.privileged`` in the spec, ``--privileged`` on
``service create/update``, ``HostConfig.Privileged`` of the task's main container, a sidecar's own
``privileged``, and the spec field gate (spec version 5)."""

from __future__ import annotations

import pytest

from p2porch.agent.dockerspec import create_request, engine_options, member_create_request
from p2porch.agent.model import KIND_INIT, KIND_SIDECAR, MemberSpec, TaskAssignment
from p2porch.cli.main import build_parser
from p2porch.cli.service_spec_flags import spec_changes, validated_spec
from p2porch.control.service_ops import updated_spec_dict
from p2porch.member.views import group_members
from p2porch.model import ServiceSpec
from p2porch.model import spec_fields as F
from p2porch.model.container_opts import ContainerOptions

from .compose_text import load, refusal, spec_of


def test_privileged_true_is_the_main_containers_privileged_mode_without_a_warning():
    definition = load(
        """
        services:
          dind: {image: docker:dind, privileged: true}
          cadvisor: {image: cadvisor, privileged: "yes"}
          web: {image: nginx, privileged: false}
        """
    )
    assert spec_of(definition, "dind")["container"] == {"privileged": True}
    assert spec_of(definition, "cadvisor")["container"] == {"privileged": True}  # Compose's boolean cast
    assert not spec_of(definition, "web")["container"]  # false is the default: nothing stored
    assert not any("privileged" in w for w in definition.warnings)
    assert engine_options({"privileged": True}) == ({}, {"Privileged": True})
    task = TaskAssignment("t1", "s-dind", "s1", 1, "n1", "docker:dind", options={"privileged": True})
    assert create_request(task)[1]["HostConfig"]["Privileged"] is True
    plain = TaskAssignment("t1", "s-web", "s1", 1, "n1", "nginx")
    assert "Privileged" not in create_request(plain)[1]["HostConfig"]


def test_a_privileged_value_that_is_no_boolean_is_refused_naming_the_key():
    assert "services.dind.privileged: expected true or false" in refusal(
        "services: {dind: {image: docker, privileged: sometimes}}"
    )


def test_a_sidecar_is_privileged_only_when_it_declares_it():
    definition = load(
        """
        services:
          app: {image: app}
          vpn: {image: wireguard, network_mode: "service:app", privileged: true}
          logs: {image: fluentbit, network_mode: "service:app"}
        """
    )
    app = spec_of(definition, "app")
    assert not app["container"]  # the main container keeps its own (unprivileged) mode
    assert [(s["name"], s.get("privileged")) for s in app["sidecars"]] == [("vpn", True), ("logs", None)]
    assert not any("privileged" in w for w in definition.warnings)  # carried, not "not applied"
    members = group_members(ServiceSpec.from_dict(app))
    assert [(m.name, m.privileged) for m in members] == [("vpn", True), ("logs", False)]
    task = TaskAssignment("t1", "s-app", "s1", 1, "n1", "app", options={"privileged": True}, members=members)
    bodies = {m.name: member_create_request(task, m, "c0ffee")[1]["HostConfig"] for m in members}
    assert bodies["vpn"]["Privileged"] is True
    assert "Privileged" not in bodies["logs"]  # a privileged main container does not make its sidecars so
    init = MemberSpec("migrate", KIND_INIT, "app", privileged=True)
    assert member_create_request(task, init, "c0ffee")[1]["HostConfig"]["Privileged"] is True
    assert (
        "Privileged"
        not in member_create_request(task, MemberSpec("x", KIND_SIDECAR, "a"), "c")[1]["HostConfig"]
    )


def test_service_create_and_update_take_privileged_a_p2porch_extension():
    argv = ["service", "create", "--name", "dind", "--privileged", "docker:dind"]
    changes = spec_changes(build_parser("service").parse_args(argv))
    assert changes["container"] == {"privileged": True}
    assert validated_spec({"name": "dind", "image": "docker:dind", **changes})["container"] == {
        "privileged": True
    }
    off = build_parser("service").parse_args(["service", "update", "--privileged=false", "dind"])
    assert spec_changes(off)["container"] == {"privileged": False}
    stored = ServiceSpec.from_dict(
        {"name": "dind", "image": "d", "container": {"privileged": True, "init": True}}
    )
    assert ServiceSpec.from_dict(updated_spec_dict(stored, spec_changes(off))).container.to_dict() == {
        "init": True
    }
    assert ContainerOptions.from_dict({"privileged": False}).to_dict() == {}
    on = ServiceSpec.from_dict({"name": "d", "image": "d", "container": {"privileged": True}})
    assert on.template_hash() != ServiceSpec.from_dict({"name": "d", "image": "d"}).template_hash()


def test_the_help_says_docker_has_no_such_flag(capsys):
    with pytest.raises(SystemExit):
        build_parser("service").parse_args(["service", "create", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--privileged" in help_text and "docker service create has no such flag" in help_text


def test_privileged_is_spec_version_5_for_the_main_container_and_a_sidecar():
    assert F.SPEC_VERSION >= 5
    main = ServiceSpec.from_dict({"name": "d", "image": "d", "container": {"privileged": True}})
    assert F.used_above(main, 4) == {"container.privileged": 5}
    assert F.used_above(main, 5) == {}
    sidecar = ServiceSpec.from_dict(
        {"name": "d", "image": "d", "sidecars": [{"name": "vpn", "image": "wg", "privileged": True}]}
    )
    assert F.used_above(sidecar, 4) == {"sidecars[0].privileged": 5}
    assert sidecar.to_dict()["sidecars"] == [{"name": "vpn", "image": "wg", "privileged": True}]
    unused = ServiceSpec.from_dict({"name": "d", "image": "d", "sidecars": ["name=vpn,image=wg"]})
    assert F.used_above(unused, 1) == {} and "privileged" not in unused.to_dict()["sidecars"][0]


def test_a_sidecar_flag_takes_privileged_in_its_csv_form():
    spec = ServiceSpec.from_dict(
        {"name": "d", "image": "d", "sidecars": ["name=vpn,image=wg,privileged=true"]}
    )
    assert spec.sidecars[0].privileged is True
