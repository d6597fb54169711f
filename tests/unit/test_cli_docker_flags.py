"""Flags a Docker Swarm user types on the first day that p2porch refused as unrecognized (exit 2) until
the second user walk: ``service create --env-file/--replicas-max-per-node``, ``service ps|stack ps
--filter/--no-trunc``, ``service|node inspect --pretty/--format``, ``service logs --since/--timestamps``
and ``node promote|demote`` (refused with the reason, exit 1, nothing sent)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from p2porch.cli import node as cli_node
from p2porch.cli import service_read as cli_service_read
from p2porch.cli import stack as cli_stack
from p2porch.cli.envfile import parse_env_lines, read_env_files
from p2porch.cli.goformat import FormatError, parse_error, render
from p2porch.cli.main import build_parser, main
from p2porch.cli.service_read import since_epoch
from p2porch.cli.service_spec_flags import spec_changes
from p2porch.cli.service_spec_flags import validated_spec as _validated
from p2porch.cli.util import UsageError

TASKS = [
    {"id": "a" * 25, "name": "web.1", "node": "n1", "node_id": "id1", "desired_state": "running",
     "state": "running", "state_at": 0, "error": "", "message": ""},
    {"id": "b" * 25, "name": "web.1", "node": "n2", "node_id": "id2", "desired_state": "shutdown",
     "state": "shutdown", "state_at": 0, "error": "", "message": "replaced"},
    {"id": "c" * 25, "name": "web.2", "node": "n2", "node_id": "id2", "desired_state": "running",
     "state": "running", "state_at": 0, "error": "", "message": ""},
]  # fmt: skip


class Api:
    def __init__(self) -> None:
        self.streamed: dict[str, Any] = {}

    def get(self, path: str, **_: Any) -> Any:
        if path.endswith("/usage"):
            return {}
        if path.endswith("/tasks"):
            return [dict(t) for t in TASKS]
        if path.startswith("/nodes/"):
            return {"id": "id2", "name": "n2", "labels": {"zone": "a"}}
        return {"id": "s1", "name": "web", "spec": {"name": "web", "env": ["A=1"], "update_status": None}}

    def stream(self, path: str, **params: Any) -> Any:
        self.streamed = params
        return iter([{"task": "web.1.x", "node": "n1", "line": "2026-12-05T09:00:00.1Z hello"}])


def test_ps_filter_desired_state_and_node_and_no_trunc(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: Api())
    assert main(["service", "ps", "--no-trunc", "--filter", "desired-state=running", "web"]) == 0
    out = capsys.readouterr().out
    assert "a" * 25 in out and "c" * 25 in out and "b" * 12 not in out
    assert main(["--json", "service", "ps", "-f", "node=n2", "-f", "desired-state=running", "web"]) == 0
    assert [t["id"][0] for t in json.loads(capsys.readouterr().out)] == ["c"]
    assert main(["service", "ps", "web"]) == 0
    assert "a" * 13 not in capsys.readouterr().out  # ids cut to 12 without --no-trunc


def test_stack_ps_takes_the_same_filters(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_stack, "client_for", lambda args: Api())
    assert main(["stack", "ps", "--filter", "desired-state=shutdown", "-q", "shop"]) == 0
    assert capsys.readouterr().out.split() == ["b" * 12]
    with pytest.raises(SystemExit) as refused:  # by argparse, before the daemon is asked
        main(["stack", "ps", "--filter", "bogus=1", "shop"])
    assert refused.value.code == 2
    assert "--filter/-f: invalid filter 'bogus'" in capsys.readouterr().err


def test_inspect_format_and_pretty(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: Api())
    monkeypatch.setattr(cli_node, "client_for", lambda args: Api())
    assert main(["service", "inspect", "--format", "{{.Spec.Name}} {{json .Spec.Env}}", "web"]) == 0
    assert capsys.readouterr().out == 'web ["A=1"]\n'
    assert main(["node", "inspect", "-f", "{{.Labels.zone}}", "n2"]) == 0
    assert capsys.readouterr().out == "a\n"
    assert main(["service", "inspect", "-f", "{{.Spec.Nope}}", "web"]) == 1  # Docker's exit code
    err = capsys.readouterr().err  # Go's execution error, as Docker prints it, with the fields there are
    assert (
        '--format: template parsing error: template: :1:2: executing "" at <.Spec.Nope>: '
        "can't evaluate field Nope in type view.Spec" in err
    )
    assert "(fields: Env, Name, UpdateStatus)" in err


def test_go_templates_over_the_json_view() -> None:
    """The whole language (model/gotemplate.py): ``range``, ``index``, pipelines were usage errors."""
    data = {"id": "x1", "spec": {"update_status": None, "replicas": 3, "read_only": True}}
    assert render("{{.ID}}/{{.Spec.Replicas}}/{{ .Spec.ReadOnly }}", data) == "x1/3/true"
    assert render("{{.Spec.UpdateStatus}}", data) == "<no value>"
    assert json.loads(render("{{json .}}", data)) == data
    assert render("{{range $k, $v := .Spec}}{{$k}}={{$v}} {{end}}", data) == (
        "read_only=true replicas=3 update_status=<no value> "
    )
    assert render("{{.Spec | json}}", data) == json.dumps(data["spec"], sort_keys=True, separators=(",", ":"))
    assert render('{{index .Spec "replicas"}} {{if gt .Spec.Replicas 2}}many{{end}}', data) == "3 many"
    for bad in ("{{range .ID}}{{end}}", "{{index .Spec 1 2}}", "{{.Spec | upper}}"):
        with pytest.raises(FormatError) as failed:  # runs, then fails: exit 1, as Docker's
            render(bad, data)
        assert failed.value.field == "--format"
    with pytest.raises(UsageError) as caught:  # does not parse: exit 2
        render("{{if}}", data)
    assert caught.value.field == "--format"


def test_logs_since_and_timestamps_go_to_the_daemon(monkeypatch, capsys) -> None:
    api = Api()
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: api)
    assert main(["service", "logs", "--since", "2026-12-05T09:00:00Z", "-t", "web"]) == 0
    assert api.streamed["timestamps"] == "true"
    expected = datetime.datetime(2026, 12, 5, 9, tzinfo=datetime.UTC).timestamp()
    assert float(api.streamed["since"]) == expected
    assert main(["service", "logs", "--since", "yesterday", "web"]) == 2
    assert "--since: 'yesterday' is neither a duration" in capsys.readouterr().err


def test_since_reads_durations_dates_and_unix_seconds() -> None:
    assert since_epoch("10m", now=1000.0) == 400.0
    assert since_epoch("1h30m", now=10000.0) == 4600.0
    assert since_epoch("1700000000") == 1700000000.0
    assert since_epoch("2026-12-05") == datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC).timestamp()


def test_env_file_as_docker_reads_it(tmp_path) -> None:
    lines = ["\ufeffA=1\n", "# comment\n", "\n", "  B=two words = x\n", "HOME_ONLY\n", "UNSET\n", 'Q="q"\n']
    assert parse_env_lines(lines, "f", {"HOME_ONLY": "h"}) == [
        "A=1", "B=two words = x", "HOME_ONLY=h", 'Q="q"',
    ]  # fmt: skip
    with pytest.raises(UsageError, match=r"f:1: variable 'BAD KEY'"):
        parse_env_lines(["BAD KEY=1"], "f", {})
    with pytest.raises(UsageError, match="--env-file: cannot read /nonexistent/app.env"):
        read_env_files(["/nonexistent/app.env"], {})


def test_env_files_then_env_one_entry_a_key_and_the_docker_spelling_of_max_per_node(tmp_path) -> None:
    env = tmp_path / "app.env"
    env.write_text("A=from-file\nB=2\nC=3\n")
    later = tmp_path / "later.env"
    later.write_text("C=later\n")
    argv = ["service", "create", "--name", "web", "--env-file", str(env), "--env-file", str(later),
            "-e", "A=flag", "--replicas-max-per-node", "2", "img"]  # fmt: skip
    changes = spec_changes(build_parser("service").parse_args(argv))
    assert changes["env"] == ["B=2", "C=later", "A=flag"]  # one entry a key: the spec refuses doubles
    assert _validated(changes)["env"] == {"A": "flag", "B": "2", "C": "later"}
    assert changes["max_replicas_per_node"] == 2


def test_env_file_missing_is_exit_2_naming_the_flag(capsys) -> None:
    assert main(["service", "create", "--name", "web", "--env-file", "/nonexistent/x.env", "img"]) == 2
    assert capsys.readouterr().err.startswith("p2porch: error: --env-file: cannot read /nonexistent/x.env")


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["node", "promote", "n2"], "promote"),
        (["node", "demote", "n2"], "demote"),
        (["node", "update", "--role", "manager", "n2"], "update --role manager"),  # the third walk
    ],
)
def test_node_promote_and_demote_are_refused_with_the_reason(argv, verb, monkeypatch, capsys) -> None:
    reads: list[str] = []

    class Reads:  # the node is looked up (an unknown one: `No such node`); nothing is written
        def get(self, path: str) -> Any:
            reads.append(path)
            return {"name": "n2"}

    monkeypatch.setattr(cli_node, "client_for", lambda args: Reads())
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"node {verb}: p2porch chooses its Raft voters itself" in err and "Nothing was changed" in err
    assert reads == ["/nodes/n2"]


def test_the_logs_and_events_routes_take_times_as_unix_seconds_only() -> None:
    from p2porch.control.routes import _epoch
    from p2porch.errors import ConfigError

    assert _epoch(None, "--since") is None and _epoch("", "--since") is None
    assert _epoch("1796464189.5", "--since") == 1796464189.5
    for bad in ("10m", "nan", "inf", "-1"):
        for flag in ("--since", "--until"):
            with pytest.raises(ConfigError) as caught:
                _epoch(bad, flag)
            assert caught.value.field == flag


class Writes:
    """Answers writes with the daemon's views."""

    def post(self, path: str, body: Any = None) -> Any:
        if path.startswith("/nodes/"):
            return {"id": "id2", "name": "n2", "labels": {"zone": "a"}}
        return {"id": "0123456789abcdef", "name": body["name"], "version": 1, "services": []}


