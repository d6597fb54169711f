"""Docker's list ``--format`` as docker/cli's rows give it: the ``{{.Label "k"}}`` method of ``network|
secret|config ls`` (docker/cli's ``Label(name string) string``), each list's ``{{json .}}`` with exactly
docker/cli's fields, a ``table`` header that stops at its first error (docker/cli ignores the header's),
and a task table indenting a slot's history. The examples are Docker's reference pages'."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.cli import network as cli_network
from p2porch.cli import node as cli_node
from p2porch.cli import secret as cli_secret
from p2porch.cli import service as cli_service
from p2porch.cli import service_read as cli_service_read
from p2porch.cli import stack as cli_stack
from p2porch.cli.main import main

NET = {"id": "afaaab448eb2" + "0" * 52, "name": "back", "driver": "overlay", "scope": "cluster"}
SECRET = {"id": "4y7hvwrt1u8e9uxh5ygqj7mzc", "name": "mysecret", "version": 1, "size": 3, "services": []}
NODE = {"address": "10.0.0.1", "availability": "active", "status": "ready", "labels": {}}
SERVICE = {
    "id": "ssniordqolsi" + "x" * 13,
    "name": "hello",
    "mode": "replicated",
    "image": "hello-world:latest",
}
TASK = {"node": "n1", "image": "busybox", "state_at": 0.0, "error": "", "message": "", "ports": []}


class Api:
    def get(self, path: str, **_: Any) -> Any:
        if path == "/networks":
            labelled = {**NET, "labels": {"project.version": "1.2", "env": "prod"}}
            return [
                {**labelled, "internal": False, "services": [], "created_at": 0},
                {**NET, "name": "plain", "internal": True, "services": ["web"], "created_at": 0},
            ]
        if path.startswith("/objects/"):
            return [{**SECRET, "created_at": 0, "updated_at": 0, "labels": {"secret.ssh.key": "k1"}}]
        if path == "/nodes":
            return [
                {**NODE, "id": "k8f4w7qtzpj5sqzclcqafw35g", "name": "n1", "raft_role": "leader", "self": True,
                 "engine_version": "20.10.5", "tls_status": "Ready"},
                {**NODE, "id": "35o6tiywb700jesrt3dmllaza", "name": "n2", "raft_role": "replica"},
            ]  # fmt: skip
        if path == "/services":
            return [{**SERVICE, "running": 0, "desired": 1, "pending": [], "spec": {"publish": []}}]
        if path == "/stacks":
            return [{"name": "shop", "services": 2, "running": 3, "desired": 3}]
        if path.endswith("/usage"):
            return {}
        if path == "/services/top":
            return {"spec": {"name": "top", "image": "busybox"}}
        old = {**TASK, "id": "o1", "name": "top.1", "slot": 1, "desired_state": "shutdown", "state": "failed"}
        return [
            {**TASK, "id": "a1", "name": "top.1", "slot": 1, "desired_state": "running", "state": "running"},
            {**old, "error": "No such image: redis@sha256:6a692a76c2081888b589e26e6ec835743119fe453d"},
            {**TASK, "id": "b2", "name": "top.2", "slot": 2, "desired_state": "running", "state": "running"},
        ]


@pytest.fixture(autouse=True)
def api(monkeypatch) -> None:
    for module in (cli_network, cli_secret, cli_node, cli_service, cli_service_read, cli_stack):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: Api())


def out(capsys, *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("argv", "lines"),
    [
        # docker network ls's placeholder table: {{.Label "project.version"}}
        (["network", "ls", "--format", '{{.Name}}: {{.Label "project.version"}}'], ["back: 1.2", "plain: "]),
        (["network", "ls", "--format", '{{"env" | .Label}}'], ["prod", ""]),
        (
            ["network", "ls", "--format", '{{if eq (.Label "env") "prod"}}{{.ID}}{{end}}'],
            ["afaaab448eb2", ""],
        ),
        # docker secret ls's: {{.Label "secret.ssh.key"}}; and config ls's
        (["secret", "ls", "--format", '{{.Name}} {{.Label "secret.ssh.key"}}'], ["mysecret k1"]),
        (["config", "ls", "--format", '{{.Label "secret.ssh.key"}}{{.Label "nope"}}'], ["k1"]),
        # docker network ls --format "{{.ID}}: {{.Driver}}"; docker secret ls --format "{{.ID}}: {{.Name}}"
        (["network", "ls", "--format", "{{.ID}}: {{.Driver}}"], ["afaaab448eb2: overlay"] * 2),
        (["secret", "ls", "--format", "{{.ID}}: {{.Name}}"], ["4y7hvwrt1u8e9uxh5ygqj7mzc: mysecret"]),
        # docker node ls --format "{{.ID}}: {{.Hostname}} {{.TLSStatus}}": the whole id, Unknown when unknown
        (
            ["node", "ls", "--format", "{{.ID}}: {{.Hostname}} {{.TLSStatus}}"],
            ["k8f4w7qtzpj5sqzclcqafw35g: n1 Ready", "35o6tiywb700jesrt3dmllaza: n2 Unknown"],
        ),
        # docker service ps --format "{{.Name}}: {{.Image}}" top
        (
            ["service", "ps", "--format", "{{.Name}}: {{.Image}}", "top"],
            ["top.1: busybox"] * 2 + ["top.2: busybox"],
        ),
    ],
)
def test_dockers_list_examples(capsys, argv, lines) -> None:
    assert out(capsys, *argv) == lines


def test_label_is_a_method_of_the_lists_docker_gives_it(capsys) -> None:
    """docker/cli's service and node rows have no ``Label``: refused while parsing, as Docker's
    ``can't evaluate field Label``; a wrong call is Go's error, naming ``--format`` (exit 1, as Docker's)."""
    for argv in (["service", "ls"], ["node", "ls"], ["stack", "ls"]):
        assert main([*argv, "--format", '{{.Label "x"}}']) == 1
        assert "can't evaluate field Label" in capsys.readouterr().err
    assert main(["network", "ls", "--format", "{{.Label}}"]) == 1
    assert "wrong number of args for Label: want 1 got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["service", "ls"], ["ID", "Image", "Mode", "Name", "Ports", "Replicas"]),
        (
            ["service", "ps", "top"],
            ["CurrentState", "DesiredState", "Error", "ID", "Image", "Name", "Node", "Ports"],
        ),
        (
            ["node", "ls"],
            [
                "Availability",
                "EngineVersion",
                "Hostname",
                "ID",
                "ManagerStatus",
                "Self",
                "Status",
                "TLSStatus",
            ],
        ),
        (
            ["network", "ls"],
            ["CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope"],
        ),
        (["secret", "ls"], ["CreatedAt", "Driver", "ID", "Labels", "Name", "UpdatedAt"]),
        (["config", "ls"], ["CreatedAt", "ID", "Labels", "Name", "UpdatedAt"]),
        (["stack", "ls"], ["Name", "Services"]),
    ],
)
def test_json_rows_have_dockers_fields(capsys, argv, keys) -> None:
    """``--format json`` (and ``{{json .}}``): each row with docker/cli's fields, no more (a list's
    own columns, ``RaftRole``, ``Services``, ``Tasks``..., stay fields a template may name)."""
    for template in ("json", "{{json .}}"):
        rows = [json.loads(line) for line in out(capsys, *argv[:2], "--format", template, *argv[2:])]
        assert rows and all(sorted(row) == keys for row in rows)


