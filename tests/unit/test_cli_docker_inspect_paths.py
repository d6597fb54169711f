"""``service inspect --format`` over Docker's structs: ``.Spec.TaskTemplate`` (``ContainerSpec.Mounts``,
``Secrets``, ``Resources``, ``RestartPolicy``, ``Placement``, ``Networks``), ``.Spec.UpdateConfig``,
typed as Docker's Go structs (``%T``), printed as Go prints them and encoded as Go's JSON (omitempty),
with the values of Docker's ``service inspect`` JSON on its reference page; and Swarm's template
context typed as swarmkit's (``%T``)."""

from __future__ import annotations

import pytest

from p2porch.cli.docker_paths import docker_path, network_path, node_path
from p2porch.cli.docker_types import go_duration
from p2porch.cli.goformat import FormatError, render
from p2porch.model import ServiceSpec
from p2porch.model.templates import SAMPLE, expand

SPEC = ServiceSpec.from_dict(
    {
        "name": "redis",
        "image": "redis:7.4.1",
        "mounts": ["type=volume,source=data,target=/data", "type=bind,source=/etc/x,target=/x,readonly"],
        "secrets": [{"source": "pw", "target": "db", "mode": 0o400}],
        "constraints": ["node.labels.zone==a"],
        "networks": ["back"],
        "health": {"cmd": "true", "interval_s": 5},
    }
).to_dict()
VIEW = {"name": "redis", "id": "dmu1ept4cxcf", "version": 12, "created_at": 0, "updated_at": 0, "spec": SPEC}
DEFAULT = {**VIEW, "spec": ServiceSpec.from_dict({"name": "redis", "image": "redis:7.4.1"}).to_dict()}


@pytest.mark.parametrize(
    ("template", "out"),
    [
        (
            "{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}"
            "{{.Type}} {{.Source}}:{{.Target}} {{.ReadOnly}};{{end}}",
            "volume data:/data false;bind /etc/x:/x true;",
        ),
        (
            "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}",
            '[{"Type":"volume","Source":"data","Target":"/data"},'
            '{"Type":"bind","Source":"/etc/x","Target":"/x","ReadOnly":true}]',
        ),
        (
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}"
            "{{.SecretName}} {{.File.Name}} {{.File.Mode}}{{end}}",
            "pw db -r--------",
        ),
        ("{{json (index .Spec.TaskTemplate.ContainerSpec.Secrets 0).File.Mode}}", "256"),
        ("{{.Spec.TaskTemplate.ContainerSpec.Image}}", "redis:7.4.1"),
        ("{{.Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}", "[CMD-SHELL true]"),
        ("{{.Spec.TaskTemplate.ContainerSpec.Healthcheck.Interval}}", "5s"),
        ("{{.Spec.TaskTemplate.ContainerSpec.StopGracePeriod}}", "10s"),
        ("{{.Spec.TaskTemplate.Placement.Constraints}}", "[node.labels.zone==a]"),
        ("{{range .Spec.TaskTemplate.Networks}}{{.Target}}{{end}}", "back"),
        ("{{.Spec.TaskTemplate.RestartPolicy.Delay}}", "5s"),
        ("{{printf `%T` .Spec.TaskTemplate.ContainerSpec}}", "*swarm.ContainerSpec"),
        ("{{printf `%T` .Spec.TaskTemplate.ContainerSpec.Mounts}}", "[]mount.Mount"),
        ("{{printf `%T` .Spec.UpdateConfig.Delay}}", "time.Duration"),
        ("{{printf `%T %T` .Spec.Mode .Spec.Mode.Replicated}}", "swarm.ServiceMode *swarm.ReplicatedService"),
        ("{{printf `%T %T` .Endpoint.Ports .Spec.Labels}}", "[]swarm.PortConfig map[string]string"),
        ("{{printf `%T` .CreatedAt}}", "time.Time"),
        ("{{if eq .Spec.TaskTemplate.RestartPolicy.MaxAttempts 0}}unlimited{{end}}", "unlimited"),
    ],
)
def test_service_inspect_walks_dockers_structs(template: str, out: str) -> None:
    assert render(template, VIEW, docker_path) == out


