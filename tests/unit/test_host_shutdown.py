"""Reading whether the host is shutting down from its init system (host_shutdown.py, pure part)."""

from __future__ import annotations

import subprocess

import pytest

from p2porch.host_shutdown import host_shutting_down, shutdown_begun


@pytest.mark.parametrize(
    ("system_state", "runlevel", "down"),
    [
        ("stopping", None, True),  # systemd: poweroff/reboot/halt has begun
        ("stopping\n", "N 5", True),
        ("running", None, False),  # systemctl restart p2porch
        ("degraded", None, False),  # a failed unit elsewhere: still no shutdown
        ("starting", "N 6", False),  # systemd answered: its word wins over utmp
        (None, "N 6", True),  # SysV init: switching to reboot
        (None, "3 0", True),  # ... to halt
        (None, "N 3", False),
        (None, "unknown", False),  # no utmp record
        (None, None, False),  # no init system answered: unknown, the restart is announced
    ],
)
def test_shutdown_begun(system_state, runlevel, down):
    assert shutdown_begun(system_state, runlevel) is down


def runs(outputs: dict[str, str | Exception]):
    """A ``subprocess.run`` stand-in answering by program name; records what was asked."""
    asked: list[str] = []

    def run(argv, **kw):
        name = argv[0].rsplit("/", 1)[-1]
        asked.append(name)
        out = outputs[name]
        if isinstance(out, Exception):
            raise out
        return subprocess.CompletedProcess(argv, 1, out, "")

    return run, asked


def programs(tmp_path, *names):
    for name in names:
        exe = tmp_path / "bin" / name
        exe.parent.mkdir(exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 1\n")
        exe.chmod(0o755)
    return str(tmp_path / "bin")


def test_systemd_is_asked_only_on_a_host_it_booted(tmp_path):
    path = programs(tmp_path, "systemctl", "runlevel")
    run, asked = runs({"systemctl": "stopping\n", "runlevel": "N 5\n"})
    marker = tmp_path / "run-systemd-system"
    assert not host_shutting_down(marker=str(marker), path=path, run=run)
    assert asked == ["runlevel"]  # no systemd here: its systemctl (a leftover, a container) is not asked
    marker.mkdir()
    run, asked = runs({"systemctl": "stopping\n", "runlevel": "N 5\n"})
    assert host_shutting_down(marker=str(marker), path=path, run=run)
    assert asked == ["systemctl"]


def test_a_silent_or_failing_init_system_reads_as_unknown(tmp_path):
    marker = tmp_path / "m"
    marker.mkdir()
    path = programs(tmp_path, "systemctl", "runlevel")
    timeout = subprocess.TimeoutExpired("systemctl", 2.0)
    run, asked = runs({"systemctl": timeout, "runlevel": "N 6"})
    assert host_shutting_down(marker=str(marker), path=path, run=run)  # SysV's answer, then
    assert asked == ["systemctl", "runlevel"]
    run, _ = runs({"systemctl": OSError("exec format error"), "runlevel": OSError("gone")})
    assert not host_shutting_down(marker=str(marker), path=path, run=run)
    assert not host_shutting_down(marker=str(marker), path=str(tmp_path / "nothing"), run=run)
