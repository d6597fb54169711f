"""`service create --secret nosuch` (and `--config`, `--network`; `--secret-add`/`--network-add` on
update) is refused as not found, exit 1, as Docker's `secret not found: nosuch`, and the message names
the flag that named the missing object (it used to say only `secret 'nosuch' not found`)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main
from p2porch.errors import NotFoundError


class Api:
    """Refuses every write as the daemon does a spec naming a missing object of ``field``."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        self.bodies: list[dict[str, Any]] = []

    def post(self, path: str, body: Any = None) -> Any:
        self.bodies.append(body)
        raise NotFoundError(self.message, field=self.field)

    def get(self, path: str) -> Any:
        raise AssertionError(f"unexpected GET {path}")


@pytest.mark.parametrize(
    ("argv", "field", "message", "flag"),
    [
        (["--secret", "nosuch"], "secrets", "secret 'nosuch' not found: create it first", "--secret"),
        (["--config", "nosuch"], "configs", "config 'nosuch' not found: create it first", "--config"),
        (["--network", "nosuch"], "networks", "network 'nosuch' not found: create it first", "--network"),
    ],
)
def test_create_names_the_flag_of_a_missing_object(argv, field, message, flag, monkeypatch, capsys):
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: Api(field, message))
    code = main(["service", "create", "--name", "web", "-d", *argv, "p2porch/busybox:latest"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"p2porch: error: {flag}: {message}\n"


@pytest.mark.parametrize(
    ("argv", "field", "flag"),
    [
        (["--secret-add", "nosuch"], "secrets", "--secret-add"),
        (["--network-add", "nosuch"], "networks", "--network-add"),
        (["--config-add", "nosuch"], "configs", "--config-add"),
    ],
)
def test_update_names_the_add_flag(argv, field, flag, monkeypatch, capsys):
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: Api(field, "x 'nosuch' not found"))
    assert main(["service", "update", "-d", *argv, "web"]) == 1
    assert capsys.readouterr().err == f"p2porch: error: {flag}: x 'nosuch' not found\n"


def test_other_not_found_errors_are_unchanged(monkeypatch, capsys):
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: Api("service", "no service 'web'"))
    assert main(["service", "update", "-d", "--replicas", "2", "web"]) == 1
    assert capsys.readouterr().err == "p2porch: error: no service 'web'\n"
