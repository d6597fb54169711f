"""``service update`` names the flag of a value the daemon refuses, as ``service create`` does (exit 2,
``--replicas: replicas: must be at least 0``); it used to print the spec field alone (``replicas: ...``)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main
from p2porch.errors import ConfigError


class Daemon:
    """Refuses the update as the daemon's spec check does."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message

    def post(self, path: str, body: Any = None) -> Any:
        raise ConfigError(self.message, field=self.field)


@pytest.mark.parametrize(
    ("argv", "field", "message", "flag"),
    [
        (["--replicas", "-1"], "replicas", "replicas: must be at least 0", "--replicas"),
        (["--limit-memory", "1Q"], "limit_memory", "limit_memory: invalid size '1Q'", "--limit-memory"),
        (["--update-delay", "-3s"], "update.delay", "update.delay: invalid duration '-3s'", "--update-delay"),
        (["--image", ""], "image", "image: must be a non-empty image reference", "--image"),
        (["--endpoint-mode", "dnsrr"], "publish[0]", "publish[0]: port 8080:80/tcp ... dnsrr", "--publish"),
    ],
)
def test_a_refused_value_is_named_by_its_flag(argv, field, message, flag, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: Daemon(field, message))
    assert main(["service", "update", "-d", *argv, "web"]) == 2
    assert capsys.readouterr().err == f"p2porch: error: {flag}: {message}\n"


def test_a_message_already_naming_its_flag_is_unchanged(monkeypatch, capsys) -> None:
    daemon = Daemon("--label-add", "--label-add: at most 64 labels")
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: daemon)
    assert main(["service", "update", "-d", "--replicas", "2", "web"]) == 2
    assert capsys.readouterr().err == "p2porch: error: --label-add: at most 64 labels\n"
