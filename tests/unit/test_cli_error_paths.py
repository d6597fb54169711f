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
    """Docker's ``nothing found in stack: nope`` (exit 1), as Docker's CLI prints it: alone."""
    from p2porch.cli import stack as cli_stack
    from p2porch.errors import NotFoundError

    class Missing:
        def get(self, path: str, **_: Any) -> Any:
            raise NotFoundError("no stack 'nope'", field="NAME")

    monkeypatch.setattr(cli_stack, "client_for", lambda args, **kw: Missing())
    assert main(["stack", "ps", "nope"]) == 1
    assert capsys.readouterr().err == "nothing found in stack: nope\n"


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
    with pytest.raises(NotFoundError, match="^No such service: nope$"):
        ops.service_ids(state, "nope")


def _run_into_a_closed_pipe(*args: str, tmp_path: Any) -> Any:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the CLI writes: `p2porch ... | head -1` once head exited
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered, as in a shell
    env["P2PORCH_HOST"] = f"unix://{tmp_path}/none.sock"
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


def test_output_still_buffered_at_the_end_into_a_gone_reader_ends_quietly_too(tmp_path):
    """`stack config -c big.yml | head -c 10`: what was left in stdout's 8 KB buffer failed at the
    interpreter's exit flush (``Exception ignored ... BrokenPipeError``, exit 120); main() flushes it
    itself, so a broken pipe there ends with 141 and nothing on stderr like any other."""
    services = "".join(f"  web{i}:\n    image: busybox:1.36\n    command: sleep {i}\n" for i in range(60))
    (tmp_path / "big.yml").write_text("services:\n" + services)
    done = _run_into_a_closed_pipe("stack", "config", "-c", str(tmp_path / "big.yml"), tmp_path=tmp_path)
    assert (done.returncode, done.stderr.decode()) == (141, "")


class Bodies(Api):
    """Records what the CLI sends, with the body."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def post(self, path: str, body: Any = None) -> Any:
        self.bodies.append(body)
        return {"id": "s1", "name": "web", "version": 3, "changed": ["container"]}


@pytest.mark.parametrize(
    "argv",
    [
        ["service", "create", "-d", "--name", "web", "--log-opt", "max-size=1m", "busybox"],
        ["service", "update", "-d", "--log-opt", "max-size=1m", "--replicas", "2", "web"],
    ],
)
def test_log_opt_without_log_driver_is_ignored_with_a_warning_as_docker_ignores_it(argv, monkeypatch, capsys):
    """Docker's CLI drops ``--log-opt`` without ``--log-driver``; p2porch passed them to the node's default
    driver, so on a node logging to journald every task failed (``unknown log opt 'max-size'``)."""
    api = Bodies()
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: api)
    assert main(argv) == 0
    assert "log_opts" not in (api.bodies[0].get("container") or {})
    assert "warning: --log-opt ignored without --log-driver" in capsys.readouterr().err


def test_log_opt_with_log_driver_still_reaches_the_spec(monkeypatch, capsys):
    api = Bodies()
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: api)
    argv = ["service", "update", "-d", "--log-driver", "local", "--log-opt", "max-size=1m", "web"]
    assert main(argv) == 0
    assert api.bodies[0]["container"] == {"log_driver": "local", "log_opts": ["max-size=1m"]}
    assert capsys.readouterr().err == ""
