"""``service update --args`` in Docker's form, one shell-words string then SERVICE (``docker service update
--args "sh -c 'exit 1'" web``): ``--args`` took every word after it, so SERVICE was missing (exit 2,
"required: SERVICE") for the walk's broken-command update. ``--args`` is one value, as Docker's, before or
after SERVICE."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main


class Api:
    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []

    def post(self, path: str, body: dict[str, Any], **_: Any) -> Any:
        self.posted.append((path, body))
        return {"name": "web", "changed": []}


@pytest.mark.parametrize(
    "argv",
    [
        ["--args", "sh -c 'exit 1'", "web"],  # Docker's
        ["web", "--args", "sh -c 'exit 1'"],  # SERVICE first
        ["--update-failure-action", "rollback", "--args", "sh -c 'exit 1'", "web"],
    ],
)
def test_update_args_in_either_form(monkeypatch, argv) -> None:
    api = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    assert main(["service", "update", "-d", *argv]) == 0
    ((path, body),) = api.posted
    assert path == "/services/web/update"
    assert body["command"] == ["sh", "-c", "exit 1"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--args", "sleep", "100", "web"], "unrecognized arguments: web"),  # --args is one word
        (["--args", "sh -c 'x", "web"], "No closing quotation"),
        (["--image", "img"], "required: SERVICE"),
    ],
)
def test_no_service_is_a_usage_error_naming_it(monkeypatch, capsys, argv, words) -> None:
    api = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["service", "update", "-d", *argv])
    assert exited.value.code == 2
    assert words in capsys.readouterr().err and not api.posted
