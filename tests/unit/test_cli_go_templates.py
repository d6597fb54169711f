"""The templates Docker users paste into ``--format`` (Docker's "Format command and log output" page and
the service/node references), on the one Go template engine: ``range``, ``index``, pipelines, ``if``,
Docker's functions; before it each was a usage error ("cannot read ...: use {{.Field.Sub}}")."""

from __future__ import annotations

import argparse

import pytest

from p2porch.cli.docker_paths import docker_path, node_path
from p2porch.cli.goformat import FormatError, add_list_format, listing, render
from p2porch.cli.util import UsageError

SERVICE = {
    "id": "6ecb9128ea55",
    "name": "web",
    "spec": {
        "name": "web",
        "mode": "replicated",
        "replicas": 3,
        "image": "nginx:1.27",
        "command": ["nginx", "-g", "daemon off;"],
        "service_labels": {"com.x": "front", "tier": "web"},
        "publish": [{"target": 80, "published": 8080}, {"target": 53, "published": 5353, "protocol": "udp"}],
    },
}
NODE = {"name": "n1", "status": "ready", "address": "10.0.0.1", "raft_role": "leader", "labels": {}}


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{range .Endpoint.Ports}}{{.PublishedPort}} {{end}}", "8080 5353 "),
        (
            "{{range $i, $p := .Spec.EndpointSpec.Ports}}{{$i}}:{{$p.Protocol}}/{{$p.TargetPort}},{{end}}",
            "0:tcp/80,1:udp/53,",
        ),
        ("{{json .Spec.Labels}}", '{"com.x":"front","tier":"web"}'),
        ('{{index .Spec.Labels "com.x"}}', "front"),
        ('{{join .Spec.TaskTemplate.ContainerSpec.Args " "}}', "nginx -g daemon off;"),
        ('{{split .Spec.TaskTemplate.ContainerSpec.Image ":"}}', "[nginx 1.27]"),
        ("{{upper .Spec.Name}} {{lower `AB`}} {{title `hello world`}}", "WEB ab Hello World"),
        ("[{{pad .Spec.Name 1 2}}] {{truncate .ID 4}}", "[ web  ] 6ecb"),
        ("{{.Spec.Labels | len}} {{printf `%-5s|` .Spec.Name}}", "2 web  |"),
        ("{{if gt .Spec.Mode.Replicated.Replicas 1}}replicated{{else}}single{{end}}", "replicated"),
        ("{{with .Spec.Labels.tier}}tier={{.}}{{end}}", "tier=web"),
        ("{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}", "com.x=front;tier=web;"),
    ],
)
def test_service_inspect_takes_dockers_templates(template: str, out: str) -> None:
    assert render(template, SERVICE, docker_path) == out


def test_node_inspect_takes_an_if() -> None:
    template = (
        '{{if eq .Status.State "ready"}}up{{else}}down{{end}} {{if .ManagerStatus.Leader}}leader{{end}}'
    )
    assert render(template, NODE, node_path) == "up leader"


def test_a_template_go_refuses_is_an_error_with_gos_message() -> None:
    """One Go cannot run is Docker's ``template parsing error`` (exit 1); one that does not parse, a
    usage error (exit 2)."""
    with pytest.raises(FormatError) as info:
        render("{{range .Spec.Name}}{{end}}", SERVICE, docker_path)
    assert info.value.field == "--format"
    assert str(info.value.message).startswith(
        '--format: template parsing error: template: :1:8: executing "" at <.Spec.Name>'
    )
    with pytest.raises(UsageError, match=r'--format: template parsing error: template: :1: function "nope"'):
        render("{{nope .ID}}", SERVICE)


COLUMNS = ["ID", "NAME", "MODE", "REPLICAS", "IMAGE"]
ROWS = [["a1", "web", "replicated", "3/3", "nginx:1.27"], ["b2", "db", "global", "1/1", "postgres:16"]]


def _args(template: str) -> argparse.Namespace:
    parser = add_list_format(argparse.ArgumentParser(), COLUMNS)
    return parser.parse_args(["--format", template])


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{.Name}}: {{.Replicas}}", "web: 3/3\ndb: 1/1"),
        (
            '{{if eq .Mode "global"}}{{.Name}} everywhere{{else}}{{.Name}} x{{.Replicas}}{{end}}',
            "web x3/3\ndb everywhere",
        ),
        ('{{.Name | printf "%-4s"}}|{{index (split .Image ":") 1}}', "web |1.27\ndb  |16"),
        ("table {{.Name}}\\t{{.Image}}", "NAME      IMAGE\nweb       nginx:1.27\ndb        postgres:16"),
    ],
)
def test_service_ls_takes_dockers_templates(template: str, out: str) -> None:
    assert listing(_args(template), COLUMNS, ROWS) == out


def test_a_list_template_is_checked_before_any_row() -> None:
    """Parse errors are refused by argparse, a field no row has found while parsing too and carried on
    the text for ``cli.main`` to raise after argparse's own checks (Docker's exit 1, its public fields
    named); an error that needs a row's value (indexing the empty check row) waits for the rows."""
    parser = add_list_format(argparse.ArgumentParser(exit_on_error=False), COLUMNS)
    for bad in ("{{range .Name}", "{{if .Name}}"):
        with pytest.raises(argparse.ArgumentError):
            parser.parse_args(["--format", bad])
    with pytest.raises(FormatError, match=r"in type row \(fields: ID, Image, Mode, Name, Replicas\)$"):
        raise parser.parse_args(["--format", "{{.Nope}}"]).format.error
    args = parser.parse_args(["--format", '{{index (split .Image ":") 1}}'])
    assert listing(args, COLUMNS, ROWS) == "1.27\n16"