@pytest.mark.parametrize(
    ("template", "out"),
    [
        # Docker's service inspect JSON (its reference page) for `service create --name redis redis:7.4.1`
        ("{{json .Spec.TaskTemplate.Resources}}", '{"Limits":{},"Reservations":{}}'),
        (
            "{{json .Spec.TaskTemplate.RestartPolicy}}",
            '{"Condition":"any","Delay":5000000000,"MaxAttempts":0}',
        ),
        ("{{json .Spec.TaskTemplate.Placement}}", "{}"),
        ("{{json .Spec.Mode}}", '{"Replicated":{"Replicas":1}}'),
        ("{{json .Spec.EndpointSpec}}", '{"Mode":"vip"}'),
        (
            "{{json .Spec.UpdateConfig}}",
            '{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"}',
        ),
        (
            "{{json .Spec.RollbackConfig}}",
            '{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"}',
        ),
        ("{{.Spec.Mode.Replicated.Replicas}} {{.Version.Index}}", "1 12"),  # --format='{{.Spec.Mode...}}'
    ],
)
def test_a_default_services_structs_are_dockers(template: str, out: str) -> None:
    assert render(template, DEFAULT, docker_path) == out


def test_go_durations() -> None:
    cases = {
        0: "0s",
        5 * 10**9: "5s",
        90 * 10**9: "1m30s",
        3_723_500_000_000: "1h2m3.5s",
        300 * 10**6: "300ms",
    }
    cases |= {1500: "1.5µs", 7: "7ns", -(10**9): "-1s"}
    assert {ns: go_duration(ns) for ns in cases} == cases


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{printf `%T` .}}", "*template.Context"),
        ("{{printf `%T` .Service}}", "struct { ID string; Name string; Labels map[string]string }"),
        ("{{printf `%T` .Node}}", "struct { ID string; Hostname string; Platform template.Platform }"),
        ("{{printf `%T %T` .Node.Platform .Service.Labels}}", "template.Platform map[string]string"),
        ("{{printf `%T` .Task.Slot}}", "string"),
        ("{{printf `%#v` .Node.Platform}}", 'template.Platform{Architecture:"x86_64", OS:"linux"}'),
    ],
)
def test_swarms_template_context_is_typed_as_swarmkits(template: str, out: str) -> None:
    assert expand(template, SAMPLE) == out


NETWORK = {
    "id": "ybmyjvao9vtzy3oorxbssj13b",
    "name": "ov1",
    "driver": "overlay",
    "scope": "cluster",
    "internal": False,
    "labels": {"env": "prod"},
    "created_at": 0,
    "subnets": [
        {"node": "n1", "subnet": "10.240.0.0/24", "gateway": "10.240.0.1"},
        {"node": "n2", "subnet": "10.240.1.0/24", "gateway": "10.240.1.1"},
    ],
    "tasks": [
        {"task": "s1.1", "service": "s1", "node": "n1", "address": "10.240.0.4", "task_id": "pjn2ik0sfgkf"}
        | {"container_id": "020403bd88a1", "node_address": "192.168.33.11"},
        {"task": "s1.2", "service": "s1", "node": "n2", "address": "10.240.1.5", "task_id": "q4hcq2aiiml2"}
        | {"container_id": "", "node_address": "192.168.33.12"},
    ],
}


