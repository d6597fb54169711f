"""`stack rm`'s second pass (a stack whose network only stacks named after it still use is removed again
after them) against the real StackOps: decided by the users' stack label, not their names' prefix, once
per stack; its result merged into the first; nothing "removed" said when nothing was (the h51 review:
`stack rm a a` with a hand-made `a-debug` on a's network sent DELETE /stacks/a forever)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import trio

from p2porch.cli import stack as cli_stack
from p2porch.cli import util as cli_util
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager

OWN = """
services:
  api:
    image: p2porch/busybox:latest
    networks: [net]
networks:
  net:
    name: {name}_net
"""
JOINS = """
services:
  front:
    image: p2porch/busybox:latest
    networks: [net]
networks:
  net:
    external: true
    name: a_net
"""
MAX_DELETES = 10  # on main `stack rm a a` never ends: the test stops it


class Daemon:
    """The API `stack rm` calls, answered by a real StackOps over an in-memory cluster."""

    def __init__(self) -> None:
        self.manager = MemoryManager()
        self.ops = StackOps(ServiceOps(self.manager, logs=None))  # type: ignore[arg-type]
        self.deleted: list[str] = []

    def deploy(self, stack: str, text: str) -> None:
        trio.run(self.ops.apply, load_stack(stack, text, lambda path: ""))

    def by_hand(self, name: str, network: str) -> None:
        trio.run(self.ops.services.create, {"name": name, "image": "busybox", "networks": [network]})

    def get(self, path: str, **_: Any) -> Any:
        return self.ops.services.list_all() if path == "/services" else []

    def delete(self, path: str, body: Any = None) -> Any:
        self.deleted.append(path)
        if len(self.deleted) > MAX_DELETES:
            raise RuntimeError(f"stack rm does not end: {self.deleted}")
        return trio.run(self.ops.rm, path.rsplit("/", 1)[1])


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Daemon:
    api = Daemon()
    monkeypatch.setattr(cli_util, "client_for", lambda args, **kw: api)
    return api


def rm(*stacks: str, as_json: bool = False) -> int:
    return cli_stack.cmd_stack_rm(argparse.Namespace(stacks=list(stacks), json=as_json))


def test_a_hand_made_service_named_like_the_stack_keeps_its_network_once(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.deploy("a", OWN.format(name="a"))
    daemon.by_hand("a-debug", "a_net")
    assert rm("a", "a") == 0
    assert daemon.deleted == ["/stacks/a", "/stacks/a"]  # on main: DELETE /stacks/a forever
    out = capsys.readouterr()
    assert out.out.count("stack a removed") == 1  # the second found nothing to remove: no "removed"
    assert out.err.count("warning: network a_net of stack a kept: in use by service(s) a-debug") == 2


def test_hand_made_services_on_each_others_networks_are_no_stacks_leaving(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.deploy("a", OWN.format(name="a"))
    daemon.deploy("b", OWN.format(name="b"))
    daemon.by_hand("b-debug", "a_net")
    daemon.by_hand("a-debug", "b_net")
    assert rm("a", "b") == 0
    assert daemon.deleted == ["/stacks/a", "/stacks/b"]  # on main: a and b again, forever
    assert daemon.manager.state.network_by_name("a_net") is not None  # b-debug still on it


def test_a_rerun_is_merged_into_the_stacks_first_result(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.deploy("a", OWN.format(name="a"))
    daemon.deploy("b", JOINS)
    assert rm("a", "b", as_json=True) == 0
    assert daemon.deleted == ["/stacks/a", "/stacks/b", "/stacks/a"]
    results = json.loads(capsys.readouterr().out)
    assert [r["stack"] for r in results] == ["a", "b"]  # on main: a, b, a
    assert results[0]["removed"] == ["a-api"] and results[0]["removed_networks"] == ["a_net"]
    assert results[0]["kept"] == [] and "again" not in results[0]
    assert daemon.manager.state.network_by_name("a_net") is None


def test_a_rerun_says_stack_removed_once(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.deploy("a", OWN.format(name="a"))
    daemon.deploy("b", JOINS)
    assert rm("a", "b") == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.splitlines() == [
        "removed  a-api",
        "stack a removed",
        "removed  b-front",
        "stack b removed",
        "removed  network a_net",
    ]


def test_a_second_rm_while_another_stack_uses_the_network_says_only_what_is_kept(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.deploy("a", OWN.format(name="a"))
    daemon.deploy("b", JOINS)
    assert rm("a") == 0
    capsys.readouterr()
    assert rm("a") == 0
    out = capsys.readouterr()
    assert out.out == ""  # on main: "stack a removed", though nothing was
    assert out.err.startswith("warning: network a_net of stack a kept: in use by service(s) b-front")
