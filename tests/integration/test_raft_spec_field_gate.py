"""The spec field gate on real Raft processes: while a node of a release before the gate
(``p2porch.testing.baseline_node``: spec version 1, it advertises nothing) is a member, a spec using a
newer field (``container.memswap_limit``, log options without a driver, ``container.pull_policy``, the
host network, ``container.privileged`` and a sidecar's ``privileged`` and ``cap_add``) is refused at the
write naming the field and that node; specs without them are written and read everywhere; once the node
runs this release the field is accepted. What that node makes of a spec it cannot read (written past the
gate, as the release before this check did) is shown too: every node applies the entry, the old one as an
invalid service; a service on the host network the old FSM refuses outright, the others apply it: the
replicas diverge until that node runs this release.

3 voters as separate processes on loopback (``LocalCluster``); each new node's store is told the
members' advertisements as a daemon's gossip tells it (the ``advertisements`` control op); the writes
are the API's (``write_spec``: the edge check, then create or update) through each new node.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_raft_command_gate import states_at

from p2porch.model import ServiceSpec
from p2porch.raft import command_gate
from p2porch.raft import commands as C
from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration

NEW = command_gate.advertisement()
PLAIN = {"name": "web", "image": "p2porch/busybox:latest", "replicas": 0, "limit_memory": "64M"}
MEMSWAP = {**PLAIN, "container": {"memswap_limit": "128M"}}
DRIVERLESS = {**PLAIN, "container": {"log_opts": {"max-size": "1m"}}}
PULL = {**PLAIN, "container": {"pull_policy": "always"}}  # spec version 3
HOST = {**PLAIN, "networks": ["host"], "endpoint_mode": "dnsrr"}  # spec version 3: a network v2 lacks
NEWER = ((MEMSWAP, "container.memswap_limit"), (DRIVERLESS, "container.log_opts"))
NEWER += ((PULL, "container.pull_policy"), (HOST, "networks: host"))
PRIVILEGED = {**PLAIN, "container": {"privileged": True}}  # spec version 5
STATUS_FRESH_AFTER_S = 0.2  # past status_refresh_s (0.05 s by default): a status then is computed anew
VPN = {"name": "vpn", "image": "p2porch/busybox:latest", "privileged": True}
NEWER += ((PRIVILEGED, "container.privileged"), ({**PLAIN, "sidecars": [VPN]}, "sidecars[0].privileged"))
PROFILER = {"name": "spy", "image": "p2porch/busybox:latest", "cap_add": ["SYS_PTRACE"]}  # spec version 7
NEWER += (({**PLAIN, "sidecars": [PROFILER]}, "sidecars[0].cap_add"),)


@pytest.fixture
def old() -> set[str]:
    return {"v2"}  # the nodes that run the release before the gate


@pytest.fixture
def cluster(tmp_path: Path, old: set[str]) -> Iterator[LocalCluster]:
    def module(node: NodeProc) -> str:
        return "p2porch.testing.baseline_node" if node.name in old else "p2porch.raft.node"

    with contextlib.closing(LocalCluster(tmp_path / "p9d", voters=3, module_for=module)) as c:
        c.start_all()
        yield c


def committed(answer: dict[str, Any]) -> int:
    assert answer["ok"] and answer["result"]["ok"], answer
    return int(answer["result"]["version"])


def write_spec(node: NodeProc, service_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    return node.call(op="write_spec", id=service_id, spec=spec, timeout_s=10.0)


def advertise(cluster: LocalCluster, old: set[str]) -> None:
    """What gossip tells every new node: the others' advertisements (the old ones advertise nothing)."""
    members = {n.name: None if n.name in old else NEW for n in cluster.nodes}
    for node in cluster.nodes:
        if node.name not in old:
            assert node.call(op="advertisements", members=members)["ok"]


def services_at(cluster: LocalCluster, version: int) -> dict[str, dict[str, Any]]:
    """Every node's services by id (node name ->) once each reached ``version`` (``states_at``)."""
    states = states_at(cluster, version)
    return {name: {s["service_id"]: s for s in state["services"]} for name, state in states.items()}