@pytest.mark.parametrize(
    ("template", "out"),
    [
        (
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}",
            "10.240.0.0/24 10.240.0.1;10.240.1.0/24 10.240.1.1;",
        ),
        ("{{json (index .IPAM.Config 0)}}", '{"Subnet":"10.240.0.0/24","Gateway":"10.240.0.1"}'),
        ("{{.IPAM.Driver}}", "default"),
        (
            "{{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}};{{end}}",
            "020403bd88a1 s1.1.pjn2ik0s 10.240.0.4/24;q4hcq2aiiml2 s1.2.q4hcq2ai 10.240.1.5/24;",
        ),
        ("{{range .Peers}}{{.Name}}={{.IP}} {{end}}", "n1=192.168.33.11 n2=192.168.33.12 "),
        ("{{json .Peers}}", '[{"Name":"n1","IP":"192.168.33.11"},{"Name":"n2","IP":"192.168.33.12"}]'),
        (
            "{{.Name}} {{.Id}} {{.Driver}} {{.EnableIPv6}} {{.Internal}} {{.Labels}}",
            "ov1 ybmyjvao9vtzy3oorxbssj13b overlay false false map[env:prod]",
        ),
        (
            "{{printf `%T %T` .IPAM.Config .Containers}}",
            "[]network.IPAMConfig map[string]network.EndpointResource",
        ),
    ],
)
def test_network_inspect_answers_dockers_paths(template: str, out: str) -> None:
    """Docker's ``network inspect`` JSON (its reference page: ``IPAM.Config``, ``Containers``, ``Peers``)."""
    assert render(template, NETWORK, network_path) == out


def test_node_inspect_answers_dockers_platform() -> None:
    """``node inspect --format '{{.Description.Platform.Architecture}}'``: the engine's, carried in gossip."""
    node = {"name": "n1", "platform": {"os": "linux", "architecture": "aarch64"}}
    template = (
        "{{.Description.Platform.OS}}/{{.Description.Platform.Architecture}} {{json .Description.Platform}}"
    )
    assert render(template, node, node_path) == 'linux/aarch64 {"Architecture":"aarch64","OS":"linux"}'


ROLLED_BACK = {
    **VIEW,
    "update_status": {
        "state": "rollback_completed",
        "started_at": 1796598000.5,
        "reason": "update failed: 1 of 5 tasks failed within the 3s monitor",
    },
}


@pytest.mark.parametrize(
    ("view", "template", "out"),
    [
        (
            ROLLED_BACK,
            "{{.UpdateStatus.State}}: {{.UpdateStatus.Message}}",
            "rollback_completed: update failed: 1 of 5 tasks failed within the 3s monitor",
        ),
        (
            ROLLED_BACK,
            "{{printf `%T` .UpdateStatus}} {{.UpdateStatus.StartedAt}}",
            "*swarm.UpdateStatus 2026-12-06 23:00:00.5 +0000 UTC",
        ),
        (
            {**VIEW, "update_status": {"state": "completed", "started_at": 0, "reason": ""}},
            "{{.UpdateStatus.Message}}",
            "update completed",
        ),
        (VIEW, "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}never updated{{end}}", "never updated"),
    ],
)
def test_update_status_is_dockers(view: dict, template: str, out: str) -> None:
    """The h48 walk: `service inspect -f '{{.UpdateStatus.State}} {{.UpdateStatus.Message}}'` after an
    automatic rollback was refused (`can't evaluate field Message ... (fields: reason, started_at, state)`);
    Docker's UpdateStatus has State, StartedAt, CompletedAt and Message, nil for a service never updated."""
    assert render(template, view, docker_path) == out


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{.UpdateStatus}}", "<nil>"),  # was <no value>
        ("{{json .UpdateStatus}}", "null"),
        ('{{printf "%T" .UpdateStatus}}', "*swarm.UpdateStatus"),
        ("{{with .UpdateStatus}}{{.State}}{{else}}-{{end}}", "-"),
    ],
)
def test_a_never_updated_services_update_status_is_a_nil_pointer(template: str, out: str) -> None:
    assert render(template, VIEW, docker_path) == out


def test_a_field_of_a_nil_update_status_is_gos_nil_pointer_error() -> None:
    """The h49 walk: `service inspect -f '{{.UpdateStatus.State}}'` of a stack service never updated said
    `can't evaluate field State in .UpdateStatus (not a map)`; Go's (and Docker's) error names the nil."""
    with pytest.raises(
        FormatError, match=r"at <\.UpdateStatus\.State>: nil pointer evaluating \*swarm\.UpdateStatus\.State$"
    ):
        render("{{.UpdateStatus.State}}", VIEW, docker_path)
    with pytest.raises(FormatError, match=r"nil pointer evaluating \*swarm\.UpdateStatus\.State$"):
        render("{{$s := .UpdateStatus}}{{$s.State}}", VIEW, docker_path)  # through a variable too
