"""`stack rm` of a stack whose own network another stack's service still uses (the h51 journey: stack
``a`` names ``shared_public``, stack ``b`` attaches to it as external): the network stays, as it must, and
the answer names it with its users; it was kept silently, and no later ``stack rm`` removes it."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from p2porch.cli import stack as cli_stack
from p2porch.cli import util as cli_util
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.stack import load_stack
from p2porch.stack.names import STACK_LABEL
from p2porch.testing.memstore import MemoryManager

A = """
services:
  api:
    image: p2porch/busybox:latest
    networks: [public, private]
networks:
  public:
    name: shared_public
  private:
    internal: true
"""
B = """
services:
  front:
    image: p2porch/busybox:latest
    networks: [public]
networks:
  public:
    external: true
    name: shared_public
"""


async def test_stack_rm_names_its_network_another_stack_still_uses() -> None:
    manager = MemoryManager()
    ops = StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]
    for stack, text in (("a", A), ("b", B)):
        await ops.apply(load_stack(stack, text, lambda path: ""))
    result = await ops.rm("a")
    assert result["removed_networks"] == ["a_private"]
    assert result["kept_networks"] == [
        {"name": "shared_public", "services": ["b-front"], "stacks": {"b-front": "b"}}
    ]
    assert manager.state.network_by_name("shared_public") is not None  # b-front still runs on it
    assert (await ops.rm("b"))["kept_networks"] == []  # b's is external: never b's to remove or keep


class Api:
    """The API as `stack rm` sees it: the daemon kept a network, a config of the stack is in use."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        if path.endswith("/config"):
            return [{"name": "a-conf", "labels": {STACK_LABEL: "a"}, "services": ["b-front"]}]
        return []

    def delete(self, path: str, body: Any = None) -> Any:
        self.deleted.append(path)
        kept = [{"name": "shared_public", "services": ["b-front"]}]
        return {"stack": "a", "removed": ["a-api"], "removed_networks": ["a_private"], "kept_networks": kept}


def test_the_cli_says_what_it_kept_and_who_uses_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api()
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    assert cli_stack.cmd_stack_rm(argparse.Namespace(stacks=["a"], json=False)) == 0
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        "warning: network shared_public of stack a kept: in use by service(s) b-front; remove it with "
        "`p2porch network rm shared_public` once they leave it",
        "warning: config a-conf of stack a kept: in use by service(s) b-front; remove it with "
        "`p2porch config rm a-conf` once they leave it",
    ]
    assert api.deleted == ["/stacks/a"]
    assert "removed  network a_private" in out.out and out.out.endswith("stack a removed\n")


async def test_a_second_stack_rm_removes_the_network_once_its_users_left() -> None:
    manager = MemoryManager()
    ops = StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]
    for stack, text in (("a", A), ("b", B)):
        await ops.apply(load_stack(stack, text, lambda path: ""))
    await ops.rm("a")
    await ops.rm("b")
    again = await ops.rm("a")  # on main: NotFoundError ("Nothing found in stack: a"), the network stays
    assert (again["removed"], again["removed_networks"], again["kept_networks"]) == (
        [],
        ["shared_public"],
        [],
    )
    assert manager.state.network_by_name("shared_public") is None


class TwoStacks(Api):
    """The daemon for `stack rm a b`, b's service on a's network: a's network goes once b's are gone."""

    def delete(self, path: str, body: Any = None) -> Any:
        self.deleted.append(path)
        if path == "/stacks/b":
            return {"stack": "b", "removed": ["b-front"], "removed_networks": [], "kept_networks": []}
        if self.deleted.count(path) == 1:
            kept = [{"name": "shared_public", "services": ["b-front"], "stacks": {"b-front": "b"}}]
            return {"stack": "a", "removed": ["a-api"], "removed_networks": [], "kept_networks": kept}
        return {"stack": "a", "removed": [], "removed_networks": ["shared_public"], "kept_networks": []}

    def get(self, path: str, **_: Any) -> Any:
        return []


def test_stack_rm_of_both_stacks_removes_the_shared_network_after_its_users(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = TwoStacks()
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    assert cli_stack.cmd_stack_rm(argparse.Namespace(stacks=["a", "b"], json=False)) == 0
    out = capsys.readouterr()
    assert api.deleted == ["/stacks/a", "/stacks/b", "/stacks/a"]  # on main: a's network left behind
    assert out.err == "" and "removed  network shared_public" in out.out
