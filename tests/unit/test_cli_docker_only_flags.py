"""Docker Swarm flags p2porch does not implement (``cli/refusals.py``): each is refused by the command it
was given to with the reason (exit 2, ``--FLAG: why``, nothing sent), not argparse's "unrecognized
arguments"; the few no-ops are accepted; a typo of a real flag is told the flag it is close to."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from p2porch.cli import network as cli_network
from p2porch.cli import node as cli_node
from p2porch.cli import secret as cli_secret
from p2porch.cli import service as cli_service
from p2porch.cli import service_read as cli_service_read
from p2porch.cli import stack as cli_stack
from p2porch.cli.main import build_parser, main
from p2porch.cli.refusals import DOCKER_ONLY


def _refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    return str(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["secret", "create", "-d", "vault", "s", "f"], "--driver: p2porch keeps every secret itself"),
        (
            ["network", "create", "--gateway", "10.0.0.1", "n"],
            "--gateway: p2porch allocates addresses itself",
        ),
        (["network", "create", "n", "--ip-range=10.0.0.0/24"], "--ip-range: p2porch allocates addresses"),
        (["network", "create", "--aux-address", "a=10.0.0.2", "n"], "--aux-address: p2porch allocates"),
        (["network", "create", "--ipam-driver", "default", "n"], "--ipam-driver: p2porch allocates"),
        (["network", "create", "--subnet", "10.9.0.0/24", "n"], "--subnet: p2porch allocates addresses"),
        (["network", "create", "--ipv6", "n"], "--ipv6: the overlay carries IPv4 only"),
        (["network", "create", "-o", "a=b", "n"], "--opt: p2porch networks have one driver"),
        (["network", "create", "--scope", "local", "n"], "--scope: 'local' is not one of swarm"),
        (
            ["stack", "deploy", "-c", "s.yml", "--resolve-image", "sometimes", "s"],
            "'sometimes' is not one of",
        ),
        (["service", "create", "-t", "--name", "w", "img"], "--tty: tasks run without a terminal"),
        (["service", "create", "--dns", "8.8.8.8", "img"], "--dns: each task resolves through p2porch's"),
        (["service", "create", "--isolation", "hyperv", "img"], "--isolation: a Windows-only setting"),
        (["service", "update", "--mode", "global", "web"], "--mode: a service's mode cannot be changed"),
        (
            ["service", "update", "--group-add", "wheel", "web"],
            "--group-add: not implemented: give --group with every entry",
        ),
        (["service", "update", "--host-add", "db:10.0.0.1", "web"], "replaces the whole list"),
        (["service", "logs", "--details", "web"], "--details: the extra attributes"),
    ],
)
def test_a_docker_flag_p2porch_lacks_is_refused_with_the_reason(argv, reason, monkeypatch, capsys) -> None:
    for module in (cli_service, cli_service_read, cli_stack):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: pytest.fail("nothing may be sent"))
    err = _refused(argv, capsys)
    assert reason in err and "error: --" in err and "unrecognized" not in err


def test_update_has_no_mode_flag_of_its_own() -> None:
    """``service update --mode`` was taken and sent (Docker has no such flag: the mode is fixed)."""
    update = build_parser("service")._subparsers._group_actions[0].choices["service"]  # type: ignore[union-attr]
    update = update._subparsers._group_actions[0].choices["update"]
    mode = update._option_string_actions["--mode"]
    assert mode.help == argparse.SUPPRESS and mode.dest == argparse.SUPPRESS


def test_the_no_ops_are_accepted_and_change_nothing() -> None:
    parser = build_parser()
    deploy = parser.parse_args(["stack", "deploy", "-c", "s.yml", "--resolve-image", "always", "st"])
    create = parser.parse_args(
        ["service", "create", "--no-resolve-image", "--name", "w", "img", "sleep", "1"]
    )
    network = parser.parse_args(["network", "create", "--scope", "swarm", "n"])
    assert parser.parse_args(["stack", "rm", "-d", "shop"]).stacks == ["shop"]
    assert (deploy.stack, create.image, create.cmd, network.name) == ("st", "img", ["sleep", "1"], "n")
    assert not any(
        "resolve" in key or key == "scope" for key in (*vars(deploy), *vars(create), *vars(network))
    )


def test_docker_spellings_that_are_implemented() -> None:
    parsed = build_parser().parse_args(["service", "create", "--limit-pids", "50", "--name", "w", "img"])
    assert parsed.pids_limit == "50"


def test_every_table_entry_names_a_command_and_no_implemented_flag() -> None:
    """Building every parser adds the table: a flag a command implements would clash (argparse's
    ``conflicting option string``); a command name that is not one would never be used."""
    parser = build_parser()
    commands = {
        f"{noun} {action}"
        for noun, sub in parser._subparsers._group_actions[0].choices.items()  # type: ignore[union-attr]
        if sub._subparsers is not None
        for action in sub._subparsers._group_actions[0].choices
    }
    assert set(DOCKER_ONLY) <= commands


def test_a_typo_is_told_the_close_flag_and_an_unknown_flag_is_still_unrecognized(capsys) -> None:
    err = _refused(["service", "create", "--replcas", "3", "--name", "w", "img"], capsys)
    assert "unrecognized arguments: --replcas (did you mean --replicas?)" in err
    err = _refused(["network", "create", "--frobnicate", "n"], capsys)
    assert "unrecognized arguments: --frobnicate\n" in err


def test_a_hosts_entry_given_as_dockers_service_host_names_add_host(capsys) -> None:
    assert main(["service", "create", "--host", "db:10.0.0.1", "--name", "w", "img"]) == 2
    assert "(an /etc/hosts entry of a service's tasks is --add-host HOST:IP)" in capsys.readouterr().err


NODE_ID = "nid1" * 6


class Api:
    """A daemon that answers the reads of the commands below."""

    def get(self, path: str, **_: Any) -> Any:
        if path.startswith("/objects/"):
            return {"kind": "secret", "name": "db_pw", "id": "s1d", "version": 2, "versions": [1, 2],
                    "size": 5, "digest": "x", "labels": {"a": "b"}, "created_at": 1796461200.0,
                    "updated_at": 1796461260.0}  # fmt: skip
        if path.startswith("/nodes/"):
            return {"id": "nid2", "name": "n2", "address": "10.0.0.2", "raft_role": "leader",
                    "status": "ready", "availability": "drain", "labels": {"zone": "a"},
                    "ports": {"raft": 7947}, "joined_at": 1796461200.0}  # fmt: skip
        if path == "/stacks":
            return [{"name": "shop", "services": 2, "running": 3, "desired": 3}]
        if path == "/networks":
            return [{"id": "f" * 64, "name": "front", "driver": "overlay", "scope": "cluster",
                     "internal": False, "services": []}]  # fmt: skip
        if path.startswith("/networks/"):
            return {"name": "front", "id": "n1d", "driver": "overlay", "created_at": 1796461200.0}
        if path.endswith("/tasks"):
            return [{"id": "t" * 25, "name": "web.1", "node": "n1", "node_id": NODE_ID,
                     "desired_state": "running", "state": "running", "state_at": 0, "error": "",
                     "message": ""}]  # fmt: skip
        return {"id": "s1", "name": "web", "spec": {"name": "web"}}

    def stream(self, path: str, **params: Any) -> Any:
        return iter([{"task": "web.2.abcdef123456", "node": "n1", "line": "hello"}])


@pytest.mark.parametrize(
    ("module", "argv", "printed"),
    [
        (cli_secret, ["secret", "inspect", "--format", "{{.Spec.Name}} {{.Version.Index}} {{.ID}}", "db_pw"],
         "db_pw 2 s1d\n"),
        (cli_secret, ["config", "inspect", "-f", "{{.CreatedAt}} {{json .Spec.Labels}}", "db_pw"],
         '2026-12-05 09:00:00 +0000 UTC {"a":"b"}\n'),
        (cli_network, ["network", "inspect", "-f", "{{.Name}} {{.Id}} {{.Driver}} {{.Created}}", "front"],
         "front n1d overlay 2026-12-05 09:00:00 +0000 UTC\n"),
        (cli_service_read, ["service", "logs", "--raw", "web"], "hello\n"),
        (cli_service_read, ["service", "logs", "--no-task-ids", "web"], "web.2@n1 | hello\n"),
        (cli_service_read, ["service", "logs", "web"], "web.2.abcdef123456@n1 | hello\n"),
        (cli_service_read, ["service", "ps", "--no-resolve", "--format", "{{.Node}}", "web"], f"{NODE_ID}\n"),
        (cli_service_read, ["service", "ps", "--format", "{{.Node}}", "web"], "n1\n"),
        (cli_stack, ["stack", "ls", "--format", "{{.Name}} {{.Services}} {{.Orchestrator}}"],
         "shop 2 Swarm\n"),
        (cli_stack, ["stack", "ls", "--format", "json"],
         '{"Name":"shop","Services":"2"}\n'),  # docker/cli's stack row's fields
        (cli_stack, ["stack", "ls", "--format", "table"], "NAME  SERVICES  TASKS\nshop  2         3/3\n"),
        (cli_network, ["network", "ls", "--no-trunc", "--format", "{{.ID}}"], "f" * 64 + "\n"),
        (cli_network, ["network", "ls", "--format", "{{.ID}}"], "f" * 12 + "\n"),
        (cli_secret, ["secret", "inspect", "--format", "json", "db_pw"], None),
        (cli_node, ["node", "inspect", "-f", "{{.Status.State}} {{.Spec.Availability}} {{.Spec.Role}} "
                    "{{.Description.Hostname}} {{.ManagerStatus.Leader}} {{.ManagerStatus.Addr}}", "n2"],
         "ready drain manager n2 true 10.0.0.2:7947\n"),
    ],
)  # fmt: skip
def test_dockers_read_flags(module, argv, printed, monkeypatch, capsys) -> None:
    monkeypatch.setattr(module, "client_for", lambda args, **kw: Api())
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out == printed if printed is not None else json.loads(out)["name"] == "db_pw"


def test_dockers_other_names_of_the_actions() -> None:
    """``docker service list``, ``node remove``, ``stack up/down``: the commands under Docker's aliases."""
    parser = build_parser()
    assert parser.parse_args(["service", "list"]).func is parser.parse_args(["service", "ls"]).func
    assert parser.parse_args(["node", "remove", "n3"]).func is parser.parse_args(["node", "rm", "n3"]).func
    assert parser.parse_args(["stack", "down", "shop"]).stacks == ["shop"]
    assert parser.parse_args(["stack", "up", "-c", "s.yml", "shop"]).stack == "shop"
    assert parser.parse_args(["secret", "list"]).func is parser.parse_args(["secret", "ls"]).func
