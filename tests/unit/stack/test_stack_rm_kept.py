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
    assert result["kept_networks"] == [{"name": "shared_public", "services": ["b-front"]}]
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
        "warning: network shared_public of stack a kept: in use by service(s) b-front",
        "warning: config a-conf of stack a kept: in use by service(s) b-front",
    ]
    assert api.deleted == ["/stacks/a"]
    assert "removed  network a_private" in out.out and out.out.endswith("stack a removed\n")
