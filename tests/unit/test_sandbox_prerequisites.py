"""The sandbox refuses clearly when it cannot work, saying what to install."""

import pytest

from p2porch.errors import SandboxError
from p2porch.sandbox import system
from p2porch.sandbox.sandbox import Sandbox


def test_refuses_when_not_root(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxError, match="needs root"):
        system.check_prerequisites()


def test_names_missing_packages(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        system, "find_program", lambda name: None if name in ("dockerd", "busybox") else "/bin/x"
    )
    with pytest.raises(SandboxError) as info:
        system.check_prerequisites()
    assert "apt-get install -y busybox-static docker.io" in info.value.message


def test_rejects_bad_names():
    with pytest.raises(SandboxError, match="sandbox name"):
        Sandbox("Bad-Name")
    with pytest.raises(SandboxError, match="subnet"):
        Sandbox("okname", subnet="10.0.0.0/33")


def test_sandbox_exec_puts_this_p2porchs_bin_dir_first_on_path():
    # `p2porch sandbox exec n1 -- p2porch status` with p2porch only in ./.venv/bin must find it
    from p2porch.sandbox.sandbox import exec_environment

    node = {"DOCKER_HOST": "unix:///d.sock", "P2PORCH_HOST": "unix:///p.sock"}
    env = exec_environment({"PATH": "/usr/bin:/bin", "HOME": "/root"}, node, "/src/.venv/bin")
    assert env["PATH"] == "/src/.venv/bin:/usr/bin:/bin"
    assert env["HOME"] == "/root" and env["P2PORCH_HOST"] == "unix:///p.sock"
    again = exec_environment({"PATH": "/src/.venv/bin:/usr/bin"}, node, "/src/.venv/bin")
    assert again["PATH"] == "/src/.venv/bin:/usr/bin"  # already there: unchanged
