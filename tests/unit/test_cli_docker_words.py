"""docker/cli's own words where its command writes them whatever the daemon said (``service inspect|ps|
logs|scale`` of a missing service), and a list's or inspect's ``--format`` error that no longer pre-empts
argparse nor stops the other names (the h50 review of the CLI output contracts)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli import service_read
from p2porch.cli.main import main
from p2porch.cli.util import error_line
from p2porch.errors import NotFoundError, no_such


class _Daemon:
    """Knows service ``web`` (one task) and ``db`` (``extra`` in its view); answers any other name as the
    real daemon does (``errors.no_such``)."""

    def _service(self, name: str) -> dict[str, Any]:
        if name not in ("web", "db"):
            raise no_such("service", name, field="SERVICE")
        view = {"id": f"id-{name}", "name": name, "mode": "replicated", "spec": {"name": name}}
        return view | ({"extra": "x"} if name == "db" else {})

    def get(self, path: str, **_: Any) -> Any:
        parts = path.strip("/").split("/")  # services NAME [tasks|usage]
        service = self._service(parts[1])
        if parts[2:] == ["tasks"]:
            return [{"id": f"task-of-{parts[1]}-0123456789", "name": f"{parts[1]}.1"}]
        return {} if parts[2:] else service

    def post(self, path: str, body: Any = None) -> Any:
        return self._service(path.strip("/").split("/")[1]) | {"replicas": (body or {}).get("replicas")}

    def stream(self, path: str, **_: Any) -> Any:
        name = path.strip("/").split("/")[1]
        raise no_such("task or service", name, field="SERVICE")
        yield  # a generator, as the client's stream


@pytest.fixture
def daemon(monkeypatch) -> _Daemon:
    api = _Daemon()
    for module in (service_read, cli_service):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: api)
    return api


def test_service_commands_say_a_missing_service_in_docker_clis_own_words(daemon, capsys) -> None:
    """docker/cli's inspect.go, ps.go, logs.go and scale.go: printed as they are, exit 1, so that a
    script's ``grep -q 'no such service'`` finds them again."""
    said = {
        ("service", "inspect", "nosuch"): "Error: no such service: nosuch\n",
        ("service", "ps", "nosuch"): "no such service: nosuch\n",
        ("service", "logs", "nosuch"): "no such task or service: nosuch\n",
        ("service", "scale", "nosuch=2"): "nosuch: Error: No such service: nosuch\n",
    }
    for argv, text in said.items():
        assert main(list(argv)) == 1, argv
        assert capsys.readouterr() == ("", text), argv
    assert main(["service", "scale", "-d", "web=1", "nosuch=2"]) == 1  # the others scaled, as docker/cli's
    assert capsys.readouterr() == ("web scaled to 1\n", "nosuch: Error: No such service: nosuch\n")


def test_service_ps_shows_the_found_services_tasks_then_says_the_missing(daemon, capsys) -> None:
    """As docker/cli's ps.go: the tasks of those found, then one ``no such service`` line each, exit 1."""
    assert main(["service", "ps", "-q", "web", "gone", "nosuch"]) == 1
    out, err = capsys.readouterr()
    assert out == "task-of-web-\n"
    assert err == "no such service: gone\nno such service: nosuch\n"


def test_a_message_already_in_docker_clis_words_is_printed_as_it_is() -> None:
    assert error_line(NotFoundError("no such service: web")) == "no such service: web"
    assert error_line(NotFoundError("Error: no such service: web")) == "Error: no such service: web"
    assert error_line(no_such("network", "back")) == "Error: No such network: back"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["service", "ls", "--format", "{{.Nope}}", "--bogus"], 2),  # an unknown flag: argparse's exit 2
        (["service", "ps", "--format", "{{.Nope}}"], 2),  # SERVICE missing: argparse's exit 2
        (["service", "ls", "--format", "{{.Nope}}", "--help"], 0),  # docker: the help, exit 0
    ],
)
def test_a_list_format_naming_no_field_leaves_argparse_its_checks(argv, code, monkeypatch, capsys) -> None:
    monkeypatch.setenv("P2PORCH_HOST", "unix:///nonexistent/p2porch.sock")
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == code
    out, err = capsys.readouterr()
    assert "can't evaluate field" not in err
    assert ("usage:" in out) == (code == 0)


def test_a_list_format_naming_no_field_is_still_exit_1_before_any_daemon(monkeypatch, capsys) -> None:
    monkeypatch.setenv("P2PORCH_HOST", "unix:///nonexistent/p2porch.sock")
    assert main(["service", "ls", "--format", "{{.Nope}}"]) == 1
    err = capsys.readouterr().err
    assert "can't evaluate field Nope" in err and "cannot reach" not in err


def test_inspect_format_failing_for_one_name_still_shows_the_others(daemon, capsys) -> None:
    """docker/cli's inspect.Inspect collects each element's template error and carries on."""
    assert main(["service", "inspect", "--format", "{{.Extra}}", "db", "web", "db"]) == 1
    out, err = capsys.readouterr()
    assert out == "x\nx\n"
    assert err.count("\n") == 1 and "can't evaluate field Extra" in err
