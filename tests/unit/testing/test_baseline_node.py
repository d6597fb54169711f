"""The stand-in of the release before the gate (``p2porch.testing.baseline_node``) reads specs as that
release did: spec version 1. Main's still parsed spec version 3's ``container.pull_policy`` and
``container.mem_swappiness`` and its FSM knew the host network, so the integration tests of the spec field
gate could not show what that release makes of them. Run in a child process: the stand-in changes this
release's decoder in place."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json
from p2porch.errors import P2POrchError
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE
from p2porch.testing.baseline_node import read_baseline_only

read_baseline_only()
out = {}
base = {"name": "web", "image": "p2porch/busybox:latest", "replicas": 0}
for key, value in (("pull_policy", "always"), ("mem_swappiness", 10), ("memory_swappiness", 10),
                   ("memswap_limit", "128M"), ("memory_swap", "128M"), ("hostname", "h")):
    try:
        ServiceSpec.from_dict({**base, "container": {key: value}})
        out[key] = "read"
    except P2POrchError as exc:
        out[key] = exc.message
state, result, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
host = C.CreateService(at=2.0, service_id="s1", spec=ServiceSpec.from_dict(
    {**base, "networks": ["host"], "endpoint_mode": "dnsrr"}))
state, result, _ = apply(state, host.encode())
out["host"] = result
print(json.dumps(out))
"""


def test_the_older_release_reads_no_spec_field_above_version_1_and_knows_no_host_network() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for key in ("pull_policy", "mem_swappiness", "memory_swappiness", "memswap_limit", "memory_swap"):
        assert "unknown container option" in out[key], (key, out[key])
    assert out["hostname"] == "read"  # a field of spec version 1
    assert not out["host"]["ok"] and "network 'host' not found" in out["host"]["message"], out["host"]