@pytest.mark.parametrize(
    ("module", "argv", "text"),
    [
        ("secret", ["secret", "create", "pw", "FILE"], "0123456789abcdef"),
        ("secret", ["config", "create", "app.conf", "FILE"], "0123456789abcdef"),
        ("network", ["network", "create", "backend"], "0123456789abcdef"),
        ("node", ["node", "update", "--label-add", "zone=a", "n2"], "n2"),
    ],
)
def test_create_and_node_update_print_what_docker_prints(module, argv, text, monkeypatch, capsys, tmp_path):
    """`secret|config|network create` print the new id and `node update` the node, as Docker's
    (`ID=$(p2porch secret create pw -)` works); --json still gives the whole view."""
    import importlib

    value = tmp_path / "v"
    value.write_text("s3cret")
    argv = [str(value) if a == "FILE" else a for a in argv]
    monkeypatch.setattr(importlib.import_module(f"p2porch.cli.{module}"), "client_for", lambda args: Writes())
    assert main(argv) == 0
    assert capsys.readouterr().out == text + "\n"
    assert main(["--json", *argv]) == 0
    assert json.loads(capsys.readouterr().out)["id"] in ("0123456789abcdef", "id2")


def test_group_and_dns_option_are_docker_flags_of_create_and_update(capsys) -> None:
    argv = ["service", "create", "--name", "web", "--group", "2001", "--group", "audio",
            "--dns-option", "ndots:3", "img"]  # fmt: skip
    changes = spec_changes(build_parser("service").parse_args(argv))
    assert changes["container"] == {"groups": ["2001", "audio"], "dns_options": ["ndots:3"]}
    update = spec_changes(
        build_parser("service").parse_args(["service", "update", "--dns-option", "rotate", "web"])
    )
    assert update["container"] == {"dns_options": ["rotate"]}
    assert main(["service", "create", "--name", "web", "--dns-option", "bad opt", "img"]) == 2
    assert "--dns-option" in capsys.readouterr().err


