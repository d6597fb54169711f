"""Swarm's service templates (``{{.Node.Hostname}}``, ``{{.Task.Slot}}``...) in a task's environment values,
host name and mount sources are expanded per task when its container is created, as Swarm does."""

from __future__ import annotations

import dataclasses
import os
import textwrap

import pytest

from p2porch.agent.dockerspec import create_request, member_create_request
from p2porch.agent.model import MemberSpec, MountSpec, TaskAssignment, template_context, template_error
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.model.templates import SAMPLE, TemplateContext, TemplateError, expand
from p2porch.stack import load_stack


def assignment(**overrides) -> TaskAssignment:
    fields = {
        "task_id": "t0123456789",
        "service_name": "mon-exporter",
        "service_id": "s42",
        "slot": 3,
        "node_name": "n2",
        "image": "busybox",
    }
    return TaskAssignment(**(fields | overrides))


def test_swarms_context_expands_and_an_unknown_field_is_swarms_error():
    """swarmkit's ``template.Context``, with Go's whole language; an unknown field was left as written,
    Swarm refuses it (``can't evaluate field Nope in type *template.Context``)."""
    context = TemplateContext("s42", "mon-exporter", "n2", "n2", "t01", 3, service_labels={"tier": "db"})
    text = "{{.Node.Hostname}}/{{ .Task.Slot }}/{{.Service.Name}}/{{.Task.Name}}/{{.Node.ID}}"
    assert expand(text, context) == "n2/3/mon-exporter/mon-exporter.3.t01/n2"
    assert expand("no template {x}", context) == "no template {x}"
    assert expand("{{.Node.Platform.OS}}-{{.Node.Platform.Architecture}}", context) == "linux-x86_64"
    assert expand(
        '{{.Service.Labels.tier}} {{index .Service.Labels "x"}} {{join "-" "a" .Task.Slot}}', context
    ) == ("db <no value> a-3")
    assert expand('{{if eq .Task.Slot "3"}}third{{end}}', context) == "third"
    with pytest.raises(TemplateError) as info:
        expand("x-{{.Nope}}", context)
    assert str(info.value) == (
        'template: expansion:1:4: executing "expansion" at <.Nope>: can\'t evaluate field Nope in type '
        "*template.Context"  # swarmkit executes a *Context: Go names the pointer's type
    )
    with pytest.raises(TemplateError, match='map has no entry for key "absent"'):
        expand("{{.Service.Labels.absent}}", context)


def test_a_spec_with_a_template_swarm_refuses_is_refused_naming_the_field():
    with pytest.raises(ConfigError) as info:
        ServiceSpec.from_dict({"name": "a", "image": "x", "env": {"ID": "{{.Node.Nope}}"}})
    assert "can't evaluate field Nope in type struct { ID string; Hostname string; Platform " in str(
        info.value
    )
    assert info.value.field == "env.ID"
    # a Compose file's value is the application's text (Compose never expands it): kept as written
    stack = load_stack("mon", "services:\n  a:\n    image: x\n    environment:\n      ID: '{{.Node.Nope}}'\n")
    assert expand(dict(stack.services[0].spec["env"])["ID"], SAMPLE) == "{{.Node.Nope}}"
    assert any("(ID): not a Swarm service template" in w for w in stack.warnings)
    with pytest.raises(ConfigError, match="unclosed action"):
        ServiceSpec.from_dict({"name": "a", "image": "x", "container": {"hostname": "{{.Task.Slot"}})


def test_a_task_whose_own_values_fail_does_not_start():
    """A label the service lacks is known only with the task: the task fails as Swarm's does."""
    failing = assignment(env={"TIER": "{{.Service.Labels.tier}}"})
    assert template_error(failing).startswith("expanding env failed: template: expansion:1:2: executing")
    assert (
        template_error(assignment(env={"TIER": "{{.Service.Labels.tier}}"}, service_labels={"tier": "db"}))
        == ""
    )
    _, body = create_request(
        assignment(env={"TIER": "{{.Service.Labels.tier}}"}, service_labels={"tier": "db"})
    )
    assert "TIER=db" in body["Env"]


def test_a_task_container_gets_its_own_values():
    _, body = create_request(
        assignment(
            env={"NODE_ID": "{{.Node.ID}}", "PLAIN": "x"},
            options={"hostname": "{{.Node.Hostname}}-{{.Task.Slot}}"},
            mounts=(
                MountSpec("volume", "data-{{.Task.Slot}}", "/data"),
                MountSpec("bind", "/srv/{{.Service.Name}}", "/srv", create_host_path=True),
            ),
        )
    )
    assert "NODE_ID=n2" in body["Env"]
    assert "PLAIN=x" in body["Env"]
    assert body["Hostname"] == "n2-3"
    assert [m["Source"] for m in body["HostConfig"]["Mounts"]] == ["data-3"]
    assert body["HostConfig"]["Binds"] == ["/srv/mon-exporter:/srv:rw"]


def test_a_group_member_gets_the_same_values():
    member = MemberSpec(name="side", kind="sidecar", image="busybox", env={"WHO": "{{.Task.Slot}}"})
    _, body = member_create_request(assignment(env={"NODE": "{{.Node.Hostname}}"}), member, "main")
    assert "WHO=3" in body["Env"]
    assert "NODE=n2" in body["Env"]


def test_compose_files_with_templates_load():
    """``hostname: "{{.Node.Hostname}}"`` and a volume ``name:`` per slot are valid in a Swarm stack: the
    spec keeps the template (validated with stand-in values), each task expands it."""
    definition = load_stack(
        "mon",
        textwrap.dedent(
            """
            services:
              exporter:
                image: prom/node-exporter
                hostname: "{{.Node.Hostname}}"
                environment:
                  NODE_ID: "{{.Node.ID}}"
                volumes:
                  - data:/data
                deploy:
                  mode: global
            volumes:
              data:
                name: "exporter-{{.Task.Slot}}"
            """
        ),
    )
    spec = ServiceSpec.from_dict(definition.services[0].spec)
    assert spec.container.hostname == "{{.Node.Hostname}}"
    assert definition.services[0].spec["env"]["NODE_ID"] == "{{.Node.ID}}"
    assert spec.mounts[0].source == "exporter-{{.Task.Slot}}"
    assert expand(spec.mounts[0].source, SAMPLE) == "exporter-1"


def test_a_host_name_that_is_invalid_once_expanded_is_still_refused():
    with pytest.raises(ConfigError) as info:
        load_stack("mon", "services:\n  a:\n    image: x\n    hostname: 'bad name {{.Task.Slot}}'\n")
    assert "services.a.hostname" in str(info.value)


def test_the_node_platform_is_the_hosts_as_dockers_engine_reports_it():
    """``.Node.Platform.OS|Architecture``: the host's kernel and ``uname -m`` (``docker info``'s OSType
    and Architecture, swarmkit's node description), not constants: the agent expands them on the node."""
    platform = expand("{{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}", template_context(assignment()))
    assert platform == f"{os.uname().sysname.lower()}/{os.uname().machine}"
    odd = dataclasses.replace(template_context(assignment()), platform_arch="aarch64")
    assert expand("{{.Node.Platform.Architecture}}", odd) == "aarch64"