def test_dockers_json_examples(capsys) -> None:
    """docker node ls --format json; docker service ls --format json (docker/cli's reference pages)."""
    (first, _) = out(capsys, "node", "ls", "--format", "json")
    assert first == (
        '{"Availability":"Active","EngineVersion":"20.10.5","Hostname":"n1","ID":"k8f4w7qtzpj5sqzclcqafw35g",'
        '"ManagerStatus":"Leader","Self":true,"Status":"Ready","TLSStatus":"Ready"}'
    )
    assert out(capsys, "service", "ls", "--format", "json") == [
        '{"ID":"ssniordqolsi","Image":"hello-world:latest","Mode":"replicated","Name":"hello","Ports":"",'
        '"Replicas":"0/1"}'
    ]


def test_a_tables_header_stops_at_its_first_error(capsys) -> None:
    """docker/cli runs a table's template over the header names and ignores its error: a ``Label``
    column (a method with an argument, which the header's map cannot answer) and what follows it head
    nothing; the rows are printed whole."""
    lines = out(capsys, "network", "ls", "--format", 'table {{.Name}}\\t{{.Label "env"}}\\t{{.Driver}}')
    assert lines == ["NAME      ", "back      prod      overlay", "plain               overlay"]  # Go pads it


def test_a_task_table_indents_a_slots_history_as_dockers(capsys) -> None:
    """docker/cli indents ``\\_`` in a table (the default or ``table TEMPLATE``), not in a line format."""
    assert out(capsys, "service", "ps", "--format", "table {{.Name}}\\t{{.DesiredState}}", "top") == [
        "NAME        DESIRED STATE",
        "top.1       Running",
        " \\_ top.1   Shutdown",
        "top.2       Running",
    ]
    assert out(capsys, "service", "ps", "--format", "{{.Name}}", "top") == ["top.1", "top.1", "top.2"]


def test_a_tasks_error_is_dockers(capsys) -> None:
    """docker service ps's page: ``"No such image: redis@sha256:6…"``: quoted, cut to 30 unless
    ``--no-trunc``."""
    assert out(capsys, "service", "ps", "--format", "{{.Error}}", "top") == [
        "",
        '"No such image: redis@sha256:6…"',
        "",
    ]
    whole = out(capsys, "service", "ps", "--no-trunc", "--format", "{{.Error}}", "top")[1]
    assert whole == '"No such image: redis@sha256:6a692a76c2081888b589e26e6ec835743119fe453d"'
