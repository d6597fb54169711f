"""``service ls`` and ``node ls`` take Docker's ``--filter/-f KEY=VALUE`` (they were unrecognized
arguments): one key's values are alternatives, different keys must all match; bad filters exit 2."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.cli import node as cli_node
from p2porch.cli import service as cli_service
from p2porch.cli.filters import NODE_FILTERS, SERVICE_FILTERS, apply_filters
from p2porch.cli.main import main

SERVICES = [
    {"id": "aa11", "name": "web", "mode": "replicated", "spec": {"service_labels": {"tier": "front"}}},
    {"id": "bb22", "name": "web-admin", "mode": "replicated", "spec": {"service_labels": {}}},
    {"id": "cc33", "name": "agent", "mode": "global", "spec": {"service_labels": {"tier": "ops"}}},
]
NODES = [
    {"id": "n1id", "name": "n1", "raft_role": "leader", "availability": "active", "labels": {"ssd": "true"}},
    {"id": "n2id", "name": "n2", "raft_role": "voter", "availability": "drain", "labels": {}},
    {"id": "n4id", "name": "n4", "raft_role": "replica", "availability": "active", "labels": {"ssd": "no"}},
]


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["name=web"], ["web", "web-admin"]),  # a prefix, as Docker
        (["name=web", "mode=replicated", "label=tier"], ["web"]),
        (["label=tier=ops"], ["agent"]),
        (["mode=global", "mode=replicated"], ["web", "web-admin", "agent"]),  # alternatives
        (["id=bb"], ["web-admin"]),
    ],
)
def test_service_filters(given: list[str], expected: list[str]) -> None:
    assert names(apply_filters(SERVICES, given, SERVICE_FILTERS)) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["role=manager"], ["n1", "n2"]),  # Swarm's managers: the voters, the leader among them
        (["role=worker"], ["n4"]),
        (["role=leader"], ["n1"]),
        (["availability=active", "node.label=ssd=true"], ["n1"]),
        (["label=ssd"], ["n1", "n4"]),
    ],
)
def test_node_filters(given: list[str], expected: list[str]) -> None:
    assert names(apply_filters(NODES, given, NODE_FILTERS)) == expected


class Api:
    def get(self, path: str, **_: Any) -> Any:
        return SERVICES if path == "/services" else NODES


def test_the_commands_filter_and_refuse_a_bad_filter(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args: Api())
    monkeypatch.setattr(cli_node, "client_for", lambda args: Api())
    assert main(["service", "ls", "-f", "name=agent", "-q"]) == 0
    assert capsys.readouterr().out.split() == ["cc33"]
    assert main(["node", "ls", "--filter", "role=worker", "-q"]) == 0
    assert capsys.readouterr().out.split() == ["n4id"]
    for argv, text in (
        (
            ["service", "ls", "--filter", "colour=red"],
            "invalid filter 'colour' (keys: id, name, mode, label)",
        ),
        (["node", "ls", "-f", "role"], "expected KEY=VALUE, got 'role'"),
    ):
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
        assert f"argument --filter/-f: {text}" in capsys.readouterr().err


class Unreachable:
    def get(self, path: str, **_: Any) -> Any:
        raise AssertionError(f"asked the daemon for {path} before refusing the filter")


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["service", "ps", "--filter", "bogus=1", "web"], "id, name, node, desired-state"),
        (["stack", "ps", "-f", "bogus=1", "shop"], "id, name, node, desired-state"),
        (["service", "ls", "--filter", "bogus=1"], "id, name, mode, label"),
        (["node", "ls", "--filter", "bogus=1"], "id, name, role, availability, status, label, node.label"),
    ],
)
def test_a_bad_filter_is_refused_before_the_daemon_is_asked(argv, keys, monkeypatch, capsys) -> None:
    """The third user walk: ``service ps --filter bogus=1 S`` asked the daemon for S (and its tasks)
    first, so an unknown service hid the bad flag; now argparse refuses it: exit 2, the flag and keys."""
    from p2porch.cli import service_read as cli_service_read
    from p2porch.cli import stack as cli_stack

    for module in (cli_service, cli_node, cli_service_read, cli_stack):
        monkeypatch.setattr(module, "client_for", lambda args: Unreachable())
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --filter/-f: invalid filter 'bogus' (keys: {keys})" in err


class ListApi:
    def get(self, path: str, **_: Any) -> Any:
        if path == "/services":
            return [{**s, "pending": [], "running": 1, "desired": 1, "image": "img"} for s in SERVICES]
        return [{**n, "address": "10.0.0.1", "status": "ready"} for n in NODES]


def test_service_ls_and_node_ls_take_docker_format(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args: ListApi())
    monkeypatch.setattr(cli_node, "client_for", lambda args: ListApi())
    assert main(["service", "ls", "--format", "{{.Name}}/{{.Mode}}", "-f", "mode=global"]) == 0
    assert capsys.readouterr().out.split() == ["agent/global"]
    assert main(["node", "ls", "--format", "{{.Hostname}} {{.Availability}}", "--filter", "role=worker"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n4 Active"]  # Docker's PrettyPrint


class NodeRowsApi:
    def get(self, path: str, **_: Any) -> Any:
        rows = [{**n, "address": "10.0.0.1", "status": "ready"} for n in NODES]
        rows[0]["self"] = True
        rows[1]["status"] = "down"
        rows[0]["engine_version"] = "27.5.1"  # rows[1..]: not known yet (or an older daemon's view)
        return rows


def test_node_ls_format_has_dockers_manager_status_and_self(monkeypatch, capsys) -> None:
    """Docker's ``node ls --format`` fields a Swarm user types: ``ManagerStatus`` (Leader, Reachable or
    Unreachable for a manager, empty for a worker) and ``Self``; here a voter is Docker's manager."""
    monkeypatch.setattr(cli_node, "client_for", lambda args: NodeRowsApi())
    assert main(["node", "ls", "--format", "{{.Hostname}}|{{.ManagerStatus}}|{{.Self}}"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n1|Leader|true", "n2|Unreachable|false", "n4||false"]


def test_node_ls_format_has_dockers_engine_version(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_node, "client_for", lambda args: NodeRowsApi())
    assert main(["node", "ls", "--format", "{{.Hostname}}|{{.EngineVersion}}"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n1|27.5.1", "n2|", "n4|"]


def test_node_ls_table_format_heads_dockers_fields(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_node, "client_for", lambda args: NodeRowsApi())
    assert main(["node", "ls", "--format", "table {{.Hostname}}\\t{{.ManagerStatus}}"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["HOSTNAME   MANAGER STATUS", "n1         Leader"]


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["node", "ls", "--filter", "role=bogus"], "invalid role filter 'bogus' (values: manager, worker,"),
        (["node", "ls", "-f", "availability=gone"], "invalid availability filter 'gone' (values: active,"),
        (["node", "ls", "-f", "status=up"], "invalid status filter 'up' (values: joining,"),
        (["service", "ls", "-f", "mode=bogus"], "invalid mode filter 'bogus' (values: replicated, global,"),
        (["service", "ps", "-f", "desired-state=bogus", "web"], "invalid desired-state filter 'bogus'"),
        (["node", "ps", "-f", "desired-state=done", "n1"], "invalid desired-state filter 'done'"),
    ],
)
def test_a_value_a_key_cannot_take_is_refused(argv, text, monkeypatch, capsys) -> None:
    """The fourth walk: ``node ls --filter role=bogus`` listed nothing, exit 0; Docker says ``Invalid
    role filter``. Now exit 2 naming the flag and the values, before the daemon is asked."""
    from p2porch.cli import service_read as cli_service_read

    for module in (cli_service, cli_node, cli_service_read):
        monkeypatch.setattr(module, "client_for", lambda args: Unreachable())
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    assert f"argument --filter/-f: {text}" in capsys.readouterr().err


class ObjectsApi:
    """Two secrets (or configs) and two networks, as the daemon lists them."""

    def get(self, path: str, **_: Any) -> Any:
        if path == "/networks":
            return [
                {
                    "id": "n1" * 8,
                    "name": "front-net",
                    "driver": "overlay",
                    "scope": "swarm",
                    "labels": {"a": "1"},
                },
                {"id": "n2" * 8, "name": "back", "driver": "overlay", "scope": "swarm", "labels": {}},
            ]
        return [
            {"id": "aa11", "name": "db-pass", "labels": {"env": "prod"}},
            {"id": "bb22", "name": "api-key", "labels": {}},
        ]


@pytest.mark.parametrize(
    ("argv", "ids"),
    [
        (["secret", "ls", "-q", "--filter", "name=db"], ["aa11"]),
        (["config", "ls", "-q", "-f", "label=env=prod"], ["aa11"]),
        (["secret", "ls", "-q", "-f", "id=bb"], ["bb22"]),
        (["network", "ls", "-q", "-f", "name=net"], ["n1" * 8]),  # any part of the name, as Docker's
        (["network", "ls", "-q", "-f", "label=a", "-f", "driver=overlay"], ["n1" * 8]),
    ],
)
def test_secret_config_and_network_ls_take_dockers_filters(argv, ids, monkeypatch, capsys) -> None:
    """The fourth walk: ``secret ls --filter`` and ``network ls --filter`` were unrecognized arguments."""
    from p2porch.cli import network as cli_network
    from p2porch.cli import secret as cli_secret

    for module in (cli_secret, cli_network):
        monkeypatch.setattr(module, "client_for", lambda args: ObjectsApi())
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == ids


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["secret", "ls", "-f", "driver=x"], "id, name, label"),
        (["network", "ls", "-f", "dangling=true"], "id, name, driver, scope, label, type"),
    ],
)
def test_their_unknown_keys_are_refused(argv, keys, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    assert f"invalid filter '{argv[-1].split('=')[0]}' (keys: {keys})" in capsys.readouterr().err


def test_node_ls_self_is_a_bool_as_dockers(monkeypatch, capsys) -> None:
    """``{{if .Self}}`` was true on every node (the text ``false`` is not empty); ``--format json`` prints
    ``"Self":true`` as Docker's ``node ls --format json``."""
    monkeypatch.setattr(cli_node, "client_for", lambda args: NodeRowsApi())
    assert main(["node", "ls", "--format", "{{.Hostname}}{{if .Self}} *{{end}}"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n1 *", "n2", "n4"]
    assert main(["node", "ls", "--format", "json"]) == 0
    assert [json.loads(line)["Self"] for line in capsys.readouterr().out.splitlines()] == [True, False, False]


def test_the_fixed_filter_values_are_the_models() -> None:
    # spelled in cli/filters.py so that declaring --filter loads no model (issue 19): kept equal here
    from p2porch.cli.filters import FILTER_VALUES
    from p2porch.model import Availability, NodeStatus
    from p2porch.model.spec import MODES

    assert FILTER_VALUES["mode"] == MODES
    assert FILTER_VALUES["availability"] == tuple(Availability)
    assert FILTER_VALUES["status"] == tuple(NodeStatus)
