"""Docker's secrets, configs and networking pages and the `docker network|node|stack` reference examples
typed with `p2porch` for `docker` (h46tut's walk on a 3-node sandbox, see its report): each command that
failed on main (8105df2) and how it reads now. On main: `stack deploy --compose-file -` ("-c -: cannot read
the Compose file: No such file or directory"), `network ls --filter type=custom` and `stack services
--filter ID=...` ("invalid filter"), `network prune` ("invalid choice"), `network create --opt encrypted`
(refused without a word about encryption)."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from p2porch.cli import network as cli_network
from p2porch.cli import stack as cli_stack
from p2porch.cli.main import main
from p2porch.errors import ConfigError, NotFoundError
from p2porch.stack.source import stack_source

NETWORKS = [
    {"id": "aa" * 8, "name": "p2porch", "builtin": True, "services": ["db"], "labels": {}},
    {"id": "bb" * 8, "name": "nginx-net", "builtin": False, "services": [], "labels": {"usage": "prod"}},
    {"id": "cc" * 8, "name": "test-net", "builtin": False, "services": [], "labels": {}},
    {"id": "dd" * 8, "name": "mysql_private", "builtin": False, "services": ["mysql"], "labels": {}},
]


class Api:
    """The control API as the CLI sees it: the networks above, and what was deleted."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        return [dict(n, driver="overlay", scope="cluster", internal=False) for n in NETWORKS]

    def delete(self, path: str) -> Any:
        if path.endswith("/ingress"):
            raise NotFoundError("no network 'ingress'", field="NAME")
        self.deleted.append(path)
        return {"removed": path.rsplit("/", 1)[-1]}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api()
    monkeypatch.setattr(cli_network, "client_for", lambda args, **_: fake)
    monkeypatch.setattr("p2porch.cli.util.client_for", lambda args, **_: fake)
    return fake


@pytest.mark.parametrize(
    ("value", "names"),
    [("custom", ["nginx-net", "test-net", "mysql_private"]), ("builtin", ["p2porch"])],
)
def test_network_ls_filters_by_dockers_network_type(api, capsys, value, names):
    assert main(["network", "ls", "--filter", f"type={value}", "--format", "{{.Name}}"]) == 0
    assert capsys.readouterr().out.split() == names


def test_network_ls_scope_swarm_is_every_network_of_the_cluster(api, capsys):
    assert main(["network", "ls", "--filter", "scope=swarm", "-q", "--no-trunc"]) == 0
    assert len(capsys.readouterr().out.split()) == len(NETWORKS)
    assert main(["network", "ls", "--filter", "scope=local", "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_swarms_ingress_network_missing_is_said_to_be_built_in(monkeypatch, capsys):
    class Ingress(Api):
        def get(self, path: str, **_: Any) -> Any:
            raise NotFoundError("no network 'ingress'", field="NAME")

    fake = Ingress()
    monkeypatch.setattr(cli_network, "client_for", lambda args, **_: fake)
    monkeypatch.setattr("p2porch.cli.util.client_for", lambda args, **_: fake)
    assert main(["network", "rm", "ingress"]) == 1
    assert "no network 'ingress': p2porch has no ingress network: the routing mesh is built in" in (
        capsys.readouterr().err
    )
    assert main(["network", "inspect", "ingress"]) == 1
    assert "the routing mesh is built in" in capsys.readouterr().err


@pytest.mark.parametrize("noun", ["node", "service", "secret", "config"])
def test_inspect_format_pretty_is_dockers_pretty_the_text(noun):
    from p2porch.cli.main import build_parser

    args = build_parser(noun).parse_args([noun, "inspect", "--format=pretty", "self"])
    assert args.format is None  # the text, as --pretty (and the default)
    assert build_parser(noun).parse_args([noun, "inspect", "-f", "{{.ID}}", "x"]).format == "{{.ID}}"


def exit_code(argv: list[str]) -> Any:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_a_network_type_outside_custom_and_builtin_is_exit_2_naming_the_values(capsys):
    assert exit_code(["network", "ls", "--filter", "type=service"]) == 2
    assert "invalid type filter 'service' (values: custom, builtin)" in capsys.readouterr().err


ROW = {"mode": "replicated", "running": 1, "desired": 1, "image": "nginx", "pending": [], "spec": {}}
STACK_SERVICES = [
    {**ROW, "id": "7be5ei6sqeye0000", "name": "myapp-web"},
    {**ROW, "id": "dn7m7nhhfb9y0000", "name": "myapp-db"},
    {**ROW, "id": "0zmvwuiu3vue0000", "name": "myapp-cache"},
]
TASK = {"desired_state": "running", "state": "running", "state_at": 0.0, "error": "", "message": ""}
STACK_TASKS = [
    {**TASK, "id": "w48spazhbmxc", "name": "voting-redis.1", "node": "node2"},
    {**TASK, "id": "t72q3z038jeh", "name": "voting-redis.2", "node": "node3"},
    {**TASK, "id": "tz6j82jnwrx7", "name": "voting-db.1", "node": "node1"},
]


class StackApi:
    def get(self, path: str, **_: Any) -> Any:
        return STACK_SERVICES if path.endswith("/services") else STACK_TASKS


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["--filter", "ID=7be5ei6sqeye"], ["myapp-web"]),  # Docker's other spelling of `id`
        (["--filter", "name=myapp_web", "--filter", "name=myapp_db"], ["myapp-web", "myapp-db"]),  # Swarm's
        (["--filter", "name=myapp-db"], ["myapp-db"]),
    ],
)
def test_stack_services_takes_dockers_filters_as_the_reference_types_them(monkeypatch, capsys, argv, shown):
    monkeypatch.setattr(cli_stack, "client_for", lambda args, **_: StackApi())
    assert main(["stack", "services", *argv, "--format", "{{.Name}}", "myapp"]) == 0
    assert capsys.readouterr().out.split() == shown