def test_label_is_the_service_label_and_container_label_the_containers_as_in_swarm() -> None:
    """The third user walk: ``service create --label tier=front`` then ``service ls --filter label=tier``
    listed nothing, since ``--label`` set container labels; Swarm's ``--label`` labels the service and
    ``--container-label`` its containers (``--service-label`` stays a synonym of ``--label``)."""
    argv = ["service", "create", "--name", "web", "--label", "tier=front", "--service-label", "team=a",
            "--container-label", "log=json", "img"]  # fmt: skip
    changes = spec_changes(build_parser("service").parse_args(argv))
    assert changes["service_labels"] == ["tier=front", "team=a"]
    assert changes["labels"] == ["log=json"]


def test_dash_l_is_create_s_short_label_as_docker_s() -> None:
    """The h44 walk: ``docker service create -l tier=front`` (Docker's short ``--label``) was an
    unrecognized argument; Docker's ``service update`` has no ``-l`` (it has ``--label-add``): neither
    here."""
    argv = ["service", "create", "--name", "web", "-l", "tier=front", "img"]
    assert spec_changes(build_parser("service").parse_args(argv))["service_labels"] == ["tier=front"]
    with pytest.raises(SystemExit) as refused:
        build_parser("service").parse_args(["service", "update", "-l", "tier=back", "web"])
    assert refused.value.code == 2


