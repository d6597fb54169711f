"""The join port over loopback: which requests each key serves (join token, current and older epochs)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from p2porch.errors import P2POrchError
from p2porch.membership.join_service import JoinService, request_join
from p2porch.membership.keys import new_cluster_keys
from p2porch.membership.token import new_token

CLUSTER = "0123456789abcdef"
OLD, CURRENT = new_cluster_keys(CLUSTER, 1), new_cluster_keys(CLUSTER, 2)
TOKEN = new_token(CLUSTER)


async def with_service(fn: Any) -> None:
    joins: list[tuple[dict[str, Any], str]] = []

    async def handle(request: dict[str, Any], source: str) -> dict[str, Any]:
        joins.append((request, source))
        return {"ok": True}

    async def answer(request: dict[str, Any]) -> dict[str, Any]:
        return {"op": request["op"]}

    keys = {1: OLD, 2: CURRENT}
    service = JoinService(
        lambda: TOKEN,
        handle,
        member_ops={"membership": answer, "keys": answer},
        get_member_key=lambda epoch: (keys[epoch], epoch == 2) if epoch in keys else None,
        old_epoch_ops=frozenset({"keys"}),
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(service.serve, "127.0.0.1", 0)
        await fn(port, joins)
        nursery.cancel_scope.cancel()


async def test_each_key_gets_only_what_it_may_ask() -> None:
    async def check(port: int, joins: list[tuple[dict[str, Any], str]]) -> None:
        assert await request_join("127.0.0.1", port, TOKEN, {"name": "x"}) == {"ok": True}
        assert joins == [({"name": "x"}, "127.0.0.1")]  # the join handler learns the source address
        current = await request_join("127.0.0.1", port, CURRENT, {"op": "membership"}, member=True)
        assert current == {"op": "membership"}
        # an older epoch's key may only fetch its sealed new key
        assert await request_join("127.0.0.1", port, OLD, {"op": "keys"}, member=True) == {"op": "keys"}
        with pytest.raises(P2POrchError, match="not current"):
            await request_join("127.0.0.1", port, OLD, {"op": "membership"}, member=True)
        # the join token is no member key, and an unknown epoch is refused
        with pytest.raises(P2POrchError):
            await request_join("127.0.0.1", port, TOKEN, {"op": "membership"}, member=True)
        with pytest.raises(P2POrchError, match="unknown cluster key epoch"):
            await request_join("127.0.0.1", port, new_cluster_keys(CLUSTER, 7), {"op": "keys"}, member=True)

    await with_service(check)


async def test_a_member_that_runs_out_of_time_tells_the_joiner_to_run_the_same_join_again() -> None:
    async def stuck(request: dict[str, Any], source: str) -> dict[str, Any]:
        await trio.sleep_forever()  # e.g. its admission write waits for a commit on a busy cluster
        raise AssertionError("unreachable")

    service = JoinService(lambda: TOKEN, stuck, timeout_s=0.2)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(service.serve, "127.0.0.1", 0)
        with pytest.raises(P2POrchError, match="did not finish the request .* run the same join again"):
            await request_join("127.0.0.1", port, TOKEN, {"name": "x"})
        assert service.metrics["failed"] == 1
        nursery.cancel_scope.cancel()
