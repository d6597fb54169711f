"""A join abandoned after its member services started leaves gossip before it stops (shell tier: the
manager's join with the join request, the member run and the wait for its record stood in for)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.config import load_config
from p2porch.errors import RaftError
from p2porch.membership import manager as manager_module
from p2porch.membership.keys import new_cluster_keys
from p2porch.membership.manager import ClusterManager
from p2porch.membership.token import new_token


class FakeGossip:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def join(self, seeds: list[str]) -> int:
        return 1

    async def leave(self) -> None:
        self.events.append("gossip leave")


async def test_a_join_abandoned_after_its_gossip_started_announces_its_leave_then_stops(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its record may be a ready voter by then: the leader adds a voter it saw admitted once it is alive
    in gossip, without asking it (leader/autopilot.AdmittedVoters), so it must not stay alive there.
    Fails without the announcement (the member run stops first, gossip alive until it is suspected)."""
    config = load_config(
        env={}, overrides={"node.data_dir": str(tmp_path), "node.advertise_addr": "10.0.0.2"}
    )
    manager = ClusterManager(config, "n2")
    token = new_token()
    keys = new_cluster_keys(token.cluster_id)
    events: list[str] = []

    async def request_join(host: str, port: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {
            "cluster_id": token.cluster_id,
            "key_epoch": keys.epoch,
            "cluster_key": keys.to_text(),
            "role": "voter",
            "voters": ["10.0.0.1:7947"],
            "gossip_seed": "10.0.0.1:7946",
        }

    async def start(
        local: Any, prepare: Any = None, *, joining: bool = False, greeting: bool = False
    ) -> None:
        events.append(f"start as {local.role}")
        manager.runtime.board.gossip = FakeGossip(events)  # type: ignore[assignment]

    async def stop() -> None:
        events.append("stop")
        manager.runtime.board.gossip = None

    async def never_replicated(node_id: str, timeout_s: float) -> None:
        raise RaftError("joined, but this node's record did not replicate here")

    monkeypatch.setattr(manager_module, "request_join", request_join)
    monkeypatch.setattr(manager.runtime, "start", start)
    monkeypatch.setattr(manager.runtime, "stop", stop)
    monkeypatch.setattr(manager, "_wait_for_self", never_replicated)
    with pytest.raises((RaftError, BaseExceptionGroup)):  # raised inside the greeting's nursery
        await manager.join({"peer": "10.0.0.1", "token": str(token)})
    assert events == ["start as voter", "gossip leave", "stop"]
    assert manager.local is None and not (tmp_path / "cluster.json").exists()
