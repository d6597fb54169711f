"""`service create IMAGE` without `--name` creates the service under a generated name, as Docker makes
one up (p2porch's names are DNS labels: `adjective-noun`, no `_`); a taken name is tried again under
another; `--name` is sent as given."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import build_parser
from p2porch.cli.names import generated_name
from p2porch.cli.util import UsageError
from p2porch.errors import ConflictError
from p2porch.model import ServiceSpec

LABEL = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


class Api:
    """POST /services: a taken name is a conflict (as the daemon), any other is created."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.posted: list[str] = []

    def post(self, path: str, body: Any = None) -> Any:
        assert path == "/services"
        self.posted.append(body["name"])
        if body["name"] in self.taken:
            raise ConflictError(f"a service named {body['name']!r} already exists", field="name")
        return {"id": "abc", "name": body["name"], "version": 1}


def create(argv: list[str], api: Api, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    args = build_parser().parse_args(["service", "create", "--detach", *argv])
    return int(args.func(args))


def test_without_a_name_the_service_gets_a_generated_dns_label(monkeypatch, capsys):
    api = Api(set())
    assert create(["busybox", "sleep", "1d"], api, monkeypatch) == 0
    [name] = api.posted
    assert LABEL.match(name) and ServiceSpec(name=name, image="busybox").name == name


def test_a_taken_generated_name_is_tried_again_under_another(monkeypatch, capsys):
    rng = random.Random(3)
    taken = {generated_name(rng) for _ in range(3000)}  # most of the adjective-noun pairs
    api = Api(taken)
    assert create(["busybox"], api, monkeypatch) == 0
    assert api.posted[-1] not in taken and all(name in taken for name in api.posted[:-1])


def test_a_given_name_is_sent_as_given_and_a_conflict_is_the_users(monkeypatch, capsys):
    api = Api({"web"})
    with pytest.raises(ConflictError):
        create(["--name", "web", "busybox"], api, monkeypatch)
    assert api.posted == ["web"]


def test_generated_names_are_labels_and_end_even_when_every_pair_is_taken():
    rng = random.Random(1)
    names = [generated_name(rng, attempt) for attempt in range(8) for _ in range(200)]
    assert all(LABEL.match(name) and len(name) <= 63 for name in names)
    assert all(re.search(r"-[0-9a-f]{4}$", generated_name(rng, attempt)) for attempt in range(2, 8))


def test_an_empty_name_is_refused_not_replaced(monkeypatch, capsys):
    api = Api(set())
    with pytest.raises(UsageError) as err:
        create(["--name", "", "busybox"], api, monkeypatch)
    assert err.value.field == "--name" and api.posted == []
