"""Jepsen-style history test (issues 14 and 24) on a real sandbox cluster (``p2hc``, 10.66.0.0/24).

Concurrent clients create, read, update, compare-and-set and delete services (``--replicas 0``, every
fourth write with a ~70 kB label so its Raft entry exceeds 64 KiB) through the API of random nodes,
while a seeded nemesis kills -9 and restarts, pauses, partitions (iptables DROP in the namespace) and
cuts the link of daemons, leaders and followers alike. Afterwards: every node must list every
acknowledged write within ``P2PORCH_HISTORY_CONVERGE_BOUND`` (5 s) of the last heal, and the history
must be linearizable with no lost, duplicated or phantom write.

Short by default (seed 1, 40 s, 3 nodes). Longer by hand, e.g. 5 seeds of partitions only on 4 nodes
(the 4th a non-voting replica)::

    P2PORCH_HISTORY_SEEDS=1-5 P2PORCH_HISTORY_FAULTS=partition P2PORCH_HISTORY_NODES=4 \\
        flock /tmp/p2porch-integration.lock .venv/bin/python -m pytest tests/integration/test_history.py -s

Each seed prints one JSON line (ops, faults, anomalies, convergence times); ``P2PORCH_HISTORY_OUT=FILE``
appends them to FILE as well, ``P2PORCH_HISTORY_DIR=DIR`` keeps each history (JSON lines) there;
``P2PORCH_HISTORY_DURATION`` (s), ``P2PORCH_HISTORY_CLIENTS`` and ``P2PORCH_HISTORY_CONVERGE_BOUND`` (s)
change the run. ``bench/history.py`` runs the same with a JSON summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.testing.chaos import RunConfig, fresh_cluster, in_sync, printable, run_seed

NAME = "p2hc"
SUBNET = "10.66.0.0/24"
SEEDS = RunConfig.seeds_from_env("1")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(NAME, subnet=SUBNET)
    try:
        yield sb
    finally:
        sb.down()


_nodes: list[SandboxNode] = []


@pytest.fixture
def cluster(sandbox: Sandbox) -> tuple[Sandbox, list[SandboxNode]]:
    """The module's cluster, rebuilt when a node was left behind by the previous seed."""
    count = int(os.environ.get("P2PORCH_HISTORY_NODES", "3"))
    if not _nodes or not in_sync(_nodes):
        _nodes[:] = fresh_cluster(sandbox, count)
    return sandbox, _nodes


@pytest.mark.parametrize("seed", SEEDS)
def test_history_under_faults_is_linearizable_and_converges(
    cluster: tuple[Sandbox, list[SandboxNode]], seed: int, tmp_path: Path
) -> None:
    sb, nodes = cluster
    config = RunConfig.from_env(seed)
    result = run_seed(sb, nodes, config)
    line = json.dumps(printable(result), sort_keys=True)
    print(line)
    if os.environ.get("P2PORCH_HISTORY_OUT"):
        with open(os.environ["P2PORCH_HISTORY_OUT"], "a") as out:
            out.write(line + "\n")
    saved = Path(os.environ.get("P2PORCH_HISTORY_DIR", tmp_path))
    saved.mkdir(parents=True, exist_ok=True)
    (saved / f"history-{seed}.jsonl").write_text(result["history"].dump())

    # the run did something: enough operations, acknowledged writes and faults to mean anything
    assert result["ops"]["total"] >= 50, line
    assert result["ops"]["acked_writes"] >= 20, line
    assert sum(result["faults"].get(k, 0) for k in config.kinds) >= 2, line
    assert not result["nemesis_errors"], line
    # issue 24: every node lists every acknowledged write soon after the last heal
    assert result["converged"], f"nodes still differ {config.converge_give_up_s:.0f} s after the heal: {line}"
    assert result["within_bound"], f"converged in {result['convergence_s']} s > {config.converge_bound_s} s"
    # issue 14: the history of acknowledged operations is linearizable, nothing lost, doubled or invented
    assert result["linearizable"] is True, result["not_linearizable"] or result["unknown"]
    assert result["lost_count"] == 0, result["lost"]
    assert result["anomalies"] == 0, line
