"""The CLI's error paths against Docker's (the fifth item of the h43 validation walk): a refused operation
exits 1, bad usage exits 2 naming the flag, and nothing is sent before a usage error."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main


class Api:
    """Records what the CLI sends; every service is a replicated one named as asked."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def get(self, path: str, **_: Any) -> Any:
        return {"name": path.split("/")[2], "mode": "replicated", "version": 2}

    def post(self, path: str, body: Any = None) -> Any:
        self.sent.append(path)
        return {"name": path.split("/")[2], "version": 3, "changed": ["image"]}


@pytest.mark.parametrize(
    "flags",
    [["--image", "busybox:2"], ["--force"], ["--env-add", "A=1"], ["--if-version", "2"], ["--replicas", "2"]],
)
def test_rollback_with_other_flags_is_refused_as_docker_refuses_it(flags, monkeypatch, capsys):
    """It rolled back and dropped the other flags without a word; Docker: other flags may not be
    combined with --rollback."""
    api = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: api)
    assert main(["service", "update", "--rollback", *flags, "web"]) == 2
    assert "--rollback: other flags may not be combined with --rollback" in capsys.readouterr().err
    assert api.sent == []


def test_rollback_alone_and_with_detach_or_quiet_still_rolls_back(monkeypatch, capsys):
    api = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: api)
    assert main(["service", "update", "--rollback", "-d", "-q", "web"]) == 0
    assert api.sent == ["/services/web/rollback"]


def test_stack_ps_of_an_unknown_stack_says_nothing_found_exit_1(monkeypatch, capsys):
    """Docker's ``nothing found in stack: nope`` (exit 1); the daemon's words beside it."""
    from p2porch.cli import stack as cli_stack
    from p2porch.errors import NotFoundError

    class Missing:
        def get(self, path: str, **_: Any) -> Any:
            raise NotFoundError("no stack 'nope'", field="NAME")

    monkeypatch.setattr(cli_stack, "client_for", lambda args, **kw: Missing())
    assert main(["stack", "ps", "nope"]) == 1
    assert capsys.readouterr().err == "p2porch: error: nothing found in stack: nope (no stack 'nope')\n"


def test_node_and_service_stats_name_a_missing_node_or_service_in_docker_s_words():
    """``node stats nope`` said ``no node 'nope' in the cluster`` where every other node command says
    Docker's ``No such node: nope``."""
    from p2porch.control.usage_ops import UsageOps
    from p2porch.errors import NotFoundError
    from p2porch.testing.memstore import MemoryManager

    ops = UsageOps(MemoryManager())  # type: ignore[arg-type]
    state = ops.cluster.snapshot()
    with pytest.raises(NotFoundError, match="^No such node: nope$"):
        ops.node_ids(state, "nope")
    with pytest.raises(NotFoundError, match="^no such service: nope$"):
        ops.service_ids(state, "nope")


def _run_into_a_closed_pipe(*args: str, tmp_path: Any) -> Any:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the CLI writes: `p2porch ... | head -1` once head exited
    env = {**os.environ, "P2PORCH_HOST": f"unix://{tmp_path}/none.sock"}
    try:
        command = [sys.executable, "-m", "p2porch", *args]
        return subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(write_end)


def test_a_reader_that_went_away_ends_the_cli_quietly_as_sigpipe_ends_a_unix_tool(tmp_path):
    """`service logs --follow app | head -3` printed `p2porch: error: Broken pipe` (the h48 walk); Docker's
    CLI, like any Unix tool, ends silently with 141 (128 + SIGPIPE)."""
    done = _run_into_a_closed_pipe("version", tmp_path=tmp_path)
    assert (done.returncode, done.stderr.decode()) == (141, "")
