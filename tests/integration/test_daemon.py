"""The daemon process: status over its socket, one daemon per data dir, clean SIGTERM stop."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from p2porch.launch import daemon_argv
from p2porch.sandbox.system import pid_alive, stop_pid


def p2porch(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2porch", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def daemon(tmp_path):
    sock = tmp_path / "run" / "p2porch.sock"
    pid_file = tmp_path / "run" / "daemon.pid"
    log_file = open(tmp_path / "daemon.log", "w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        daemon_argv(
            ["--data-dir", str(tmp_path / "data"), "--name", "t1", "--pid-file", str(pid_file)]
            + ["--log-format", "json"],
            host=f"unix://{sock}",
        ),
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: sock.exists() and pid_file.exists(), what="daemon socket")
        yield {
            "proc": proc,
            "sock": sock,
            "pid_file": pid_file,
            "data": tmp_path / "data",
            "log": log_file,
            "tmp": tmp_path,
        }
    finally:
        stop_pid(proc.pid)
        proc.wait(timeout=5)
        log_file.close()


def test_status_over_socket(daemon):
    result = p2porch("--host", f"unix://{daemon['sock']}", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["node"]["name"] == "t1"
    assert status["daemon"]["pid"] == daemon["proc"].pid
    assert "api" in status["daemon"]["subsystems"]
    table = p2porch("--host", f"unix://{daemon['sock']}", "status")
    assert table.returncode == 0 and "t1" in table.stdout
    version = subprocess.run(
        [sys.executable, "-m", "p2porch", "version", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "P2PORCH_HOST": f"unix://{daemon['sock']}"},
    )
    assert json.loads(version.stdout)["daemon"]["api_version"] == "v1"


def test_socket_and_data_dir_are_private(daemon):
    assert stat.S_IMODE(os.stat(daemon["sock"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon["data"]).st_mode) == 0o700


def test_api_errors_are_json_naming_the_problem(daemon):
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(uds=str(daemon["sock"])), base_url="http://x") as client:
        missing = client.get("/v1/nope")
        assert missing.status_code == 404 and "/v1/nope" in missing.json()["message"]
        spec = client.get("/v1/openapi.json").json()
        assert spec["openapi"].startswith("3.") and "/v1/status" in spec["paths"]


def test_second_daemon_on_same_data_dir_is_refused(daemon):
    other = p2porch(
        "--host", f"unix://{daemon['tmp']}/other.sock", "daemon", "--data-dir", str(daemon["data"])
    )
    assert other.returncode == 1
    assert f"pid {daemon['proc'].pid}" in other.stderr
    assert "in use" in other.stderr
    # The first daemon is untouched.
    assert p2porch("--host", f"unix://{daemon['sock']}", "status").returncode == 0


def test_second_daemon_on_same_socket_is_refused(daemon):
    other = p2porch(
        "--host", f"unix://{daemon['sock']}", "daemon", "--data-dir", str(daemon["tmp"] / "data2")
    )
    assert other.returncode == 1
    assert "already listening" in other.stderr
    assert p2porch("--host", f"unix://{daemon['sock']}", "status").returncode == 0


def test_sigterm_stops_cleanly_and_removes_files(daemon):
    proc = daemon["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert not daemon["sock"].exists()
    assert not daemon["pid_file"].exists()
    assert not pid_alive(proc.pid)
    daemon["log"].seek(0)
    lines = [json.loads(line) for line in daemon["log"].read().splitlines() if line.startswith("{")]
    messages = [entry["msg"] for entry in lines]
    assert any("received SIGTERM" in m for m in messages)
    assert messages[-1] == "daemon stopped"
    # The data dir lock is free again: a new daemon can start on it.
    again = subprocess.Popen(
        daemon_argv(["--data-dir", str(daemon["data"])], host=f"unix://{daemon['sock']}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: daemon["sock"].exists(), what="restarted daemon")
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(timeout=15) == 0
