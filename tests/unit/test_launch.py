"""The daemon's command line (p2porch.launch): one builder, its interpreter flags take effect."""

from __future__ import annotations

import importlib
import subprocess
import sys

from p2porch.launch import DAEMON_PYTHON_FLAGS, daemon_argv

cli_main = importlib.import_module("p2porch.cli.main")


def test_the_argv_runs_the_daemon_command_with_the_interpreter_flags() -> None:
    argv = daemon_argv(["--data-dir", "/d", "--name", "n1"], host="unix:///x.sock", python="/py")
    assert argv == [
        "/py",
        "-P",
        "-X",
        "no_debug_ranges",
        "-m",
        "p2porch",
        "--host",
        "unix:///x.sock",
        "daemon",
    ] + [
        "--data-dir",
        "/d",
        "--name",
        "n1",
    ]
    cli_args = argv[argv.index("p2porch") + 1 :]
    assert cli_main.command_word(cli_args) == "daemon"
    parsed = cli_main.build_parser("daemon").parse_args(cli_args)
    assert parsed.data_dir == "/d" and parsed.name == "n1"


def test_without_a_host_the_default_interpreter_is_used() -> None:
    assert daemon_argv([]) == [sys.executable, *DAEMON_PYTHON_FLAGS, "-m", "p2porch", "daemon"]


def test_the_flags_drop_column_positions_from_code_objects() -> None:
    code = "def f():\n    return 1\nprint(sorted({p[2] for p in f.__code__.co_positions()}, key=repr))"

    def columns(flags: tuple[str, ...]) -> str:
        done = subprocess.run(
            [sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert columns(()) != "[None]"  # columns are there by default: the check can fail
    assert columns(DAEMON_PYTHON_FLAGS) == "[None]"


def test_a_module_in_the_callers_directory_never_shadows_the_daemons(tmp_path) -> None:
    (tmp_path / "json.py").write_text("raise SystemExit('the caller directory shadowed json')\n")
    probe = "import json, sys; print(json.__file__)"
    plain = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert "shadowed" in plain.stderr  # without the flags the caller's json.py wins: the check can fail
    done = subprocess.run(
        [sys.executable, *DAEMON_PYTHON_FLAGS, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and str(tmp_path) not in done.stdout, done.stderr
