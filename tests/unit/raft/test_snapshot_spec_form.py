"""A node restored from a snapshot holds the same state as one that replayed the log (review r52d, 2).

A node of an older release cannot read a spec a newer one wrote: it keeps the spec as committed
(``invalid_spec``) and ``update_sequence.user_version`` compares a later write's spec with it. A Raft
command carries ``spec.to_sparse_dict()``; a snapshot carried ``Service.to_dict()`` with the full
``spec.to_dict()``, so on the node restored from a newer node's snapshot a bookkeeping write (one that
re-sends the stored spec) read as a user's change and moved ``user_version``, where the node that
replayed the log kept it: the same log, two states. The snapshot now stores the command's form.

The older release is this code with ``on_site_loss`` unknown to its validator (``committed_spec``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from p2porch.model import ServiceSpec, committed, records
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState

NEWER = ServiceSpec.from_dict({"name": "web", "image": "nginx", "replicas": 2, "on_site_loss": "replace"})


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def older(raw: Any, service_id: str) -> tuple[ServiceSpec, str]:
    """An older release's reading: it has no ``on_site_loss``."""
    if isinstance(raw, Mapping) and "on_site_loss" in raw:
        raw = {**raw, "replicas": -1}  # refused, as an unknown key would be there
    return committed.committed_spec(raw, service_id)


def test_a_valid_spec_is_snapshotted_in_the_form_its_command_carries() -> None:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state = run(state, C.CreateService(at=2.0, service_id="s1", spec=NEWER).encode())
    (dumped,) = state.to_dict()["services"]
    assert dumped["spec"] == NEWER.to_sparse_dict()  # main: NEWER.to_dict(), every default written
    assert ClusterState.from_dict(state.to_dict()).services["s1"].spec == NEWER  # the defaults filled


def test_a_node_restored_from_a_snapshot_agrees_with_one_that_replayed_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    init = C.InitCluster(at=1.0, cluster_id="c").encode()
    create = C.CreateService(at=2.0, service_id="s1", spec=NEWER).encode()
    newer = run(run(EMPTY_STATE, init), create)  # the node of the newer release, which snapshots
    snapshot = newer.to_dict()
    # the leader's bookkeeping write (a rebalance request): the stored spec sent again, as it is
    bookkeeping = C.UpdateService.of(newer.services["s1"], at=3.0, rebalance_requested=3.0).encode()

    monkeypatch.setattr(records, "committed_spec", older)
    monkeypatch.setattr(C, "committed_spec", older)
    replayed = run(run(run(EMPTY_STATE, init), create), bookkeeping)
    restored = run(ClusterState.from_dict(snapshot), bookkeeping)
    assert replayed.services["s1"].invalid and restored.services["s1"].invalid
    assert replayed.services["s1"].user_version == 2  # the create's, kept by the bookkeeping write
    assert restored.services["s1"].user_version == 2  # main: 3, the bookkeeping write taken for a user's
    assert restored.to_dict() == replayed.to_dict()
