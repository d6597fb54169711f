"""`stack rm` removes the secrets and configs its deploy created, also when no service is left."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from p2porch.cli import stack as cli_stack
from p2porch.cli import util as cli_util
from p2porch.cli.main import main
from p2porch.errors import ConflictError, NotFoundError
from p2porch.stack.names import STACK_LABEL


class Objects:
    """The API as `stack rm` sees it: a stack with or without services, and labelled objects."""

    def __init__(self, services: bool) -> None:
        self.services = services
        self.objects = {
            "secret": [
                {"name": "shop-db", "labels": {STACK_LABEL: "shop"}, "services": []},
                {"name": "by-hand", "labels": {}, "services": []},
                {"name": "other-db", "labels": {STACK_LABEL: "other"}, "services": []},
            ],
            "config": [{"name": "shop-conf", "labels": {STACK_LABEL: "shop"}, "services": ["x"]}],
        }
        self.deleted: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        return list(self.objects[path.rsplit("/", 1)[1]])

    def delete(self, path: str, body: Any = None) -> Any:
        if path.startswith("/stacks/"):
            if not self.services:
                raise NotFoundError("no stack 'shop'", field="NAME")
            return {"stack": "shop", "removed": ["shop_web"], "removed_networks": []}
        self.deleted.append(path)
        return {}


@pytest.mark.parametrize("services", [True, False])
def test_stack_rm_removes_only_the_stacks_unused_objects(
    services: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Objects(services)
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    assert cli_stack.cmd_stack_rm(argparse.Namespace(stacks=["shop"], json=False)) == 0
    assert api.deleted == ["/objects/secret/shop-db"]  # not by hand, not another stack's, not in use
    assert "removed  secret shop-db" in capsys.readouterr().out


def test_stack_rm_of_an_unknown_stack_says_nothing_found_and_succeeds_as_docker_s(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``docker stack rm nope``: ``Nothing found in stack: nope`` on stderr, exit 0 (it was exit 1)."""
    api = Objects(services=False)
    api.objects = {"secret": [], "config": []}
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    assert cli_stack.cmd_stack_rm(argparse.Namespace(stacks=["shop"], json=False)) == 0
    out = capsys.readouterr()
    assert (out.err, out.out) == ("Nothing found in stack: shop\n", "")


def test_stack_rm_of_several_stacks_goes_on_past_one_that_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``docker stack rm a b``: each stack in turn (one NAME only before: exit 2 for a second)."""
    api = Objects(services=True)
    deleted: list[str] = []

    def delete(path: str, body: Any = None) -> Any:
        deleted.append(path)
        if path == "/stacks/nope":
            raise ConflictError("stack nope: its removal was refused", field="NAME")
        return {"stack": path.rsplit("/", 1)[1], "removed": [], "removed_networks": []}

    api.delete = delete  # type: ignore[method-assign]
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    assert main(["stack", "rm", "nope", "shop", "--json"]) == 1
    out = capsys.readouterr()
    assert deleted[0] == "/stacks/nope" and "/stacks/shop" in deleted
    assert "its removal was refused" in out.err and '"stack": "shop"' in out.out