def test_list_format_renders_each_row_by_docker_names(monkeypatch, capsys) -> None:
    """The third user walk: ``service ps --format '{{.Node}}'`` was an unrecognized argument; the lists
    take Docker's ``--format`` over their columns (``-f`` stays ``--filter``)."""
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: Api())
    template = "{{.Name}}\\t{{.Node}} {{.DesiredState}} {{.Error}}"
    assert main(["service", "ps", "--format", template, "-f", "desired-state=running", "web"]) == 0
    # {{.DesiredState}} as Docker's (PrettyPrint: Running); the table's column stays `running`
    assert capsys.readouterr().out.splitlines() == ["web.1\tn1 Running ", "web.2\tn2 Running "]
    assert main(["service", "ps", "--format", "{{.CurrentState}}", "--filter", "name=web.2", "web"]) == 0
    assert capsys.readouterr().out.strip() == "Running less than a second ago"  # Docker's; no time known
    # no task row has such a field: refused while parsing, exit 1 as Docker's, naming Docker's fields
    assert main(["service", "ps", "--format", "{{.Nope}}", "web"]) == 1
    assert 'executing "" at <.Nope>: can\'t evaluate field Nope in type row (fields: ' in (
        capsys.readouterr().err
    )
    assert main(["service", "ps", "--format", "table {{.Name}}\\t{{.DesiredState}}", "web"]) == 0
    assert capsys.readouterr().out.splitlines() == [  # docker/cli's table indents a slot's history
        "NAME        DESIRED STATE",
        "web.1       Running",
        " \\_ web.1   Shutdown",
        "web.2       Running",
    ]
    assert main(["service", "ps", "--format", "{{.Name}} {{.DesiredState}}", "web"]) == 0
    assert capsys.readouterr().out.splitlines() == ["web.1 Running", "web.1 Shutdown", "web.2 Running"]


@pytest.mark.parametrize(
    "argv",
    [
        ["service", "create", "--with-registry-auth", "--name", "web", "img"],
        ["service", "update", "--with-registry-auth", "web"],
    ],
)
def test_with_registry_auth_is_refused_with_the_reason(argv, capsys) -> None:
    """A Swarm user types ``--with-registry-auth`` out of habit: refused (exit 2) saying where the nodes'
    credentials come from, not "unrecognized arguments"."""
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    assert "--with-registry-auth: p2porch sends no credentials from the CLI" in capsys.readouterr().err


SERVICE_VIEW = {
    "id": "6ecb9128ea55c95a",
    "name": "web",
    "version": 12,
    "created_at": 1796461200.5,
    "updated_at": 1796461260.0,
    "spec": {
        "name": "web",
        "image": "busybox:1",
        "entrypoint": ["/bin/sh"],
        "command": ["-c", "sleep 1d"],
        "env": {"A": "1", "B": "two words"},
        "labels": {"c": "1"},
        "service_labels": {"tier": "front"},
        "mode": "replicated",
        "replicas": 3,
        "publish": [{"target": 80, "published": 8080, "protocol": "tcp"},
                    {"target": 53, "published": 5353, "protocol": "udp", "mode": "host"}],
    },
}  # fmt: skip


class ServiceApi(Api):
    def get(self, path: str, **kw: Any) -> Any:
        return json.loads(json.dumps(SERVICE_VIEW)) if path == "/services/web" else super().get(path, **kw)


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("{{.Spec.TaskTemplate.ContainerSpec.Env}}", "[A=1 B=two words]"),
        ("{{json .Spec.TaskTemplate.ContainerSpec.Env}}", '["A=1","B=two words"]'),
        ("{{.Spec.TaskTemplate.ContainerSpec.Image}}", "busybox:1"),
        ("{{.Spec.TaskTemplate.ContainerSpec.Args}}", "[-c sleep 1d]"),
        ("{{.Spec.TaskTemplate.ContainerSpec.Command}}", "[/bin/sh]"),
        ("{{.Spec.TaskTemplate.ContainerSpec.Labels}}", "map[c:1]"),
        ("{{.Spec.Labels}}", "map[tier:front]"),  # Docker's: the service's labels (--label)
        ("{{json .Spec.Labels}}", '{"tier":"front"}'),
        ("{{.Spec.Name}} {{.ID}}", "web 6ecb9128ea55c95a"),
        ("{{.Spec.Mode.Replicated.Replicas}}", "3"),
        ("{{.Version.Index}}", "12"),
        ("{{.CreatedAt}}", "2026-12-05 09:00:00.5 +0000 UTC"),
        ("{{json .CreatedAt}}", '"2026-12-05T09:00:00.5Z"'),
        ("{{.UpdatedAt}}", "2026-12-05 09:01:00 +0000 UTC"),
        ("{{.Endpoint.Ports}}", "[{ tcp 80 8080 ingress} { udp 53 5353 host}]"),
        ("{{.Spec.Env}}", '{"A": "1", "B": "two words"}'),  # p2porch's own paths are unchanged
        ("{{.Version}}", "12"),
    ],
)
def test_service_inspect_format_reads_dockers_paths(monkeypatch, capsys, template: str, printed: str) -> None:
    """The fourth user walk: Docker's format strings, pasted, failed with exit 2 (p2porch's view has no
    ``TaskTemplate``); the common paths of Docker's service JSON give Docker's values, as Go prints them."""
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: ServiceApi())
    assert main(["service", "inspect", "--format", template, "web"]) == 0
    assert capsys.readouterr().out == printed + "\n"