def test_stack_ps_reads_a_swarm_task_name_filter_as_the_stacks_service(monkeypatch, capsys):
    monkeypatch.setattr(cli_stack, "client_for", lambda args, **_: StackApi())
    assert main(["stack", "ps", "-f", "name=voting_redis", "--format", "{{.Name}}", "voting"]) == 0
    assert capsys.readouterr().out.split() == ["voting-redis.1", "voting-redis.2"]
    assert main(["stack", "ps", "-f", "name=other_redis", "--format", "{{.Name}}", "voting"]) == 0
    assert capsys.readouterr().out == ""  # another stack's prefix is left as typed


def test_network_prune_removes_the_custom_networks_no_service_uses_after_asking(api, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["network", "prune"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("WARNING! This will remove all custom networks not used by at least one service.")
    assert out.endswith("[y/N] Deleted Networks:\nnginx-net\ntest-net\n")
    assert api.deleted == ["/networks/nginx-net", "/networks/test-net"]  # not the built-in one, nor used ones


def test_network_prune_answered_no_removes_nothing(api, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["network", "prune"]) == 0
    assert api.deleted == [] and "Deleted Networks" not in capsys.readouterr().out


def test_network_prune_force_asks_nothing_and_takes_a_label_filter(api, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["network", "prune", "-f", "--filter", "label=usage=prod"]) == 0
    assert capsys.readouterr().out == "Deleted Networks:\nnginx-net\n"
    assert api.deleted == ["/networks/nginx-net"]


def test_network_prune_refuses_dockers_until_filter_naming_the_keys(capsys):
    assert exit_code(["network", "prune", "-f", "--filter", "until=5m"]) == 2
    assert "invalid filter 'until' (keys: label)" in capsys.readouterr().err


def test_opt_encrypted_is_refused_saying_the_overlay_is_not_encrypted(capsys):
    assert exit_code(["network", "create", "--opt", "encrypted", "--driver", "overlay", "my-network"]) == 2
    err = capsys.readouterr().err
    assert "--opt:" in err and "`encrypted` neither" in err and "VXLAN in the clear" in err


COMPOSE = b"services:\n  web:\n    image: nginx:latest\n    env_file: web.env\n"


def test_compose_file_dash_reads_standard_input_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web.env").write_text("A=1\n")
    definition = stack_source(["-"], environ={}, stdin=io.BytesIO(COMPOSE)).load("vossibility")
    (service,) = definition.services
    assert service.spec["image"] == "nginx:latest" and service.spec["env"] == {"A": "1"}
    assert os.getcwd() == str(tmp_path)


def test_compose_file_dash_merges_with_files_and_is_read_once(tmp_path):
    override = tmp_path / "prod.yml"
    override.write_text("services:\n  web:\n    deploy:\n      replicas: 2\n")
    stdin = io.BytesIO(b"services:\n  web:\n    image: nginx:latest\n")
    (service,) = stack_source(["-", str(override)], environ={}, stdin=stdin).load("v").services
    assert service.spec["replicas"] == 2
    with pytest.raises(ConfigError, match="standard input can be given once") as info:
        stack_source(["-", "-"], environ={}, stdin=io.BytesIO(COMPOSE))
    assert info.value.field == "-c"


def test_stack_config_reads_the_compose_file_from_stdin(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"services:\n  web:\n    image: nginx\n")))
    assert main(["stack", "config", "--compose-file", "-", "vossibility"]) == 0
    assert "image: nginx" in capsys.readouterr().out


class MissingApi(Api):
    def delete(self, path: str) -> Any:
        if path.endswith("/nope"):
            raise NotFoundError("no network 'nope'", field="NAME")
        return super().delete(path)


def test_network_rm_force_takes_a_missing_network_as_no_error(monkeypatch, capsys):
    fake = MissingApi()
    monkeypatch.setattr("p2porch.cli.util.client_for", lambda args, **_: fake)
    assert main(["network", "rm", "--force", "nope", "test-net"]) == 0
    assert capsys.readouterr() == ("test-net\n", "")
    assert main(["network", "rm", "nope"]) == 1  # without --force, as Docker's: an error
    assert "no network 'nope'" in capsys.readouterr().err


def test_network_inspect_verbose_is_taken_as_dockers_and_changes_nothing():
    from p2porch.cli.main import build_parser

    args = build_parser("network").parse_args(["network", "inspect", "-v", "my-network"])
    assert args.names == ["my-network"] and not hasattr(args, "verbose")


def test_node_ps_filters_by_label_as_dockers_the_labels_of_each_tasks_service(monkeypatch, capsys):
    from p2porch.cli import node as cli_node

    tasks = [
        {
            **TASK,
            "id": "b465edgho06e",
            "name": "redis.6",
            "node": "swarm-manager1",
            "service_labels": {"usage": "x"},
        },
        {**TASK, "id": "bg8c07zzg87d", "name": "web.1", "node": "swarm-manager1", "service_labels": {}},
    ]
    monkeypatch.setattr(
        cli_node, "client_for", lambda args, **_: type("C", (), {"get": lambda *a, **k: tasks})()
    )
    assert main(["node", "ps", "-f", "label=usage", "--format", "{{.Name}}"]) == 0
    assert capsys.readouterr().out.split() == ["redis.6"]
    assert main(["node", "ps", "-f", "label=usage=y", "--format", "{{.Name}}"]) == 0
    assert capsys.readouterr().out == ""
    assert (
        exit_code(["service", "ps", "-f", "label=usage", "web"]) == 2
    )  # Docker's service ps has no label filter
