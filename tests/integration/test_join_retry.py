"""A join that failed midway completes when the same join runs again (real daemons in a sandbox).

The joiner is admitted (its record commits on the member), then fails to start its member services
(its Raft port is taken by another process): the join fails with an error and the joiner keeps
nothing but its join identity. Once the port is free, the same ``p2porch join`` is admitted again as
the same node (same id, address and node key) and completes; the cluster holds that node once.
Before joins were idempotent the retry was refused ("a node named n2 is already in the cluster").
"""

from __future__ import annotations

import subprocess

import pytest
from clusterkit import P2PORCH, all_ready, api_get, cli, cli_json, wait_for

from p2porch.sandbox.sandbox import Sandbox

pytestmark = pytest.mark.integration

HOLD_PORT = (
    "import socket, sys, time; s = socket.socket(); s.bind((sys.argv[1], 7947)); s.listen(); "
    "print('held', flush=True); time.sleep(600)"
)


def test_a_join_that_failed_after_its_admission_completes_when_run_again() -> None:
    sb = Sandbox("p2jr", subnet="10.28.3.0/24")
    try:
        n1, n2 = sb.up(2)
        token = cli_json(sb, "n1", "init")["token"]
        holder = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{n2.netns}", P2PORCH[0], "-c", HOLD_PORT, n2.address],
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
            failed = cli(sb, "n2", "join", n1.address, "--token", token)
            assert failed.returncode != 0
            assert b"7947" in failed.stderr or b"Raft port" in failed.stderr, failed.stderr
        finally:
            holder.kill()
            holder.wait()
        # the member admitted n2 before it failed: its record is there (joining, never seen alive)
        rows = {r["name"]: r for r in api_get(n1, "/nodes")}
        assert rows["n2"]["status"] == "joining", rows
        first_id = rows["n2"]["id"]
        again = cli(sb, "n2", "join", n1.address, "--token", token)
        assert again.returncode == 0, again.stderr.decode()
        wait_for(lambda: all_ready(n1, 2), 60, "n1 and n2 ready")
        rows = {r["name"]: r for r in api_get(n1, "/nodes")}
        assert rows["n2"]["id"] == first_id  # the same node, admitted again: not a second record
        assert len(rows) == 2
    finally:
        sb.down()