def applied_everywhere(cluster: LocalCluster, index: int, timeout_s: float = 15.0) -> dict[str, Any]:
    """Every node's state (by node name) once each applied the log up to ``index``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(n.call(op="status")["status"]["last_applied"] >= index for n in cluster.nodes):
            return {n.name: n.call(op="state")["state"] for n in cluster.nodes}
        time.sleep(0.05)
    raise AssertionError(f"not every node applied index {index} within {timeout_s} s")


def index_of_version(node: NodeProc, version: int, timeout_s: float = 15.0) -> int:
    """The log index that holds state ``version`` on ``node``: its commit index once its state is there. Not
    its ``last_applied``: pysyncobj hands an entry's result over (the write returns) *before* it counts the
    entry there, so read at once it may still name the entry before. Nor the commit index of the status that
    first shows the version: a status reads the commit index before the state's version, unlocked, so it
    may pair the version with a commit index from before its entry. A status read longer than
    ``status_refresh_s`` after the version was seen is computed after it, so its commit index covers it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node.call(op="status")["status"]["state_version"] >= version:
            time.sleep(STATUS_FRESH_AFTER_S)
            return int(node.call(op="status")["status"]["commit_index"])
        time.sleep(0.02)
    raise AssertionError(f"{node.name} not at state version {version} within {timeout_s} s")


def same_everywhere(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    first = next(iter(services.values()))
    assert all(s == first for s in services.values())
    assert not any("invalid" in s for s in first.values())
    return first


def test_a_spec_field_waits_for_every_node_to_read_it(cluster: LocalCluster, old: set[str]) -> None:
    first, second = (n for n in cluster.nodes if n.name not in old)  # the leader or a follower
    assert committed(cluster.leader().call(op="init", cluster_id="p9d")) == 1
    advertise(cluster, old)

    # v2 reads spec version 1: the newer fields are refused through either new node, nothing written
    for writer in (first, second):
        for spec, field in NEWER:
            answer = write_spec(writer, "s-web", spec)
            assert answer["error"] == "NotAllowedError", answer
            assert field in answer["message"] and "v2 read spec fields up to version 1" in answer["message"]
    # a spec without them is created, and updated, and read alike everywhere
    assert committed(write_spec(first, "s-web", PLAIN)) == 2
    services_at(cluster, 2)  # `second` reads its own copy: it updates s-web only once it applied the create
    assert write_spec(second, "s-web", MEMSWAP)["error"] == "NotAllowedError"
    assert committed(write_spec(second, "s-web", {**PLAIN, "replicas": 2})) == 3
    # a state dump holds the sparse form a Raft command carries (model/records.py)
    web = same_everywhere(services_at(cluster, 3))["s-web"]
    assert web["spec"]["replicas"] == 2 and web["spec"].get("container", {}) == {}

    # past the gate (the API of the release before this check): v2 applies it as an invalid service
    swapped = ServiceSpec.from_dict({**MEMSWAP, "name": "swap"})
    swap = C.CreateService(at=time.time(), service_id="s-swap", spec=swapped)
    assert committed(first.call(op="propose", cmd=swap.encode().hex(), timeout_s=10.0)) == 4
    services = services_at(cluster, 4)
    assert services["v2"]["s-swap"]["invalid"].endswith("memswap_limit_bytes: unknown container option")
    assert services["v2"]["s-swap"]["spec"] == swap.spec.to_sparse_dict()  # kept as committed
    assert all("invalid" not in services[n.name]["s-swap"] for n in (first, second))
    # and the host network past the gate: v2's FSM refuses the entry the others apply (they diverge)
    on_host = ServiceSpec.from_dict({**HOST, "name": "onhost"})
    host = C.CreateService(at=time.time(), service_id="s-host", spec=on_host)
    assert committed(first.call(op="propose", cmd=host.encode().hex(), timeout_s=10.0)) == 5
    states = applied_everywhere(cluster, index_of_version(first, 5))
    assert {name: s["version"] for name, s in states.items()} == {first.name: 5, second.name: 5, "v2": 4}
    on_it = {name for name, s in states.items() if any(x["service_id"] == "s-host" for x in s["services"])}
    assert on_it == {first.name, second.name}

    # v2 restarts as this release (its log read again: the specs are valid there too) and advertises
    node = cluster.node("v2")
    cluster.kill(node)
    old.discard("v2")
    cluster.start(node)
    advertise(cluster, old)
    assert committed(write_spec(cluster.leader(), "s-web", MEMSWAP)) == 6
    web = same_everywhere(services_at(cluster, 6))["s-web"]
    assert web["spec"]["container"] == {"memswap_limit_bytes": 128 << 20}