def test_docker_json_of_ports_and_unknown_docker_paths(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: ServiceApi())
    assert main(["service", "inspect", "-f", "{{json .Endpoint.Ports}}", "web"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first == {  # swarm.PortConfig's JSON: an empty Name is omitted (omitempty), as Docker's
        "Protocol": "tcp",
        "TargetPort": 80,
        "PublishedPort": 8080,
        "PublishMode": "ingress",
    }
    for unknown in ("{{.Spec.TaskTemplate.Nope}}", "{{.Endpoint.VirtualIPs}}", "{{.Spec.UpdateConfig.Nope}}"):
        assert main(["service", "inspect", "--format", unknown, "web"]) == 1
        assert "p2porch: error: --format: template parsing error: " in capsys.readouterr().err
    SERVICE_VIEW["spec"]["mode"] = "global"  # type: ignore[index]
    try:
        assert main(["service", "inspect", "--format", "{{.Spec.Mode.Replicated.Replicas}}", "web"]) == 2
        assert "--format: .Spec.Mode.Replicated: web is a global service" in capsys.readouterr().err
    finally:
        SERVICE_VIEW["spec"]["mode"] = "replicated"  # type: ignore[index]


@pytest.mark.parametrize(
    "command",
    [
        ["service", "ls"],
        ["service", "ps", "web"],
        ["stack", "ls"],
        ["stack", "services", "shop"],
        ["stack", "ps", "shop"],
        ["node", "ls"],
        ["node", "ps"],
        ["network", "ls"],
        ["secret", "ls"],
        ["config", "ls"],
    ],
)
def test_a_bad_list_format_is_refused_before_any_daemon_is_asked(command, monkeypatch, capsys) -> None:
    """The fourth user walk: ``service ls --format '{{.Nope'`` asked the daemon first (exit 1 without
    one); a template that does not parse is a usage error naming ``--format`` and Go's error, one that
    names a field no row has is Docker's ``template parsing error`` (exit 1, as Docker's) naming the
    fields by their public names, both with no daemon at all."""
    monkeypatch.setenv("P2PORCH_HOST", "unix:///nonexistent/p2porch.sock")
    with pytest.raises(SystemExit) as refused:
        main([*command, "--format", "{{.Name}} {{.Nope"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --format: template parsing error: template: :1: unclosed action" in err
    assert "cannot reach" not in err
    assert main([*command, "--format", "table {{.Name}}\t{{.Nope}}"]) == 1
    err = capsys.readouterr().err
    assert (
        '--format: template parsing error: template: :1:12: executing "" at <.Nope>: '
        "can't evaluate field Nope in type row" in err
    )
    fields = err.split("(fields: ", 1)[1].split(")", 1)[0].split(", ")  # public names, not p2porch's keys
    assert "Name" in fields and all(f[0].isupper() for f in fields) and "cannot reach" not in err


def test_parse_error_finds_only_an_unclosed_action() -> None:
    assert parse_error("{{.Name}} and {{json .Spec}}") is None
    assert parse_error("no action }} at all") is None
    assert parse_error("{{.Name}}\n{{.Nope") == "template: :2: unclosed action"
    assert parse_error("{{.Name}") == "template: :1: unclosed action"


@pytest.mark.parametrize("argv", [["node", "rm", "-f", "n3"], ["leave", "-f"]])
def test_dash_f_is_force_of_node_rm_and_leave_as_docker_s(argv) -> None:
    """The h44 walk: ``docker node rm -f n3`` and ``docker swarm leave -f`` were unrecognized arguments."""
    assert build_parser(argv[0]).parse_args(argv).force is True
